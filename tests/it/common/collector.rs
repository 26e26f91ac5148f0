//! A real local decision log collector: takes OPA's uploads (POST of a gzip'd JSON array),
//! keeps every event by `decision_id`, and can be told to fail as collectors do.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use serde_json::Value as Json;
use tokio::sync::watch;

use super::WAIT;

/// How the collector answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Status(u16),
    /// Take the request and never answer.
    Hang,
}

/// One upload as received.
#[derive(Clone, Debug)]
pub struct Upload {
    pub method: Method,
    /// The request's path: the `resource` it was sent to.
    pub path: String,
    pub headers: HeaderMap,
    pub status: u16,
    pub events: usize,
}

#[derive(Default)]
struct Seen {
    uploads: Vec<Upload>,
    /// Accepted events by decision id; a resent event lands on itself (at-least-once).
    events: BTreeMap<String, Json>,
}

struct Control {
    answer: watch::Sender<Answer>,
    seen: Mutex<Seen>,
    changed: watch::Sender<u64>,
}

pub struct Collector {
    pub addr: SocketAddr,
    control: Arc<Control>,
}

/// An address on which nothing listens yet: a collector that is down until `start_on` it.
pub fn reserve_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

impl Collector {
    pub async fn start(answer: Answer) -> Collector {
        Self::start_on("127.0.0.1:0".parse().unwrap(), answer).await
    }

    pub async fn start_on(addr: SocketAddr, answer: Answer) -> Collector {
        let control = Arc::new(Control {
            answer: watch::Sender::new(answer),
            seen: Mutex::new(Seen::default()),
            changed: watch::Sender::new(0),
        });
        let app = Router::new().fallback(take).with_state(control.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector { addr, control }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, answer: Answer) {
        self.control.answer.send_replace(answer);
    }

    pub fn uploads(&self) -> Vec<Upload> {
        self.control.seen.lock().unwrap().uploads.clone()
    }

    /// Accepted events by decision id.
    pub fn events(&self) -> BTreeMap<String, Json> {
        self.control.seen.lock().unwrap().events.clone()
    }

    /// Waits until `want` holds of what was seen.
    pub async fn wait_until(
        &self,
        what: &str,
        want: impl Fn(&[Upload], &BTreeMap<String, Json>) -> bool,
    ) {
        let mut rx = self.control.changed.subscribe();
        let done = tokio::time::timeout(WAIT, async {
            loop {
                {
                    let seen = self.control.seen.lock().unwrap();
                    if want(&seen.uploads, &seen.events) {
                        return;
                    }
                }
                rx.changed().await.unwrap();
            }
        })
        .await;
        let have = self.events().len();
        assert!(
            done.is_ok(),
            "collector: no {what} in time ({have} events so far)"
        );
    }

    /// Waits until every one of `ids` has arrived.
    pub async fn wait_for_ids(&self, ids: &[String]) {
        self.wait_until("complete set of decisions", |_, events| {
            ids.iter().all(|id| events.contains_key(id))
        })
        .await;
    }
}

async fn take(
    State(control): State<Arc<Control>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let answer = *control.answer.borrow();
    let request = (method, uri.path().to_string(), headers);
    let status = match answer {
        Answer::Ok => 200,
        Answer::Status(code) => code,
        Answer::Hang => {
            record(&control, request.clone(), 0, 0);
            std::future::pending::<()>().await;
            0
        }
    };
    let mut text = String::new();
    let events: Vec<Json> = match flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text)
    {
        Ok(_) => serde_json::from_str(&text).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let n = events.len();
    if status == 200 {
        let mut seen = control.seen.lock().unwrap();
        for e in events {
            if let Some(id) = e["decision_id"].as_str() {
                seen.events.insert(id.to_string(), e.clone());
            }
        }
    }
    record(&control, request, status, n);
    StatusCode::from_u16(status).unwrap()
}

fn record(control: &Control, request: (Method, String, HeaderMap), status: u16, events: usize) {
    let (method, path, headers) = request;
    control.seen.lock().unwrap().uploads.push(Upload {
        method,
        path,
        headers,
        status,
        events,
    });
    control.changed.send_modify(|n| *n += 1);
}
