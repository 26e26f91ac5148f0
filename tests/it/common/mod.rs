//! Shared test support: a real verdict server on an ephemeral port, a raw HTTP/1.1 client for
//! requests ordinary clients refuse to send, and fixture paths; bundle files are `files`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use verdict::app::App;
use verdict::bundle::Source;
use verdict::config::Config;
use verdict::runtime::{AppState, Trigger};

pub mod admission;
pub mod bundle_server;
pub mod collector;
pub mod decision_log;
pub mod files;
pub mod grpc;
pub mod health;
pub mod pki;
pub mod remote;
pub mod running;
pub mod upstream;

// Shared by several test binaries, each of which uses some (as `dead_code` above).
#[allow(unused_imports)]
pub use files::{
    bundle_tar, configmap_publish, replace_file, simple_bundle, tar_gz, tar_gz_with_symlink,
    write_dir,
};

/// How long any test waits for an event before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// Held by the tests that keep both cores busy for seconds (long evaluations, load against a
/// real binary): with every test in one binary, two of them at once would starve each other
/// past their waits. The others run beside them as before.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

pub fn golden(rel: &str) -> PathBuf {
    repo().join("tests/golden").join(rel)
}

/// A config for tests: one ephemeral TCP port and a quick debounce (watching is on, as in
/// `verdict run`; tests that must not watch turn it off). Its persistence directory is a path
/// of its own that nothing creates until data is pushed, so no two servers share pushed data
/// (tests that push data give a temporary directory they clean up).
pub fn test_config() -> Config {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut config = Config::default();
    config.verdict.addr = vec!["127.0.0.1:0".into()];
    config.verdict.watch_debounce_ms = 50;
    config.verdict.shutdown_grace_period_seconds = 5;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    config.remote.persistence_directory =
        std::env::temp_dir().join(format!("verdict-test-{}-{n}", std::process::id()));
    config
}

/// The built-in example payment bundle, as `verdict run` serves it without `-b`.
pub fn payment_sources() -> Vec<Source> {
    verdict::app::sources(&Config::default()).unwrap()
}

