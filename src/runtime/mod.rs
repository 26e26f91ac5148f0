//! Live state: the immutable `Snapshot` every request reads, the `AppState` that publishes it
//! through `ArcSwap`, and the reloader (the only writer) fed by the file watcher and SIGHUP.
//!
//! Readers take one snapshot per request and use it to the end, so a swap never mixes two
//! bundle revisions in one decision and never makes a reader wait.

pub mod decision;
pub mod memory;
pub mod reloader;
pub mod status;
pub mod watcher;

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::config::Config;
use crate::policy::PolicySet;
pub use decision::Decided;
pub use reloader::{Reloader, StartupError, Trigger};
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
}

/// Shared state of a running verdict: read by every transport, written only by the reloader.
#[derive(Debug)]
pub struct AppState {
    current: ArcSwap<Snapshot>,
    bundle_status: ArcSwap<Vec<BundleStatus>>,
    progress: watch::Sender<ReloadProgress>,
    pub config: Arc<Config>,
    /// OPA's `labels.id`: a fresh identifier per process.
    pub instance_id: String,
}

impl AppState {
    pub fn new(config: Arc<Config>, snapshot: Snapshot, bundles: Vec<BundleStatus>) -> Arc<Self> {
        let generation = snapshot.generation;
        let (progress, _) = watch::channel(ReloadProgress {
            attempts: 0,
            generation,
        });
        Arc::new(AppState {
            current: ArcSwap::from_pointee(snapshot),
            bundle_status: ArcSwap::from_pointee(bundles),
            progress,
            config,
            instance_id: uuid::Uuid::new_v4().to_string(),
        })
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
            .all(|b| b.last_successful_activation.is_some())
    }

    /// Subscribe to reload progress; tests wait on this instead of sleeping.
    pub fn subscribe(&self) -> watch::Receiver<ReloadProgress> {
        self.progress.subscribe()
    }

    /// Publishes a new snapshot. Only the reloader calls this.
    fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// Records the outcome of one reload. Only the reloader calls this.
    fn record(&self, statuses: Vec<BundleStatus>) {
        self.bundle_status.store(Arc::new(statuses));
        let generation = self.current.load().generation;
        self.progress.send_modify(|p| {
            p.attempts += 1;
            p.generation = generation;
        });
    }
}
