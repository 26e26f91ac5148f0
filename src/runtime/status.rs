//! Per-bundle status in OPA's status-API shape: active revision, last activation, and the
//! error of the last failed load, so a rejected bundle is visible while the old one serves.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};
use serde_json::Value as Json;

use super::AppState;
use crate::policy::{CompileError, RegoError};
use crate::telemetry::metrics::BundleFigures;

#[derive(Debug, Clone, Serialize)]
pub struct BundleStatus {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub active_revision: String,
    /// OPA writes Go's zero time for a remote bundle never activated, and leaves the field out
    /// for a local one.
    #[serde(
        serialize_with = "time_field",
        skip_serializing_if = "Timestamp::is_absent"
    )]
    pub last_successful_activation: Timestamp,
    /// Set once a bundle has been activated.
    #[serde(rename = "type", skip_serializing_if = "str::is_empty")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(
        serialize_with = "time_field",
        skip_serializing_if = "Timestamp::is_absent"
    )]
    pub last_successful_download: Timestamp,
    #[serde(
        serialize_with = "time_field",
        skip_serializing_if = "Timestamp::is_absent"
    )]
    pub last_successful_request: Timestamp,
    /// When verdict last read the bundle's files or asked its server, successfully or not.
    #[serde(
        serialize_with = "rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_request: Option<SystemTime>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RegoError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<RequestMetrics>,
    /// The HTTP status of a failed download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_code: Option<u16>,
    /// Activations and failures so far, for the Prometheus counters.
    #[serde(skip)]
    pub loaded: u64,
    #[serde(skip)]
    pub failed: u64,
    /// Failures by message, as OPA's `bundle_failed_load_counter` counts them; at most
    /// `MAX_FAILURE_MESSAGES` distinct texts, the rest under one.
    #[serde(skip)]
    pub failures: std::collections::BTreeMap<String, u64>,
    /// The error of a rejected revision (failed load or compile) not yet followed by a good
    /// one: its fix is worth a log line of its own.
    #[serde(skip)]
    rejected: Option<String>,
}

/// A status time: absent for local bundles, Go's zero time for remote ones until it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    Absent,
    Never,
    At(SystemTime),
}

impl Timestamp {
    fn is_absent(&self) -> bool {
        matches!(self, Timestamp::Absent)
    }

