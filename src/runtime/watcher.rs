//! Watching bundle files and directories, and the admission webhook's files, and telling the
//! reloader what changed.
//!
//! Each bundle's parent directory is watched too, because the usual ways of replacing a bundle
//! atomically happen there: `mv new.tar.gz bundle.tar.gz`, a directory renamed over another,
//! or Kubernetes swapping the `..data` symlink of a mounted ConfigMap. Events only say
//! "something may have changed"; the reloader compares content before activating anything.

mod admission;

use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::Trigger;
use crate::bundle::{Location, Source};
use crate::config::AdmissionConfig;
pub use admission::AdmissionWatcher;

/// The bundle paths being watched, and the watcher holding their OS watches.
pub struct Watcher {
    inner: RecommendedWatcher,
    targets: Vec<Option<Target>>,
    /// The directory each watch was put on, by device and inode: a bundle directory renamed
    /// over is a new one, which the old watch does not see.
    watched: Vec<Option<(u64, u64)>>,
    tx: mpsc::UnboundedSender<Trigger>,
    admission: Option<AdmissionWatcher>,
}

#[derive(Debug, Clone)]
struct Target {
    path: PathBuf,
    parent: PathBuf,
}

impl Watcher {
    /// Starts watching every on-disk bundle in `sources` and the admission files; events
    /// become triggers on `tx`.
    pub fn start(
        sources: &[Source],
        admission: Option<&AdmissionConfig>,
        tx: mpsc::UnboundedSender<Trigger>,
    ) -> notify::Result<Self> {
        let admission = admission.and_then(|config| {
            AdmissionWatcher::start(config, tx.clone())
                .map_err(|e| tracing::warn!(error = %e, "cannot watch admission files; reload them with SIGHUP"))
                .ok()
        });
        let targets: Vec<Option<Target>> = sources
            .iter()
            .map(|s| match &s.location {
                Location::Path(p) => Some(target(p)),
                Location::Embedded(_) | Location::Remote { .. } => None,
            })
            .collect();
        let matching = targets.clone();
        let events = tx.clone();
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.kind.is_access() {
                return;
            }
            let ids: Vec<usize> = matching
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.as_ref()
                        .is_some_and(|t| event.paths.iter().any(|p| t.concerns(p)))
                })
                .map(|(i, _)| i)
                .collect();
            if !ids.is_empty() {
                // The reloader may have stopped during shutdown; nothing to do then.
                let _ = events.send(Trigger::Bundles(ids));
            }
        })?;
        let mut watcher = Watcher {
            inner,
            watched: vec![None; targets.len()],
            targets,
            tx,
            admission,
        };
        for i in 0..watcher.targets.len() {
            watcher.arm(i)?;
        }
        Ok(watcher)
    }

    fn arm(&mut self, i: usize) -> notify::Result<()> {
        let Some(Some(t)) = self.targets.get(i).cloned() else {
            return Ok(());
        };
        self.inner.watch(&t.parent, RecursiveMode::NonRecursive)?;
        if t.path.is_dir() {
            self.inner.watch(&t.path, RecursiveMode::Recursive)?;
            if let Some(slot) = self.watched.get_mut(i) {
                *slot = identity(&t.path);
            }
        }
        Ok(())
    }

    /// Called after each reload of bundle `i`: a directory replaced by a rename is a new inode
    /// that the old watch does not see, so the watch follows it. Only then: taking a watch
    /// down and up again loses what changes in between, so a directory still the same one
    /// keeps its watch, and after a move one more reload reads what the new watch missed.
    pub fn rearm(&mut self, i: usize) {
        let Some(Some(t)) = self.targets.get(i).cloned() else {
            return;
        };
        let now = identity(&t.path);
        if now.is_some() && now == self.watched.get(i).copied().flatten() {
            return;
        }
        let _ = self.inner.unwatch(&t.path);
        if let Err(e) = self.arm(i) {
            tracing::warn!(error = %e, "cannot watch bundle path; changes will need SIGHUP");
        }
        if t.path.is_dir() {
            let _ = self.tx.send(Trigger::Bundles(vec![i]));
        }
    }

    /// Watches the admission files again after their reload.
    pub fn rearm_admission(&mut self) {
        if let Some(admission) = &mut self.admission {
            admission.rearm();
        }
    }
}

/// A directory's device and inode, which a rename over it changes.
fn identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn target(path: &Path) -> Target {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parent = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    Target { path, parent }
}

impl Target {
    /// True when an event on `p` may change this bundle: anything inside it, the path itself,
    /// or the Kubernetes atomic writer's `..data` entries beside it.
    fn concerns(&self, p: &Path) -> bool {
        if p.starts_with(&self.path) {
            return true;
        }
        p.parent() == Some(self.parent.as_path())
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".."))
    }
}