/// A verdict server running in this process, serving on real sockets.
pub struct Server {
    pub addr: String,
    /// The gRPC listener's address, when `plugins.envoy_ext_authz_grpc` is configured.
    pub grpc_addr: Option<String>,
    /// The first `--diagnostic-addr` listener, when there is one.
    pub diagnostic_addr: Option<String>,
    /// The admission webhook's HTTPS address, when `verdict.admission` is configured.
    pub admission_addr: Option<std::net::SocketAddr>,
    /// The authorizing proxy listeners, in configuration order.
    pub proxy_addrs: Vec<String>,
    pub state: Arc<AppState>,
    pub triggers: mpsc::UnboundedSender<Trigger>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Server {
    pub async fn start(config: Config, sources: Vec<Source>) -> Server {
        Self::try_start(config, sources)
            .await
            .expect("server starts")
    }

    pub async fn try_start(config: Config, sources: Vec<Source>) -> anyhow::Result<Server> {
        let bound = App::new(config).with_sources(sources).bind().await?;
        let (addr, grpc_addr, admission_addr) = (
            bound.http_addrs()[0].clone(),
            bound.grpc_addr(),
            bound.admission_addr(),
        );
        let diagnostic_addr = bound.diagnostic_addrs().first().cloned();
        let proxy_addrs = bound.proxy_addrs();
        let (state, triggers) = (bound.state().clone(), bound.triggers());
        let stop = CancellationToken::new();
        let task = tokio::spawn(bound.run(stop.clone()));
        Ok(Server {
            addr,
            grpc_addr,
            diagnostic_addr,
            admission_addr,
            proxy_addrs,
            state,
            triggers,
            stop,
            task: Some(task),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends raw bytes as one HTTP/1.1 request and reads the whole response.
    pub async fn raw(&self, request: &[u8]) -> RawResponse {
        let stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        raw_exchange(stream, request).await
    }

    /// Sends raw bytes as one HTTP/1.1 request to the server's router in process, over an
    /// in-memory connection instead of a socket: HTTP's parsing and framing as on the wire,
    /// without the network.
    pub async fn in_process(&self, request: &[u8]) -> RawResponse {
        let (client, server) = tokio::io::duplex(1 << 20);
        let service = hyper_util::service::TowerToHyperService::new(verdict::server::http::router(
            self.state.clone(),
        ));
        let connection = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let served = tokio::spawn(connection);
        let response = raw_exchange(client, request).await;
        let _ = served.await;
        response
    }

    /// Waits until `count` more reloads have finished, whatever their outcome.
    pub async fn reloads_after(&self, seen: u64, count: u64) -> u64 {
        let mut rx = self.state.subscribe();
        let done = tokio::time::timeout(WAIT, rx.wait_for(|p| p.attempts >= seen + count))
            .await
            .expect("reload finished in time")
            .expect("reloader alive");
        done.attempts
    }

    /// Waits (on reload events, never by sleeping) until `done` holds for the live state.
    pub async fn wait_until(&self, what: &str, done: impl Fn(&AppState) -> bool) {
        let mut rx = self.state.subscribe();
        let state = self.state.clone();
        let reached = tokio::time::timeout(WAIT, rx.wait_for(|_| done(&state))).await;
        assert!(
            matches!(reached, Ok(Ok(_))),
            "timed out waiting for {what}; bundle status: {:?}",
            self.state.bundle_status()
        );
    }

    /// Waits until the serving revision is `revision`.
    pub async fn wait_for_revision(&self, revision: &str) {
        let want = revision.to_string();
        self.wait_until(&format!("revision {revision}"), move |s| {
            s.snapshot().bundles.iter().any(|b| b.revision == want)
        })
        .await;
    }

    /// Waits until the first bundle's status carries an error containing `text`.
    pub async fn wait_for_error(&self, text: &str) -> verdict::runtime::BundleStatus {
        let want = text.to_string();
        self.wait_until(&format!("error {text:?}"), move |s| {
            s.bundle_status().iter().any(|b| {
                b.message.contains(&want) || b.errors.iter().any(|e| e.message.contains(&want))
            })
        })
        .await;
        self.state.bundle_status()[0].clone()
    }

    pub fn attempts(&self) -> u64 {
        self.state.subscribe().borrow().attempts
    }

    pub fn revision(&self) -> String {
        self.state
            .snapshot()
            .bundles
            .iter()
            .map(|b| b.revision.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Stops serving and waits for the listeners to close.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// One request over any stream, `Connection: close`, response read to the end.
pub async fn raw_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> RawResponse {
    stream.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut buf))
        .await
        .expect("response in time")
        .unwrap();
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> RawResponse {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

/// Builds `METHOD path HTTP/1.1` with the given headers and body, closing the connection.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: verdict\r\nConnection: close\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Starts the verdict binary with `args` in `dir` and waits for its first log line containing
/// `text`, returned as JSON. The rest of its log is drained in the background (and shown if the
/// test fails), so that a full pipe never blocks the process.
pub async fn spawn_verdict(
    args: &[&str],
    dir: &Path,
    text: &str,
) -> (tokio::process::Child, serde_json::Value) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(line) = log.next_line().await.unwrap() {
            if line.contains(text) {
                return serde_json::from_str(&line).unwrap();
            }
        }
        panic!("verdict exited before logging {text:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no log line with {text:?} in time"));
    // Printed lines are captured by the test harness and shown when the test fails.
    tokio::spawn(async move {
        while let Ok(Some(line)) = log.next_line().await {
            eprintln!("verdict: {line}");
        }
    });
    (child, found)
}

/// An HTTP client for talking to the server under test. verdict's rustls has no crypto
/// provider compiled in by default (it picks ring at start), so tests install it the same way.
/// The raw HTTP/1.1 request of a recorded case's `request` (tests/golden/cases.jsonl).
pub fn recorded_request(req: &serde_json::Value) -> Vec<u8> {
    let headers: Vec<(&str, &str)> = req["headers"]
        .as_object()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    let body = req["body"].as_str().unwrap_or("").as_bytes();
    request(
        req["method"].as_str().unwrap(),
        req["path"].as_str().unwrap(),
        &headers,
        body,
    )
}

pub fn http() -> reqwest::Client {
    verdict::remote::client::install_crypto_provider();
    reqwest::Client::new()
}

pub async fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<reqwest::Response> {
    http().get(url).send().await
}
