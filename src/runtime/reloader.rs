//! The reloader: the only writer of the live snapshot.
//!
//! Triggers (file events, SIGHUP, downloads from the bundle pollers) arrive on one channel
//! and are coalesced over a short quiet period. Each changed bundle is read and compiled
//! together with the last good version of the others on a blocking thread; only a set that
//! compiles and validates is published. A bundle that fails keeps its last good version
//! serving, and the failure is logged and recorded in its status. An activated download is
//! then persisted, when its bundle asks for it.
//!
//! Data API writes come through the same channel (see `writes`), so bundles and pushed data
//! change one at a time, and every snapshot holds the bundles with the pushed data beside them.
//! An activation erases the pushed data under the bundle's roots, as OPA's does.

mod admission;
mod bundles;
mod policies;
mod remote;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use regorus::Value;

use super::admission::AdmissionLoader;
use super::status::BundleStatus;
use super::store::{PushedStore, StoreError, StoredPolicies};
use super::watcher::Watcher;
use super::{ActiveBundle, AppState, Snapshot};
use crate::bundle::{Bundle, LoadError, LoadOptions, Source};
use crate::policy::{self, CompileError, CompileOptions};
use remote::Download;
pub use remote::RemoteEvent;
pub use writes::WriteRequest;

/// Why a reload was asked for.
#[derive(Debug)]
pub enum Trigger {
    /// Files of these bundles (indexes into the sources) changed.
    Bundles(Vec<usize>),
    /// Re-read everything (SIGHUP).
    All,
    /// The admission webhook's files changed.
    Admission,
    /// News from the poller of the remote bundle at this index.
    Remote(usize, RemoteEvent),
    /// A Data API write, answered once it is stored and published.
    Write(WriteRequest),
}

/// Triggers gathered over one quiet period.
#[derive(Default)]
struct Batch {
    which: BTreeSet<usize>,
    downloads: BTreeMap<usize, Download>,
    replies: Vec<(usize, oneshot::Sender<bool>)>,
    /// A status changed without a reload (a 304, a failed request).
    status_changed: bool,
    /// Data API writes, applied in order after the reload.
    writes: Vec<WriteRequest>,
    /// The admission webhook's files are to be read again.
    admission: bool,
}

/// A bundle set that cannot start: OPA exits on these for `-b` bundles, and so does verdict.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("load error: {0}")]
    Load(LoadError),
    #[error("initialization error: {0}")]
    Compile(CompileError),
    /// The pushed-data store exists but cannot be read: starting without the data clients
    /// pushed would answer wrongly and silently.
    #[error("pushed data store unreadable (move it aside to start without pushed data): {0}")]
    PushedData(StoreError),
}

/// Not `#[from]`: that would also make the store error the source, and printed as a chain
/// (`{:#}`), its text would appear twice.
impl From<StoreError> for StartupError {
    fn from(e: StoreError) -> Self {
        StartupError::PushedData(e)
    }
}

pub struct Reloader {
    sources: Vec<Source>,
    /// The last good version of each source, in source order; `None` for a remote bundle
    /// that has not been activated yet.
    active: Vec<Option<Arc<Bundle>>>,
    statuses: Vec<BundleStatus>,
    load: LoadOptions,
    compile: CompileOptions,
    generation: u64,
    /// The data pushed through the Data API, as the active snapshot holds it.
    pushed: Value,
    store: PushedStore,
    /// The policies put through the policy API, and the same as a bundle for compiling.
    policies: StoredPolicies,
    api_bundle: Option<Arc<Bundle>>,
    /// Fingerprint of each remote bundle's persisted copy, so that an unchanged download is
    /// not written again, and a write that failed is tried again.
    persisted: Vec<Option<u64>>,
    /// Reads the admission webhook's files, when it is configured.
    admission: Option<Arc<AdmissionLoader>>,
}

