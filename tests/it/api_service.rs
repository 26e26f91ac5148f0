//! The Data API as a service: odd paths are answered, a runaway or panicking policy costs one
//! decision, health answers with and without health policies, a Unix socket serves, and a
//! client that stalls mid-body gets a 408 (the decisions themselves are in `api`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::api::{payment_server, post, still_serving, ALLOWED};
use crate::common;

use common::{request, test_config, write_dir, Server};
use serde_json::{json, Value as Json};
use verdict::app::sources;
use verdict::bundle::Source;

fn runaway_bundle(dir: &std::path::Path) {
    write_dir(
        dir,
        &[
            (".manifest".into(), br#"{"revision": "runaway-1", "roots": ["app"]}"#.to_vec()),
            (
                "app/policy.rego".into(),
                b"package app\n\nquick := true\n\nhuge := count([1 | some i in numbers.range(1, input.n); some j in numbers.range(1, input.n)])\n\npanicky := regex.template_match(\"abc{[a-z]+}\", input.v, \"{\", \"}\")\n".to_vec(),
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_policy_is_stopped_by_the_evaluation_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    runaway_bundle(dir.path());
    let mut config = test_config();
    config.verdict.eval_timeout_ms = 200;
    let server = Server::start(config, vec![Source::path(dir.path())]).await;
    let started = std::time::Instant::now();
    // 100 million iterations of a comprehension: tens of seconds unbounded.
    let (status, err) = post(&server, "/v1/data/app/huge", r#"{"input": {"n": 10000}}"#).await;
    let took = started.elapsed();
    assert_eq!(status, 500, "{err}");
    assert_eq!(err["code"], json!("internal_error"));
    assert_eq!(err["errors"][0]["code"], json!("eval_cancel_error"));
    assert_eq!(
        err["errors"][0]["message"],
        json!("evaluation exceeded the time limit of 200 ms")
    );
    // The limit stops it; the bound here is loose only to absorb a loaded CI machine.
    assert!(took.as_secs() < 10, "stopped in {took:?}");
    let (status, ok) = post(&server, "/v1/data/app/quick", "{}").await;
    assert_eq!((status, ok["result"].clone()), (200, json!(true)));
    // A small input finishes well within the limit.
    let (status, small) = post(&server, "/v1/data/app/huge", r#"{"input": {"n": 10}}"#).await;
    assert_eq!((status, small), (200, json!({"result": 100})));
    server.stop().await;
}

#[tokio::test]
async fn an_engine_panic_costs_one_decision_not_the_server() {
    let dir = tempfile::tempdir().unwrap();
    runaway_bundle(dir.path());
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    // regorus 0.14's regex.template_match slices the value by the template's offsets and panics
    // on a value shorter than the template's literal prefix (OPA: false): contained, one 500,
    // not a crash.
    let (status, body) = post(&server, "/v1/data/app/panicky", r#"{"input": {"v": "a"}}"#).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["code"], json!("internal_error"), "{body}");
    let (status, body) = post(
        &server,
        "/v1/data/app/panicky",
        r#"{"input": {"v": "abcxyz"}}"#,
    )
    .await;
    assert_eq!((status, body), (200, json!({"result": true})));
    server.stop().await;
}

#[tokio::test]
async fn health_policies_and_status() {
    let server = payment_server().await;
    for path in [
        "/health",
        "/health?bundles",
        "/health?plugins",
        "/health/live",
        "/health/ready",
    ] {
        let r = server.raw(&request("GET", path, &[], b"")).await;
        assert_eq!((r.status, r.text()), (200, "{}\n".to_string()), "{path}");
    }
    let r = server
        .raw(&request("GET", "/health/startup", &[], b""))
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.json(),
        json!({"error": "health check (data.system.health.startup) was undefined"})
    );

    let list: Json = common::get(server.url("/v1/policies"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "bundles/payment/envoy/authz/authz.rego",
            "bundles/payment/payment/policy.rego",
            "bundles/payment/system/health.rego",
            "bundles/payment/system/main.rego"
        ]
    );
    let one: Json = common::get(server.url("/v1/policies/bundles/payment/system/health.rego"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(one["result"]["raw"]
        .as_str()
        .unwrap()
        .contains("package system.health"));
    let missing = common::get(server.url("/v1/policies/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);

    let status: Json = common::get(server.url("/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bundle = &status["result"]["bundles"]["bundles/payment"];
    assert_eq!(bundle["active_revision"], json!("payment-2026.11.24-1"));
    assert!(bundle["last_successful_activation"].is_string());
    assert!(bundle.get("code").is_none(), "no error: {bundle}");
    server.stop().await;
}

#[tokio::test]
async fn health_live_and_ready_work_without_a_health_policy() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &common::simple_bundle("r1", "true"));
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    for path in ["/health/live", "/health/ready"] {
        let r = server.raw(&request("GET", path, &[], b"")).await;
        assert_eq!((r.status, r.text()), (200, "{}\n".to_string()), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn serves_on_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("verdict.sock");
    let mut config = test_config();
    config.verdict.addr = vec![format!("unix://{}", socket.display())];
    let bundles = sources(&config).unwrap();
    let server = Server::start(config, bundles).await;
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let r = common::raw_exchange(
        stream,
        &request("POST", "/v1/data/payment/decision", &[], ALLOWED.as_bytes()),
    )
    .await;
    assert_eq!(r.json(), json!({"result": {"allow": true, "reasons": []}}));
    server.stop().await;
    assert!(!socket.exists(), "the socket file is removed on shutdown");
}

/// A client that sends its headers and part of its body, then nothing: it gets a 408 in OPA's
/// error format once the body timeout passes, and everyone else is served meanwhile.
#[tokio::test]
async fn a_client_that_stalls_mid_body_gets_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = test_config();
    config.verdict.request_body_timeout_ms = 300;
    let bundles = sources(&config).unwrap();
    let server = Server::start(config, bundles).await;
    let mut stalled = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    stalled
        .write_all(b"POST /v1/data/payment/decision HTTP/1.1\r\nHost: v\r\nContent-Length: 100\r\n\r\n{\"input\": {")
        .await
        .unwrap();
    // Served while the stalled request waits.
    still_serving(&server).await;
    let mut answer = Vec::new();
    tokio::time::timeout(common::WAIT, stalled.read_to_end(&mut answer))
        .await
        .expect("the stalled request is answered, not held forever")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(
        serde_json::from_str::<Json>(body).unwrap(),
        json!({"code": "invalid_parameter", "message": "request body not received within 300 ms"})
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn odd_paths_are_answered_not_crashed_on() {
    let server = payment_server().await;
    let cases: &[(&str, u16)] = &[
        ("/v1/data/payment/a%22b", 500), // OPA's answer for a quote in a segment
        ("/v1/data/payment/%zz", 400),   // Go's server refuses a path that does not unescape
        ("/v1/data/payment/%C3%A9t%C3%A9", 200), // unicode segment: undefined
        ("/v1/data/payment/%ff", 200),   // not UTF-8 once decoded: kept as text
        ("/v1/data/payment/config/currencies/-1", 200),
        (
            "/v1/data/payment/config/currencies/99999999999999999999",
            200,
        ),
        ("/v1/data/payment/decision/", 301),
        ("/v1/data//payment", 307),
        ("/v1/data/payment/../payment/allow", 307),
        ("/v2/data/payment", 404),
    ];
    for (path, status) in cases {
        let r = server
            .raw(&request(
                "POST",
                path,
                &[("Content-Type", "application/json")],
                ALLOWED.as_bytes(),
            ))
            .await;
        assert_eq!(r.status, *status, "{path}: {}", r.text());
        if *status == 500 {
            assert_eq!(
                r.json(),
                json!({"code": "internal_error", "message": "invalid_parameter: invalid path: invalid ref term 'a\"b'"})
            );
        }
    }
    let long = format!("/v1/data/{}", "x/".repeat(5000));
    let r = server
        .raw(&request(
            "POST",
            long.trim_end_matches('/'),
            &[],
            ALLOWED.as_bytes(),
        ))
        .await;
    assert_eq!((r.status, r.json()), (200, json!({})));
    // Raw bytes that are not UTF-8 in the request line.
    let mut raw = b"POST /v1/data/payment/\xff\xfe HTTP/1.1\r\nHost: v\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}".to_vec();
    let r = server.raw(&raw).await;
    assert_eq!(
        r.status, 400,
        "the HTTP parser refuses a non-ASCII request target"
    );
    raw.clear();
    still_serving(&server).await;
    server.stop().await;
}
