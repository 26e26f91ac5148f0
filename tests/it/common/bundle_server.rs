//! A real local bundle server for fault tests: serves bundles with ETags and long polling as
//! OPA's bundle protocol describes, and can be told to fail in the ways networks do.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use super::WAIT;

/// How the server answers bundle requests.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Serve these bytes with this ETag; `long_poll` answers with OPA's bundle media type.
    Bundle {
        bytes: Bytes,
        etag: String,
        long_poll: bool,
    },
    /// Answer bundle requests with this status and no bundle (report uploads are still taken).
    Status(u16),
    /// Promise the whole bundle, send half, then drop the connection.
    Truncated(Bytes),
    /// Accept the request and never answer.
    Hang,
    /// A new bundle on every request, round robin, announced as long-poll capable: the client
    /// activates and persists without pause.
    Alternate(Vec<(Bytes, String)>),
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub status: u16,
    /// The body of a POST (a status report).
    pub body: Bytes,
}

/// Which status uploads a hold applies to, by their body.
type StatusTest = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

struct Control {
    mode: watch::Sender<Mode>,
    seen: Mutex<Vec<Seen>>,
    count: watch::Sender<usize>,
    /// The next status upload whose body passes the test is answered only when this is
    /// released.
    hold_status: Mutex<Option<(StatusTest, oneshot::Receiver<()>)>>,
}

pub struct BundleServer {
    pub addr: String,
    control: Arc<Control>,
}

impl BundleServer {
    /// Starts a server on an ephemeral port. With `tls`, it serves HTTPS with that config.
    pub async fn start(mode: Mode, tls: Option<Arc<rustls::ServerConfig>>) -> BundleServer {
        let control = Arc::new(Control {
            mode: watch::Sender::new(mode),
            seen: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            hold_status: Mutex::new(None),
        });
        let app = Router::new().fallback(handle).with_state(control.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        match tls {
            None => {
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
            }
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                tokio::spawn(async move {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            return;
                        };
                        let (acceptor, app) = (acceptor.clone(), app.clone());
                        tokio::spawn(async move {
                            // A client refused by the handshake is part of some tests.
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let service = hyper::service::service_fn(move |req| {
                                let app = app.clone();
                                async move {
                                    use tower::ServiceExt;
                                    Ok::<_, Infallible>(app.oneshot(req).await.into_response())
                                }
                            });
                            let _ = hyper_util::server::conn::auto::Builder::new(
                                hyper_util::rt::TokioExecutor::new(),
                            )
                            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                            .await;
                        });
                    }
                });
            }
        }
        BundleServer { addr, control }
    }

    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    pub fn set(&self, mode: Mode) {
        self.control.mode.send_replace(mode);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.control.seen.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        *self.control.count.borrow()
    }

    /// Holds the answer to the next status upload whose body passes `which` until the
    /// returned sender fires (or is dropped): a status service busy with a report.
    pub fn hold_next_status(
        &self,
        which: impl Fn(&[u8]) -> bool + Send + Sync + 'static,
    ) -> oneshot::Sender<()> {
        let (release, held) = oneshot::channel();
        *self.control.hold_status.lock().unwrap() = Some((Box::new(which), held));
        release
    }

    /// Waits until a request satisfying `want` has been answered, and returns it.
    pub async fn wait_for(&self, what: &str, want: impl Fn(&Seen) -> bool) -> Seen {
        self.wait_for_after(0, what, want).await
    }

    /// `wait_for`, among the requests after the first `skip`.
    pub async fn wait_for_after(
        &self,
        skip: usize,
        what: &str,
        want: impl Fn(&Seen) -> bool,
    ) -> Seen {
        let mut rx = self.control.count.subscribe();
        let found = tokio::time::timeout(WAIT, async {
            loop {
                if let Some(seen) = self.requests().into_iter().skip(skip).find(|s| want(s)) {
                    return seen;
                }
                rx.changed().await.unwrap();
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("bundle server saw no {what}"))
    }

    /// Waits until the server has answered at least `n` requests in all.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.control.count.subscribe();
        let reached = tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n)).await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "bundle server saw {} requests, waited for {n}",
            self.request_count()
        );
    }
}

