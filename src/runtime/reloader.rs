//! The reloader: the only writer of the live snapshot.
//!
//! Triggers (file events, SIGHUP) arrive on one channel and are coalesced over a short quiet
//! period. Each changed bundle is read and compiled together with the last good version of the
//! others on a blocking thread; only a set that compiles and validates is published. A bundle
//! that fails keeps its last good version serving, and the failure is logged and recorded in
//! its status.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::status::BundleStatus;
use super::watcher::Watcher;
use super::{ActiveBundle, AppState, Snapshot};
use crate::bundle::{Bundle, LoadError, LoadOptions, Source};
use crate::policy::{self, CompileError, CompileOptions};

/// Why a reload was asked for.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// Files of these bundles (indexes into the sources) changed.
    Bundles(Vec<usize>),
    /// Re-read everything (SIGHUP).
    All,
}

/// A bundle set that cannot start: OPA exits on these for `-b` bundles, and so does verdict.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("load error: {0}")]
    Load(LoadError),
    #[error("initialization error: {0}")]
    Compile(CompileError),
}

pub struct Reloader {
    sources: Vec<Source>,
    /// The last good version of each source, in source order.
    active: Vec<Arc<Bundle>>,
    statuses: Vec<BundleStatus>,
    load: LoadOptions,
    compile: CompileOptions,
    generation: u64,
}

impl Reloader {
    /// Loads and compiles every bundle once. Blocking: run before serving or on a blocking
    /// thread.
    pub fn start(
        sources: Vec<Source>,
        load: LoadOptions,
        compile: CompileOptions,
    ) -> Result<(Reloader, Snapshot, Vec<BundleStatus>), StartupError> {
        let mut active = Vec::with_capacity(sources.len());
        for source in &sources {
            active.push(Arc::new(
                Bundle::load(source, load).map_err(StartupError::Load)?,
            ));
        }
        let policy = policy::compile(&active, compile).map_err(StartupError::Compile)?;
        let now = SystemTime::now();
        let statuses = active
            .iter()
            .map(|b| {
                let mut s = BundleStatus::new(&b.name);
                s.activated(b.revision(), b.size, now);
                s
            })
            .collect::<Vec<_>>();
        let mut reloader = Reloader {
            sources,
            active,
            statuses: statuses.clone(),
            load,
            compile,
            generation: 0,
        };
        let snapshot = reloader.snapshot(policy, now);
        for b in &reloader.active {
            tracing::info!(bundle = %b.name, revision = %b.revision(), "bundle activated");
        }
        Ok((reloader, snapshot, statuses))
    }

    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    fn snapshot(&mut self, policy: policy::PolicySet, at: SystemTime) -> Snapshot {
        self.generation += 1;
        Snapshot {
            generation: self.generation,
            policy,
            bundles: self
                .active
                .iter()
                .map(|b| ActiveBundle {
                    name: b.name.clone(),
                    revision: b.revision().to_string(),
                })
                .collect(),
            activated_at: at,
        }
    }

    /// Re-reads the given bundles and returns the snapshot to publish, if anything changed,
    /// with the bundles it activates. Blocking and CPU-bound.
    pub fn reload(&mut self, which: &BTreeSet<usize>) -> Option<(Snapshot, Vec<ActiveBundle>)> {
        let mut compiled = None;
        let mut activated = Vec::new();
        for &i in which {
            let Some(source) = self.sources.get(i) else {
                continue;
            };
            let now = SystemTime::now();
            let bundle = match Bundle::load(source, self.load) {
                Ok(b) => Arc::new(b),
                Err(e) => {
                    tracing::error!(bundle = %source.name, error = %e, "bundle rejected; the last good revision keeps serving");
                    self.statuses[i].failed_load(e.to_string(), now);
                    continue;
                }
            };
            if bundle.fingerprint == self.active[i].fingerprint {
                // Same content as the one serving (an editor touching files, a no-op swap):
                // nothing to activate, and any earlier error is now stale.
                self.statuses[i].last_request = Some(now);
                self.statuses[i].clear_error();
                continue;
            }
            let mut candidate = self.active.clone();
            candidate[i] = bundle.clone();
            match policy::compile(&candidate, self.compile) {
                Ok(set) => {
                    activated.push(ActiveBundle {
                        name: bundle.name.clone(),
                        revision: bundle.revision().to_string(),
                    });
                    self.statuses[i].activated(bundle.revision(), bundle.size, now);
                    self.active = candidate;
                    compiled = Some((set, now));
                }
                Err(e) => {
                    tracing::error!(bundle = %source.name, error = %e, "bundle rejected; the last good revision keeps serving");
                    self.statuses[i].failed_compile(&e, now);
                }
            }
        }
        compiled.map(|(set, at)| (self.snapshot(set, at), activated))
    }

    /// Marks a reload that panicked as failed for every bundle it was reading.
    fn internal_failure(&mut self, which: &BTreeSet<usize>) {
        let now = SystemTime::now();
        for &i in which {
            if let (Some(source), Some(status)) = (self.sources.get(i), self.statuses.get_mut(i)) {
                tracing::error!(bundle = %source.name, "bundle rejected after an internal failure; the last good revision keeps serving");
                status.failed_load("internal error while loading the bundle".into(), now);
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
        let all: BTreeSet<usize> = (0..self.sources.len()).collect();
        while let Some(first) = triggers.recv().await {
            let mut which = BTreeSet::new();
            add(&mut which, first, &all);
            let deadline = Instant::now() + debounce;
            loop {
                tokio::select! {
                    more = triggers.recv() => match more {
                        Some(t) => add(&mut which, t, &all),
                        None => break,
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            let job = tokio::task::spawn_blocking(move || {
                // A panic in a parser or the engine must cost this reload, not every later one.
                let snapshot = catch_unwind(AssertUnwindSafe(|| self.reload(&which)));
                let snapshot = snapshot.unwrap_or_else(|_| {
                    self.internal_failure(&which);
                    None
                });
                (self, snapshot, which)
            })
            .await;
            let (reloader, snapshot, which) = match job {
                Ok(done) => done,
                Err(e) => {
                    // A panic in the reload lost the reloader; the last snapshot keeps serving.
                    tracing::error!(error = %e, "bundle reloader stopped after an internal failure");
                    return;
                }
            };
            self = reloader;
            if let Some(w) = watcher.as_mut() {
                for &i in &which {
                    w.rearm(i);
                }
            }
            if let Some((snapshot, activated)) = snapshot {
                let generation = snapshot.generation;
                state.publish(snapshot);
                // Logged once serving: whoever reads this line gets the new revision.
                for b in activated {
                    tracing::info!(bundle = %b.name, revision = %b.revision, generation, "bundle activated");
                }
            }
            state.record(self.statuses.clone());
        }
    }
}

fn add(which: &mut BTreeSet<usize>, trigger: Trigger, all: &BTreeSet<usize>) {
    match trigger {
        Trigger::Bundles(ids) => which.extend(ids),
        Trigger::All => which.extend(all.iter().copied()),
    }
}
