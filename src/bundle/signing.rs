//! Bundle signatures as OPA makes and checks them: `/.signatures.json` holds one JWT whose
//! payload lists every file with its digest; the `keys:` and `bundles.<name>.signing` config;
//! and OPA's hashing rule (`data.json`, `data.yaml` and `.manifest` are hashed by a canonical
//! encoding of their parsed value, every other file by its bytes).

mod hash;
mod jws;

use std::collections::BTreeMap;

use serde::Deserialize;

pub use hash::hash_file;
pub use jws::{sign_token, signatures_json, SigningKey, DEFAULT_PLUGIN};

use super::build::clean;
use super::{go_list, RawFile};
use hash::{decode_hex, hex};
use jws::Algorithm;

/// Why a bundle's signature is refused, in OPA's words where OPA has them.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("bundle missing .signatures.json file")]
    MissingSignatures,
    #[error("verification key not provided")]
    VerificationKeyNotProvided,
    #[error("bundle load failed on signatures decode: {0}")]
    SignaturesDecode(serde_json::Error),
    #[error("no verifier exists under id {0}")]
    UnknownPlugin(String),
    #[error(".signatures.json: missing JWT (expected exactly one)")]
    MissingJwt,
    #[error(".signatures.json: multiple JWTs not supported (expected exactly one)")]
    MultipleJwts,
    #[error("failed to parse JWT: expected 3 dot-separated segments, found {0}")]
    MalformedJwt(usize),
    #[error("failed to base64 decode JWT headers: {0}")]
    HeaderBase64(base64::DecodeError),
    #[error("failed to parse JWT headers: {0}")]
    HeaderJson(serde_json::Error),
    #[error("failed to base64 decode JWT payload: {0}")]
    PayloadBase64(base64::DecodeError),
    #[error("failed to parse JWT payload: {0}")]
    PayloadJson(serde_json::Error),
    #[error("verification key ID is empty")]
    EmptyKeyId,
    #[error("verification key corresponding to ID {0} not found")]
    KeyNotFound(String),
    #[error("key id {0} not found")]
    ConfiguredKeyNotFound(String),
    #[error("invalid keys configuration: no keys provided for key ID {0}")]
    NoKeyMaterial(String),
    #[error("unsupported algorithm '{0}'")]
    UnsupportedAlgorithm(String),
    #[error("unknown signature algorithm: {0}")]
    UnknownAlgorithm(String),
    #[error("failed to parse the {algorithm} key: {message}")]
    InvalidKey { algorithm: String, message: String },
    #[error("error reading key file {path}: {error}")]
    KeyFile { path: String, error: std::io::Error },
    #[error("failed to verify JWT signature: {0}")]
    BadSignature(String),
    #[error("failed to sign JWT: {0}")]
    Sign(String),
    #[error("scope mismatch")]
    ScopeMismatch,
    #[error("file {0} not included in bundle signature")]
    NotIncluded(String),
    #[error("no hashing algorithm provided for file {0}")]
    NoHashAlgorithm(String),
    #[error("unsupported hashing algorithm: {0}")]
    UnsupportedHash(String),
    #[error("{path}: {message}")]
    FileParse { path: String, message: String },
    #[error("{path}: hash {hash:?} is not hexadecimal")]
    HashNotHex { path: String, hash: String },
    #[error("{path}: digest mismatch (want: {want}, got: {got})")]
    DigestMismatch {
        path: String,
        want: String,
        got: String,
    },
    #[error("file(s) {} specified in bundle signatures but not found in the target bundle", go_list(.0))]
    FilesNotFound(Vec<String>),
}

/// One key of OPA's `keys:` section: a public key (PEM) or HMAC secret, and its algorithm.
#[derive(Deserialize, Clone, Debug)]
pub struct KeyConfig {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub private_key: Option<String>,
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    #[serde(default)]
    pub scope: Option<String>,
}

fn default_algorithm() -> String {
    "RS256".into()
}

/// OPA's `bundles.<name>.signing` section.
#[derive(Deserialize, Clone, Debug, Default)]
pub struct SigningConfig {
    #[serde(default)]
    pub keyid: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
}

/// What a bundle's signature is checked against.
#[derive(Clone, Debug)]
pub struct VerificationConfig {
    pub keys: BTreeMap<String, KeyConfig>,
    pub key_id: Option<String>,
    pub scope: Option<String>,
    pub exclude_files: Vec<String>,
}

impl VerificationConfig {
    /// From OPA's config file: the `keys:` section and one bundle's `signing:` section.
    pub fn from_config(
        keys: BTreeMap<String, KeyConfig>,
        signing: &SigningConfig,
    ) -> Result<Self, SignatureError> {
        for (id, key) in &keys {
            if key.key.is_empty() && key.private_key.as_deref().unwrap_or_default().is_empty() {
                return Err(SignatureError::NoKeyMaterial(id.clone()));
            }
            let Some(algorithm) = Algorithm::parse(&key.algorithm) else {
                return Err(SignatureError::UnsupportedAlgorithm(key.algorithm.clone()));
            };
            if !key.key.is_empty() {
                jws::check_public_key(algorithm, &key.key).map_err(|message| {
                    SignatureError::InvalidKey {
                        algorithm: key.algorithm.clone(),
                        message: format!("keys.{id}: {message}"),
                    }
                })?;
            }
        }
        let key_id = non_empty(signing.keyid.clone());
        if let Some(id) = &key_id {
            if !keys.contains_key(id) {
                return Err(SignatureError::ConfiguredKeyNotFound(id.clone()));
            }
        }
        Ok(VerificationConfig {
            keys,
            key_id,
            scope: non_empty(signing.scope.clone()),
            exclude_files: signing.exclude_files.clone(),
        })
    }

