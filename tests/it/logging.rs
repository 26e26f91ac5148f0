//! verdict's own log as a Loki pipeline reads it: one JSON object per line (or text when
//! asked), a line per request at debug, warnings and errors at info, and never an input: the
//! decision log is the audited channel for those.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::http;
use common::running::Running;
use serde_json::Value as Json;

/// A value that must never reach the log, inside an otherwise ordinary payment.
const SECRET: &str = "4111-secret-card-0042";

async fn pay(addr: &str) -> u16 {
    let body = format!(
        r#"{{"input": {{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 250, "currency": "EUR", "merchant": "m-1", "country": "DE", "velocity": 1, "card": "{SECRET}"}}}}"#
    );
    let r = http()
        .post(format!("http://{addr}/v1/data/payment/decision"))
        .body(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn a_line_per_request_at_debug_and_never_an_input_at_any_level() {
    for level in ["debug", "info"] {
        let mut verdict = Running::spawn(&["--addr", "127.0.0.1:0", "--log-level", level]);
        let addr = verdict.address().await;
        assert_eq!(pay(&addr).await, 200);
        // A malformed body: its error is answered, and logged at most without the body.
        let bad = http()
            .post(format!("http://{addr}/v1/data/payment/decision"))
            .body(format!(r#"{{"input": {{"card": "{SECRET}""#))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        if level == "debug" {
            let line = verdict.wait_for_log(r#""message":"request""#).await;
            assert_eq!(line["level"], "DEBUG");
            assert_eq!(line["path"], "/v1/data/payment/decision");
            assert_eq!(line["code"], 200);
            assert!(line["duration_us"].as_u64().is_some(), "{line}");
            assert!(line["timestamp"].as_str().is_some(), "{line}");
        }
        let (lines, code) = verdict.stop().await;
        assert_eq!(code, Some(0));
        let requests = lines
            .iter()
            .filter(|l| l.contains(r#""message":"request""#));
        assert_eq!(
            requests.count(),
            if level == "debug" { 2 } else { 0 },
            "{lines:#?}"
        );
        for line in &lines {
            let parsed: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(
                parsed["level"].is_string() && parsed["message"].is_string(),
                "{line}"
            );
            assert!(!line.contains(SECRET), "an input reached the log: {line}");
        }
    }
}

#[tokio::test]
async fn text_lines_when_asked_for_them() {
    let mut verdict = Running::spawn(&["--addr", "127.0.0.1:0", "--log-format", "text"]);
    let started = verdict.wait_for_line("server started").await;
    assert!(serde_json::from_str::<Json>(&started).is_err(), "{started}");
    assert!(started.contains("INFO"), "{started}");
    let (_, code) = verdict.stop().await;
    assert_eq!(code, Some(0));

    // A format OPA does not know is refused at start, with OPA's usage exit code.
    let bad = std::process::Command::new(common::running::BIN)
        .args(["run", "--log-format", "yaml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
