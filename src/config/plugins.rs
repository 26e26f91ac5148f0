//! OPA's `plugins` section: opa-envoy-plugin's `envoy_ext_authz_grpc`, which verdict serves,
//! and any other plugin, accepted with a warning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::ConfigError;

/// OPA's `plugins` section. verdict implements `envoy_ext_authz_grpc` (opa-envoy-plugin's
/// configuration, key for key); other plugins are accepted with a warning, since an OPA config
/// must start verdict unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PluginsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_ext_authz_grpc: Option<ExtAuthzConfig>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Json>,
}

impl PluginsConfig {
    pub(super) fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.other.is_empty() {
            let names: Vec<&str> = self.other.keys().map(String::as_str).collect();
            warnings.push(format!(
                "plugins not implemented by verdict, ignored: {}",
                names.join(", ")
            ));
        }
        if let Some(authz) = &self.envoy_ext_authz_grpc {
            if authz.enable_performance_metrics {
                warnings.push(
                    "plugins.envoy_ext_authz_grpc.enable-performance-metrics is accepted but \
                     has no effect yet"
                        .into(),
                );
            }
            if !authz.proto_descriptor.is_empty() {
                warnings.push(
                    "plugins.envoy_ext_authz_grpc.proto-descriptor is not supported: gRPC \
                     request bodies are not parsed (input.parsed_body stays null)"
                        .into(),
                );
            }
        }
        warnings
    }
}

/// `plugins.envoy_ext_authz_grpc`, with opa-envoy-plugin's keys and defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtAuthzConfig {
    /// `host:port`, `:port`, `grpc://host:port` or `unix:///path.sock`.
    #[serde(default = "default_grpc_addr")]
    pub addr: String,
    /// The decision every Check evaluates (`envoy/authz/allow`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// opa-envoy-plugin's deprecated alternative to `path`; verdict takes a data reference
    /// (`data.envoy.authz.allow`) here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Answer every Check with OK; the real decision is still evaluated and logged.
    #[serde(default, rename = "dry-run")]
    pub dry_run: bool,
    #[serde(default, rename = "enable-reflection")]
    pub enable_reflection: bool,
    /// Leave `parsed_body` and `truncated_body` out of the input.
    #[serde(default, rename = "skip-request-body-parse")]
    pub skip_request_body_parse: bool,
    /// Largest CheckRequest accepted, in bytes (gRPC's and opa-envoy-plugin's 4 MiB).
    #[serde(default = "default_grpc_max_recv", rename = "grpc-max-recv-msg-size")]
    pub grpc_max_recv_msg_size: usize,
    #[serde(default = "default_grpc_max_send", rename = "grpc-max-send-msg-size")]
    pub grpc_max_send_msg_size: usize,
    #[serde(default, rename = "enable-performance-metrics")]
    pub enable_performance_metrics: bool,
    /// verdict's own: normalise the request path (dot segments, merged slashes, unreserved
    /// escapes decoded) before the policy sees it, and deny ambiguous paths (an encoded `/` or
    /// `\`) with 400. Envoy must forward the same path: set its `normalize_path`,
    /// `merge_slashes` and `path_with_escaped_slashes_action: REJECT_REQUEST` too.
    #[serde(default, rename = "normalize-path")]
    pub normalize_path: bool,
    #[serde(
        default,
        rename = "grpc-request-duration-seconds-buckets",
        skip_serializing_if = "Option::is_none"
    )]
    pub grpc_request_duration_seconds_buckets: Option<Vec<f64>>,
    #[serde(
        default,
        rename = "proto-descriptor",
        skip_serializing_if = "String::is_empty"
    )]
    pub proto_descriptor: String,
}

impl Default for ExtAuthzConfig {
    fn default() -> Self {
        ExtAuthzConfig {
            addr: default_grpc_addr(),
            path: String::new(),
            query: String::new(),
            dry_run: false,
            enable_reflection: false,
            skip_request_body_parse: false,
            grpc_max_recv_msg_size: default_grpc_max_recv(),
            grpc_max_send_msg_size: default_grpc_max_send(),
            enable_performance_metrics: false,
            normalize_path: false,
            grpc_request_duration_seconds_buckets: None,
            proto_descriptor: String::new(),
        }
    }
}

impl ExtAuthzConfig {
    /// The decision path: `path`, else `query` read as a data reference, else
    /// `envoy/authz/allow`.
    pub fn decision_path(&self) -> Result<crate::policy::DataPath, ConfigError> {
        let text = match (self.path.as_str(), self.query.as_str()) {
            ("", "") => "envoy/authz/allow",
            (path, "") => path,
            ("", query) => query,
            _ => {
                return Err(ConfigError::Invalid(
                    "plugins.envoy_ext_authz_grpc: invalid config: specify a value for only \
                     the \"path\" field"
                        .into(),
                ))
            }
        };
        crate::policy::DataPath::parse(text).map_err(|e| {
            ConfigError::Invalid(format!(
                "plugins.envoy_ext_authz_grpc: {text:?} is not a data path: {e}"
            ))
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        self.decision_path()?;
        if self.grpc_max_recv_msg_size == 0 || self.grpc_max_send_msg_size == 0 {
            return Err(ConfigError::Invalid(
                "plugins.envoy_ext_authz_grpc: message size limits must be positive".into(),
            ));
        }
        Ok(())
    }
}

fn default_grpc_addr() -> String {
    ":9191".into()
}

fn default_grpc_max_recv() -> usize {
    4 << 20
}

fn default_grpc_max_send() -> usize {
    i32::MAX as usize
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_envoy_plugin_is_read_with_opa_envoy_plugins_keys() {
        let tree = serde_json::json!({"plugins": {
            "envoy_ext_authz_grpc": {"addr": ":9191", "path": "envoy/authz/allow", "dry-run": true},
            "other_plugin": {}
        }});
        let (config, warnings) = super::super::Config::from_tree(tree).unwrap();
        let authz = config.plugins.envoy_ext_authz_grpc.unwrap();
        assert!(authz.dry_run);
        assert_eq!(authz.grpc_max_recv_msg_size, 4 << 20);
        assert_eq!(
            authz.decision_path().unwrap().rule_key(),
            Some("data.envoy.authz.allow")
        );
        assert!(
            warnings.iter().any(|w| w.contains("other_plugin")),
            "{warnings:?}"
        );
        // The raw section stays for /v1/config.
        assert!(config.not_implemented.contains_key("plugins"));

        let both = serde_json::json!({"plugins": {"envoy_ext_authz_grpc": {"path": "a", "query": "data.b"}}});
        let err = super::super::Config::from_tree(both)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("specify a value for only the \"path\" field"),
            "{err}"
        );
        let typo = serde_json::json!({"plugins": {"envoy_ext_authz_grpc": {"dryrun": true}}});
        let err = super::super::Config::from_tree(typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dryrun"), "{err}");
    }
}
