//! The Data API end to end: a real server on an ephemeral port, real HTTP clients, the example
//! payment bundle and hostile requests. Every bad request must get OPA's error shape and leave
//! the server answering the next request correctly. (Odd paths, runaway and panicking policies,
//! health, Unix sockets and stalled clients are in `api_service`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::{Read, Write};

use common::{request, test_config, Server};
use serde_json::{json, Value as Json};
use verdict::app::sources;
use verdict::bundle::Source;

pub(crate) const ALLOWED: &str = r#"{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}}"#;

pub(crate) async fn payment_server() -> Server {
    let config = test_config();
    let bundles = sources(&config).unwrap();
    Server::start(config, bundles).await
}

pub(crate) async fn post(server: &Server, path: &str, body: &str) -> (u16, Json) {
    let r = server
        .raw(&request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        ))
        .await;
    (r.status, r.json())
}

/// The server still decides correctly: asserted after every hostile request.
pub(crate) async fn still_serving(server: &Server) {
    let (status, body) = post(server, "/v1/data/payment/decision", ALLOWED).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"result": {"allow": true, "reasons": []}}));
}

/// The shipped policy fails closed on missing fields under OPA's meaning of `not` (a call's
/// arguments are evaluated before the negation), which it once relied on verdict not having.
#[tokio::test]
async fn a_payment_without_currency_merchant_or_country_is_refused() {
    let server = payment_server().await;
    let bare = r#"{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "velocity": 1, "timestamp": "2026-11-24T14:30:00Z"}}"#;
    let (status, body) = post(&server, "/v1/data/payment/decision", bare).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["allow"], json!(false), "{body}");
    let reasons = body["result"]["reasons"].as_array().unwrap();
    for missing in [
        "currency missing",
        "merchant missing",
        "payer country missing",
    ] {
        assert!(reasons.contains(&json!(missing)), "{missing}: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn payment_decisions_come_back_in_opas_envelope() {
    let server = payment_server().await;
    still_serving(&server).await;

    let denied = r#"{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 25000, "currency": "XYZ", "merchant": "m-666", "country": "kp", "velocity": 10}}"#;
    let (status, body) = post(&server, "/v1/data/payment/decision", denied).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["result"]["reasons"],
        json!([
            "10 payments in the last hour reach the customer limit of 10",
            "amount 25000 exceeds the customer limit of 10000",
            "currency XYZ is not accepted",
            "merchant m-666 is blocked",
            "payer country KP is sanctioned"
        ])
    );
    assert_eq!(body["result"]["allow"], json!(false));

    // The same decision through GET with ?input=, and the bare v0 form.
    let input = serde_json::from_str::<Json>(ALLOWED).unwrap()["input"].to_string();
    let url = server.url(&format!(
        "/v1/data/payment/allow?input={}",
        percent_encode(&input)
    ));
    let got: Json = common::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(got, json!({"result": true}));
    let bare = serde_json::from_str::<Json>(ALLOWED).unwrap()["input"].to_string();
    let r = server
        .raw(&request(
            "POST",
            "/v0/data/payment/allow",
            &[],
            bare.as_bytes(),
        ))
        .await;
    assert_eq!((r.status, r.text()), (200, "true\n".to_string()));
    server.stop().await;
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn undefined_provenance_metrics_and_the_default_decision() {
    let server = payment_server().await;
    let (status, body) = post(&server, "/v1/data/payment/nothing_here", ALLOWED).await;
    assert_eq!((status, body), (200, json!({})));

    let (_, body) = post(
        &server,
        "/v1/data/payment/allow?provenance&metrics",
        ALLOWED,
    )
    .await;
    assert_eq!(
        body["provenance"]["bundles"]["bundles/payment"]["revision"],
        json!("payment-2026.11.24-1")
    );
    let metrics = body["metrics"].as_object().unwrap();
    for key in [
        "counter_server_query_cache_hit",
        "timer_rego_input_parse_ns",
        "timer_rego_query_eval_ns",
        "timer_server_handler_ns",
    ] {
        assert!(metrics.contains_key(key), "metrics has {key}: {metrics:?}");
    }
    // The path's first decision prepares it (OPA's cache miss, with the time it took); the
    // next one finds it prepared.
    assert_eq!(metrics["counter_server_query_cache_hit"], json!(0));
    assert!(
        metrics.contains_key("timer_rego_query_compile_ns"),
        "{metrics:?}"
    );
    let (_, again) = post(&server, "/v1/data/payment/allow?metrics", ALLOWED).await;
    assert_eq!(again["metrics"]["counter_server_query_cache_hit"], json!(1));
    assert!(again["metrics"]
        .get("timer_rego_query_compile_ns")
        .is_none());

    // POST / is the default decision, data.system.main: the example bundle's answers with the
    // payment decision for the bare body, as the README shows.
    let payment =
        serde_json::to_vec(&serde_json::from_str::<Json>(ALLOWED).unwrap()["input"]).unwrap();
    let r = server.raw(&request("POST", "/", &[], &payment)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"allow": true, "reasons": []}));
    server.stop().await;
}

