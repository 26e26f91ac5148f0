//! What a signature is checked against: OPA's `keys:` section and a bundle's `signing:`
//! section, or `opa run`'s verification flags.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::keys::{self, Algorithm};
use super::SignatureError;

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
                keys::check_public_key(algorithm, &key.key).map_err(|message| {
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

pub(super) fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// OPA reads a key flag as a file when one exists at that path, else as the key itself.
pub(super) fn read_key(key: &str) -> Result<String, SignatureError> {
    if key.starts_with("-----BEGIN") || !std::path::Path::new(key).exists() {
        return Ok(key.to_string());
    }
    std::fs::read_to_string(key).map_err(|error| SignatureError::KeyFile {
        path: key.into(),
        error,
    })
}
