//! The gRPC listener end to end, with real tonic clients: ext_authz on the shipped payment
//! bundle, bad requests, a cancelled call (health, reflection, the native decision API, hot
//! swap and Unix sockets are in `grpc_services`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::{test_config, write_dir, Server, WAIT};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use serde_json::{json, Value as Json};
use tonic::Code;
use verdict::bundle::Source;
use verdict::config::{Config, ExtAuthzConfig};

pub(crate) fn grpc_config(authz: ExtAuthzConfig) -> Config {
    let mut config = test_config();
    config.plugins.envoy_ext_authz_grpc = Some(ExtAuthzConfig {
        addr: "127.0.0.1:0".into(),
        ..authz
    });
    config
}

/// verdict with the built-in payment bundle and ext_authz on its default path.
pub(crate) async fn payment_server() -> Server {
    let config = grpc_config(ExtAuthzConfig::default());
    let sources = verdict::app::sources(&config).unwrap();
    Server::start(config, sources).await
}

/// A Check for an HTTP request as Envoy forwards it.
pub(crate) fn check(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> CheckRequest {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: method.into(),
                    path: path.into(),
                    headers,
                    body: body.into(),
                    size: body.len() as i64,
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
}

pub(crate) const GOOD_PAYMENT: &str =
    r#"{"amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}"#;

pub(crate) fn payment(role: &str, body: &str) -> CheckRequest {
    check(
        "POST",
        "/api/payment",
        &[
            ("content-type", "application/json"),
            ("x-payment-role", role),
        ],
        body,
    )
}

pub(crate) fn status_code(response: &CheckResponse) -> i32 {
    response.status.as_ref().map_or(0, |s| s.code)
}

fn denied(response: &CheckResponse) -> (i32, String) {
    match &response.http_response {
        Some(HttpResponse::DeniedResponse(d)) => (d.status.as_ref().unwrap().code, d.body.clone()),
        other => panic!("expected a denied_response, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_are_decided_over_ext_authz_with_the_shipped_bundle() {
    let server = payment_server().await;
    let mut client = common::grpc::authz_client(&server).await;

    let ok = client
        .check(payment("customer", GOOD_PAYMENT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&ok), 0, "{ok:?}");
    let Some(HttpResponse::OkResponse(allowed)) = &ok.http_response else {
        panic!("{ok:?}");
    };
    assert_eq!(
        allowed.headers_to_remove,
        vec!["x-payment-role".to_string()]
    );
    let id = &ok.dynamic_metadata.as_ref().unwrap().fields["decision_id"];
    assert!(format!("{id:?}").contains('-'), "decision id {id:?}");

    // Over the customer limit: denied with the policy's reasons, as the Data API gives them.
    let big = GOOD_PAYMENT.replace("2500", "50000");
    let no = client
        .check(payment("customer", &big))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&no), 7);
    let (http_status, body) = denied(&no);
    assert_eq!(http_status, 403);
    let reasons: Json = serde_json::from_str(&body).unwrap();
    let via_http: Json = common::http()
        .post(server.url("/v1/data/payment/decision"))
        .json(&json!({"input": {
            "method": "POST", "path": "/api/payment", "role": "customer",
            "amount": 50000, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1
        }}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reasons["reasons"], via_http["result"]["reasons"]);

    // A role smuggled into the body does not count: only the header does.
    let smuggled = big.replace("{", r#"{"role": "admin", "#);
    let no = client
        .check(payment("customer", &smuggled))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&no), 7, "{no:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_allows_but_still_decides_and_still_fails_closed_on_errors() {
    let config = grpc_config(ExtAuthzConfig {
        dry_run: true,
        ..ExtAuthzConfig::default()
    });
    let sources = verdict::app::sources(&config).unwrap();
    let server = Server::start(config, sources).await;
    let mut client = common::grpc::authz_client(&server).await;
    let big = GOOD_PAYMENT.replace("2500", "50000");
    let r = client
        .check(payment("customer", &big))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status_code(&r),
        0,
        "dry-run lets the denied payment through"
    );
    assert!(
        matches!(&r.http_response, Some(HttpResponse::OkResponse(ok)) if ok.headers.is_empty()),
        "{r:?}"
    );
    let id = &r.dynamic_metadata.as_ref().unwrap().fields["decision_id"];
    assert!(
        format!("{id:?}").contains('-'),
        "the decision was made: {id:?}"
    );
    // An unparseable body is still denied: dry-run covers decisions, not broken requests.
    let r = client
        .check(payment("customer", "{oops"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&r), 7);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_documented_denial_and_the_server_keeps_serving() {
    let config = grpc_config(ExtAuthzConfig {
        grpc_max_recv_msg_size: 256 << 10,
        ..ExtAuthzConfig::default()
    });
    let sources = verdict::app::sources(&config).unwrap();
    let server = Server::start(config, sources).await;
    let mut client = common::grpc::authz_client(&server).await;

    // Invalid JSON under a JSON content type: denied with 400, Go's words in the body.
    let r = client
        .check(payment("customer", "{\"amount\": 25"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&r), 7);
    assert_eq!(
        denied(&r),
        (400, "request_parse_error: unexpected EOF".into())
    );

    // A multipart body cut off before its closing boundary.
    let multipart = check(
        "POST",
        "/api/payment",
        &[("content-type", "multipart/form-data; boundary=XX")],
        "--XX\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n25",
    );
    let r = client.check(multipart).await.unwrap().into_inner();
    let (http_status, body) = denied(&r);
    assert_eq!(http_status, 400);
    assert!(
        body.starts_with("request_parse_error: multipart: "),
        "{body}"
    );

    // A query string Go refuses.
    let r = client
        .check(check("POST", "/api/payment?a=%zz", &[], ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        denied(&r),
        (
            400,
            r#"request_parse_error: invalid URL escape "%zz""#.into()
        )
    );

    // No HTTP attributes at all: the policy still answers, with a denial.
    let r = client
        .check(CheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&r), 7);
    assert_eq!(denied(&r).0, 403);

    // 5,000 headers (within the message limit): decided like any other request.
    let many: Vec<(String, String)> = (0..5_000)
        .map(|i| (format!("x-filler-{i}"), "v".repeat(20)))
        .collect();
    let mut headers: Vec<(&str, &str)> =
        many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    headers.push(("content-type", "application/json"));
    headers.push(("x-payment-role", "customer"));
    let r = client
        .check(check("POST", "/api/payment", &headers, GOOD_PAYMENT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&r), 0, "{:?}", r.status);

    // A message over grpc-max-recv-msg-size is refused before it is decoded.
    let huge = format!(r#"{{"pad": "{}"}}"#, "x".repeat(300 << 10));
    let err = client.check(payment("customer", &huge)).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{err:?}"
    );

    // Still serving, on the same connection and on HTTP.
    let r = client
        .check(payment("customer", GOOD_PAYMENT))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&r), 0);
    let health = common::get(server.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    server.stop().await;
}

/// A bundle whose ext_authz decision takes as long as `parsed_body.n` makes it.
fn slow_bundle() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            ".manifest".into(),
            br#"{"revision": "slow", "roots": ["envoy"]}"#.to_vec(),
        ),
        (
            "envoy/authz.rego".into(),
            b"package envoy.authz\n\nallow := {\"allowed\": count([x | some x in numbers.range(1, input.parsed_body.n)]) > 0}\n".to_vec(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cancels_mid_call_leaves_the_server_serving() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &slow_bundle());
    let mut config = grpc_config(ExtAuthzConfig::default());
    config.verdict.eval_timeout_ms = 3_000;
    let server = Server::start(config, vec![Source::path(dir.path())]).await;
    let slow = check(
        "POST",
        "/",
        &[("content-type", "application/json")],
        r#"{"n": 100000000}"#,
    );
    let mut client = common::grpc::authz_client(&server).await;
    // The client gives up and resets the stream while the policy is still evaluating.
    let cancelled = tokio::time::timeout(Duration::from_millis(50), client.check(slow)).await;
    assert!(
        cancelled.is_err(),
        "the slow call was still running when cancelled"
    );

    let quick = check(
        "POST",
        "/",
        &[("content-type", "application/json")],
        r#"{"n": 3}"#,
    );
    let r = tokio::time::timeout(WAIT, client.check(quick.clone()))
        .await
        .expect("answered in time")
        .unwrap()
        .into_inner();
    assert_eq!(status_code(&r), 0);
    let mut fresh = common::grpc::authz_client(&server).await;
    assert_eq!(status_code(fresh.check(quick).await.unwrap().get_ref()), 0);
    server.stop().await;
}