impl Reloader {
    /// Loads and compiles every bundle once. Blocking: run before serving or on a blocking
    /// thread. A local bundle that fails is fatal, as in OPA; a remote bundle starts from its
    /// persisted copy when that is whole and verified, and otherwise waits for its server.
    /// The pushed data read from `store` joins the first snapshot, less what lies under the
    /// roots of the bundles activated here.
    pub fn start(
        sources: Vec<Source>,
        load: LoadOptions,
        compile: CompileOptions,
        (mut store, stored): (PushedStore, Value),
    ) -> Result<(Reloader, Snapshot, Vec<BundleStatus>), StartupError> {
        let now = SystemTime::now();
        let policies = store.take_policies();
        let api_bundle = super::policies::as_bundle(&policies, load.v0_compatible);
        let mut active = Vec::with_capacity(sources.len());
        let mut statuses = Vec::with_capacity(sources.len());
        for source in &sources {
            let mut status = BundleStatus::new(&source.name, source.is_remote());
            let bundle = match Bundle::load(source, load) {
                Ok(b) => Some(Arc::new(b)),
                Err(e) if source.is_remote() => {
                    remote::note_unusable_persisted(source, &e);
                    None
                }
                Err(e) => return Err(StartupError::Load(e)),
            };
            if let Some(b) = &bundle {
                // OPA leaves the size out for a bundle read back from persistence.
                let size = if source.is_remote() { 0 } else { b.size };
                status.activated(b.revision(), size, now);
            }
            active.push(bundle);
            statuses.push(status);
        }
        let pushed_for = |active: &[Option<Arc<Bundle>>]| writes::erase_roots(&stored, active);
        let policy = match policy::compile_with_data(
            &present(&active, api_bundle.as_ref()),
            compile,
            &pushed_for(&active),
        ) {
            Ok(set) => set,
            Err(e)
                if active
                    .iter()
                    .zip(&sources)
                    .any(|(b, s)| b.is_some() && s.is_remote()) =>
            {
                // A persisted bundle that no longer fits the local ones: serve without it
                // until its server sends one that does.
                tracing::error!(error = %e, "persisted bundles do not compile with the others; ignored until downloaded again");
                for (i, source) in sources.iter().enumerate() {
                    if source.is_remote() {
                        active[i] = None;
                        statuses[i] = BundleStatus::new(&source.name, true);
                    }
                }
                let present = present(&active, api_bundle.as_ref());
                policy::compile_with_data(&present, compile, &pushed_for(&active))
                    .map_err(StartupError::Compile)?
            }
            Err(e) => return Err(StartupError::Compile(e)),
        };
        let pushed = pushed_for(&active);
        let persisted = active
            .iter()
            .zip(&sources)
            .map(|(b, s)| b.as_ref().filter(|_| s.is_remote()).map(|b| b.fingerprint))
            .collect();
        let mut reloader = Reloader {
            sources,
            active,
            statuses: statuses.clone(),
            load,
            compile,
            generation: 0,
            pushed: stored,
            store,
            policies,
            api_bundle,
            persisted,
            admission: None,
        };
        reloader.keep_pushed(pushed);
        let snapshot = reloader.snapshot(policy, now);
        for (b, s) in reloader.active.iter().zip(&reloader.sources) {
            if let Some(b) = b {
                let from = s.origin();
                tracing::info!(bundle = %b.name, revision = %b.revision(), from, "bundle activated");
            }
        }
        Ok((reloader, snapshot, statuses))
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Makes the admission webhook's files this reloader's to read again.
    pub fn with_admission(mut self, loader: AdmissionLoader) -> Reloader {
        self.admission = Some(Arc::new(loader));
        self
    }

    fn snapshot(&mut self, policy: policy::PolicySet, at: SystemTime) -> Snapshot {
        self.generation += 1;
        Snapshot {
            generation: self.generation,
            policy,
            bundles: self
                .active
                .iter()
                .flatten()
                .map(|b| ActiveBundle {
                    name: b.name.clone(),
                    revision: b.revision().to_string(),
                })
                .collect(),
            activated_at: at,
        }
    }

    /// Folds one trigger into the batch. Status-only news is recorded at once.
    fn add(&mut self, batch: &mut Batch, trigger: Trigger) {
        match trigger {
            Trigger::Bundles(ids) => batch.which.extend(ids),
            Trigger::All => {
                batch.which.extend(0..self.sources.len());
                batch.admission = true;
            }
            Trigger::Admission => batch.admission = true,
            Trigger::Write(request) => batch.writes.push(request),
            Trigger::Remote(i, event) => self.remote_event(batch, i, event),
        }
    }

    /// Counts a bundle server request in the metrics when `trigger` reports one.
    fn observe(&self, state: &AppState, trigger: &Trigger) {
        if let (Trigger::Remote(i, event), Some(metrics)) = (trigger, &state.metrics) {
            if let Some(status) = self.statuses.get(*i) {
                metrics.bundle_request(&status.name, event.request_time());
            }
        }
    }

    /// Consumes triggers until the channel closes. Reloads run on blocking threads; triggers
    /// arriving within `debounce` of each other are handled as one.
    pub async fn run(
        mut self,
        state: Arc<AppState>,
        mut triggers: mpsc::UnboundedReceiver<Trigger>,
        debounce: Duration,
        mut watcher: Option<Watcher>,
    ) {
        while let Some(first) = triggers.recv().await {
            let mut batch = Batch::default();
            self.observe(&state, &first);
            self.add(&mut batch, first);
            if batch.which.is_empty() && !batch.admission {
                if batch.writes.is_empty() {
                    // A 304 or a failed request: nothing to read or compile.
                    state.record(self.statuses.clone(), false);
                } else {
                    // A data write waits for nothing: no quiet period to gather others.
                    match self.write_all(&state, batch.writes).await {
                        Some(reloader) => self = reloader,
                        None => return,
                    }
                }
                continue;
            }
            let deadline = Instant::now() + debounce;
            loop {
                tokio::select! {
                    more = triggers.recv() => match more {
                        Some(t) => {
                            self.observe(&state, &t);
                            self.add(&mut batch, t);
                        }
                        None => break,
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            let Batch {
                which,
                downloads,
                replies,
                writes,
                admission,
                ..
            } = batch;
            if !which.is_empty() {
                let reloaded = self
                    .reload_bundles(&state, which, downloads, replies, &mut watcher)
                    .await;
                match reloaded {
                    Some(reloader) => self = reloader,
                    None => return,
                }
            }
            if admission {
                self.reload_admission(&state, &mut watcher).await;
            }
            // Writes that came during the quiet period see the bundles it activated.
            if !writes.is_empty() {
                match self.write_all(&state, writes).await {
                    Some(reloader) => self = reloader,
                    None => return,
                }
            }
        }
    }
}

/// The bundles that are active, and the policies put through the API, for compiling.
fn present(active: &[Option<Arc<Bundle>>], api: Option<&Arc<Bundle>>) -> Vec<Arc<Bundle>> {
    active.iter().flatten().chain(api).cloned().collect()
}
