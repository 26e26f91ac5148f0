//! Reloading the admission webhook's files in the reloader, on a blocking thread like a
//! bundle: the new set and certificate are published together, each keeping its last good
//! version when its files are bad.

use std::sync::Arc;

use super::Reloader;
use crate::runtime::watcher::Watcher;
use crate::runtime::AppState;

impl Reloader {
    pub(super) async fn reload_admission(
        &self,
        state: &Arc<AppState>,
        watcher: &mut Option<Watcher>,
    ) {
        let (Some(loader), Some(current)) = (self.admission.clone(), state.admission()) else {
            return;
        };
        let job = tokio::task::spawn_blocking(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loader.reload(&current)))
        })
        .await;
        let reloaded = job.ok().and_then(Result::ok);
        if reloaded.is_none() {
            tracing::error!(
                "admission reload failed unexpectedly; the last good policies keep serving"
            );
        }
        state.publish_admission(reloaded);
        if let Some(w) = watcher.as_mut() {
            w.rearm_admission();
        }
    }
}