    pub fn at(&self) -> Option<SystemTime> {
        match self {
            Timestamp::At(t) => Some(*t),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RequestMetrics {
    pub timer_bundle_request_ns: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BundleStatus {
    /// A bundle not activated yet; `remote` bundles carry OPA's download fields.
    pub fn new(name: &str, remote: bool) -> Self {
        let unset = if remote {
            Timestamp::Never
        } else {
            Timestamp::Absent
        };
        BundleStatus {
            name: name.to_string(),
            active_revision: String::new(),
            last_successful_activation: unset,
            kind: "",
            size: 0,
            last_successful_download: unset,
            last_successful_request: unset,
            last_request: None,
            code: String::new(),
            message: String::new(),
            errors: Vec::new(),
            metrics: None,
            http_code: None,
            loaded: 0,
            failed: 0,
            failures: std::collections::BTreeMap::new(),
            rejected: None,
        }
    }

    pub fn is_activated(&self) -> bool {
        self.last_successful_activation.at().is_some()
    }

    /// What the bundle families of the metrics show of this bundle.
    pub fn figures(&self) -> BundleFigures<'_> {
        BundleFigures {
            name: &self.name,
            revision: &self.active_revision,
            loaded: self.loaded,
            failed: self.failed,
            failures: &self.failures,
            last_activation: self.last_successful_activation.at(),
            last_request: self.last_request,
            last_download: self.last_successful_download.at(),
            last_success_request: self.last_successful_request.at(),
        }
    }

    /// The log line for a rejection of this bundle: "the last good revision keeps serving"
    /// only when there is one. The reloader's rejection lines take their words from here.
    pub fn rejection_message(&self) -> &'static str {
        match self.is_activated() {
            true => "bundle rejected; the last good revision keeps serving",
            false => "bundle rejected; it has no good revision yet, so none of it is served",
        }
    }

    pub fn activated(&mut self, revision: &str, size: u64, at: SystemTime) {
        // Logged here, where the rejection is known to be over: the reloader's "bundle
        // activated" line follows once the revision serves.
        if let Some(rejected) = self.rejected.take() {
            tracing::info!(bundle = %self.name, revision, rejected = %rejected, "bundle fixed: a good revision replaces the rejected one");
        }
        self.active_revision = revision.to_string();
        self.size = size;
        self.kind = "snapshot";
        self.loaded += 1;
        self.last_successful_activation = Timestamp::At(at);
        // A remote bundle's last request is its download, recorded by the poller's news.
        if self.last_successful_download.is_absent() {
            self.last_request = Some(at);
        }
        self.clear_error();
    }

    pub fn clear_error(&mut self) {
        self.code.clear();
        self.message.clear();
        self.errors.clear();
        self.http_code = None;
    }

    /// Records a failed load or activation the way OPA's bundle plugin does.
    pub fn failed_load(&mut self, message: String, at: SystemTime) {
        if self.last_successful_download.is_absent() {
            self.last_request = Some(at);
        }
        self.code = "bundle_error".into();
        self.rejected = Some(message.clone());
        self.message = message;
        self.errors.clear();
        self.http_code = None;
        self.count_failure();
    }

    pub fn failed_compile(&mut self, error: &CompileError, at: SystemTime) {
        self.failed_load(error.status_message(), at);
        self.rejected = Some(error.to_string());
        self.errors = error.errors().to_vec();
    }

    /// A download that could be read; whether it activates is recorded next.
    pub fn downloaded(&mut self, at: SystemTime, request_time: Duration) {
        self.last_successful_download = Timestamp::At(at);
        self.last_successful_request = Timestamp::At(at);
        self.requested(at, request_time);
    }

    /// A request whose outcome is recorded separately.
    pub fn requested(&mut self, at: SystemTime, request_time: Duration) {
        self.last_request = Some(at);
        self.metrics = Some(RequestMetrics::from(request_time));
    }

    /// A 304: the active bundle is the server's, so an earlier error is over (OPA clears it).
    pub fn not_modified(&mut self, at: SystemTime, request_time: Duration) {
        self.last_successful_request = Timestamp::At(at);
        self.requested(at, request_time);
        self.clear_error();
    }

    pub fn failed_request(
        &mut self,
        message: String,
        http_code: Option<u16>,
        at: SystemTime,
        request_time: Duration,
    ) {
        self.last_request = Some(at);
        self.metrics = Some(RequestMetrics::from(request_time));
        self.code = "bundle_error".into();
        self.message = message;
        self.errors.clear();
        self.http_code = http_code;
        self.count_failure();
    }

    /// Counts the failure now in `message`, by its text.
    fn count_failure(&mut self) {
        self.failed += 1;
        let known = self.failures.contains_key(&self.message);
        let key = if known || self.failures.len() < MAX_FAILURE_MESSAGES {
            self.message.clone()
        } else {
            OTHER_FAILURES.to_string()
        };
        *self.failures.entry(key).or_default() += 1;
    }
}

impl From<Duration> for RequestMetrics {
    fn from(d: Duration) -> Self {
        RequestMetrics {
            timer_bundle_request_ns: u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

/// Distinct failure texts counted apart per bundle (OPA: all): a text can carry file names.
pub const MAX_FAILURE_MESSAGES: usize = 32;

/// The `message` label of failures past `MAX_FAILURE_MESSAGES` distinct texts.
pub const OTHER_FAILURES: &str =
    "(other failures: more distinct messages than verdict counts apart)";

/// Go's zero `time.Time`, as OPA prints a time that has not happened.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_field<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Timestamp::At(t) => s.serialize_str(&rfc3339(*t)),
        _ => s.serialize_str(GO_ZERO_TIME),
    }
}

/// OPA's timestamps: RFC 3339 with nanoseconds, in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = t.into();
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn rfc3339_opt<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// A plugin's state in OPA's status report.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PluginState {
    pub state: &'static str,
}

/// OPA's status report: what `GET /v1/status` answers and the status plugin uploads.
#[derive(Debug, Serialize)]
pub struct Report {
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bundles: BTreeMap<String, BundleStatus>,
    /// The decision-log uploader's status, present when it uploads. verdict's uploader does
    /// not report its last failure here yet (it is counted in
    /// `verdict_decision_log_upload_failures_total`), so this is OPA's `{}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_logs: Option<BTreeMap<String, Json>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ReportMetrics>,
    pub plugins: BTreeMap<&'static str, PluginState>,
    /// verdict's own: under `verdict.engine: auto`, the engine serving each entrypoint of the
    /// active revision and its VM counters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<crate::policy::vm::EntryStatus>,
}

/// `status.prometheus: true`: every metric family, as OPA's report carries them.
#[derive(Debug, Serialize)]
pub struct ReportMetrics {
    pub prometheus: Json,
}

/// OPA's labels: the configured ones plus `id` (per process) and `version`.
pub fn labels(state: &AppState) -> BTreeMap<String, String> {
    let mut labels = state.config.labels.clone();
    labels.insert("id".into(), state.instance_id.clone());
    labels.insert("version".into(), env!("CARGO_PKG_VERSION").into());
    labels
}

/// Plugin states as OPA names them: bundle loading is the "bundle" plugin, the status upload
/// the "status" plugin, decision logging "decision_logs", the Envoy gRPC server
/// "envoy_ext_authz_grpc". OPA always runs a "discovery" plugin, which is OK when no
/// discovery is configured; verdict reports that state too when none is configured, so that
/// tools waiting for OPA's set of plugins see it (a configured `discovery`, which verdict does
/// not implement, is not reported as working).
pub fn plugin_states(state: &AppState) -> BTreeMap<&'static str, &'static str> {
    let mut plugins = BTreeMap::new();
    let config = &state.config;
    if config.decision_logs.is_some() {
        plugins.insert("decision_logs", "OK");
    }
    if !config.not_implemented.contains_key("discovery") {
        plugins.insert("discovery", "OK");
    }
    if config.plugins.envoy_ext_authz_grpc.is_some() {
        plugins.insert("envoy_ext_authz_grpc", "OK");
    }
    if !state.bundle_status().is_empty() {
        let ready = if state.bundles_ready() {
            "OK"
        } else {
            "NOT_READY"
        };
        plugins.insert("bundle", ready);
    }
    if state.config.remote.status.is_some() {
        plugins.insert("status", "OK");
    }
    plugins
}

pub fn report(state: &AppState) -> Report {
    let plugins = plugin_states(state);
    let config = &state.config;
    let uploads_logs = config
        .decision_logs
        .as_ref()
        .is_some_and(|d| d.service.is_some());
    let prometheus = config.remote.status.as_ref().is_some_and(|s| s.prometheus);
    let metrics = match (&state.metrics, prometheus) {
        (Some(metrics), true) => {
            let states: Vec<(&str, &str)> = plugins.iter().map(|(k, v)| (*k, *v)).collect();
            Some(ReportMetrics {
                prometheus: crate::telemetry::protojson::families(&metrics.gather(&states)),
            })
        }
        _ => None,
    };
    Report {
        labels: labels(state),
        bundles: state
            .bundle_status()
            .iter()
            .map(|b| (b.name.clone(), b.clone()))
            .collect(),
        decision_logs: uploads_logs.then(BTreeMap::new),
        metrics,
        plugins: plugins
            .into_iter()
            .map(|(name, state)| (name, PluginState { state }))
            .collect(),
        engines: state
            .snapshot()
            .policy
            .fast_path()
            .map(|f| f.status())
            .unwrap_or_default(),
    }
}
