//! The webhook's live state and its one writer: `AdmissionState` holds the current
//! `AdmissionSet` and TLS configuration behind `ArcSwap`s; the reloader rebuilds both off the
//! async threads when the watcher reports a change, and publishes a `Generation` so that
//! tests and probes wait on events instead of sleeping.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};

use super::config::AdmissionConfig;
use super::inventory::Inventory;
use super::resources::read_paths;
use super::set::AdmissionSet;
use super::{https, AdmissionError, LoadError};

/// Counts of finished reloads, for waiting on them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Generation {
    /// Reloads finished, whatever their outcome.
    pub attempts: u64,
    /// TLS configurations activated after the first.
    pub tls: u64,
    /// TLS reloads refused (unreadable or mismatched files); the previous one keeps serving.
    pub tls_failures: u64,
}

pub struct AdmissionState {
    pub config: AdmissionConfig,
    current: ArcSwap<AdmissionSet>,
    tls: ArcSwap<rustls::ServerConfig>,
    events: watch::Sender<Generation>,
}

impl AdmissionState {
    /// Loads the set and the TLS files for the first time. Blocking. A TLS error is fatal
    /// here (there is nothing to serve with); policy errors are not (they are reported).
    pub fn load(config: AdmissionConfig) -> Result<AdmissionState, AdmissionError> {
        let tls = https::load_tls(&config)?;
        let set = load_set(&config, None).unwrap_or_default();
        Ok(AdmissionState {
            config,
            current: ArcSwap::from_pointee(set),
            tls: ArcSwap::new(tls),
            events: watch::channel(Generation::default()).0,
        })
    }

    /// The set to use for one whole review.
    pub fn set(&self) -> Arc<AdmissionSet> {
        self.current.load_full()
    }

    pub fn tls(&self) -> Arc<rustls::ServerConfig> {
        self.tls.load_full()
    }

    pub fn subscribe(&self) -> watch::Receiver<Generation> {
        self.events.subscribe()
    }

    /// Rebuilds the set and the TLS configuration. Blocking: the reloader calls it on a
    /// blocking thread.
    pub fn reload(&self) {
        if let Some(set) = load_set(&self.config, Some(&self.set())) {
            self.current.store(Arc::new(set));
        }
        let tls = https::load_tls(&self.config);
        self.events.send_modify(|g| {
            g.attempts += 1;
            match tls {
                Ok(tls) => {
                    self.tls.store(tls);
                    g.tls += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "admission TLS files not reloaded; the previous certificate keeps serving");
                    g.tls_failures += 1;
                }
            }
        });
    }
}

/// Reads and compiles everything; `None` (keep what serves) when a configured path is gone
/// altogether, which is a mount being replaced or a mistake, never "no policies".
fn load_set(config: &AdmissionConfig, previous: Option<&AdmissionSet>) -> Option<AdmissionSet> {
    if let Some(missing) = config.policies.iter().find(|p| !p.exists()) {
        tracing::error!(path = %missing.display(), "admission policy path missing; keeping the last good policies");
        return None;
    }
    let docs = read_paths(&config.policies);
    let mut errors: Vec<LoadError> = Vec::new();
    let inventory = Inventory::load(config.inventory.as_deref(), &mut errors);
    let mut set = AdmissionSet::build(docs, inventory, previous);
    set.errors.extend(errors);
    tracing::info!(
        templates = set.templates.len(),
        constraints = set.constraints.len(),
        errors = set.errors.len(),
        "admission policies loaded"
    );
    Some(set)
}

/// Watches the policy paths, the inventory and the TLS files' directories, and reloads on
/// change: one task, so reloads never overlap. Runs until the state is dropped elsewhere and
/// the watcher stops.
pub fn spawn_reloader(state: Arc<AdmissionState>, debounce: Duration) -> notify::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let targets = Targets::of(&state.config);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access() && e.paths.iter().any(|p| targets.concerns(p))) {
            let _ = tx.send(());
        }
    })?;
    arm(&mut watcher, &state.config);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Editors and `kubectl cp` write in several steps: wait for a quiet moment.
            while let Ok(Some(())) = tokio::time::timeout(debounce, rx.recv()).await {}
            let reloading = state.clone();
            if tokio::task::spawn_blocking(move || reloading.reload())
                .await
                .is_err()
            {
                tracing::error!("admission reload failed unexpectedly");
            }
            // A directory created or replaced by a rename since is a new inode to watch.
            arm(&mut watcher, &state.config);
        }
    });
    Ok(())
}

fn arm(watcher: &mut notify::RecommendedWatcher, config: &AdmissionConfig) {
    for (path, mode) in watched(config) {
        let _ = watcher.unwatch(&path);
        if let Err(e) = watcher.watch(&path, mode) {
            tracing::debug!(path = %path.display(), error = %e, "cannot watch admission path");
        }
    }
}

/// The policy and inventory paths (recursively), and the directories holding them and the TLS
/// files (a Secret or ConfigMap mount is updated by swapping a symlink in that directory).
fn watched(config: &AdmissionConfig) -> Vec<(PathBuf, RecursiveMode)> {
    let mut trees: Vec<PathBuf> = config.policies.clone();
    trees.extend(config.inventory.clone());
    let files = [&config.tls_cert_file, &config.tls_private_key_file]
        .into_iter()
        .chain(config.tls_client_ca_file.as_ref())
        .chain(&trees);
    let mut dirs: Vec<PathBuf> = files.map(|f| parent(f)).collect();
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
        let mut trees: Vec<PathBuf> = config.policies.iter().map(absolute).collect();
        trees.extend(config.inventory.iter().map(absolute));
        let files: Vec<PathBuf> = [&config.tls_cert_file, &config.tls_private_key_file]
            .into_iter()
            .chain(config.tls_client_ca_file.as_ref())
            .map(absolute)
            .collect();
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
