//! What an OPA user's HTTP calls get on the default bundle: the Compile API's clear 501, Go's
//! 400 for a path that does not unescape, provenance filled at build time, and the default
//! decision `POST /` as the README shows it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value as Json};

use crate::common::{request, test_config, Server};

async fn payment_server() -> Server {
    let config = test_config();
    let sources = verdict::app::sources(&config).unwrap();
    Server::start(config, sources).await
}

const PAYMENT: &str = r#"{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}"#;

#[tokio::test]
async fn the_compile_api_answers_not_supported_in_opas_error_shape() {
    let server = payment_server().await;
    let body = br#"{"query": "data.payment.allow == true", "unknowns": ["input.amount"]}"#;
    for (method, path) in [
        ("POST", "/v1/compile"),
        ("GET", "/v1/compile"),
        ("POST", "/v1/compile/payment/allow"),
    ] {
        let r = server
            .raw(&request(
                method,
                path,
                &[("Content-Type", "application/json")],
                body,
            ))
            .await;
        assert_eq!(r.status, 501, "{method} {path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let error = r.json();
        assert_eq!(error["code"], "not_implemented", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{path} is not supported")),
            "{message}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_path_that_does_not_unescape_is_gos_400() {
    let server = payment_server().await;
    for path in ["/v1/data/%zz", "/v1/data/payment/%4", "/health%"] {
        let r = server.raw(&request("GET", path, &[], b"")).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert_eq!(r.text(), "400 Bad Request", "{path}");
        assert_eq!(r.header("connection"), Some("close"));
    }
    // A valid escape still reads as OPA reads it.
    let r = server
        .raw(&request("GET", "/v1/data/payment/config/ro%6Ces", &[], b""))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["result"]["customer"].is_object(), "{}", r.text());
    server.stop().await;
}

#[tokio::test]
async fn provenance_names_this_build() {
    let server = payment_server().await;
    let body = format!(r#"{{"input": {PAYMENT}}}"#);
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/payment/allow?provenance",
            &[],
            body.as_bytes(),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let provenance = &r.json()["provenance"];
    assert_eq!(provenance["version"], env!("CARGO_PKG_VERSION"));
    let timestamp = provenance["build_timestamp"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(timestamp)
        .unwrap_or_else(|e| panic!("build_timestamp {timestamp:?}: {e}"));
    assert_eq!(
        provenance["build_commit"],
        verdict::provenance::BUILD_COMMIT
    );
    assert_eq!(
        provenance["build_hostname"],
        verdict::provenance::BUILD_HOSTNAME
    );
    assert_eq!(
        provenance["bundles"],
        json!({"bundles/payment": {"revision": "payment-2026.11.24-1"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn the_readmes_default_decision_example_answers() {
    let server = payment_server().await;
    // README: curl -s localhost:8181/ -d '{"method": "POST", ...}'
    let r = server
        .raw(&request("POST", "/", &[], PAYMENT.as_bytes()))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"allow": true, "reasons": []}));
    let over: Json = serde_json::from_str(&PAYMENT.replace("2500", "50000")).unwrap();
    let r = server
        .raw(&request("POST", "/", &[], over.to_string().as_bytes()))
        .await;
    assert_eq!(r.json()["allow"], false, "{}", r.text());
    server.stop().await;
}