    /// From `opa run`'s flags: `--verification-key` (a PEM file, or the key or secret itself),
    /// `--verification-key-id` (OPA's default: `default`), `--signing-alg`, `--scope`,
    /// `--exclude-files-verify`.
    pub fn from_flags(
        key: &str,
        key_id: &str,
        algorithm: &str,
        scope: Option<&str>,
        exclude_files: Vec<String>,
    ) -> Result<Self, SignatureError> {
        if Algorithm::parse(algorithm).is_none() {
            return Err(SignatureError::UnsupportedAlgorithm(algorithm.into()));
        }
        let scope = non_empty(scope.map(str::to_string));
        let config = KeyConfig {
            key: read_key(key)?,
            private_key: None,
            algorithm: algorithm.into(),
            scope: scope.clone(),
        };
        Ok(VerificationConfig {
            keys: BTreeMap::from([(key_id.to_string(), config)]),
            key_id: non_empty(Some(key_id.to_string())),
            scope,
            exclude_files,
        })
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// OPA reads a key flag as a file when one exists at that path, else as the key itself.
fn read_key(key: &str) -> Result<String, SignatureError> {
    if key.starts_with("-----BEGIN") || !std::path::Path::new(key).exists() {
        return Ok(key.to_string());
    }
    std::fs::read_to_string(key).map_err(|error| SignatureError::KeyFile {
        path: key.into(),
        error,
    })
}

/// One entry of the JWT payload's `files`.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub algorithm: String,
}

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

fn is_signatures_file(path: &str) -> bool {
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
fn name_in(base_dir: &str, path: &str) -> String {
    let path = path.trim_start_matches('/');
    if base_dir.is_empty() {
        path.to_string()
    } else {
        clean(&format!("{base_dir}/{path}"))
    }
}

/// Go's `filepath.Match`: `*` stops at `/`; a malformed pattern matches nothing, as in OPA.
fn go_glob(pattern: &str) -> Option<globset::GlobMatcher> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .ok()
        .map(|g| g.compile_matcher())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::Json;

    fn sha(name: &str, bytes: &[u8], algorithm: &str) -> String {
        hex(&hash_file(name, bytes, algorithm).unwrap())
    }

    #[test]
    fn structured_files_hash_by_their_canonical_encoding() {
        let doc = br#"{ "b": 1.50, "a": "<&>\u2028\u0001", "c": [true, null, 1e3] }"#;
        let mut canonical = Vec::new();
        Json::parse(doc).unwrap().write(&mut canonical, false);
        let want = r#"{"a":"<&>\u2028\u0001","b":1.50,"c":[true,null,1e3]}"#;
        assert_eq!(String::from_utf8(canonical).unwrap(), want);
        assert_eq!(
            sha("data.json", doc, "SHA-256"),
            sha("x.rego", want.as_bytes(), "SHA-256")
        );
        // The same value as YAML hashes the same; `data.yml` is not structured in OPA.
        let yaml = b"a: 1\nb: [x]\n";
        let json = br#"{"a":1,"b":["x"]}"#;
        assert_eq!(sha("dir/data.yaml", yaml, "MD5"), sha("x", json, "MD5"));
        assert_eq!(sha("data.yml", yaml, "MD5"), sha("x", yaml, "MD5"));
        let err = hash_file("data.json", b"{", "SHA-256")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("data.json: "), "{err}");
    }

    #[test]
    fn opas_hash_algorithms() {
        for (alg, want) in [
            ("MD5", "900150983cd24fb0d6963f7d28e17f72"),
            ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                "SHA-224",
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                "SHA-512-256",
                "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23",
            ),
        ] {
            assert_eq!(sha("policy.rego", b"abc", alg), want, "{alg}");
        }
        for alg in ["SHA-384", "SHA-512", "SHA-512-224"] {
            assert!(hash_file("x", b"abc", alg).is_ok(), "{alg}");
        }
        let err = hash_file("x", b"abc", "SHA3-256").unwrap_err();
        assert_eq!(err.to_string(), "unsupported hashing algorithm: SHA3-256");
        assert_eq!(decode_hex("0aFF"), Some(vec![10, 255]));
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
    }

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

    #[test]
    fn signatures_file_is_indented_as_opa_writes_it() {
        let built = signatures_json("a.b.c", Some(DEFAULT_PLUGIN));
        let want = "{\n \"signatures\": [\n  \"a.b.c\"\n ],\n \"plugin\": \"_default\"\n}";
        assert_eq!(String::from_utf8(built).unwrap(), want);
        let signed = signatures_json("a.b.c", None);
        let want = "{\n \"signatures\": [\n  \"a.b.c\"\n ]\n}";
        assert_eq!(String::from_utf8(signed).unwrap(), want);
    }
}
