//! Upstreams for the authorizing proxy's tests, on real sockets: an HTTP server that records
//! what reaches it and echoes it back (HTTP/1.1 and h2c, TCP or a Unix socket), with routes that
//! stream, wait to be released, or switch protocols; and raw TCP peers that refuse, hang or
//! reset.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Notify};

use super::WAIT;

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub version: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    count: Option<watch::Sender<usize>>,
    release: Notify,
}

pub struct Upstream {
    /// `http://127.0.0.1:port` or `unix:///path`.
    pub url: String,
    shared: Arc<Shared>,
    count: watch::Receiver<usize>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shared, count) = shared();
        let app = app(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream { url, shared, count }
    }

    pub async fn start_unix(path: &Path) -> Upstream {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let (shared, count) = shared();
        let app = app(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Upstream {
            url: format!("unix://{}", path.display()),
            shared,
            count,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Seen> {
        let mut count = self.count.clone();
        tokio::time::timeout(WAIT, count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("upstream: {n} requests did not arrive in time"))
            .unwrap();
        self.seen()
    }

    /// Lets every request waiting on `/hold` answer.
    pub fn release(&self) {
        self.shared.release.notify_waiters();
    }
}

fn shared() -> (Arc<Shared>, watch::Receiver<usize>) {
    let (tx, rx) = watch::channel(0);
    let shared = Arc::new(Shared {
        count: Some(tx),
        ..Shared::default()
    });
    (shared, rx)
}

fn app(shared: Arc<Shared>) -> Router {
    Router::new().fallback(record).with_state(shared)
}

async fn record(State(shared): State<Arc<Shared>>, mut request: Request) -> Response {
    let upgrade = request
        .headers()
        .contains_key("upgrade")
        .then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let seen = Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        version: format!("{:?}", parts.version),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    // Registered before waiting, so that a release sent once the request is seen reaches it.
    let released = shared.release.notified();
    {
        let mut all = shared.seen.lock().unwrap();
        all.push(seen);
        if let Some(count) = &shared.count {
            count.send_replace(all.len());
        }
    }
    if path.starts_with("/hold") {
        released.await;
    }
    if let Some(upgrade) = upgrade {
        tokio::spawn(async move {
            if let Ok(upgraded) = upgrade.await {
                let mut io = hyper_util::rt::TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(Body::empty())
            .unwrap();
    }
    if path.starts_with("/stream") {
        let chunks =
            (0..64).map(|i| Ok::<_, std::io::Error>(Bytes::from(format!("chunk {i:02}\n"))));
        return Response::builder()
            .header("content-type", "text/plain")
            .header("connection", "x-upstream-private")
            .header("x-upstream-private", "hop")
            .body(Body::from_stream(futures_util::stream::iter(chunks)))
            .unwrap();
    }
    let echo = json!({
        "method": parts.method.to_string(),
        "path": path,
        "body_bytes": body.len(),
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", "yes")
        .body(Body::from(echo.to_string()))
        .unwrap()
}

/// A TCP peer that accepts connections and then `behaviour`s: `hang` reads and never
/// answers; `reset` reads and closes at once.
pub async fn raw_peer(hang: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            if hang {
                held.push(stream);
            } else {
                drop(stream);
            }
        }
    });
    url
}

/// An address on which nothing listens.
pub fn refusing() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}
