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
mod remote;
pub use admission::{AdmissionConfig, FailurePolicy};
pub use decision_logs::{DecisionLogsConfig, ReportingConfig, SpoolConfig, Synchronous, WhenFull};
pub use plugins::{ExtAuthzConfig, PluginsConfig};
pub use remote::{
    BearerConfig, ClientTlsConfig, PollingConfig, RemoteBundleConfig, RemoteConfig, ServiceConfig,
    StatusConfig, TlsConfig,
};

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

/// OPA's `server` section: request decoding limits and response encoding.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default)]
    pub decoding: DecodingConfig,
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// Prometheus bucket settings; accepted, used once metrics land.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Json>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodingConfig {
    /// Largest request body accepted. OPA's default is 256 MiB; verdict's is 16 MiB because a
    /// payment decision's input is a few KiB, and a sidecar that buffers a few 256 MiB bodies
    /// at once would take memory its gateway needs.
    #[serde(default = "default_max_length")]
    pub max_length: u64,
    #[serde(default)]
    pub gzip: GzipDecodingConfig,
}

impl Default for DecodingConfig {
    fn default() -> Self {
        DecodingConfig {
            max_length: default_max_length(),
            gzip: GzipDecodingConfig::default(),
        }
    }
}

fn default_max_length() -> u64 {
    16 << 20
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GzipDecodingConfig {
    /// Largest decompressed body of a gzip request (OPA: 512 MiB; verdict: 64 MiB).
    #[serde(default = "default_gzip_max_length")]
    pub max_length: u64,
}

impl Default for GzipDecodingConfig {
    fn default() -> Self {
        GzipDecodingConfig {
            max_length: default_gzip_max_length(),
        }
    }
}

fn default_gzip_max_length() -> u64 {
    64 << 20
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodingConfig {
    #[serde(default)]
    pub gzip: GzipEncodingConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GzipEncodingConfig {
    /// Responses at least this long are gzipped when the client accepts it (OPA: 1024).
    #[serde(default = "default_min_length")]
    pub min_length: usize,
    /// 0, 1 or 9 as in OPA (no compression, fastest, best).
    #[serde(default = "default_compression_level")]
    pub compression_level: u32,
}

impl Default for GzipEncodingConfig {
    fn default() -> Self {
        GzipEncodingConfig {
            min_length: default_min_length(),
            compression_level: default_compression_level(),
        }
    }
}

fn default_min_length() -> usize {
    1024
}

fn default_compression_level() -> u32 {
    9
}

/// verdict's own settings; each has a command-line flag that wins over it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerdictConfig {
    /// Listen addresses: `host:port` or `unix:///path.sock`.
    #[serde(default = "default_addr")]
    pub addr: Vec<String>,
    /// Addresses serving only `/health` and `/metrics` (OPA's `--diagnostic-addr`): probes
    /// and scrapers reach them while the API stays on localhost.
    #[serde(default)]
    pub diagnostic_addr: Vec<String>,
    /// Local bundles (directories or `.tar.gz`), as `-b` gives them.
    #[serde(default)]
    pub bundles: Vec<PathBuf>,
    /// Reload bundles when their files change.
    #[serde(default = "yes")]
    pub watch: bool,
    /// Quiet time after the last file event before a reload starts.
    #[serde(default = "default_debounce_ms")]
    pub watch_debounce_ms: u64,
    /// Longest a single evaluation may run before it is stopped with an error.
    #[serde(default = "default_eval_timeout_ms")]
    pub eval_timeout_ms: u64,
    /// Treat bundles without a `rego_version` as Rego v0 (OPA's `--v0-compatible`).
    #[serde(default)]
    pub v0_compatible: bool,
    /// Largest decompressed bundle accepted (OPA's `size_limit_bytes`), for every bundle that
    /// does not set its own.
    #[serde(default = "default_bundle_size_limit")]
    pub bundle_size_limit_bytes: u64,
    /// Process memory above which evaluations are stopped with an error rather than the
    /// process being killed for memory. Unset: 90% of the cgroup's `memory.max` when there is
    /// one (a Kubernetes container limit), else no limit. 0 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(default = "default_grace_seconds")]
    pub shutdown_grace_period_seconds: u64,
    /// Longest a client may take to send a request body once its headers are in: a stalled
    /// or dead peer gets a 408 and its connection back, instead of holding them forever.
    #[serde(default = "default_body_timeout_ms")]
    pub request_body_timeout_ms: u64,
    /// The Gatekeeper-style admission webhook (HTTPS); off unless configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionConfig>,
    /// The decision log spool (OPA's `decision_logs` says what is logged and where to).
    #[serde(default)]
    pub decision_logs: SpoolConfig,
}

impl VerdictConfig {
    pub fn request_body_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_body_timeout_ms)
    }

    /// The request bytes one listener holds at once (see `server::http::budget`).
    pub fn request_bytes_in_flight(&self) -> u64 {
        256 << 20
    }
}

