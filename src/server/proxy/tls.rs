//! The proxy listener's TLS configuration, kept current: its certificate files are checked
//! every few seconds and re-read when they change (a Kubernetes Secret swaps them under a
//! symlink), and a change that does not load leaves the last good configuration serving.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio_util::sync::CancellationToken;

use crate::tls::{server_config, TlsError, TlsFiles};

/// How often the files are looked at: a rotated certificate serves within this.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The current configuration of one TLS listener.
pub struct CurrentTls {
    files: TlsFiles,
    current: ArcSwapOption<rustls::ServerConfig>,
}

impl CurrentTls {
    /// Reads the files (blocking): a listener that cannot serve TLS does not start.
    pub fn load(files: TlsFiles) -> Result<Arc<CurrentTls>, TlsError> {
        let config = server_config(&files)?;
        Ok(Arc::new(CurrentTls {
            files,
            current: ArcSwapOption::from(Some(config)),
        }))
    }

    pub fn get(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.current.load_full()
    }

    /// Re-reads the files whenever their modification times change, until `stop`.
    pub async fn follow(self: Arc<Self>, stop: CancellationToken) {
        let mut seen = self.stamps().await;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = stop.cancelled() => return,
            }
            let now = self.stamps().await;
            if now == seen {
                continue;
            }
            seen = now;
            let files = self.files.clone();
            match tokio::task::spawn_blocking(move || server_config(&files)).await {
                Ok(Ok(config)) => {
                    self.current.store(Some(config));
                    tracing::info!(cert = %self.files.cert.display(), "proxy TLS certificate reloaded");
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "proxy TLS files changed but do not load; the previous certificate keeps serving");
                }
                Err(_) => {}
            }
        }
    }

    /// The files' modification times (following symlinks), read off the async threads.
    async fn stamps(&self) -> Vec<Option<SystemTime>> {
        let paths: Vec<_> = self.files.paths().cloned().collect();
        tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}
