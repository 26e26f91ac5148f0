//! `verdict inspect BUNDLE`: what a bundle holds, as `opa inspect` shows it: the manifest
//! (revision, roots, metadata), the namespaces its modules and data files contribute, and its
//! signatures (read, not verified: `verdict run` verifies).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{json, Value as Json};

use super::table;
use crate::bundle::reader::{self, RawFile};
use crate::bundle::{Bundle, LoadOptions};
use crate::gojson;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A bundle directory or .tar.gz.
    #[arg(value_name = "BUNDLE")]
    path: PathBuf,
    /// pretty (tables) or json.
    #[arg(short = 'f', long = "format", value_enum, default_value = "pretty")]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Pretty,
    Json,
}

pub fn main(args: InspectArgs) -> ExitCode {
    match inspect(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One signature's JWT, as far as it can be read without a key.
struct Signature {
    key_id: String,
    algorithm: String,
    scope: String,
    files: usize,
}

fn inspect(args: &InspectArgs) -> anyhow::Result<()> {
    let options = LoadOptions::default();
    let files = reader::read_path(&args.path, options.size_limit)
        .with_context(|| format!("reading {}", args.path.display()))?;
    let signatures = signatures(&files)?;
    let name = args.path.display().to_string();
    let bundle = Bundle::from_files(&name, "", files, options)
        .with_context(|| format!("reading {}", args.path.display()))?;
    let namespaces = namespaces(&bundle);
    let text = match args.format {
        Format::Json => {
            let mut out = gojson::to_body(&as_json(&bundle, &signatures, &namespaces), true);
            out.push(b'\n');
            out
        }
        Format::Pretty => pretty(&bundle, &signatures, &namespaces).into_bytes(),
    };
    std::io::stdout().write_all(&text)?;
    Ok(())
}

/// `data.pkg` → the files that contribute to it: modules by their package, data files by
/// their directory.
fn namespaces(bundle: &Bundle) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for module in &bundle.modules {
        if let Some(package) = package_of(&module.source) {
            out.entry(format!("data.{package}"))
                .or_default()
                .push(module.path.clone());
        }
    }
    for data in &bundle.data {
        let namespace = std::iter::once("data".to_string())
            .chain(data.dir.iter().cloned())
            .collect::<Vec<_>>()
            .join(".");
        out.entry(namespace).or_default().push(data.path.clone());
    }
    out
}

/// The module's `package` clause: the first statement that is not a comment.
fn package_of(source: &str) -> Option<String> {
    source
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.strip_prefix("package"))
        .map(|rest| {
            let name = rest.split('#').next().unwrap_or_default();
            name.trim().to_string()
        })
        .filter(|name| !name.is_empty())
}

fn signatures(files: &[RawFile]) -> anyhow::Result<Vec<Signature>> {
    let Some(file) = files.iter().find(|f| f.path == "/.signatures.json") else {
        return Ok(Vec::new());
    };
    let doc: Json = serde_json::from_slice(&file.bytes).context(".signatures.json")?;
    let tokens = doc["signatures"].as_array().cloned().unwrap_or_default();
    Ok(tokens
        .iter()
        .filter_map(Json::as_str)
        .map(|token| {
            let mut parts = token.split('.');
            let header = parts.next().and_then(decode_part).unwrap_or(Json::Null);
            let claims = parts.next().and_then(decode_part).unwrap_or(Json::Null);
            let text = |v: &Json| v.as_str().unwrap_or_default().to_string();
            Signature {
                key_id: match text(&claims["keyid"]) {
                    k if k.is_empty() => text(&header["kid"]),
                    k => k,
                },
                algorithm: text(&header["alg"]),
                scope: text(&claims["scope"]),
                files: claims["files"].as_array().map_or(0, Vec::len),
            }
        })
        .collect())
}

fn decode_part(part: &str) -> Option<Json> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn manifest_json(bundle: &Bundle) -> Json {
    let m = &bundle.manifest;
    let mut out = serde_json::Map::new();
    if !m.revision.is_empty() {
        out.insert("revision".into(), json!(m.revision));
    }
    out.insert("roots".into(), json!(m.roots()));
    if let Some(v) = m.rego_version {
        out.insert("rego_version".into(), json!(v));
    }
    if let Some(metadata) = &m.metadata {
        out.insert("metadata".into(), Json::Object(metadata.clone()));
    }
    Json::Object(out)
}

fn as_json(
    bundle: &Bundle,
    signatures: &[Signature],
    namespaces: &BTreeMap<String, Vec<String>>,
) -> Json {
    let signatures: Vec<Json> = signatures
        .iter()
        .map(|s| json!({"keyid": s.key_id, "algorithm": s.algorithm, "scope": s.scope, "files": s.files}))
        .collect();
    let signatures_config = match signatures.is_empty() {
        true => json!({}),
        false => json!({ "signatures": signatures }),
    };
    json!({
        "manifest": manifest_json(bundle),
        "signatures_config": signatures_config,
        "namespaces": namespaces,
    })
}

fn pretty(
    bundle: &Bundle,
    signatures: &[Signature],
    namespaces: &BTreeMap<String, Vec<String>>,
) -> String {
    let m = &bundle.manifest;
    let mut rows = Vec::new();
    if !m.revision.is_empty() {
        rows.push(vec!["Revision".to_string(), m.revision.clone()]);
    }
    rows.push(vec!["Roots".to_string(), roots_text(&m.roots())]);
    if let Some(v) = m.rego_version {
        rows.push(vec!["Rego Version".to_string(), v.to_string()]);
    }
    if let Some(metadata) = &m.metadata {
        for (key, value) in metadata {
            let value = match value {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            rows.push(vec![format!("Metadata: {key}"), value]);
        }
    }
    let mut out = format!("MANIFEST:\n{}", table::render(&["FIELD", "VALUE"], &rows));
    if !signatures.is_empty() {
        let rows: Vec<Vec<String>> = signatures
            .iter()
            .map(|s| {
                vec![
                    s.key_id.clone(),
                    s.algorithm.clone(),
                    s.scope.clone(),
                    s.files.to_string(),
                ]
            })
            .collect();
        let headers = ["KEY ID", "ALGORITHM", "SCOPE", "FILES"];
        out.push_str(&format!("SIGNATURES:\n{}", table::render(&headers, &rows)));
    }
    if !namespaces.is_empty() {
        let rows: Vec<Vec<String>> = namespaces
            .iter()
            .map(|(ns, files)| vec![ns.clone(), files.join("\n")])
            .collect();
        out.push_str(&format!(
            "NAMESPACES:\n{}",
            table::render(&["NAMESPACE", "FILE"], &rows)
        ));
    }
    out
}

/// Roots one per line; the empty root (the whole tree) as OPA shows it.
fn roots_text(roots: &[String]) -> String {
    roots
        .iter()
        .map(|r| if r.is_empty() { "\"\"" } else { r.as_str() })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::package_of;

    #[test]
    fn the_package_is_the_first_statement() {
        let source = "# METADATA\n# title: x\npackage payment.rules # main\n\nallow := true\n";
        assert_eq!(package_of(source).as_deref(), Some("payment.rules"));
        assert_eq!(package_of("allow := true\n"), None);
    }
}
