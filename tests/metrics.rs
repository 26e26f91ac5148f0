//! `GET /metrics` over a real socket: OPA's families and names, verdict's decision counters
//! with bounded labels, and output that Prometheus' own `promtool check metrics` accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{test_config, Server};
use serde_json::json;

async fn serve() -> Server {
    let config = test_config();
    let sources = verdict::cli::run::sources(&config).unwrap();
    Server::start(config, sources).await
}

async fn decide(server: &Server, path: &str, amount: u64) {
    let input = json!({"input": {"method": "POST", "path": "/api/payment", "role": "customer",
        "amount": amount, "currency": "EUR", "merchant": "m-secret-merchant", "country": "DE",
        "velocity": 1}});
    let r = common::http()
        .post(server.url(path))
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// `/metrics` of a fresh server after one payment decision.
async fn scrape_after_a_decision() -> String {
    let server = serve().await;
    decide(&server, "/v1/data/payment/decision", 100).await;
    common::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_and_decisions_with_bounded_labels() {
    let server = serve().await;
    decide(&server, "/v1/data/payment/decision", 100).await;
    decide(&server, "/v1/data/payment/decision", 900_000).await;
    decide(&server, "/v1/data/payment/allow", 100).await;
    // Paths the policy does not define share one label, whatever a client makes up.
    decide(&server, "/v1/data/payment/made-up-1", 100).await;
    decide(&server, "/v1/data/made/up/2", 100).await;
    assert_eq!(
        common::get(server.url("/health")).await.unwrap().status(),
        200
    );

    let r = common::get(server.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text().await.unwrap();
    let expect = [
        (
            r#"http_request_duration_seconds_count{code="200",handler="v1/data",method="post"}"#,
            5.0,
        ),
        (
            r#"http_request_duration_seconds_count{code="200",handler="health",method="get"}"#,
            1.0,
        ),
        (
            r#"verdict_decisions_total{outcome="allow",path="payment/decision"}"#,
            1.0,
        ),
        (
            r#"verdict_decisions_total{outcome="deny",path="payment/decision"}"#,
            1.0,
        ),
        (
            r#"verdict_decisions_total{outcome="allow",path="payment/allow"}"#,
            1.0,
        ),
        (
            r#"verdict_decisions_total{outcome="undefined",path="other"}"#,
            2.0,
        ),
        ("verdict_evaluation_duration_seconds_count", 5.0),
        (r#"bundle_loaded_counter{name="bundles/payment"}"#, 1.0),
        (r#"plugin_status_gauge{name="bundle",status="OK"}"#, 1.0),
    ];
    for (series, want) in expect {
        assert_eq!(sample(&text, series), Some(want), "{series} in:\n{text}");
    }
    // OPA's buckets, and the activation time as Unix nanoseconds.
    assert!(text.contains(
        r#"http_request_duration_seconds_bucket{code="200",handler="v1/data",method="post",le="0.0005"}"#
    ));
    let activation = text
        .lines()
        .find(|l| l.starts_with("last_success_bundle_activation{"))
        .unwrap();
    assert!(
        activation.contains(r#"active_revision="payment-2026.11.24-1""#),
        "{activation}"
    );
    assert!(sample(&text, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(sample(&text, "process_open_fds").unwrap() > 0.0);
    // No input value and no made-up path reaches a label.
    assert!(!text.contains("m-secret-merchant"));
    assert!(!text.contains("made-up") && !text.contains("made/up"));
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let text = scrape_after_a_decision().await;
    // Debian's prometheus package; .ci/run installs it, as README's set-up does.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("promtool not found ({e}): apt-get install prometheus"));
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool's linter objects to three names OPA chose (`bundle_loaded_counter` is not
    // `..._total`, and so on). Dashboards and alerts written for OPA use those names, so they
    // stay; every other line of its report would be a real fault, a parse error included.
    let opa_names = [
        "bundle_loaded_counter",
        "bundle_failed_load_counter",
        "plugin_status_gauge",
    ];
    let faults: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !opa_names.iter().any(|n| l.starts_with(&format!("{n} "))))
        .collect();
    assert!(faults.is_empty(), "promtool: {report}");
}

/// Metric names in a PromQL expression: identifiers followed by a selector or a range.
fn metric_names(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*[\{\[]").unwrap();
    let label_values = regex::Regex::new(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)").unwrap();
    re.captures_iter(expr)
        .chain(label_values.captures_iter(expr))
        .map(|c| c[1].to_string())
        .collect()
}

#[tokio::test]
async fn the_dashboard_queries_only_metrics_verdict_emits() {
    let text = scrape_after_a_decision().await;
    // Every family, with the series names a histogram adds.
    let mut emitted = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        emitted.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                emitted.insert(format!("{name}{suffix}"));
            }
        }
    }
    let dashboard: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::repo().join("deploy/grafana/verdict-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        exprs.push(var["query"]["query"].as_str().unwrap().to_string());
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut used = std::collections::BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            assert!(emitted.contains(&name), "{name} (in {expr}) is not emitted");
            used.insert(name);
        }
    }
    // What the dashboard must show: decision rate and outcomes, latency, bundle revision and
    // failures, the decision log spool.
    for needed in [
        "verdict_decision_log_spool_events",
        "verdict_decision_log_dropped_events_total",
        "verdict_decisions_total",
        "http_request_duration_seconds_bucket",
        "verdict_evaluation_duration_seconds_bucket",
        "last_success_bundle_activation",
        "bundle_failed_load_counter",
    ] {
        assert!(used.contains(needed), "the dashboard does not use {needed}");
    }
}

#[test]
fn the_prometheus_scrape_config_is_valid() {
    let out = Command::new("promtool")
        .args(["check", "config", "--syntax-only"])
        .arg(common::repo().join("deploy/prometheus/prometheus.yml"))
        .output()
        .unwrap_or_else(|e| panic!("promtool not found ({e}): apt-get install prometheus"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
