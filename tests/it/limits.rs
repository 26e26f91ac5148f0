//! The limits every listener keeps, each against a real socket: a client that stalls in its
//! headers or sits idle gives its connection back, connections past the cap are refused in
//! OPA's error shape, request bytes past the budget get a 503, and a bundle whose compilation
//! does not finish in time is refused while the last good one keeps serving. Each waits on the
//! event (the server closing, the answer), never on a timer.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use verdict::bundle::Source;

use crate::common::{self, request, test_config, write_dir, Server, WAIT};

/// Reads until the server closes the connection; the bytes it sent before closing.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(WAIT, stream.read_to_end(&mut seen)).await;
    assert!(closed.is_ok(), "the server closed the connection in time");
    seen
}

/// Sends `request` until it is answered `status`: for a limit that takes hold, or lets go,
/// once the server has seen what the test did on another connection.
async fn until_answered(server: &Server, request: &[u8], status: u16) -> common::RawResponse {
    let answered = tokio::time::timeout(WAIT, async {
        loop {
            let r = server.raw(request).await;
            if r.status == status {
                return r;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    answered.unwrap_or_else(|_| panic!("no {status} in time"))
}

#[tokio::test]
async fn a_client_stalling_in_its_headers_or_idle_loses_its_connection() {
    let mut config = test_config();
    config.verdict.header_read_timeout_ms = 300;
    let server = Server::start(config, common::payment_sources()).await;

    // Slowloris: half a request line, then nothing.
    let mut slow = TcpStream::connect(&server.addr).await.unwrap();
    slow.write_all(b"POST /v1/data/payment/allow HTTP/1.1\r\nHost: v")
        .await
        .unwrap();
    until_closed(&mut slow).await;

    // Keep-alive: one answered request, then silence.
    let mut idle = TcpStream::connect(&server.addr).await.unwrap();
    let mut one = request("GET", "/health", &[], b"");
    // The helper asks for `Connection: close`; this client keeps its connection instead.
    one = String::from_utf8(one)
        .unwrap()
        .replace("Connection: close", "Connection: keep-alive")
        .into_bytes();
    idle.write_all(&one).await.unwrap();
    let answered = until_closed(&mut idle).await;
    assert!(
        String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"),
        "answered before the idle close: {}",
        String::from_utf8_lossy(&answered)
    );
    crate::api::still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_are_refused_in_opas_shape() {
    let mut config = test_config();
    config.verdict.max_connections = 2;
    let server = Server::start(config, common::payment_sources()).await;
    // Two connections that say nothing hold both places.
    let first = TcpStream::connect(&server.addr).await.unwrap();
    let second = TcpStream::connect(&server.addr).await.unwrap();
    // The third cannot know when the server has accepted the first two: it asks until it is
    // refused, which it must be once both are held.
    let health = request("GET", "/health", &[], b"");
    let refused = until_answered(&server, &health, 503).await;
    assert_eq!(refused.header("content-type"), Some("application/json"));
    assert_eq!(refused.json()["code"], json!("internal_error"));
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("too many open connections"),
        "{}",
        refused.text()
    );
    // Their places free, the listener serves again.
    drop((first, second));
    until_answered(&server, &health, 200).await;
    server.stop().await;
}

#[tokio::test]
async fn request_bytes_past_the_budget_get_a_503() {
    let mut config = test_config();
    config.verdict.max_request_bytes_in_flight = 64 << 10;
    let server = Server::start(config, common::payment_sources()).await;
    // One client declares 60 KiB and sends none of it: its share is held while it stalls.
    let mut holder = TcpStream::connect(&server.addr).await.unwrap();
    holder
        .write_all(
            b"POST /v1/data/payment/allow HTTP/1.1\r\nHost: v\r\nContent-Length: 61440\r\n\r\n{",
        )
        .await
        .unwrap();
    let body = format!(r#"{{"input": {{"pad": "{}"}}}}"#, "x".repeat(8 << 10));
    let payment = request("POST", "/v1/data/payment/allow", &[], body.as_bytes());
    let refused = until_answered(&server, &payment, 503).await;
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.json()["code"], json!("internal_error"));
    // A request without a body takes nothing from the budget.
    crate::api::still_serving(&server).await;
    drop(holder);
    // The budget comes back when the holder leaves.
    until_answered(&server, &payment, 200).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_that_compiles_too_long_is_refused_and_the_last_good_one_serves() {
    let _heavy = common::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let policy = |body: &str| vec![("app/policy.rego".to_string(), body.as_bytes().to_vec())];
    write_dir(dir.path(), &policy("package app\n\nok := true\n"));
    let mut config = test_config();
    config.verdict.compile_timeout_ms = 100;
    // Validation runs each rule once, each under this limit: a rule that loops to it holds
    // the compilation past its own bound.
    config.verdict.eval_timeout_ms = 3_000;
    let server = Server::start(config, vec![Source::path(dir.path())]).await;
    write_dir(
        dir.path(),
        &policy("package app\n\nok := count([1 | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000)]) > 0\n"),
    );
    let status = server
        .wait_for_error("compilation did not finish within 100 ms")
        .await;
    assert!(
        status.message.contains("compilation did not finish"),
        "{status:?}"
    );
    let r = server
        .raw(&request("POST", "/v1/data/app/ok", &[], b"{}"))
        .await;
    assert_eq!(
        r.json()["result"],
        json!(true),
        "the last good bundle serves"
    );
    write_dir(dir.path(), &policy("package app\n\nok := \"fixed\"\n"));
    server
        .wait_until("the next good revision", |s| {
            s.bundle_status()[0].message.is_empty()
        })
        .await;
    let r = server
        .raw(&request("POST", "/v1/data/app/ok", &[], b"{}"))
        .await;
    assert_eq!(r.json()["result"], json!("fixed"));
    server.stop().await;
}
