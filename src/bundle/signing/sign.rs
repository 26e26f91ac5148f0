//! Signing built bundle files as `opa build` and `opa sign` do: each file's `files` entry
//! hashed with SHA-256, and the JWT over them in `/.signatures.json`.

use super::hash::hex;
use super::verify::{is_signatures_file, name_in};
use super::DEFAULT_PLUGIN;
use super::{hash_file, sign_token, signatures_json, FileInfo, SignatureError, SigningKey};
use crate::bundle::RawFile;

/// The `files` entry of one bundle file, hashed with SHA-256 as `opa build` and `opa sign` do.
pub fn file_info(base_dir: &str, file: &RawFile) -> Result<FileInfo, SignatureError> {
    let name = name_in(base_dir, &file.path);
    Ok(FileInfo {
        hash: hex(&hash_file(&name, &file.bytes, "SHA-256")?),
        name,
        algorithm: "SHA-256".into(),
    })
}

/// Signs built bundle files as `opa build` does: modules first, then `data.json`, then the
/// manifest, each hashed with SHA-256; returns `/.signatures.json`.
pub fn sign(
    files: &[RawFile],
    key: &SigningKey,
    claims: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<RawFile, SignatureError> {
    let rank = |path: &str| match path {
        p if p.ends_with(".rego") => 0,
        p if p.ends_with("/.manifest") => 3,
        p if p.ends_with(".wasm") => 2,
        _ => 1,
    };
    let mut ordered: Vec<&RawFile> = files
        .iter()
        .filter(|f| !is_signatures_file(&f.path))
        .collect();
    ordered.sort_by_key(|f| rank(&f.path));
    let infos = ordered
        .into_iter()
        .map(|f| file_info("", f))
        .collect::<Result<Vec<_>, _>>()?;
    let token = sign_token(&infos, key, claims.as_ref())?;
    Ok(RawFile {
        path: "/.signatures.json".into(),
        bytes: signatures_json(&token, Some(DEFAULT_PLUGIN)),
    })
}
