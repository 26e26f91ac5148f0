//! Prometheus metrics: OPA's families under OPA's names (HTTP request durations, bundle
//! loads and activations, plugin states) and verdict's own (decisions by path and outcome,
//! evaluation latency), plus the process's CPU, memory and file descriptors.
//!
//! Labels carry only bounded values: handler names, status codes, bundle names and
//! revisions, and decision paths that the loaded policy defines. Never input values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// OPA's buckets for `http_request_duration_seconds`.
const HTTP_BUCKETS: &[f64] = &[1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 1e-2, 1e-1, 1.0];

/// Finer buckets for evaluation alone, around the tens of microseconds a decision takes.
const EVAL_BUCKETS: &[f64] = &[
    1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25, 1.0,
];

pub use super::connections::ConnMetrics;
pub use super::proxy::{ProxyMetrics, ProxyOutcome};
pub use super::spool::{SpoolMetrics, DROP_REASONS};

#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// Every metric verdict exports, in one registry.
pub struct Metrics {
    registry: Registry,
    http: HistogramVec,
    decisions: IntCounterVec,
    eval: Histogram,
    bundle_loaded: IntCounterVec,
    bundle_failed: IntCounterVec,
    bundle_failures: IntCounterVec,
    last_activation: GaugeVec,
    last_request: GaugeVec,
    last_download: GaugeVec,
    last_success_request: GaugeVec,
    bundle_loading: HistogramVec,
    plugins: IntGaugeVec,
    spool: SpoolMetrics,
    connections: ConnMetrics,
    proxy: ProxyMetrics,
    /// Status reports that never reached the status service on their own (OPA's
    /// `counter_status_dropped_buffer_limit_exceeded`, which is no Prometheus family: it
    /// shows only in the status report's metrics).
    status_dropped: AtomicU64,
    /// Serialises scrapes and bundle updates, so that a scrape never sees a family half
    /// written.
    scrape: Mutex<()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// How a decision came out, for the `outcome` label.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Allow,
    Deny,
    /// Defined, but neither a boolean nor an object with a boolean `allow`.
    Defined,
    Undefined,
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Defined => "defined",
            Outcome::Undefined => "undefined",
            Outcome::Error => "error",
        }
    }
}

