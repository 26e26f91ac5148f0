//! The upstream a proxy listener forwards to (`http://host:port` or a Unix socket): one pooled
//! keep-alive client per listener, speaking HTTP/1.1 or h2c, with a connect timeout and a
//! response-head timeout; what goes wrong becomes a status a client can act on (503 cannot
//! connect, 504 no answer in time, 502 anything else).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpStream, UnixStream};

use crate::config::{ConfigError, ProxyConfig};

/// Why a forwarded request got no response from the upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream connect error: {0}")]
    Connect(String),
    #[error("upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("upstream error: {0}")]
    Other(String),
}

impl UpstreamError {
    /// Envoy's statuses for the same failures.
    pub fn status(&self) -> StatusCode {
        match self {
            UpstreamError::Connect(_) => StatusCode::SERVICE_UNAVAILABLE,
            UpstreamError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            UpstreamError::Other(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `code` of the error body and the metric's `reason`.
    pub fn code(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "upstream_connect_error",
            UpstreamError::Timeout(_) => "upstream_timeout",
            UpstreamError::Other(_) => "upstream_error",
        }
    }
}

/// Where and how to forward.
#[derive(Clone)]
pub struct Upstream {
    client: Client<Connector, Body>,
    /// `scheme://authority` every request URI starts with.
    base: Arc<str>,
    http2: bool,
    header_timeout: Duration,
}

impl Upstream {
    pub fn new(config: &ProxyConfig) -> Result<Upstream, ConfigError> {
        let invalid = |why: &str| {
            ConfigError::Invalid(format!(
                "verdict.proxy {:?}: upstream {:?} {why}",
                config.addr, config.upstream
            ))
        };
        let (connector, base) = if let Some(path) = config.upstream.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid("names no socket"));
            }
            let unix = Connector::Unix(Arc::new(PathBuf::from(path)), config.connect_timeout());
            (unix, "http://localhost".to_string())
        } else {
            let uri: Uri = config
                .upstream
                .parse()
                .map_err(|_| invalid("is not a URL"))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(invalid("must be http://host:port or unix:///path.sock"));
            }
            if uri.path() != "/" && !uri.path().is_empty() {
                return Err(invalid("must not have a path"));
            }
            let mut tcp = HttpConnector::new();
            tcp.set_connect_timeout(Some(config.connect_timeout()));
            tcp.set_nodelay(true);
            let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
            (Connector::Tcp(tcp), format!("http://{authority}"))
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.idle_timeout())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .http2_only(config.upstream_http2)
            .build(connector);
        Ok(Upstream {
            client,
            base: base.into(),
            http2: config.upstream_http2,
            header_timeout: config.response_header_timeout(),
        })
    }

    /// The URI of `path_and_query` at the upstream.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, UpstreamError> {
        format!("{}{path_and_query}", self.base)
            .parse()
            .map_err(|e: axum::http::uri::InvalidUri| UpstreamError::Other(e.to_string()))
    }

    /// The HTTP version requests to the upstream are sent with.
    pub fn version(&self) -> axum::http::Version {
        match self.http2 {
            true => axum::http::Version::HTTP_2,
            false => axum::http::Version::HTTP_11,
        }
    }

    /// Sends `request` and waits for the response head.
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, UpstreamError> {
        let sent = tokio::time::timeout(self.header_timeout, self.client.request(request)).await;
        match sent {
            Err(_) => Err(UpstreamError::Timeout(self.header_timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect(source_text(&e))),
            Ok(Err(e)) => Err(UpstreamError::Other(source_text(&e))),
        }
    }
}

/// The innermost cause: hyper-util's own text ("client error (Connect)") says little.
fn source_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    text
}

/// Opens connections to the upstream: TCP through hyper-util's connector, or a Unix socket.
#[derive(Clone)]
enum Connector {
    Tcp(HttpConnector),
    Unix(Arc<PathBuf>, Duration),
}

type Connecting = Pin<Box<dyn Future<Output = Result<Stream, std::io::Error>> + Send>>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self {
            Connector::Tcp(tcp) => tcp.poll_ready(cx).map_err(std::io::Error::other),
            Connector::Unix(..) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match self {
            Connector::Tcp(tcp) => {
                let connecting = tcp.call(uri);
                Box::pin(async move {
                    connecting
                        .await
                        .map(Stream::Tcp)
                        .map_err(std::io::Error::other)
                })
            }
            Connector::Unix(path, timeout) => {
                let (path, timeout) = (path.clone(), *timeout);
                Box::pin(async move {
                    let connected = tokio::time::timeout(timeout, UnixStream::connect(&*path))
                        .await
                        .map_err(|_| {
                            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout")
                        })??;
                    Ok(Stream::Unix(TokioIo::new(connected)))
                })
            }
        }
    }
}

/// A connection to the upstream.
enum Stream {
    Tcp(TokioIo<TcpStream>),
    Unix(TokioIo<UnixStream>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Tcp(s) => s.connected(),
            Stream::Unix(_) => Connected::new(),
        }
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
