//! The `verdict.proxy` section: listeners at which verdict fronts an upstream (the payment
//! gateway) as an authorizing reverse proxy, deciding every request as Envoy's ext_authz
//! filter would ask opa-envoy-plugin, and forwarding only what the policy allows.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tls::TlsFiles;

/// One proxy listener and the upstream it fronts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Listen address: `host:port`, `:port` or `unix:///path.sock`.
    pub addr: String,
    /// Where allowed requests go: `http://host:port` or `unix:///path.sock`.
    pub upstream: String,
    /// Speak HTTP/2 (prior knowledge, h2c) to the upstream instead of HTTP/1.1.
    #[serde(default)]
    pub upstream_http2: bool,
    /// The decision every request is checked against; unset, the ext_authz plugin's path, or
    /// opa-envoy-plugin's default `envoy/authz/allow`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Request body bytes the policy sees (Envoy's `with_request_body.max_request_bytes`).
    /// A longer body is still forwarded whole; the policy sees its start with
    /// `truncated_body: true` and no `parsed_body`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Refuse (413) a body longer than `max_body_bytes` instead of deciding on its start
    /// (Envoy's `allow_partial_message: false`).
    #[serde(default)]
    pub reject_partial_body: bool,
    /// Evaluate and log every decision, but forward denied requests too.
    #[serde(default)]
    pub dry_run: bool,
    /// TLS for the listener (HTTPS); certificate files are re-read when they change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ProxyTls>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for the upstream's response head once the request is sent.
    #[serde(default = "default_response_header_timeout_ms")]
    pub response_header_timeout_ms: u64,
    /// Longest a body (either way) may go without a byte, and longest a pooled upstream
    /// connection stays open unused.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
}

/// The proxy listener's certificate files (PEM), and the CA client certificates must chain to
/// when mTLS is wanted; the client certificate then reaches the policy as Envoy passes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyTls {
    pub cert_file: PathBuf,
    pub private_key_file: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
}

impl ProxyConfig {
    /// A proxy from `addr` to `upstream` with every other setting at its default: what
    /// `--proxy ADDR=UPSTREAM` gives.
    pub fn new(addr: &str, upstream: &str) -> ProxyConfig {
        ProxyConfig {
            addr: addr.to_string(),
            upstream: upstream.to_string(),
            upstream_http2: false,
            path: None,
            max_body_bytes: default_max_body_bytes(),
            reject_partial_body: false,
            dry_run: false,
            tls: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            response_header_timeout_ms: default_response_header_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
        }
    }

    pub fn tls_files(&self) -> Option<TlsFiles> {
        self.tls.as_ref().map(|t| TlsFiles {
            cert: t.cert_file.clone(),
            key: t.private_key_file.clone(),
            client_ca: t.client_ca_file.clone(),
        })
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn response_header_timeout(&self) -> Duration {
        Duration::from_millis(self.response_header_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

/// A payment is a few hundred bytes; 64 KiB leaves room for any form the gateway takes while
/// bounding what one request can make verdict hold before deciding.
fn default_max_body_bytes() -> usize {
    64 << 10
}

fn default_connect_timeout_ms() -> u64 {
    1_000
}

/// Under the gateway's own P99 budget (50 ms end to end) with ample room for a slow moment;
/// a hung upstream answers 504 well before a client's own timeout.
fn default_response_header_timeout_ms() -> u64 {
    15_000
}

fn default_idle_timeout_ms() -> u64 {
    60_000
}

#[cfg(test)]
mod tests {
    #[test]
    fn proxy_listeners_are_read_with_defaults_and_typos_fail() {
        let tree = serde_json::json!({"verdict": {"proxy": [
            {"addr": ":8080", "upstream": "http://127.0.0.1:9000", "max_body_bytes": 1024},
            {"addr": ":8443", "upstream": "unix:///run/gw.sock",
             "tls": {"cert_file": "/c", "private_key_file": "/k"}}
        ]}});
        let (config, _) = super::super::Config::from_tree(tree).unwrap();
        let proxies = &config.verdict.proxy;
        assert_eq!(proxies.len(), 2);
        assert_eq!(proxies[0].max_body_bytes, 1024);
        assert_eq!(proxies[0].response_header_timeout_ms, 15_000);
        assert!(proxies[0].tls_files().is_none());
        let tls = proxies[1].tls_files().unwrap();
        assert_eq!(tls.cert, std::path::PathBuf::from("/c"));
        assert!(tls.client_ca.is_none());

        let typo = serde_json::json!({"verdict": {"proxy": [
            {"addr": ":8080", "upstream": "http://x:1", "max_body": 1}
        ]}});
        let err = super::super::Config::from_tree(typo)
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_body"), "{err}");
    }
}
