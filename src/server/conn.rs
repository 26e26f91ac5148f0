//! Serving HTTP connections on one bound listener, for every HTTP listener verdict has (the
//! API, diagnostics, the admission webhook over TLS): one accept loop with the limits a
//! sidecar in the payment path needs, and one graceful drain.
//!
//! - Headers must arrive within `header_read_timeout`, and an idle keep-alive connection is
//!   closed after the same time (hyper starts the clock whenever it waits for a request head):
//!   a slowloris client or a pile of idle sockets cannot hold file descriptors for long.
//! - At most `max_connections` connections are open at once; past that a new connection gets
//!   OPA's error shape with 503 and is closed, rather than queueing unseen.
//! - An accept that fails (out of file descriptors) is logged and counted, and the loop backs
//!   off instead of spinning, while the open connections go on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Listener;
use crate::runtime::AppState;
pub use crate::tls::TlsPeer;

/// A client that connects and never finishes its TLS handshake must not hold a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the accept loop waits after a failed accept: long enough not to spin while no
/// descriptor is free, short enough that a freed one is used at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Limits of every connection of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// The TLS configuration for each new connection of a TLS listener (the current one, so that
/// rotated certificates serve new connections); `None` closes the connection.
pub type TlsSource = Arc<dyn Fn() -> Option<Arc<rustls::ServerConfig>> + Send + Sync>;

/// One listener to serve: where, what, and how.
pub struct Serve {
    pub listener: Listener,
    pub router: Router,
    pub tls: Option<TlsSource>,
    pub limits: ConnLimits,
    /// For the counts of refused connections and failed accepts.
    pub state: Arc<AppState>,
    /// What the listener is, in logs and metrics: `http`, `diagnostic`, `admission`.
    pub name: &'static str,
}

/// Serves until `shutdown`, then gives open connections `grace` to finish.
pub async fn serve(serve: Serve, shutdown: CancellationToken, grace: Duration) {
    let Serve {
        listener,
        router,
        tls,
        limits,
        state,
        name,
    } = serve;
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        let (io, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                if let Some(metrics) = &state.metrics {
                    metrics.connections().accept_failed(name);
                }
                // One line a minute at most: a descriptor shortage lasts, and each retry fails.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::error!(listener = name, %error, "cannot accept connections; the open ones go on");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Some(metrics) = &state.metrics {
                metrics.connections().refused(name);
            }
            tokio::spawn(refuse(io, tls.is_some()));
            continue;
        };
        let router = match peer {
            Some(peer) => router
                .clone()
                .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
            None => router.clone(),
        };
        let (watcher, builder, tls) = (graceful.watcher(), builder.clone(), tls.clone());
        tokio::spawn(async move {
            let _open = permit;
            let result = match tls {
                None => {
                    let service = TowerToHyperService::new(router);
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(tls) => {
                    let Some(stream) = handshake(io, &tls, peer).await else {
                        return;
                    };
                    let client = TlsPeer::of(stream.get_ref().1);
                    let service = TowerToHyperService::new(router.layer(axum::Extension(client)));
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(?peer, error = %e, "connection ended with an error");
            }
        });
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "grace period over; closing the remaining connections"
        );
    }
}

async fn handshake(
    io: Box<dyn Io>,
    tls: &TlsSource,
    peer: Option<SocketAddr>,
) -> Option<tokio_rustls::server::TlsStream<Box<dyn Io>>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls()?);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(?peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// Answers a connection over the limit with OPA's error shape and closes it. A TLS listener's
/// client would not read plain text: it is closed.
async fn refuse(mut io: Box<dyn Io>, tls: bool) {
    if tls {
        return;
    }
    const BODY: &str = "{\n  \"code\": \"internal_error\",\n  \"message\": \"too many open connections; try again\"\n}\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let _ = io.write_all(response.as_bytes()).await;
        let _ = io.shutdown().await;
    })
    .await;
}

/// A connection's byte stream, TCP or Unix.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