impl Default for VerdictConfig {
    fn default() -> Self {
        VerdictConfig {
            addr: default_addr(),
            diagnostic_addr: Vec::new(),
            bundles: Vec::new(),
            watch: true,
            watch_debounce_ms: default_debounce_ms(),
            eval_timeout_ms: default_eval_timeout_ms(),
            v0_compatible: false,
            bundle_size_limit_bytes: default_bundle_size_limit(),
            memory_limit_bytes: None,
            shutdown_grace_period_seconds: default_grace_seconds(),
            request_body_timeout_ms: default_body_timeout_ms(),
            admission: None,
            decision_logs: SpoolConfig::default(),
        }
    }
}

fn default_addr() -> Vec<String> {
    vec!["127.0.0.1:8181".into()]
}

fn yes() -> bool {
    true
}

fn default_debounce_ms() -> u64 {
    100
}

fn default_eval_timeout_ms() -> u64 {
    500
}

/// OPA's default is 1 GiB. verdict's is 256 MiB: a sidecar sized at 512 MiB cannot hold a
/// bigger bundle once parsed anyway, and a decompression bomb must stop well before the
/// container's limit. A bundle's own `size_limit_bytes` overrides it.
fn default_bundle_size_limit() -> u64 {
    256 << 20
}

fn default_grace_seconds() -> u64 {
    10
}

fn default_body_timeout_ms() -> u64 {
    10_000
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
        let mut tree = match path {
            Some(path) => read_tree(path)?,
            None => Json::Object(Default::default()),
        };
        for arg in sets {
            apply_set(&mut tree, arg)?;
        }
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
        let mut config: Config =
            serde_json::from_value(tree).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(plugins) = config.not_implemented.get("plugins") {
            config.plugins = serde_json::from_value(plugins.clone())
                .map_err(|e| ConfigError::Invalid(format!("plugins: {e}")))?;
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
        if self.verdict.request_body_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "verdict.request_body_timeout_ms must be positive".into(),
            ));
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

fn read_tree(path: &Path) -> Result<Json, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let text = expand_env(&text);
    // YAML is a superset of JSON, so one parser reads both forms OPA accepts.
    let tree: Json = yaml_serde::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(match tree {
        Json::Null => Json::Object(Default::default()),
        other => other,
    })
}

/// `${NAME}` is replaced by the variable's value; unset variables are left as written (OPA).
fn expand_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(value) => out.push_str(&value),
                    Err(_) => out.push_str(&rest[start..start + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Applies one `--set a.b=v[,c=w]` as OPA does: dotted keys, `true`/`false` as booleans,
/// integers without a leading zero as numbers, anything else as a string.
pub fn apply_set(tree: &mut Json, arg: &str) -> Result<(), ConfigError> {
    for pair in split_unescaped(arg, ',') {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(ConfigError::BadSet {
                arg: arg.into(),
                message: "expected key=value".into(),
            });
        };
        let keys: Vec<&str> = key.split('.').collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(ConfigError::BadSet {
                arg: arg.into(),
                message: "empty key segment".into(),
            });
        }
        let typed = match value {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            v if v.parse::<i64>().is_ok() && !(v.len() > 1 && v.starts_with('0')) => {
                Json::from(v.parse::<i64>().unwrap_or_default())
            }
            v => Json::String(v.replace("\\,", ",")),
        };
        let mut node = &mut *tree;
        for k in &keys[..keys.len() - 1] {
            node = object_of(node, arg)?
                .entry(k.to_string())
                .or_insert_with(|| Json::Object(Default::default()));
        }
        object_of(node, arg)?.insert(keys[keys.len() - 1].to_string(), typed);
    }
    Ok(())
}

/// The node as a mapping, replacing a scalar by an empty mapping as `--set a.b=1` over `a: 1`.
fn object_of<'a>(
    node: &'a mut Json,
    arg: &str,
) -> Result<&'a mut serde_json::Map<String, Json>, ConfigError> {
    if !node.is_object() {
        *node = Json::Object(Default::default());
    }
    node.as_object_mut().ok_or_else(|| ConfigError::BadSet {
        arg: arg.into(),
        message: "cannot set a key below a non-mapping value".into(),
    })
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

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

    #[test]
    fn set_overrides_are_typed_like_opa() {
        let mut tree = serde_json::json!({});
        apply_set(
            &mut tree,
            "default_decision=/payment/allow,verdict.watch=false",
        )
        .unwrap();
        apply_set(&mut tree, "verdict.eval_timeout_ms=250").unwrap();
        let (config, _) = Config::from_tree(tree).unwrap();
        assert_eq!(config.default_decision, "/payment/allow");
        assert!(!config.verdict.watch);
        assert_eq!(config.verdict.eval_timeout_ms, 250);
        assert!(apply_set(&mut serde_json::json!({}), "novalue").is_err());
    }

    #[test]
    fn environment_variables_are_expanded_when_set() {
        let expanded = expand_env("a: ${PATH}\nb: ${VERDICT_SURELY_UNSET_VAR}");
        assert!(!expanded.contains("${PATH}"));
        assert!(expanded.contains("${VERDICT_SURELY_UNSET_VAR}"));
    }
}
