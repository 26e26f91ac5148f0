//! Live state: the immutable `Snapshot` every request reads, the `AppState` that publishes it
//! through `ArcSwap`, and the reloader (the only writer) fed by the file watcher, SIGHUP, the
//! bundle pollers and Data API writes; the pushed data and its durable store.
//!
//! Readers take one snapshot per request and use it to the end, so a swap never mixes two
//! bundle revisions, or a bundle and half a data write, in one decision and never makes a
//! reader wait.

pub mod admission;
pub mod cpus;
pub mod decision;
pub mod memory;
pub mod policies;
pub mod priority;
pub mod pushed;
pub mod reloader;
pub mod status;
pub mod store;
pub mod watcher;

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::decision_log::DecisionLog;
use crate::policy::PolicySet;
use crate::telemetry::metrics::Metrics;
use admission::{Admission, AdmissionReload};
pub use decision::{Ask, DecideError, Decided};
pub use reloader::{Reloader, RemoteEvent, StartupError, Trigger, WriteRequest};
pub use status::BundleStatus;

/// A bundle as the active snapshot serves it: for provenance and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveBundle {
    pub name: String,
    pub revision: String,
}

/// Everything one decision needs, immutable once published.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every activation.
    pub generation: u64,
    pub policy: PolicySet,
    pub bundles: Vec<ActiveBundle>,
    pub activated_at: SystemTime,
}

impl Snapshot {
    /// Each active bundle's name and revision, as decision log events name them.
    pub fn revisions(&self) -> Vec<(&str, &str)> {
        self.bundles
            .iter()
            .map(|b| (b.name.as_str(), b.revision.as_str()))
            .collect()
    }

    pub fn empty() -> Snapshot {
        Snapshot {
            generation: 0,
            policy: PolicySet::empty(),
            bundles: Vec::new(),
            activated_at: SystemTime::now(),
        }
    }
}

/// Counts of reload attempts and activations, for tests and operators to wait on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReloadProgress {
    /// Reloads finished, successful or not.
    pub attempts: u64,
    /// Generation of the snapshot now serving.
    pub generation: u64,
    /// Bundle status records published, reloads and poller news alike.
    pub status_updates: u64,
    /// Data API writes published.
    pub data_writes: u64,
    /// Admission reloads finished, whatever their outcome.
    pub admission_reloads: u64,
    /// Admission TLS configurations read again after the first.
    pub tls_reloads: u64,
    /// Admission TLS reloads refused (unreadable or mismatched files); the previous
    /// configuration keeps serving.
    pub tls_failures: u64,
}

/// Shared state of a running verdict: read by every transport, written only by the reloader.
#[derive(Debug)]
pub struct AppState {
    current: ArcSwap<Snapshot>,
    bundle_status: ArcSwap<Vec<BundleStatus>>,
    progress: watch::Sender<ReloadProgress>,
    /// The reloader's channel, for Data API writes; `None` where nothing applies them. Weak:
    /// the reloader holds this state, and must still end when its last real sender goes.
    writer: Option<mpsc::WeakUnboundedSender<Trigger>>,
    pub config: Arc<Config>,
    /// OPA's `labels.id`: a fresh identifier per process.
    pub instance_id: String,
    /// `None` only if the registry could not be built, which `/metrics` then reports.
    pub metrics: Option<Metrics>,
    /// Set once at start, before any request, when decisions are logged.
    decision_log: OnceLock<DecisionLog>,
    /// Set once at start when the admission webhook is configured; then swapped by the
    /// reloader.
    admission: OnceLock<ArcSwap<Admission>>,
    /// `default_decision` parsed once; `None` when it does not parse (every request then
    /// answers why).
    default_decision: Option<crate::policy::DataPath>,
    /// Numbers requests as OPA's `req_id` does, from 1.
    requests: std::sync::atomic::AtomicU64,
    /// Set once the start-up has started every configured part (pollers, uploaders); the
    /// status plugin's first report is taken before.
    started: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// State without a writer: Data API writes answer that no writer is available.
    pub fn new(config: Arc<Config>, snapshot: Snapshot, bundles: Vec<BundleStatus>) -> Arc<Self> {
        Self::build(config, snapshot, bundles, None)
    }

    /// State whose Data API writes go to the reloader behind `writer`.
    pub fn with_writer(
        config: Arc<Config>,
        snapshot: Snapshot,
        bundles: Vec<BundleStatus>,
        writer: mpsc::UnboundedSender<Trigger>,
    ) -> Arc<Self> {
        Self::build(config, snapshot, bundles, Some(writer.downgrade()))
    }

    fn build(
        config: Arc<Config>,
        snapshot: Snapshot,
        bundles: Vec<BundleStatus>,
        writer: Option<mpsc::WeakUnboundedSender<Trigger>>,
    ) -> Arc<Self> {
        let generation = snapshot.generation;
        let (progress, _) = watch::channel(ReloadProgress {
            generation,
            ..ReloadProgress::default()
        });
        let default_decision = crate::policy::DataPath::parse(&config.default_decision).ok();
        let state = Arc::new(AppState {
            default_decision,
            current: ArcSwap::from_pointee(snapshot),
            bundle_status: ArcSwap::from_pointee(Vec::new()),
            progress,
            writer,
            config,
            instance_id: uuid::Uuid::new_v4().to_string(),
            metrics: Metrics::new()
                .map_err(|e| tracing::error!(error = %e, "metrics are off"))
                .ok(),
            decision_log: OnceLock::new(),
            admission: OnceLock::new(),
            requests: std::sync::atomic::AtomicU64::new(0),
            started: std::sync::atomic::AtomicBool::new(false),
        });
        state.count_bundles(&bundles);
        state.bundle_status.store(Arc::new(bundles));
        state
    }

