//! The gRPC listener's connections under the same limits as the HTTP listeners': at most
//! `max_connections` open at once (past that a connection is closed at once and counted), and
//! an accept that fails (out of file descriptors) logged once a minute, counted, and retried
//! after a short pause instead of ending the listener.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::runtime::AppState;

const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A connection that holds its place under the cap until it closes.
pub struct Limited {
    stream: TcpStream,
    _open: OwnedSemaphorePermit,
}

/// The accepted connections of `listener`, at most `max_connections` open at once.
pub fn limited(
    listener: TcpListener,
    max_connections: usize,
    state: Arc<AppState>,
) -> impl Stream<Item = io::Result<Limited>> {
    let permits = Arc::new(Semaphore::new(max_connections));
    let accepting = (listener, permits, state, None::<Instant>);
    futures_util::stream::unfold(
        accepting,
        |(listener, permits, state, mut warned)| async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let Ok(open) = permits.clone().try_acquire_owned() else {
                            if let Some(metrics) = &state.metrics {
                                metrics.connections().refused("grpc");
                            }
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let next = Limited {
                            stream,
                            _open: open,
                        };
                        return Some((Ok(next), (listener, permits, state, warned)));
                    }
                    Err(error) => {
                        if let Some(metrics) = &state.metrics {
                            metrics.connections().accept_failed("grpc");
                        }
                        if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                            tracing::error!(listener = "grpc", %error, "cannot accept connections; the open ones go on");
                            warned = Some(Instant::now());
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        },
    )
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
