//! The `verdict` binary as users run it: `run` (default bundle, signals, exit codes), `eval`
//! and `test`. Processes are real; the server is reached over real sockets, and every wait is
//! for a log line or a response, under a timeout. (Persistence, bombs and `-b` signed bundles
//! are in `cli_bundles`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::running::{Running, BIN};
use common::{bundle_tar, raw_exchange, replace_file, repo, request, simple_bundle};
use serde_json::{json, Value as Json};

fn verdict(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

#[test]
fn test_runs_the_payment_policy_tests() {
    let out = verdict(&["test", "bundles/payment", "policies", "-v"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("data.payment_test.test_customer_payment_is_allowed: PASS"),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap();
    let (passed, total) = summary
        .trim_start_matches("PASS: ")
        .split_once('/')
        .unwrap();
    assert_eq!(passed, total, "{stdout}");
    assert!(total.parse::<u32>().unwrap() >= 15, "{stdout}");
}

#[test]
fn test_fails_with_exit_code_1_on_a_failing_test() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p_test.rego"),
        "package p_test\n\ntest_ok if true\n\ntest_broken if 1 == 2\n\ntest_error if count(input.nothing) > 0\n",
    )
    .unwrap();
    let out = verdict(&["test", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("data.p_test.test_broken: FAIL"), "{stdout}");
    assert!(
        !stdout.contains("test_ok"),
        "passing tests only with -v: {stdout}"
    );
    assert!(stdout.contains("PASS: 1/3"), "{stdout}");

    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("p.rego"), "package p\n\nx := 1\n").unwrap();
    let out = verdict(&["test", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "no tests found is a failure");

    let broken = tempfile::tempdir().unwrap();
    std::fs::write(broken.path().join("p.rego"), "package p\n\nx if {\n").unwrap();
    let out = verdict(&["test", broken.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rego_parse_error"));
}

#[test]
fn eval_prints_opas_result_set() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    std::fs::write(
        &input,
        r#"{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 20000, "currency": "EUR", "merchant": "m-1", "country": "FR", "velocity": 0}"#,
    )
    .unwrap();
    let out = verdict(&[
        "eval",
        "-d",
        "bundles/payment",
        "-i",
        input.to_str().unwrap(),
        "data.payment.decision",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got,
        json!({"result": [{"expressions": [{
            "value": {"allow": false, "reasons": ["amount 20000 exceeds the customer limit of 10000"]},
            "text": "data.payment.decision",
            "location": {"row": 1, "col": 1}
        }]}]})
    );
    let out = verdict(&[
        "eval",
        "-d",
        "bundles/payment",
        "--format",
        "raw",
        "data.payment.config.currencies[0]",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"CHF\"\n");
    let out = verdict(&["eval", "-d", "bundles/payment", "data.payment.nothing"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "{}",
        "undefined"
    );
    // As `opa eval`: a query that does not parse is the evaluation's error, on stdout.
    let out = verdict(&["eval", "-d", "bundles/payment", "data.payment["]);
    assert_eq!(out.status.code(), Some(1));
    let errors: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(errors["errors"][0]["code"], "rego_parse_error", "{errors}");
}

async fn post(addr: &str, path: &str, body: &[u8]) -> Json {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw_exchange(stream, &request("POST", path, &[], body))
        .await
        .json()
}

#[tokio::test]
async fn run_serves_the_built_in_payment_bundle_and_stops_on_sigterm() {
    let mut server = Running::spawn(&["--addr", "127.0.0.1:0"]);
    let addr = server.address().await;
    let activated = match server.seen.iter().find(|l| l.contains("bundle activated")) {
        Some(line) => serde_json::from_str::<serde_json::Value>(line).unwrap(),
        None => server.wait_for_log("bundle activated").await,
    };
    assert_eq!(activated["from"], json!("embedded"), "{activated}");
    let decision = post(
        &addr,
        "/v1/data/payment/decision",
        br#"{"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 100, "currency": "USD", "merchant": "m-9", "country": "US", "velocity": 0}}"#,
    )
    .await;
    assert_eq!(decision, json!({"result": {"allow": true, "reasons": []}}));
    server.signal("TERM");
    server.wait_for_log("shutting down").await;
    assert_eq!(server.exit_code().await, Some(0));
}

#[tokio::test]
async fn sighup_reloads_bundles_that_are_not_watched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&simple_bundle("hup-1", "true"))).unwrap();
    let mut server = Running::spawn(&[
        "--addr",
        "127.0.0.1:0",
        "--no-watch",
        "-b",
        path.to_str().unwrap(),
    ]);
    let addr = server.address().await;
    assert_eq!(
        post(&addr, "/v1/data/app/allow", b"{}").await["result"],
        json!(true)
    );

    replace_file(&path, &bundle_tar(&simple_bundle("hup-2", "false")));
    server.signal("HUP");
    let activated = server.wait_for_log("bundle activated").await;
    assert_eq!(activated["revision"], json!("hup-2"));
    assert_eq!(
        post(&addr, "/v1/data/app/allow", b"{}").await["result"],
        json!(false)
    );

    // A bad bundle on SIGHUP is logged and refused; the process keeps serving hup-2.
    replace_file(&path, b"not a bundle");
    server.signal("HUP");
    let rejected = server.wait_for_log("bundle rejected").await;
    assert!(
        rejected["error"]
            .as_str()
            .unwrap()
            .contains("gzip: invalid header"),
        "{rejected}"
    );
    assert_eq!(
        post(&addr, "/v1/data/app/allow", b"{}").await["result"],
        json!(false)
    );
    server.signal("INT");
    assert_eq!(server.exit_code().await, Some(0));
}

#[tokio::test]
async fn a_bad_config_exits_64_and_a_bad_bundle_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str)] = &[
        ("lables:\n  app: x\n", "unknown top-level key \"lables\""),
        (
            "server:\n  decoding:\n    max_length: 0\n",
            "server.decoding.max_length",
        ),
        ("labels: [unclosed\n", "config file"),
    ];
    for (text, expected) in cases {
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        let out = verdict(&["run", "--addr", "127.0.0.1:0", "-c", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
    let bad = dir.path().join("bad.tar.gz");
    std::fs::write(&bad, b"garbage").unwrap();
    let out = verdict(&["run", "--addr", "127.0.0.1:0", "-b", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("load error: bundle") && stderr.contains("gzip: invalid header"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_opa_config_file_starts_verdict() {
    let config = repo().join("tests/golden/fixtures/config-golden.yaml");
    let bundle = repo().join("tests/golden/fixtures/payment-bundle.tar.gz");
    let mut server = Running::spawn(&[
        "--addr",
        "127.0.0.1:0",
        "-c",
        config.to_str().unwrap(),
        "--set",
        "default_decision=/payment/allow",
        "-b",
        bundle.to_str().unwrap(),
        // The config's envoy_ext_authz_grpc listens on 9191; tests take any free port.
        "--grpc-addr",
        "127.0.0.1:0",
    ]);
    let started = server.wait_for_log("server started").await;
    assert!(
        !server.seen.iter().any(|l| l.contains("not implemented")),
        "every section of OPA's config is implemented: {:?}",
        server.seen
    );
    let addrs: Vec<String> = serde_json::from_str(started["addrs"].as_str().unwrap()).unwrap();
    let addr = addrs[0].clone();
    // The config's ext_authz plugin answers Envoy with the bundle's envoy.authz policy.
    let grpc_addr = started["grpc_addr"].as_str().unwrap();
    let channel = common::grpc::connect(grpc_addr).await;
    let mut authz =
        envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::new(
            channel,
        );
    let check = common::grpc::check_request_from_json(
        r#"{"attributes": {"request": {"http": {"method": "POST", "path": "/pay",
            "headers": {"content-type": "application/json", "x-role": "customer"},
            "body": "{\"amount\": 250, \"currency\": \"EUR\", \"merchant\": \"m-123\"}"}}}}"#,
    );
    let answer = authz.check(check).await.unwrap().into_inner();
    assert_eq!(answer.status.map(|s| s.code), Some(0), "allowed");
    // The config's decision_logs.console logs the Check as opa-envoy-plugin does, under the
    // decision id the answer's dynamic metadata carries, masked by the bundle's policy.
    let metadata = answer.dynamic_metadata.unwrap().fields;
    let Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(id)) =
        &metadata["decision_id"].kind
    else {
        panic!("no decision_id in {metadata:?}");
    };
    let event = server.wait_for_log("\"Decision Log\"").await;
    assert_eq!(event["decision_id"], json!(id));
    assert_eq!(event["path"], json!("envoy/authz/allow"));
    assert_eq!(event["result"]["allowed"], json!(true));
    assert_eq!(event["masked"], json!(["/input/merchant"]));
    assert_eq!(event["input"]["parsed_body"]["merchant"], json!("m-123"));
    assert!(event["requested_by"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let r = raw_exchange(
        stream,
        &request(
            "POST",
            "/",
            &[],
            br#"{"role": "customer", "amount": 250, "currency": "EUR", "merchant": "m-123"}"#,
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.text()),
        (200, "true\n".to_string()),
        "--set default_decision"
    );
    server.signal("TERM");
    assert_eq!(server.exit_code().await, Some(0));
    assert!(Path::new(&config).exists());
}

#[tokio::test]
async fn the_shipped_deploy_config_starts_verdict() {
    let config = repo().join("deploy/verdict.yaml");
    let mut server = Running::spawn_with_env(
        &[
            "-c",
            config.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
        ],
        &[("NODE_NAME", "edge-7")],
    );
    let addr = server.address().await;
    let warnings: Vec<&String> = server
        .seen
        .iter()
        .filter(|l| l.contains("\"WARN\""))
        .collect();
    assert!(
        warnings.is_empty(),
        "the example config warns: {warnings:?}"
    );
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let r = raw_exchange(stream, &request("GET", "/v1/config", &[], b"")).await;
    let labels = &r.json()["result"]["labels"];
    assert_eq!(labels["app"], json!("payment-gateway"));
    assert_eq!(labels["node"], json!("edge-7"), "${{NODE_NAME}} expanded");
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let r = raw_exchange(stream, &request("GET", "/health/ready", &[], b"")).await;
    assert_eq!(r.status, 200);
    // The config's ext_authz listener is up and healthy.
    let started: Json = server
        .seen
        .iter()
        .find(|l| l.contains("server started"))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap();
    let grpc_addr = started["grpc_addr"].as_str().unwrap();
    let channel = common::grpc::connect(grpc_addr).await;
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: "envoy.service.auth.v3.Authorization".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.signal("TERM");
    assert_eq!(server.exit_code().await, Some(0));
}

#[test]
fn bad_flags_exit_2_and_bad_flag_values_exit_64() {
    let out = verdict(&["run", "--log-level", "loud"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("'loud'"),
        "{out:?}"
    );
    let out = verdict(&["run", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = verdict(&["run", "--addr", "127.0.0.1:0", "--eval-timeout-ms", "0"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--eval-timeout-ms must be positive"));
}