#[tokio::test]
async fn strict_builtin_errors_turn_a_failing_builtin_into_a_500() {
    let server = golden_server().await;
    let body = r#"{"input": {"amount": "12x"}}"#;
    let (status, lenient) = post(&server, "/v1/data/payment/amount_value", body).await;
    assert_eq!((status, lenient), (200, json!({})));
    let (status, strict) = post(
        &server,
        "/v1/data/payment/amount_value?strict-builtin-errors",
        body,
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(strict["code"], json!("internal_error"));
    assert_eq!(strict["errors"][0]["code"], json!("eval_builtin_error"));
    assert_eq!(strict["errors"][0]["location"]["row"], json!(51));
    server.stop().await;
}

async fn golden_server() -> Server {
    let source = Source::path(common::golden("fixtures/bundle"));
    Server::start(test_config(), vec![source]).await
}

#[tokio::test]
async fn responses_are_gzipped_when_accepted_and_large() {
    // OPA's server.encoding.gzip.min_length, lowered so a small document crosses it.
    let mut config = test_config();
    config.server.encoding.gzip.min_length = 200;
    let source = Source::path(common::golden("fixtures/bundle"));
    let server = Server::start(config, vec![source]).await;
    let small = server
        .raw(&request(
            "GET",
            "/v1/data/limits/currencies",
            &[("Accept-Encoding", "gzip")],
            b"",
        ))
        .await;
    assert!(small.body.len() < 200);
    assert_eq!(
        small.header("content-encoding"),
        None,
        "short bodies stay plain"
    );
    let plain = server
        .raw(&request("GET", "/v1/data?pretty", &[], b""))
        .await;
    assert!(plain.body.len() >= 200);
    assert_eq!(
        plain.header("content-encoding"),
        None,
        "not compressed unless accepted"
    );
    let zipped = server
        .raw(&request(
            "GET",
            "/v1/data?pretty",
            &[("Accept-Encoding", "gzip, deflate")],
            b"",
        ))
        .await;
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(zipped.body.as_slice())
        .read_to_end(&mut inflated)
        .unwrap();
    assert_eq!(inflated, plain.body);
    assert!(
        !plain.text().contains("\"system\""),
        "GET /v1/data leaves out data.system"
    );

    // A gzip request body is inflated before decoding.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(ALLOWED.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/limits/roles/customer",
            &[("Content-Encoding", "gzip")],
            &gz,
        ))
        .await;
    assert_eq!(r.json()["result"], json!({"max_amount": 1000}));
    server.stop().await;
}

