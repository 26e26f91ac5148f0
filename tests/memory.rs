//! The evaluation memory ceiling, in its own test binary because the ceiling is process-wide.
//! A policy whose allocation grows with its input is stopped with a clean error; the server
//! keeps its memory and answers the next decision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "it/common/mod.rs"]
mod common;

use common::{request, test_config, write_dir, Server};
use serde_json::json;
use verdict::bundle::Source;

/// The ceiling every test of this binary sets: it is one value for the whole process.
const CEILING: u64 = 256 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_that_allocates_without_bound_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &[(
            "app/policy.rego".into(),
            b"package app\n\nbig := count(numbers.range(1, input.n))\n\n\
              stepped := count(numbers.range_step(1, input.n, 1))\n"
                .to_vec(),
        )],
    );
    let mut config = test_config();
    config.verdict.memory_limit_bytes = Some(CEILING);
    config.verdict.eval_timeout_ms = 60_000;
    let server = Server::start(config, vec![Source::path(dir.path())]).await;

    // Two billion numbers need tens of GiB; the ceiling stops it long before.
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/app/big",
            &[],
            br#"{"input": {"n": 2000000000}}"#,
        ))
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    let body = r.json();
    assert_eq!(body["code"], json!("internal_error"));
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("memory limit of {CEILING} bytes")),
        "{body}"
    );
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/app/big",
            &[],
            br#"{"input": {"n": 1000}}"#,
        ))
        .await;
    assert_eq!(r.json(), json!({"result": 1000}));

    // verdict's own numbers.range_step stops at the ceiling too, even without strict errors.
    for (n, status) in [(2_000_000_000u64, 500), (1000, 200)] {
        let body = format!(r#"{{"input": {{"n": {n}}}}}"#);
        let r = server
            .raw(&request(
                "POST",
                "/v1/data/app/stepped",
                &[],
                body.as_bytes(),
            ))
            .await;
        assert_eq!(r.status, status, "{}", r.text());
        if status == 500 {
            let message = r.json()["errors"][0]["message"].to_string();
            assert!(message.contains("memory limit"), "{message}");
        } else {
            assert_eq!(r.json(), json!({"result": 1000}));
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_that_reaches_the_ceiling_is_refused_as_such_not_as_malformed() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &[(
            "app/policy.rego".into(),
            b"package app\n\nn := count(input)\n".to_vec(),
        )],
    );
    let mut config = test_config();
    config.verdict.memory_limit_bytes = Some(CEILING);
    config.server.decoding.max_length = 96 << 20;
    let server = Server::start(config, vec![Source::path(dir.path())]).await;

    // 40 million zeros: well-formed, 80 MiB of text, several times the ceiling once decoded.
    let mut body = Vec::with_capacity(81 << 20);
    body.extend_from_slice(b"{\"input\": [0");
    for _ in 1..40_000_000 {
        body.extend_from_slice(b",0");
    }
    body.extend_from_slice(b"]}");
    let r = server
        .raw(&request("POST", "/v1/data/app/n", &[], &body))
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["code"], json!("internal_error"));
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("memory limit of {CEILING} bytes"))
            && !message.contains("malformed"),
        "{answer}"
    );
    drop(body);

    let r = server
        .raw(&request(
            "POST",
            "/v1/data/app/n",
            &[],
            br#"{"input": [1, 2, 3]}"#,
        ))
        .await;
    assert_eq!(r.json(), json!({"result": 3}));
    server.stop().await;
}
