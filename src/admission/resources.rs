//! Reading ConstraintTemplates and Constraints from YAML/JSON files into plain documents,
//! before anything is compiled. Blocking file I/O: call it off the async threads.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::LoadError;

/// The target every Gatekeeper admission template names.
pub const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";

/// A ConstraintTemplate as written, with its Rego picked out.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateDoc {
    pub name: String,
    /// The Constraint kind it defines (`spec.crd.spec.names.kind`).
    pub kind: String,
    /// `spec.crd.spec.validation.openAPIV3Schema`: the schema of `spec.parameters`.
    pub schema: Option<Json>,
    pub rego: RegoSource,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegoSource {
    pub rego: String,
    pub libs: Vec<String>,
    /// `source.version: v1`; everything else is Rego v0, as Gatekeeper reads it.
    pub v1: bool,
}

/// What a Constraint asks for when it matches: Gatekeeper's `spec.enforcementAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deny,
    Warn,
    Dryrun,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintDoc {
    pub kind: String,
    pub name: String,
    pub action: Action,
    /// `spec.match` as written; `matching::Match` reads it.
    pub match_spec: Json,
    /// `spec.parameters` as written (schema defaults are applied when compiled).
    pub parameters: Json,
}

/// Everything found in a set of paths, plus what could not be read.
#[derive(Debug, Default)]
pub struct Documents {
    pub templates: Vec<TemplateDoc>,
    pub constraints: Vec<ConstraintDoc>,
    pub errors: Vec<LoadError>,
}

/// Reads every `.yaml`, `.yml` and `.json` file under `paths` (recursively, in name order);
/// a `.tar.gz` path is read as a bundle, its YAML and JSON files taken the same way.
pub fn read_paths(paths: &[PathBuf]) -> Documents {
    let mut docs = Documents::default();
    for file in files_under(paths, &mut docs.errors) {
        if is_tarball(&file) {
            read_bundle(&file, &mut docs);
            continue;
        }
        for object in read_objects(&file, &mut docs.errors) {
            docs.add(&file, object);
        }
    }
    docs
}

fn is_document(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn is_tarball(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// The templates and constraints of a bundle tarball, read with the bundle reader's limits
/// (size, no links, no paths leaving the bundle).
fn read_bundle(path: &Path, docs: &mut Documents) {
    let files =
        match crate::bundle::reader::read_path(path, crate::bundle::DEFAULT_SIZE_LIMIT_BYTES) {
            Ok(files) => files,
            Err(e) => {
                docs.errors.push(LoadError::Read {
                    file: path.to_path_buf(),
                    message: e.to_string(),
                });
                return;
            }
        };
    for f in files {
        let inner = path.join(f.path.trim_start_matches('/'));
        if !is_document(&inner) {
            continue;
        }
        let parsed = std::str::from_utf8(&f.bytes)
            .map_err(|e| e.to_string())
            .and_then(parse_objects);
        match parsed {
            Ok(objects) => objects.into_iter().for_each(|o| docs.add(&inner, o)),
            Err(message) => docs.errors.push(LoadError::Parse {
                file: inner,
                message,
            }),
        }
    }
}

impl Documents {
    /// Sorts one Kubernetes object into a template or a constraint; other kinds (a
    /// kustomization.yaml beside the templates) are left alone.
    pub fn add(&mut self, file: &Path, object: Json) {
        let api_version = str_at(&object, &["apiVersion"]);
        let kind = str_at(&object, &["kind"]);
        let result = if kind == "ConstraintTemplate"
            && api_version.starts_with("templates.gatekeeper.sh/")
        {
            template(&object).map(|t| self.templates.push(t))
        } else if api_version.starts_with("constraints.gatekeeper.sh/") {
            constraint(&object).map(|c| self.constraints.push(c))
        } else {
            tracing::debug!(file = %file.display(), kind, "not a template or constraint; ignored");
            Ok(())
        };
        if let Err(e) = result {
            self.errors.push(e);
        }
    }
}

/// The files to read: the paths themselves, or the files below directories. Entries whose
/// name starts with `.` are skipped: a mounted ConfigMap keeps its real files in `..data`
/// and `..<timestamp>` and links the visible names to them, which must be read once.
pub fn files_under(paths: &[PathBuf], errors: &mut Vec<LoadError>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        collect(path, &mut out, errors);
    }
    out
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<LoadError>) {
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(LoadError::Read {
                file: path.to_path_buf(),
                message: e.to_string(),
            });
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        if child.is_dir() {
            collect(&child, out, errors);
        } else if is_tarball(&child) || is_document(&child) {
            out.push(child);
        }
    }
}

/// The objects of one file: every YAML document, with `kind: List` expanded.
pub fn read_objects(file: &Path, errors: &mut Vec<LoadError>) -> Vec<Json> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            errors.push(LoadError::Read {
                file: file.to_path_buf(),
                message: e.to_string(),
            });
            return Vec::new();
        }
    };
    match parse_objects(&text) {
        Ok(objects) => objects,
        Err(message) => {
            errors.push(LoadError::Parse {
                file: file.to_path_buf(),
                message,
            });
            Vec::new()
        }
    }
}

