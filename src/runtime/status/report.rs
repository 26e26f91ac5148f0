//! OPA's status report, as `GET /v1/status` answers it and the status plugin uploads it:
//! labels, the bundles OPA's bundle plugin would report, plugin states and metrics.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;

use super::BundleStatus;
use crate::runtime::AppState;

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
        // OPA's discovery plugin is NOT_READY until it has started, which it does after the
        // status plugin: the first report shows it so, and verdict's too.
        plugins.insert(
            "discovery",
            if state.started() { "OK" } else { "NOT_READY" },
        );
    }
    if config.plugins.envoy_ext_authz_grpc.is_some() {
        plugins.insert("envoy_ext_authz_grpc", "OK");
    }
    let reported = reported_bundles(state);
    if !reported.is_empty() {
        let ready = match reported.iter().all(|b| b.is_activated()) {
            true => "OK",
            false => "NOT_READY",
        };
        plugins.insert("bundle", ready);
    }
    if state.config.remote.status.is_some() {
        plugins.insert("status", "OK");
    }
    plugins
}

/// The bundles the status reports: those of OPA's bundle plugin, downloaded from a bundle
/// server. Bundles given with `-b` are read at start, where a failure stops verdict, and OPA
/// reports nothing of them. verdict reads them again under `--watch`, where they are reported
/// too, so that a rejected reload shows; a reload asked by SIGHUP that was rejected shows as
/// well, until a good one follows.
fn reported_bundles(state: &AppState) -> Vec<BundleStatus> {
    let watch = state.config.verdict.watch;
    state
        .bundle_status()
        .iter()
        .filter(|b| b.remote || watch || !b.code.is_empty())
        .cloned()
        .collect()
}

/// OPA's name for the status reports that never reached the status service on their own
/// (see `remote::status`); OPA shows it among the report's metrics once it is not zero.
pub const DROPPED_REPORTS: &str = "counter_status_dropped_buffer_limit_exceeded";

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
            let mut prometheus = crate::telemetry::protojson::families(&metrics.gather(&states));
            let dropped = metrics.status_reports_dropped();
            if let (Some(families), true) = (prometheus.as_object_mut(), dropped > 0) {
                // A plain number beside the families, as OPA's report has it.
                families.insert(DROPPED_REPORTS.into(), Json::from(dropped));
            }
            Some(ReportMetrics { prometheus })
        }
        _ => None,
    };
    Report {
        labels: labels(state),
        // A bundle is listed once there is news of it (a request, an activation, a failure),
        // as OPA's bundle plugin lists those it has reported on.
        bundles: reported_bundles(state)
            .into_iter()
            .filter(BundleStatus::has_news)
            .map(|b| (b.name.clone(), b))
            .collect(),
        // The uploader's status exists once it runs, after the status plugin's first report.
        decision_logs: (uploads_logs && state.started()).then(BTreeMap::new),
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
