//! Bundle signatures as OPA makes and checks them: `/.signatures.json` holds one JWT whose
//! payload lists every file with its digest; the `keys:` and `bundles.<name>.signing` config;
//! and OPA's hashing rule (`data.json`, `data.yaml` and `.manifest` are hashed by a canonical
//! encoding of their parsed value, every other file by its bytes).

mod config;
mod hash;
mod jws;
mod keys;
mod sign;
mod verify;

use serde::Deserialize;

pub use config::{KeyConfig, SigningConfig, VerificationConfig};
pub use hash::hash_file;
pub use jws::{sign_token, signatures_json, SigningKey, DEFAULT_PLUGIN};
pub use sign::{file_info, sign};
pub use verify::{check, verify, verify_in};

use super::go_list;

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