    /// Brings the bundle metrics up to `statuses`.
    fn count_bundles(&self, statuses: &[BundleStatus]) {
        if let Some(metrics) = &self.metrics {
            let figures: Vec<_> = statuses.iter().map(BundleStatus::figures).collect();
            metrics.bundles(&figures);
        }
    }

    /// Turns decision logging on. Only the start-up calls this, before serving.
    pub fn attach_decision_log(&self, log: DecisionLog) {
        if self.decision_log.set(log).is_err() {
            tracing::warn!("decision logging was already on; the second logger is ignored");
        }
    }

    /// Turns the admission webhook on with its first state. Only the start-up calls this.
    pub fn attach_admission(&self, admission: Admission) {
        if self
            .admission
            .set(ArcSwap::from_pointee(admission))
            .is_err()
        {
            tracing::warn!("admission was already on; the second state is ignored");
        }
    }

    /// The admission state to use for one whole review (or one TLS handshake).
    pub fn admission(&self) -> Option<Arc<Admission>> {
        self.admission.get().map(ArcSwap::load_full)
    }

    /// Publishes an admission reload, `None` when it failed altogether. Only the reloader
    /// calls this.
    fn publish_admission(&self, reloaded: Option<(Admission, AdmissionReload)>) {
        let mut tls_loaded = None;
        if let (Some(current), Some((admission, reload))) = (self.admission.get(), reloaded) {
            current.store(Arc::new(admission));
            tls_loaded = Some(reload.tls_loaded);
        }
        self.progress.send_modify(|p| {
            p.admission_reloads += 1;
            match tls_loaded {
                Some(true) => p.tls_reloads += 1,
                Some(false) => p.tls_failures += 1,
                None => {}
            }
        });
    }

    /// The path `POST /` decides, when the configured one parses.
    pub fn default_decision(&self) -> Option<&crate::policy::DataPath> {
        self.default_decision.as_ref()
    }

    /// How many requests have been numbered so far (the last `req_id` given).
    pub fn requests_numbered(&self) -> u64 {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The next request's `req_id`.
    pub fn next_req_id(&self) -> u64 {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
    }

    /// The decision logger, when decisions are logged (and responses carry `decision_id`).
    pub fn decision_log(&self) -> Option<&DecisionLog> {
        self.decision_log.get()
    }

    /// The snapshot to use for one whole request.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn bundle_status(&self) -> Arc<Vec<BundleStatus>> {
        self.bundle_status.load_full()
    }

    /// Ready once every configured bundle has been activated at least once; a later failed
    /// reload does not unready it, since the last good bundle keeps serving (OPA's rule too).
    pub fn bundles_ready(&self) -> bool {
        self.bundle_status
            .load()
            .iter()
            .all(BundleStatus::is_activated)
    }

    /// Marks the start-up done: every configured part is running. Only the start-up calls it.
    pub fn mark_started(&self) {
        self.started
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the start-up has started every configured part.
    pub fn started(&self) -> bool {
        self.started.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Subscribe to reload progress; tests wait on this instead of sleeping.
    pub fn subscribe(&self) -> watch::Receiver<ReloadProgress> {
        self.progress.subscribe()
    }

    /// Publishes a new snapshot. Only the reloader calls this.
    fn publish(&self, snapshot: Snapshot) {
        let old = self.current.swap(Arc::new(snapshot));
        retire(old);
    }

    /// Publishes the snapshot of a Data API write. Only the reloader calls this.
    fn publish_write(&self, snapshot: Snapshot) {
        let generation = snapshot.generation;
        self.publish(snapshot);
        self.progress.send_modify(|p| {
            p.generation = generation;
            p.data_writes += 1;
        });
    }

    /// Records bundle statuses after a reload (`reload`) or a poller's news. Only the
    /// reloader calls this.
    fn record(&self, statuses: Vec<BundleStatus>, reload: bool) {
        self.count_bundles(&statuses);
        self.bundle_status.store(Arc::new(statuses));
        let generation = self.current.load().generation;
        self.progress.send_modify(|p| {
            p.attempts += u64::from(reload);
            p.generation = generation;
            p.status_updates += 1;
        });
    }
}

/// How long a replaced snapshot is kept before it is freed.
const RETIRE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Frees a replaced snapshot off the request path. Whoever drops the last reference to a
/// policy set pays for freeing its data, which takes milliseconds for a large data.json:
/// without this, that is the request that happens to finish last on the old snapshot, or a
/// worker replacing its warm engine. Kept for a moment, the snapshot outlives those, and the
/// free happens here on a blocking thread.
fn retire(old: Arc<Snapshot>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        tokio::time::sleep(RETIRE_AFTER).await;
        let _ = tokio::task::spawn_blocking(move || drop(old)).await;
    });
}
