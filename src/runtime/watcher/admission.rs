//! Watching the admission webhook's files: its policy and inventory trees, its TLS files, and
//! the directories holding them, where a Secret or ConfigMap mount swaps its `..data` symlink.

use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use crate::admission::policy_trees;
use crate::config::AdmissionConfig;
use crate::runtime::Trigger;

pub struct AdmissionWatcher {
    inner: RecommendedWatcher,
    config: AdmissionConfig,
    watched: Vec<(PathBuf, RecursiveMode)>,
}

impl AdmissionWatcher {
    pub fn start(
        config: &AdmissionConfig,
        tx: mpsc::UnboundedSender<Trigger>,
    ) -> notify::Result<AdmissionWatcher> {
        let targets = Targets::of(config);
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let concerns = |e: &notify::Event| e.paths.iter().any(|p| targets.concerns(p));
            if event.is_ok_and(|e| !e.kind.is_access() && concerns(&e)) {
                // The reloader may have stopped during shutdown; nothing to do then.
                let _ = tx.send(Trigger::Admission);
            }
        })?;
        let mut watcher = AdmissionWatcher {
            inner,
            config: config.clone(),
            watched: Vec::new(),
        };
        watcher.rearm();
        Ok(watcher)
    }

    /// Watches everything again: a directory created or replaced by a rename since the last
    /// reload is a new inode that the old watch does not see.
    pub fn rearm(&mut self) {
        for (path, _) in &self.watched {
            let _ = self.inner.unwatch(path);
        }
        self.watched = watched(&self.config);
        for (path, mode) in &self.watched {
            if let Err(e) = self.inner.watch(path, *mode) {
                tracing::debug!(path = %path.display(), error = %e, "cannot watch admission path");
            }
        }
    }
}

/// The policy and inventory paths (recursively), and the directories holding them and the TLS
/// files.
fn watched(config: &AdmissionConfig) -> Vec<(PathBuf, RecursiveMode)> {
    let trees = policy_trees(config);
    let tls = config.tls_files();
    let mut dirs: Vec<PathBuf> = tls.paths().chain(&trees).map(|f| parent(f)).collect();
    dirs.sort();
    dirs.dedup();
    let trees = trees
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| (p, RecursiveMode::Recursive));
    dirs.into_iter()
        .map(|d| (d, RecursiveMode::NonRecursive))
        .chain(trees)
        .collect()
}

/// What a file event must touch to matter. The watched directories hold other files too (a
/// log file beside the certificate must not reload on every line written).
struct Targets {
    /// Policy and inventory paths: anything at or under them.
    trees: Vec<PathBuf>,
    /// TLS files: the files themselves.
    files: Vec<PathBuf>,
    /// Their directories, where a mount's `..data` symlink swap happens.
    dirs: Vec<PathBuf>,
}

impl Targets {
    fn of(config: &AdmissionConfig) -> Targets {
        let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let trees: Vec<PathBuf> = policy_trees(config).iter().map(absolute).collect();
        let files: Vec<PathBuf> = config.tls_files().paths().map(absolute).collect();
        let dirs = trees.iter().chain(&files).map(|p| parent(p)).collect();
        Targets { trees, files, dirs }
    }

    fn concerns(&self, path: &Path) -> bool {
        self.trees.iter().any(|t| path.starts_with(t))
            || self.files.iter().any(|f| f == path)
            || (self.dirs.iter().any(|d| path.parent() == Some(d.as_path()))
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("..")))
    }
}

fn parent(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    path.parent().map(Path::to_path_buf).unwrap_or(path)
}
