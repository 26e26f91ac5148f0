//! Checking a bundle against its `/.signatures.json`: one JWT, verified with the configured
//! key, whose `files` list must match the bundle's files digest for digest.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::hash::{decode_hex, hex};
use super::{hash_file, jws, FileInfo, SignatureError, VerificationConfig, DEFAULT_PLUGIN};
use crate::bundle::build::clean;
use crate::bundle::RawFile;

#[derive(Deserialize, Default)]
struct SignaturesFile {
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    signatures: Option<Vec<String>>,
}

/// Verifies a bundle read from a tarball, whose file names are its entry names.
pub fn verify(files: &[RawFile], config: &VerificationConfig) -> Result<(), SignatureError> {
    verify_in(files, "", config)
}

/// Verifies a bundle. OPA names the files of a directory bundle by the directory as given
/// (`bundle/x.rego` for `-b bundle`), and so do the signatures `opa sign` writes for one: pass
/// that directory as `base_dir`, or `""` for a tarball.
pub fn verify_in(
    files: &[RawFile],
    base_dir: &str,
    config: &VerificationConfig,
) -> Result<(), SignatureError> {
    let Some(signatures) = signatures_of(files)? else {
        // OPA only insists on a signature when a key id is configured (always so with flags).
        return match config.key_id {
            Some(_) => Err(SignatureError::MissingSignatures),
            None => Ok(()),
        };
    };
    match signatures.plugin.as_deref() {
        None | Some("" | DEFAULT_PLUGIN) => {}
        Some(other) => return Err(SignatureError::UnknownPlugin(other.into())),
    }
    let token = match signatures.signatures.as_deref().unwrap_or_default() {
        [] => return Err(SignatureError::MissingJwt),
        [token] => token,
        _ => return Err(SignatureError::MultipleJwts),
    };
    let mut listed: BTreeMap<String, FileInfo> = jws::verify_token(token, config)?
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect();
    let excluded: Vec<globset::GlobMatcher> = config
        .exclude_files
        .iter()
        .filter_map(|p| go_glob(p))
        .collect();
    for f in files.iter().filter(|f| !is_signatures_file(&f.path)) {
        let name = name_in(base_dir, &f.path);
        if excluded.iter().any(|m| m.is_match(&name)) {
            listed.remove(&name);
            continue;
        }
        let info = listed
            .get(&name)
            .ok_or_else(|| SignatureError::NotIncluded(name.clone()))?;
        if info.algorithm.is_empty() {
            return Err(SignatureError::NoHashAlgorithm(name));
        }
        let got = hash_file(&name, &f.bytes, &info.algorithm)?;
        let want = decode_hex(&info.hash).ok_or_else(|| SignatureError::HashNotHex {
            path: name.clone(),
            hash: info.hash.clone(),
        })?;
        if want != got {
            return Err(SignatureError::DigestMismatch {
                path: name,
                want: hex(&want),
                got: hex(&got),
            });
        }
        listed.remove(&name);
    }
    if !listed.is_empty() {
        return Err(SignatureError::FilesNotFound(listed.into_keys().collect()));
    }
    Ok(())
}

/// OPA's reader with or without a verification config: a signed bundle needs one.
pub fn check(
    files: &[RawFile],
    base_dir: &str,
    config: Option<&VerificationConfig>,
) -> Result<(), SignatureError> {
    match config {
        Some(config) => verify_in(files, base_dir, config),
        None if signatures_of(files)?.is_some() => Err(SignatureError::VerificationKeyNotProvided),
        None => Ok(()),
    }
}

pub(super) fn is_signatures_file(path: &str) -> bool {
    path.rsplit('/').next() == Some(".signatures.json")
}

/// The signatures file, when there is one that says anything (`{}` counts as none, as in OPA).
fn signatures_of(files: &[RawFile]) -> Result<Option<SignaturesFile>, SignatureError> {
    let Some(f) = files.iter().rev().find(|f| is_signatures_file(&f.path)) else {
        return Ok(None);
    };
    let parsed: SignaturesFile =
        serde_json::from_slice(&f.bytes).map_err(SignatureError::SignaturesDecode)?;
    let plugin = parsed.plugin.as_deref().unwrap_or_default();
    Ok((parsed.signatures.is_some() || !plugin.is_empty()).then_some(parsed))
}

/// The name a file has in a signature: its bundle path without the leading `/`, under the
/// bundle's directory for a directory bundle.
pub(super) fn name_in(base_dir: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if base_dir.is_empty() {
        path.to_string()
    } else {
        clean(&format!("{base_dir}/{path}"))
    }
}

/// Go's `filepath.Match`: `*` stops at `/`; a malformed pattern matches nothing, as in OPA.
pub(super) fn go_glob(pattern: &str) -> Option<globset::GlobMatcher> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_exclusions_follow_opa() {
        assert_eq!(name_in("", "/x/data.json"), "x/data.json");
        assert_eq!(name_in("./bundle/", "/x/data.json"), "bundle/x/data.json");
        let glob = go_glob("x/*.json").unwrap();
        assert!(glob.is_match("x/data.json"));
        assert!(!glob.is_match("x/y/data.json"), "* stops at /, as in Go");
        assert!(
            go_glob("[").is_none(),
            "a malformed pattern excludes nothing"
        );
    }
}