/// Parses YAML (a superset of JSON) documents into objects; empty documents are skipped.
pub fn parse_objects(text: &str) -> Result<Vec<Json>, String> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let value = Json::deserialize(doc).map_err(|e| e.to_string())?;
        match value {
            Json::Null => {}
            Json::Object(_) if str_at(&value, &["kind"]) == "List" => {
                if let Some(items) = value.get("items").and_then(Json::as_array) {
                    out.extend(items.iter().cloned());
                }
            }
            Json::Object(_) => out.push(value),
            _ => return Err("a document is not an object".into()),
        }
    }
    Ok(out)
}

fn template(object: &Json) -> Result<TemplateDoc, LoadError> {
    let name = str_at(object, &["metadata", "name"]).to_string();
    let fail = |message: String| LoadError::Template {
        name: name.clone(),
        message,
    };
    let kind = str_at(object, &["spec", "crd", "spec", "names", "kind"]).to_string();
    if kind.is_empty() {
        return Err(fail("spec.crd.spec.names.kind is missing".into()));
    }
    // Gatekeeper's rule: the CRD it generates is named after the kind.
    if name != kind.to_lowercase() {
        return Err(fail(format!(
            "metadata.name must be the lowercase of kind {kind:?}, found {name:?}"
        )));
    }
    let schema = at(
        object,
        &["spec", "crd", "spec", "validation", "openAPIV3Schema"],
    )
    .cloned();
    let targets = at(object, &["spec", "targets"])
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let [target] = targets.as_slice() else {
        return Err(fail(format!(
            "exactly one target is required, found {}",
            targets.len()
        )));
    };
    if str_at(target, &["target"]) != ADMISSION_TARGET {
        return Err(fail(format!(
            "target must be {ADMISSION_TARGET}, found {:?}",
            str_at(target, &["target"])
        )));
    }
    let rego = rego_source(target).map_err(&fail)?;
    Ok(TemplateDoc {
        name,
        kind,
        schema,
        rego,
    })
}

/// `rego` + `libs`, or the `code[]` entry with `engine: Rego`. Other engines (CEL's
/// K8sNativeValidation) are not run by verdict; a template with nothing else is refused.
fn rego_source(target: &Json) -> Result<RegoSource, String> {
    if let Some(code) = target.get("code").and_then(Json::as_array) {
        let other: Vec<&str> = code
            .iter()
            .map(|b| str_at(b, &["engine"]))
            .filter(|e| *e != "Rego")
            .collect();
        if let Some(block) = code.iter().find(|b| str_at(b, &["engine"]) == "Rego") {
            if !other.is_empty() {
                tracing::info!(engines = ?other, "template code blocks for other engines ignored; its Rego runs");
            }
            let source = block.get("source").unwrap_or(&Json::Null);
            return Ok(RegoSource {
                rego: str_at(source, &["rego"]).to_string(),
                libs: strings(source.get("libs")),
                v1: str_at(source, &["version"]) == "v1",
            });
        }
        if target.get("rego").is_none() {
            return Err(format!(
                "no Rego code (engines {other:?} are not supported by verdict)"
            ));
        }
    }
    let rego = str_at(target, &["rego"]);
    if rego.is_empty() {
        return Err("the target has no rego".into());
    }
    Ok(RegoSource {
        rego: rego.to_string(),
        libs: strings(target.get("libs")),
        v1: false,
    })
}

fn constraint(object: &Json) -> Result<ConstraintDoc, LoadError> {
    let kind = str_at(object, &["kind"]).to_string();
    let name = str_at(object, &["metadata", "name"]).to_string();
    let fail = |message: String| LoadError::Constraint {
        kind: kind.clone(),
        name: name.clone(),
        message,
    };
    if kind.is_empty() || name.is_empty() {
        return Err(fail("kind and metadata.name are required".into()));
    }
    let action = match str_at(object, &["spec", "enforcementAction"]) {
        "" | "deny" => Action::Deny,
        "warn" => Action::Warn,
        "dryrun" => Action::Dryrun,
        other => {
            return Err(fail(format!(
                "enforcementAction {other:?} is not supported (deny, warn, dryrun)"
            )))
        }
    };
    Ok(ConstraintDoc {
        kind: kind.clone(),
        name: name.clone(),
        action,
        match_spec: at(object, &["spec", "match"])
            .cloned()
            .unwrap_or(Json::Null),
        parameters: at(object, &["spec", "parameters"])
            .cloned()
            .unwrap_or(Json::Null),
    })
}

pub fn at<'a>(v: &'a Json, path: &[&str]) -> Option<&'a Json> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

pub fn str_at<'a>(v: &'a Json, path: &[&str]) -> &'a str {
    at(v, path).and_then(Json::as_str).unwrap_or("")
}

fn strings(v: Option<&Json>) -> Vec<String> {
    v.and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
