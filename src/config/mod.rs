//! Typed configuration in OPA's format and layout: defaults < config file (`${ENV}` expanded)
//! < `--set` overrides < command-line flags.
//!
//! An OPA config file must start verdict unchanged: OPA keys verdict does not implement yet are
//! accepted with one warning naming them, while keys neither OPA nor verdict knows (typos) are
//! errors. verdict's own settings live under the top-level `verdict` key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

mod admission;
mod decision_logs;
mod plugins;
mod proxy;
mod remote;
mod server;
mod set;
mod sources;
mod verdict;
pub use admission::{AdmissionConfig, FailurePolicy};
pub use decision_logs::{DecisionLogsConfig, ReportingConfig, SpoolConfig, Synchronous, WhenFull};
pub use plugins::{ExtAuthzConfig, PluginsConfig};
pub use proxy::{ProxyConfig, ProxyTls};
pub use remote::{
    BearerConfig, ClientTlsConfig, PollingConfig, RemoteBundleConfig, RemoteConfig, ServiceConfig,
    StatusConfig, TlsConfig,
};
pub use server::{
    DecodingConfig, EncodingConfig, GzipDecodingConfig, GzipEncodingConfig, ServerConfig,
};
pub use set::{apply_set, apply_set_file};
use sources::read_tree;
pub use verdict::VerdictConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("invalid --set {arg:?}: {message}")]
    BadSet { arg: String, message: String },
}

/// OPA top-level keys that verdict accepts but does not act on yet.
const OPA_KEYS_NOT_IMPLEMENTED: &[&str] = &[
    "bundle",
    "discovery",
    "caching",
    "nd_builtin_cache",
    "distributed_tracing",
    "storage",
];

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The decision `POST /` answers, as a slash path (OPA's default `/system/main`).
    #[serde(default = "default_decision")]
    pub default_decision: String,
    #[serde(default = "default_authorization_decision")]
    pub default_authorization_decision: String,
    #[serde(default)]
    pub server: ServerConfig,
    /// Read from the `plugins` section as written, which stays in `not_implemented` so that
    /// `/v1/config` echoes it as OPA does.
    #[serde(skip)]
    pub plugins: PluginsConfig,
    /// `services`, `bundles`, `keys` and `persistence_directory`, read like `plugins`.
    #[serde(skip)]
    pub remote: RemoteConfig,
    /// `decision_logs`, read like `plugins`; `None` when the section is absent.
    #[serde(skip)]
    pub decision_logs: Option<DecisionLogsConfig>,
    /// Verification of `-b` bundles, from OPA's `--verification-key` / `--skip-verify` flags.
    #[serde(skip)]
    pub bundle_verification: crate::bundle::Verification,
    #[serde(default)]
    pub verdict: VerdictConfig,
    /// OPA sections verdict does not type (or echoes as written), kept for `/v1/config`.
    #[serde(flatten)]
    pub not_implemented: BTreeMap<String, Json>,
}

fn default_decision() -> String {
    "/system/main".into()
}

