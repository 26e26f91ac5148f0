//! Reloading bundles in the reloader: each changed bundle read (remote ones from their
//! downloads), the set compiled once with the last good version of the others, and, when that
//! fails, each changed bundle tried on its own so that one bad bundle cannot hold back a good
//! one. Runs on a blocking thread; only a set that compiles is published.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;

use super::remote::Download;
use super::{present, Reloader};
use crate::bundle::Bundle;
use crate::policy::{self, CompileError, CompileStages, PolicySet};
use crate::runtime::watcher::Watcher;
use crate::runtime::{pushed, ActiveBundle, AppState};

/// What one reload did.
pub(super) struct Reloaded {
    snapshot: Option<(crate::runtime::Snapshot, Vec<ActiveBundle>)>,
    /// Downloads whose content is now the active one (new or unchanged).
    accepted: BTreeSet<usize>,
}

/// A changed bundle read and waiting to be compiled.
struct Candidate {
    index: usize,
    bundle: Arc<Bundle>,
    size: u64,
    /// Came from a download, whose status reports how long each stage took.
    downloaded: bool,
}

impl Reloader {
    /// Reloads the bundles at `which`, publishes what activates, persists accepted downloads
    /// and answers their pollers. `None` when the blocking thread was lost, which ends the
    /// reloader; the last snapshot keeps serving.
    pub(super) async fn reload_bundles(
        mut self,
        state: &Arc<AppState>,
        which: BTreeSet<usize>,
        downloads: BTreeMap<usize, Download>,
        replies: Vec<(usize, oneshot::Sender<bool>)>,
        watcher: &mut Option<Watcher>,
    ) -> Option<Reloader> {
        let job = tokio::task::spawn_blocking(move || {
            // A panic in a parser or the engine must cost this reload, not every later one,
            // and must not leave the reloader believing in bundles it never published.
            let before = (self.active.clone(), self.statuses.clone());
            let reloaded = catch_unwind(AssertUnwindSafe(|| self.reload(&which, &downloads)));
            let reloaded = reloaded.unwrap_or_else(|_| {
                (self.active, self.statuses) = before;
                self.internal_failure(&which);
                Reloaded {
                    snapshot: None,
                    accepted: BTreeSet::new(),
                }
            });
            (self, reloaded, which, downloads)
        })
        .await;
        let (mut reloader, reloaded, which, downloads) = match job {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "bundle reloader stopped after an internal failure");
                return None;
            }
        };
        if let Some(w) = watcher.as_mut() {
            for &i in &which {
                w.rearm(i);
            }
        }
        if let Some((snapshot, activated)) = reloaded.snapshot {
            let generation = snapshot.generation;
            state.publish(snapshot);
            // Logged once serving: whoever reads this line gets the new revision.
            for b in activated {
                tracing::info!(bundle = %b.name, revision = %b.revision, generation, "bundle activated");
            }
        }
        let unpersisted = reloader.persist(&reloaded.accepted, downloads).await;
        state.record(reloader.statuses.clone(), true);
        for (i, done) in replies {
            // The ETag moves on once the download serves and is kept: a copy that could not
            // be persisted is downloaded and written again. The poller may have stopped; it
            // then has no ETag to move forward.
            let kept = reloaded.accepted.contains(&i) && !unpersisted.contains(&i);
            let _ = done.send(kept);
        }
        Some(reloader)
    }

    /// Re-reads the given bundles and returns the snapshot to publish, if anything changed.
    /// Blocking and CPU-bound.
    fn reload(
        &mut self,
        which: &BTreeSet<usize>,
        downloads: &BTreeMap<usize, Download>,
    ) -> Reloaded {
        let mut accepted = BTreeSet::new();
        let candidates: Vec<Candidate> = which
            .iter()
            .filter_map(|&i| self.read(i, downloads.get(&i), &mut accepted))
            .collect();
        let compiled = match candidates.len() {
            0 => None,
            // Most batches change one bundle: compiling it alone is the whole work.
            1 => self.activate_each(&candidates, &mut accepted),
            _ => match self.activate_together(&candidates, &mut accepted) {
                Some(done) => Some(done),
                None => self.activate_each(&candidates, &mut accepted),
            },
        };
        Reloaded {
            snapshot: compiled.map(|(set, at, activated)| (self.snapshot(set, at), activated)),
            accepted,
        }
    }

    /// Reads bundle `i`: `None` when it failed (recorded in its status), is unchanged
    /// (accepted as it is), or is a remote bundle with nothing new.
    fn read(
        &mut self,
        i: usize,
        download: Option<&Download>,
        accepted: &mut BTreeSet<usize>,
    ) -> Option<Candidate> {
        let remote = self.sources.get(i)?.is_remote();
        let now = SystemTime::now();
        let loaded = match (remote, download) {
            (true, Some(d)) => self.read_download(i, d)?,
            // Nothing new to read for a remote bundle on SIGHUP: its poller brings it.
            (true, None) => return None,
            (false, _) => Bundle::load(self.sources.get(i)?, self.load),
        };
        let source = self.sources.get(i)?;
        let bundle = match loaded {
            Ok(b) => Arc::new(b),
            Err(e) => {
                let rejected = self
                    .statuses
                    .get(i)
                    .map_or("bundle rejected", |s| s.rejection_message());
                tracing::error!(bundle = %source.name, error = %e, "{rejected}");
                // OPA's status names a remote bundle by its key already, so its message is
                // the bare cause; a local bundle's message says which one failed.
                let message = if source.is_remote() {
                    e.error.to_string()
                } else {
                    e.to_string()
                };
                self.statuses[i].failed_load(message, now);
                return None;
            }
        };
        let unchanged = self.active[i]
            .as_ref()
            .is_some_and(|b| b.fingerprint == bundle.fingerprint);
        if unchanged {
            // Same content as the one serving (an editor touching files, a no-op swap, a
            // download of what persistence started with): nothing to compile, and any earlier
            // error is now stale. OPA counts a download as an activation.
            match download {
                Some(d) => self.statuses[i].activated(bundle.revision(), d.size(), now),
                None => {
                    self.statuses[i].last_request = Some(now);
                    self.statuses[i].clear_error();
                }
            }
            accepted.insert(i);
            return None;
        }
        // OPA reports a download's size as it came over the wire.
        let size = download.map_or(bundle.size, Download::size);
        Some(Candidate {
            index: i,
            bundle,
            size,
            downloaded: download.is_some(),
        })
    }

    /// Compiles every candidate in one set: the common case of a batch whose bundles are all
    /// good costs one compilation, however many changed. `None` when the set does not
    /// compile; nothing is recorded then, and each candidate is tried on its own.
    fn activate_together(
        &mut self,
        candidates: &[Candidate],
        accepted: &mut BTreeSet<usize>,
    ) -> Option<(PolicySet, SystemTime, Vec<ActiveBundle>)> {
        let mut active = self.active.clone();
        let mut pushed = self.pushed.clone();
        for c in candidates {
            active[c.index] = Some(c.bundle.clone());
            pushed = pushed::erase(&pushed, &c.bundle.manifest.root_paths());
        }
        let (compiled, stages) = policy::compile_timed(
            &present(&active, self.api_bundle.as_ref()),
            self.compile,
            &pushed,
        );
        let set = compiled.ok()?;
        let now = SystemTime::now();
        self.timed(candidates, &stages);
        let activated = candidates.iter().map(|c| self.activated(c, now)).collect();
        accepted.extend(candidates.iter().map(|c| c.index));
        self.active = active;
        self.keep_pushed(pushed);
        Some((set, now, activated))
    }

    /// Compiles the candidates one after the other, each with those before it that
    /// activated: a bundle that fails keeps its last good version, and the others go on.
    fn activate_each(
        &mut self,
        candidates: &[Candidate],
        accepted: &mut BTreeSet<usize>,
    ) -> Option<(PolicySet, SystemTime, Vec<ActiveBundle>)> {
        let mut compiled = None;
        let mut activated = Vec::new();
        let mut pushed = self.pushed.clone();
        for c in candidates {
            let mut active = self.active.clone();
            active[c.index] = Some(c.bundle.clone());
            let erased = pushed::erase(&pushed, &c.bundle.manifest.root_paths());
            let now = SystemTime::now();
            let (result, stages) = policy::compile_timed(
                &present(&active, self.api_bundle.as_ref()),
                self.compile,
                &erased,
            );
            self.timed(std::slice::from_ref(c), &stages);
            match result {
                Ok(set) => {
                    pushed = erased;
                    activated.push(self.activated(c, now));
                    self.active = active;
                    accepted.insert(c.index);
                    compiled = Some((set, now));
                }
                Err(e) => self.rejected(c, &e, now),
            }
        }
        self.keep_pushed(pushed);
        compiled.map(|(set, at)| (set, at, activated))
    }

    /// Records in the statuses of the downloads among `candidates` how long compiling them
    /// took, as far as it got.
    fn timed(&mut self, candidates: &[Candidate], stages: &CompileStages) {
        for c in candidates.iter().filter(|c| c.downloaded) {
            self.statuses[c.index].compiled_in(stages);
        }
    }

    fn activated(&mut self, c: &Candidate, now: SystemTime) -> ActiveBundle {
        self.statuses[c.index].activated(c.bundle.revision(), c.size, now);
        if c.bundle.from_delta {
            self.statuses[c.index].kind = "delta";
        }
        ActiveBundle {
            name: c.bundle.name.clone(),
            revision: c.bundle.revision().to_string(),
        }
    }

    fn rejected(&mut self, c: &Candidate, e: &CompileError, now: SystemTime) {
        let rejected = self.statuses[c.index].rejection_message();
        tracing::error!(bundle = %c.bundle.name, error = %e, "{rejected}");
        self.statuses[c.index].failed_compile(e, now);
    }

    /// Marks a reload that panicked as failed for every bundle it was reading.
    fn internal_failure(&mut self, which: &BTreeSet<usize>) {
        let now = SystemTime::now();
        for &i in which {
            if let (Some(source), Some(status)) = (self.sources.get(i), self.statuses.get_mut(i)) {
                let rejected = status.rejection_message();
                tracing::error!(bundle = %source.name, "{rejected} (an internal failure)");
                status.failed_load("internal error while loading the bundle".into(), now);
            }
        }
    }
}
