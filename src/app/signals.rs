//! The process's signals, owned here and nowhere else: SIGTERM or SIGINT cancel the one
//! shutdown token every listener drains on; SIGHUP asks the reloader to read every bundle and
//! the admission files again.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::runtime::Trigger;

/// A token cancelled by the first SIGTERM or SIGINT. Register it before binding anything, so
/// that a signal sent while the service starts is not missed.
pub fn shutdown_on_signal() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        cancel.cancel();
    });
    Ok(token)
}

/// SIGHUP reloads everything, as operators expect from a daemon.
pub fn reload_on_hangup(triggers: mpsc::UnboundedSender<Trigger>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading bundles and admission policies");
            if triggers.send(Trigger::All).is_err() {
                return;
            }
        }
    });
}
