//! verdict's own settings (the top-level `verdict` key) and their defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{AdmissionConfig, ProxyConfig, SpoolConfig};
use crate::policy::vm::EngineChoice;

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
    /// Longest a client may take to send a request's headers, and longest a keep-alive
    /// connection may sit idle, on every listener: slow or idle clients give their
    /// connections back.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Connections each listener keeps open at once; past it a new one gets a 503 (HTTP) or
    /// is closed (gRPC, TLS). Keep it below the process's file descriptor limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Request body bytes one HTTP listener holds at once; past it a request with a body gets
    /// a 503 with Retry-After.
    #[serde(default = "default_max_request_bytes_in_flight")]
    pub max_request_bytes_in_flight: u64,
    /// Longest compiling a bundle set may take (parse, validation, warm-up) before it is
    /// refused; the reloader then goes on with the last good revision.
    #[serde(default = "default_compile_timeout_ms")]
    pub compile_timeout_ms: u64,
    /// Which engine answers decisions: `interpreter` (regorus's tree-walking interpreter), or
    /// `auto`: regorus's bytecode VM for each entrypoint verified to agree with the
    /// interpreter at activation, the interpreter for everything else.
    #[serde(default)]
    pub engine: EngineChoice,
    /// Under `auto`, one VM decision in this many is re-run on the interpreter off the request
    /// path; a mismatch turns the VM off for that entrypoint. 0 turns it off.
    #[serde(default = "default_engine_shadow_every")]
    pub engine_shadow_every: u64,
    /// The Gatekeeper-style admission webhook (HTTPS); off unless configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<AdmissionConfig>,
    /// Authorizing reverse proxy listeners in front of an upstream; none unless configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proxy: Vec<ProxyConfig>,
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
        self.max_request_bytes_in_flight
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
            header_read_timeout_ms: default_header_read_timeout_ms(),
            max_connections: default_max_connections(),
            max_request_bytes_in_flight: default_max_request_bytes_in_flight(),
            compile_timeout_ms: default_compile_timeout_ms(),
            engine: EngineChoice::default(),
            engine_shadow_every: default_engine_shadow_every(),
            admission: None,
            proxy: Vec::new(),
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

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

fn default_max_connections() -> usize {
    4096
}

/// 16 bodies of the largest size allowed (16 MiB), or hundreds of thousands of payments.
fn default_max_request_bytes_in_flight() -> u64 {
    256 << 20
}

fn default_compile_timeout_ms() -> u64 {
    30_000
}

fn default_engine_shadow_every() -> u64 {
    1000
}
