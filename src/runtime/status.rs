//! Per-bundle status in OPA's status-API shape: active revision, last activation, and the
//! error of the last failed load, so a rejected bundle is visible while the old one serves.

mod report;

use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::policy::{CompileError, CompileStages, RegoError};
use crate::telemetry::metrics::BundleFigures;
pub use report::{labels, plugin_states, report, PluginState, Report, ReportMetrics};

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
    /// Downloaded from a bundle server (OPA's bundle plugin), not given with `-b`.
    #[serde(skip)]
    pub remote: bool,
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

/// A bundle's `metrics`: the last request, and when it brought a bundle, the stages of
/// reading and compiling it as far as they got (OPA's timers, in OPA's key order).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RequestMetrics {
    pub timer_bundle_request_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_rego_load_bundles_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_rego_module_compile_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timer_rego_module_parse_ns: Option<u64>,
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
            remote,
            loaded: 0,
            failed: 0,
            failures: std::collections::BTreeMap::new(),
            rejected: None,
        }
    }

    pub fn is_activated(&self) -> bool {
        self.last_successful_activation.at().is_some()
    }

    /// Whether anything happened to the bundle yet: a request, an activation or a failure.
    pub fn has_news(&self) -> bool {
        self.last_request.is_some() || self.is_activated() || !self.code.is_empty()
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
            downloaded: self.remote && self.has_news(),
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

    /// How long reading the download just recorded took (OPA's `timer_rego_load_bundles_ns`).
    pub fn read_in(&mut self, took: Duration) {
        if let Some(m) = self.metrics.as_mut() {
            m.timer_rego_load_bundles_ns = Some(nanos(took));
        }
    }

    /// How long parsing the modules of the download just recorded took, when they were.
    pub fn parsed_in(&mut self, took: Option<Duration>) {
        if let (Some(m), Some(took)) = (self.metrics.as_mut(), took) {
            m.timer_rego_module_parse_ns = Some(nanos(took));
        }
    }

    /// How far compiling the download just recorded got, and how long each stage took. A
    /// download's modules were parsed as it was read (OPA's reader parses them): that time
    /// stays its parse time.
    pub fn compiled_in(&mut self, stages: &CompileStages) {
        if let Some(m) = self.metrics.as_mut() {
            m.timer_rego_module_parse_ns = m.timer_rego_module_parse_ns.or(stages.parse.map(nanos));
            m.timer_rego_module_compile_ns = stages.compile.map(nanos);
        }
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
            timer_bundle_request_ns: nanos(d),
            timer_rego_load_bundles_ns: None,
            timer_rego_module_compile_ns: None,
            timer_rego_module_parse_ns: None,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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
