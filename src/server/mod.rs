//! Binding listeners (TCP and Unix sockets) and serving on them until the one shutdown token
//! is cancelled, with a bounded grace period for requests in flight: the HTTP API (`http`),
//! gRPC (`grpc`) and the admission webhook over TLS (`admission`, `tls`).
//!
//! Every `serve` takes listeners that are already bound, so tests bind port 0 and read the
//! address without races.

pub mod admission;
pub mod conn;
pub mod grpc;
pub mod http;
pub mod proxy;

use std::path::PathBuf;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: String, error: std::io::Error },
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `host:port` or `unix:///path/to.sock`, as OPA's `--addr` and opa-envoy-plugin's
    /// `addr` take them.
    pub async fn bind(addr: &str) -> Result<Listener, ServerError> {
        let fail = |error| ServerError::Bind {
            addr: addr.to_string(),
            error,
        };
        if let Some(path) = addr.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            remove_stale_socket(&path).map_err(fail)?;
            let listener = UnixListener::bind(&path).map_err(fail)?;
            Ok(Listener::Unix(listener, path))
        } else {
            let addr_text = addr
                .strip_prefix("http://")
                .or_else(|| addr.strip_prefix("grpc://"))
                .unwrap_or(addr);
            // OPA accepts ":8181" for all interfaces.
            let addr_text = if addr_text.starts_with(':') {
                format!("0.0.0.0{addr_text}")
            } else {
                addr_text.to_string()
            };
            Ok(Listener::Tcp(
                TcpListener::bind(addr_text).await.map_err(fail)?,
            ))
        }
    }

    /// The next connection, with the peer's address for TCP.
    pub async fn accept(
        &self,
    ) -> std::io::Result<(Box<dyn conn::Io>, Option<std::net::SocketAddr>)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                // Decisions are small request/response exchanges: Nagle's algorithm would
                // only hold a response back waiting for the peer's ACK (Go, and so OPA, turns
                // it off too).
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                Ok((Box::new(stream), Some(peer)))
            }
            Listener::Unix(l, _) => Ok((Box::new(l.accept().await?.0), None)),
        }
    }

    /// The address as a client would use it (the real port after binding port 0).
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Listener::Unix(_, path) => format!("unix://{}", path.display()),
        }
    }
}

/// A socket file left by a process that died is removed; anything else at the path is kept
/// and makes the bind fail with a clear error.
fn remove_stale_socket(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_err() {
                std::fs::remove_file(path)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Waits for stopped listeners to finish their requests in flight, for at most `grace`; then
/// closes whatever connections remain.
pub(crate) async fn drain<E: std::fmt::Display + 'static>(
    mut tasks: tokio::task::JoinSet<Result<(), E>>,
    grace: Duration,
    transport: &'static str,
) {
    let drained = tokio::time::timeout(grace, async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, transport, "listener stopped with an error");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            transport,
            "grace period over; closing the remaining connections"
        );
        tasks.abort_all();
    }
}