/// Each hostile body: the status and error OPA gives, then a correct decision right after.
#[tokio::test]
async fn malformed_bodies_get_opas_errors_and_nothing_breaks() {
    let mut config = test_config();
    config.server.decoding.max_length = 64 * 1024;
    config.server.decoding.gzip.max_length = 128 * 1024;
    let bundles = sources(&config).unwrap();
    let server = Server::start(config, bundles).await;
    let path = "/v1/data/payment/decision";
    let malformed = "body contains malformed input document: ";

    // (what, headers, body, expected status, expected message)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, String);
    let cases: Vec<Case> = vec![
        ("truncated JSON", vec![], br#"{"input": {"role": "cust"#.to_vec(), 400, format!("{malformed}unexpected EOF")),
        ("array body", vec![], b"[1,2,3]".to_vec(), 400,
            format!("{malformed}json: cannot unmarshal array into Go value of type types.DataRequestV1")),
        ("string body", vec![], b"\"input\"".to_vec(), 400,
            format!("{malformed}json: cannot unmarshal string into Go value of type types.DataRequestV1")),
        ("bad syntax", vec![], b"{input: 1}".to_vec(), 400,
            format!("{malformed}invalid character 'i' looking for beginning of object key string")),
        ("invalid UTF-8", vec![], b"{\"input\": \"\xff\xfe\"}".to_vec(), 400, String::new()),
        ("bad YAML", vec![("Content-Type", "application/x-yaml")], b"input: [unclosed".to_vec(), 400, String::new()),
        ("over the size limit", vec![], vec![b' '; 64 * 1024 + 1], 400, "request body too large".into()),
        ("not gzip", vec![("Content-Encoding", "gzip")], b"not gzip at all".to_vec(), 400,
            "could not decompress the body: gzip payload too large".into()),
        ("gzip bomb", vec![("Content-Encoding", "gzip")], gzip_bomb(10 << 20), 400,
            "could not decompress the body: gzip payload too large".into()),
    ];
    for (name, mut headers, body, status, message) in cases {
        if !headers.iter().any(|(k, _)| *k == "Content-Type") {
            headers.push(("Content-Type", "application/json"));
        }
        let r = server.raw(&request("POST", path, &headers, &body)).await;
        assert_eq!(r.status, status, "{name}: {}", r.text());
        let err = r.json();
        assert_eq!(err["code"], json!("invalid_parameter"), "{name}");
        let got = err["message"].as_str().unwrap();
        if message.is_empty() {
            assert!(got.starts_with(malformed), "{name}: {got}");
        } else {
            assert_eq!(got, message, "{name}");
        }
        still_serving(&server).await;
    }

    // A body streamed without Content-Length is cut at the limit just the same.
    let mut chunked = format!(
        "POST {path} HTTP/1.1\r\nHost: v\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n", 8192).as_bytes());
        chunked.extend_from_slice(&[b' '; 8192]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = server.raw(&chunked).await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (400, json!("request body too large"))
    );
    still_serving(&server).await;
    server.stop().await;
}

fn gzip_bomb(inflated: usize) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![b' '; inflated]).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn inputs_that_are_not_objects_or_are_missing_follow_opa() {
    let server = payment_server().await;
    let warning =
        json!({"code": "api_usage_warning", "message": "'input' key missing from the request"});
    for body in ["", "{}", r#"{"input": null}"#, r#"{"inputs": {}}"#] {
        let (status, got) = post(&server, "/v1/data/payment/allow", body).await;
        assert_eq!(status, 200, "{body:?}");
        assert_eq!(
            got,
            json!({"result": false, "warning": warning}),
            "{body:?}"
        );
    }
    let (_, got) = post(&server, "/v1/data/payment/allow", r#"{"input": 42}"#).await;
    assert_eq!(got, json!({"result": false}), "a scalar input is an input");
    // Content-Type is ignored unless it says YAML, as in OPA.
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/payment/allow",
            &[("Content-Type", "text/plain")],
            ALLOWED.as_bytes(),
        ))
        .await;
    assert_eq!(r.json(), json!({"result": true}));
    let yaml = "input:\n  method: POST\n  path: /api/payment\n  role: customer\n  amount: 100\n  currency: EUR\n  merchant: m-1\n  country: FR\n  velocity: 0\n";
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/payment/allow",
            &[("Content-Type", "application/yaml")],
            yaml.as_bytes(),
        ))
        .await;
    assert_eq!(r.json(), json!({"result": true}));
    server.stop().await;
}

#[tokio::test]
async fn deeply_nested_input_is_refused_cleanly() {
    let server = payment_server().await;
    for depth in [200usize, 100_000] {
        let body = format!("{{\"input\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        let (status, err) = post(&server, "/v1/data/payment/decision", &body).await;
        assert_eq!(status, 400, "depth {depth}");
        assert_eq!(err["code"], json!("invalid_parameter"));
        assert!(
            err["message"].as_str().unwrap().contains("recursion limit"),
            "{err}"
        );
        still_serving(&server).await;
    }
    server.stop().await;
}