impl Metrics {
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let http = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "A histogram of duration for requests.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["code", "handler", "method"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new(
                "verdict_decisions_total",
                "Decisions by the policy path asked for and their outcome.",
            ),
            &["path", "outcome"],
        )?;
        let eval = Histogram::with_opts(
            HistogramOpts::new(
                "verdict_evaluation_duration_seconds",
                "Time spent evaluating policy for one decision.",
            )
            .buckets(EVAL_BUCKETS.to_vec()),
        )?;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
        };
        let gauge =
            |name: &str, help: &str, labels: &[&str]| GaugeVec::new(Opts::new(name, help), labels);
        let metrics = Metrics {
            http,
            decisions,
            eval,
            bundle_loaded: counter(
                "bundle_loaded_counter",
                "Counter for the bundle loaded.",
                &["name"],
            )?,
            bundle_failed: counter(
                "bundle_failed_load_counter",
                "Counter for the failed bundle load.",
                &["code", "message", "name"],
            )?,
            bundle_failures: counter(
                "verdict_bundle_failures_total",
                "Failed bundle loads and downloads by bundle: bundle_failed_load_counter without its message label, present before the first failure.",
                &["name"],
            )?,
            last_activation: gauge(
                "last_success_bundle_activation",
                "Gauge for the last success bundle activation.",
                &["name", "active_revision"],
            )?,
            last_request: gauge(
                "last_bundle_request",
                "Gauge for the last bundle request.",
                &["name"],
            )?,
            last_download: gauge(
                "last_success_bundle_download",
                "Gauge for the last success bundle download.",
                &["name"],
            )?,
            last_success_request: gauge(
                "last_success_bundle_request",
                "Gauge for the last success bundle request.",
                &["name"],
            )?,
            // OPA's buckets: 1 µs doubling to about 33 ms, in nanoseconds.
            bundle_loading: HistogramVec::new(
                HistogramOpts::new(
                    "bundle_loading_duration_ns",
                    "Histogram for the bundle loading duration by stage.",
                )
                .buckets((0..16).map(|k| 1000.0 * f64::from(1u32 << k)).collect()),
                &["name", "stage"],
            )?,
            plugins: IntGaugeVec::new(
                Opts::new("plugin_status_gauge", "Gauge for the plugin by status."),
                &["name", "status"],
            )?,
            spool: SpoolMetrics::new()?,
            connections: ConnMetrics::new()?,
            proxy: ProxyMetrics::new()?,
            status_dropped: AtomicU64::new(0),
            registry,
            scrape: Mutex::new(()),
        };
        let r = &metrics.registry;
        r.register(Box::new(metrics.http.clone()))?;
        r.register(Box::new(metrics.decisions.clone()))?;
        r.register(Box::new(metrics.eval.clone()))?;
        r.register(Box::new(metrics.bundle_loaded.clone()))?;
        r.register(Box::new(metrics.bundle_failed.clone()))?;
        r.register(Box::new(metrics.bundle_failures.clone()))?;
        r.register(Box::new(metrics.last_activation.clone()))?;
        r.register(Box::new(metrics.last_request.clone()))?;
        r.register(Box::new(metrics.last_download.clone()))?;
        r.register(Box::new(metrics.last_success_request.clone()))?;
        r.register(Box::new(metrics.bundle_loading.clone()))?;
        r.register(Box::new(metrics.plugins.clone()))?;
        metrics.spool.register(r)?;
        metrics.connections.register(r)?;
        metrics.proxy.register(r)?;
        let info = IntGaugeVec::new(
            Opts::new("verdict_info", "Information about the verdict build."),
            &["version"],
        )?;
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        r.register(Box::new(info))?;
        // OPA's dashboards and alerts select on `opa_info`; an OPA-compatible server carries it
        // too, with its own version.
        let opa_info = IntGaugeVec::new(
            Opts::new("opa_info", "Information about the OPA environment."),
            &["version"],
        )?;
        opa_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        r.register(Box::new(opa_info))?;
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
    }

    /// One HTTP request answered, under OPA's handler name.
    pub fn http_request(&self, handler: &str, method: &str, code: u16, took: Duration) {
        self.http
            .with_label_values(&[code.to_string().as_str(), handler, method])
            .observe(took.as_secs_f64());
    }

    /// One decision. `path` must be bounded by the policy (see `runtime::decision`).
    pub fn decision(&self, path: &str, outcome: Outcome, eval: Option<Duration>) {
        self.decisions
            .with_label_values(&[path, outcome.label()])
            .inc();
        if let Some(took) = eval {
            self.eval.observe(took.as_secs_f64());
        }
    }

    /// One request to a bundle server for bundle `name`, whatever its answer (OPA's
    /// `bundle_loading_duration_ns`, stage `timer_bundle_request_ns`).
    pub fn bundle_request(&self, name: &str, took: Duration) {
        self.bundle_loading
            .with_label_values(&[name, "timer_bundle_request_ns"])
            .observe(took.as_nanos() as f64);
    }

    /// `count` status reports that the status service did not get on their own.
    pub fn status_reports_dropped_add(&self, count: u64) {
        self.status_dropped.fetch_add(count, Ordering::Relaxed);
    }

    /// Status reports the status service did not get on their own, so far.
    pub fn status_reports_dropped(&self) -> u64 {
        self.status_dropped.load(Ordering::Relaxed)
    }

    /// The listeners' families: refused connections and failed accepts.
    pub fn connections(&self) -> &ConnMetrics {
        &self.connections
    }

    /// The authorizing proxy's families.
    pub fn proxy(&self) -> &ProxyMetrics {
        &self.proxy
    }

    /// The decision log's families, for the spool and the uploader to update.
    pub fn spool(&self) -> SpoolMetrics {
        self.spool.clone()
    }

    /// Brings the bundle families up to `bundles`, as the reloader reports them after each
    /// reload or poll.
    pub fn bundles(&self, bundles: &[BundleFigures<'_>]) {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        // A revision label that no longer serves must go: the family is written afresh.
        self.last_activation.reset();
        for b in bundles {
            let loaded = self.bundle_loaded.with_label_values(&[b.name]);
            loaded.inc_by(b.loaded.saturating_sub(loaded.get()));
            let failed = self.bundle_failures.with_label_values(&[b.name]);
            failed.inc_by(b.failed.saturating_sub(failed.get()));
            for (message, count) in b.failures {
                let by_text =
                    self.bundle_failed
                        .with_label_values(&["bundle_error", message, b.name]);
                by_text.inc_by(count.saturating_sub(by_text.get()));
            }
            let times = [
                (&self.last_request, b.last_request),
                (&self.last_download, b.last_download),
                (&self.last_success_request, b.last_success_request),
            ];
            for (gauge, at) in times {
                match at {
                    Some(at) => gauge.with_label_values(&[b.name]).set(unix_nanos(at)),
                    None if b.downloaded => gauge.with_label_values(&[b.name]).set(0.0),
                    None => {}
                }
            }
            match b.last_activation {
                Some(at) => self
                    .last_activation
                    .with_label_values(&[b.name, b.revision])
                    .set(unix_nanos(at)),
                None if b.downloaded => self
                    .last_activation
                    .with_label_values(&[b.name, b.revision])
                    .set(0.0),
                None => {}
            }
        }
    }

    /// Every family, with the plugins' states as `plugins` gives them.
    pub fn gather(&self, plugins: &[(&str, &str)]) -> Vec<prometheus::proto::MetricFamily> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(|e| e.into_inner());
        self.plugins.reset();
        for (name, status) in plugins {
            self.plugins.with_label_values(&[name, status]).set(1);
        }
        self.registry.gather()
    }

    /// The text exposition, with the plugins' states as `plugins` gives them.
    pub fn render(&self, plugins: &[(&str, &str)]) -> Vec<u8> {
        let families = self.gather(plugins);
        let mut out = Vec::new();
        // Encoding into memory fails only for metric families that cannot exist here.
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// One bundle's counts and times, for the bundle families.
pub struct BundleFigures<'a> {
    pub name: &'a str,
    pub revision: &'a str,
    pub loaded: u64,
    pub failed: u64,
    pub failures: &'a std::collections::BTreeMap<String, u64>,
    pub last_activation: Option<SystemTime>,
    pub last_request: Option<SystemTime>,
    pub last_download: Option<SystemTime>,
    pub last_success_request: Option<SystemTime>,
    /// A downloaded bundle with news: OPA's bundle plugin sets all four time gauges on each
    /// status it reports, those that have not happened yet at Go's zero time (here 0).
    pub downloaded: bool,
}

/// OPA's bundle gauges hold times as Unix nanoseconds.
fn unix_nanos(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as f64)
        .unwrap_or(0.0)
}