fn default_authorization_decision() -> String {
    "/system/authz/allow".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            labels: BTreeMap::new(),
            default_decision: default_decision(),
            default_authorization_decision: default_authorization_decision(),
            server: ServerConfig::default(),
            plugins: PluginsConfig::default(),
            remote: RemoteConfig::default(),
            decision_logs: None,
            bundle_verification: crate::bundle::Verification::NoKeys,
            verdict: VerdictConfig::default(),
            not_implemented: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Reads the config file (if any), applies `--set key=value` overrides, and checks keys.
    /// Returns the config and the warnings to log once.
    pub fn load(
        path: Option<&Path>,
        sets: &[String],
    ) -> Result<(Config, Vec<String>), ConfigError> {
        Self::load_with_files(path, sets, &[])
    }

    /// `load` with `--set-file key=path` overrides too. As in OPA, every `--set` and then
    /// every `--set-file` goes into one overrides tree, merged over the file's at the end.
    pub fn load_with_files(
        path: Option<&Path>,
        sets: &[String],
        set_files: &[String],
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let mut tree = match path {
            Some(path) => read_tree(path)?,
            None => Json::Object(Default::default()),
        };
        let mut overrides = Json::Object(Default::default());
        for arg in sets {
            apply_set(&mut overrides, arg)?;
        }
        for arg in set_files {
            apply_set_file(&mut overrides, arg)?;
        }
        set::merge(&mut tree, overrides);
        Self::from_tree(tree)
    }

    pub fn from_tree(tree: Json) -> Result<(Config, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        if let Json::Object(map) = &tree {
            let unknown: Vec<&String> = map
                .keys()
                .filter(|k| {
                    !KNOWN_KEYS.contains(&k.as_str())
                        && !OPA_KEYS_NOT_IMPLEMENTED.contains(&k.as_str())
                })
                .collect();
            if let Some(key) = unknown.first() {
                return Err(ConfigError::Invalid(format!(
                    "unknown top-level key {key:?} (neither OPA nor verdict knows it)"
                )));
            }
            let pending: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| OPA_KEYS_NOT_IMPLEMENTED.contains(k))
                .collect();
            if !pending.is_empty() {
                warnings.push(format!(
                    "config keys accepted but not implemented by this verdict version: {}",
                    pending.join(", ")
                ));
            }
        } else {
            return Err(ConfigError::Invalid(
                "the configuration must be a mapping".into(),
            ));
        }
        let mut config: Config = typed(tree, "")?;
        if let Some(plugins) = config.not_implemented.get("plugins") {
            config.plugins = typed(plugins.clone(), "plugins")?;
        }
        config.remote = RemoteConfig::from_sections(&config.not_implemented)?;
        config.decision_logs =
            DecisionLogsConfig::from_section(config.not_implemented.get("decision_logs"))?;
        config.validate()?;
        warnings.extend(config.plugins.warnings());
        Ok((config, warnings))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.decoding.max_length == 0 {
            return Err(ConfigError::Invalid(
                "invalid value for server.decoding.max_length field, should be a positive number"
                    .into(),
            ));
        }
        if self.server.decoding.gzip.max_length == 0 {
            return Err(ConfigError::Invalid(
                "invalid value for server.decoding.gzip.max_length field, should be a positive number".into(),
            ));
        }
        if ![0, 1, 9].contains(&self.server.encoding.gzip.compression_level) {
            return Err(ConfigError::Invalid(
                "server.encoding.gzip.compression_level must be 0, 1 or 9".into(),
            ));
        }
        if self.verdict.eval_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "verdict.eval_timeout_ms must be positive".into(),
            ));
        }
        let positive = [
            (
                "request_body_timeout_ms",
                self.verdict.request_body_timeout_ms,
            ),
            (
                "header_read_timeout_ms",
                self.verdict.header_read_timeout_ms,
            ),
            ("max_connections", self.verdict.max_connections as u64),
            (
                "max_request_bytes_in_flight",
                self.verdict.max_request_bytes_in_flight,
            ),
            ("compile_timeout_ms", self.verdict.compile_timeout_ms),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid(format!(
                "verdict.{key} must be positive"
            )));
        }
        if let Some(authz) = &self.plugins.envoy_ext_authz_grpc {
            authz.validate()?;
        }
        if let Some(service) = self.decision_logs.as_ref().and_then(|d| d.service.as_ref()) {
            if self.remote.service(service).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "decision_logs: unknown service {service:?}"
                )));
            }
        }
        if self.verdict.addr.is_empty() {
            return Err(ConfigError::Invalid(
                "verdict.addr needs at least one address".into(),
            ));
        }
        Ok(())
    }
}

/// Deserializes a section, naming the key a value was refused at (`server.encoding.gzip`),
/// so that a mistyped `--set` or file key is found without guessing.
pub(super) fn typed<T: serde::de::DeserializeOwned>(
    tree: Json,
    section: &str,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
        let inner = e.path().to_string();
        let at = match (section, inner.as_str()) {
            (s, ".") => s.to_string(),
            ("", i) => i.to_string(),
            (s, i) => format!("{s}.{i}"),
        };
        let message = e.into_inner().to_string();
        ConfigError::Invalid(if at.is_empty() {
            message
        } else {
            format!("{at}: {message}")
        })
    })
}

const KNOWN_KEYS: &[&str] = &[
    "labels",
    "plugins",
    "default_decision",
    "default_authorization_decision",
    "server",
    "verdict",
    "services",
    "bundles",
    "keys",
    "persistence_directory",
    "status",
    "decision_logs",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opa_sections_not_implemented_warn_and_typos_fail() {
        let tree: Json = serde_json::json!({"labels": {"app": "x"}, "discovery": {"service": "x"}});
        let (config, warnings) = Config::from_tree(tree).unwrap();
        assert_eq!(config.labels["app"], "x");
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("discovery"));
        let err = Config::from_tree(serde_json::json!({"lables": {}})).unwrap_err();
        assert!(err.to_string().contains("lables"), "{err}");
        let err = Config::from_tree(serde_json::json!({"server": {"decodng": {}}})).unwrap_err();
        assert!(err.to_string().contains("decodng"), "{err}");
    }
}
