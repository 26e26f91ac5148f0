//! The process's signals, owned here and nowhere else: SIGTERM or SIGINT cancel the one
//! shutdown token every listener drains on; SIGHUP asks the reloader to read every bundle and
//! the admission files again; SIGXFSZ is handled so that a file-size limit fails a write
//! instead of killing the process.

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

/// SIGXFSZ's number on Linux.
const SIGXFSZ: i32 = 25;

/// A file-size limit (`ulimit -f`) must not kill the sidecar: by default SIGXFSZ ends the
/// process at the first write past it. Handled, that write fails (`EFBIG`) and its writer
/// answers it as it answers a full disk: the decision log counts the lost or refused event,
/// persistence keeps the last good copy. Registered at once, before anything is written.
pub fn survive_file_size_limit() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut xfsz = signal(SignalKind::from_raw(SIGXFSZ))?;
    tokio::spawn(async move { while xfsz.recv().await.is_some() {} });
    Ok(())
}