/// A served bundle: `(bytes, etag)`.
pub fn bundle(bytes: impl Into<Bytes>, etag: &str) -> Mode {
    Mode::Bundle {
        bytes: bytes.into(),
        etag: format!("\"{etag}\""),
        long_poll: false,
    }
}

async fn handle(State(control): State<Arc<Control>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    if req.method() == axum::http::Method::POST {
        // A report upload: recorded and taken, whatever the bundle endpoint answers, as OPA's
        // recorded control plane took every status and decision-log upload while its bundle
        // endpoint failed (D-bundle-polling-protocol.log, phases 6, 8 and 9).
        let path_is_status = path == "/status";
        let body = axum::body::to_bytes(req.into_body(), 64 << 20)
            .await
            .unwrap_or_default();
        let status = 200;
        control.seen.lock().unwrap().push(Seen {
            method: "POST".into(),
            path,
            headers,
            status,
            body: body.clone(),
        });
        control.count.send_modify(|c| *c += 1);
        let held = match path_is_status {
            true => {
                let mut hold = control.hold_status.lock().unwrap();
                match hold.as_ref() {
                    Some((which, _)) if which(&body) => hold.take().map(|(_, held)| held),
                    _ => None,
                }
            }
            false => None,
        };
        if let Some(held) = held {
            let _ = tokio::time::timeout(WAIT, held).await;
        }
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    let if_none_match = header(&headers, "if-none-match");
    let wait = header(&headers, "prefer")
        .and_then(|p| {
            p.split(';')
                .find_map(|part| part.trim().strip_prefix("wait=").map(str::to_string))
        })
        .and_then(|w| w.parse::<u64>().ok());
    let mut rx = control.mode.subscribe();
    let mut mode = rx.borrow_and_update().clone();
    // A long poll is held while nothing changed, as a bundle server that supports it does.
    if let (Some(wait), Mode::Bundle { etag, .. }) = (wait, &mode) {
        if if_none_match.as_deref() == Some(etag.as_str()) {
            let changed = tokio::time::timeout(Duration::from_secs(wait), rx.changed()).await;
            if matches!(changed, Ok(Ok(()))) {
                mode = rx.borrow_and_update().clone();
            }
        }
    }
    let turn = *control.count.borrow();
    let response = answer(&mode, if_none_match.as_deref(), turn).await;
    let status = response.status().as_u16();
    control.seen.lock().unwrap().push(Seen {
        method: "GET".into(),
        path,
        headers,
        status,
        body: Bytes::new(),
    });
    control.count.send_modify(|c| *c += 1);
    response
}

async fn answer(mode: &Mode, if_none_match: Option<&str>, turn: usize) -> Response {
    match mode {
        Mode::Alternate(bundles) => {
            let (bytes, etag) = &bundles[turn % bundles.len()];
            let mode = Mode::Bundle {
                bytes: bytes.clone(),
                etag: format!("\"{etag}\""),
                long_poll: true,
            };
            Box::pin(answer(&mode, None, turn)).await
        }
        Mode::Bundle {
            bytes,
            etag,
            long_poll,
        } => {
            let content_type = if *long_poll {
                "application/vnd.openpolicyagent.bundles"
            } else {
                "application/gzip"
            };
            if if_none_match == Some(etag.as_str()) {
                return (StatusCode::NOT_MODIFIED, [("etag", etag.clone())]).into_response();
            }
            (
                StatusCode::OK,
                [
                    ("etag", etag.clone()),
                    ("content-type", content_type.into()),
                ],
                bytes.clone(),
            )
                .into_response()
        }
        Mode::Status(code) => StatusCode::from_u16(*code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Mode::Truncated(bytes) => {
            let half = bytes.slice(..bytes.len() / 2);
            // The headers and half the body go out before the connection drops, as when a
            // link fails mid-download.
            let chunks = futures_util::stream::unfold(Some(half), |half| async move {
                match half {
                    Some(h) => Some((Ok(h), None)),
                    None => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((
                            Err(std::io::Error::other("connection dropped by the test")),
                            None,
                        ))
                    }
                }
            });
            let mut r = Response::new(Body::from_stream(chunks));
            r.headers_mut()
                .insert("content-length", bytes.len().to_string().parse().unwrap());
            r
        }
        Mode::Hang => {
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
