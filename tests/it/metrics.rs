//! `GET /metrics` over a real socket: OPA's families and names, verdict's decision counters
//! with bounded labels, and output that Prometheus' own `promtool check metrics` accepts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{test_config, Server};
use serde_json::json;

pub(crate) async fn serve() -> Server {
    let config = test_config();
    let sources = verdict::app::sources(&config).unwrap();
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
    // Below a rule a client can write anything: counted under the rule it reads into.
    decide(&server, "/v1/data/payment/decision/m-secret-merchant", 100).await;
    assert_eq!(
        common::get(server.url("/health")).await.unwrap().status(),
        200
    );

    let r = common::get(server.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    );
    let text = r.text().await.unwrap();
    let expect = [
        (
            r#"http_request_duration_seconds_count{code="200",handler="v1/data",method="post"}"#,
            6.0,
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
            r#"verdict_decisions_total{outcome="undefined",path="payment/decision"}"#,
            1.0,
        ),
        (
            r#"verdict_decisions_total{outcome="undefined",path="other"}"#,
            2.0,
        ),
        ("verdict_evaluation_duration_seconds_count", 6.0),
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
async fn a_diagnostic_address_serves_health_and_metrics_and_nothing_else() {
    let mut config = test_config();
    config.verdict.diagnostic_addr = vec!["127.0.0.1:0".into()];
    let sources = verdict::app::sources(&config).unwrap();
    let server = Server::start(config, sources).await;
    let diagnostic = server.diagnostic_addr.clone().unwrap();
    assert_ne!(diagnostic, server.addr);
    decide(&server, "/v1/data/payment/decision", 100).await;

    let at = |path: &str| format!("http://{diagnostic}{path}");
    let metrics = common::get(at("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    let decided = r#"verdict_decisions_total{outcome="allow",path="payment/decision"}"#;
    assert_eq!(sample(&text, decided), Some(1.0), "the API's decision");
    assert_eq!(common::get(at("/health")).await.unwrap().status(), 200);
    let ready = common::get(at("/health?bundles")).await.unwrap();
    assert_eq!(ready.status(), 200);
    // No policy, no data, no decisions there: Go's 404, as OPA's diagnostic server answers.
    for path in ["/v1/data/payment/decision", "/v1/policies", "/v1/config"] {
        let r = common::get(at(path)).await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.text().await.unwrap(), "404 page not found\n");
    }
    let posted = common::http()
        .post(at("/v1/data/payment/decision"))
        .json(&json!({"input": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);
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

/// PromQL's own words: what an identifier outside braces is when it is not a metric.
const PROMQL_WORDS: [&str; 24] = [
    "sum",
    "rate",
    "irate",
    "increase",
    "max",
    "min",
    "avg",
    "count",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "histogram_quantile",
    "label_values",
    "topk",
    "bottomk",
    "and",
    "or",
    "unless",
    "offset",
    "bool",
    "clamp_min",
];

/// Metric names in a PromQL expression: every identifier outside strings, label matchers,
/// ranges, grouping clauses and numbers that is not a function or keyword.
fn metric_names(expr: &str) -> Vec<String> {
    let hidden = regex::Regex::new(
        r#""[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)|\b\d[0-9.eE]*"#,
    )
    .unwrap();
    let bare = hidden.replace_all(expr, " ");
    let ident = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    let label_values =
        regex::Regex::new(r"label_values\(\s*[A-Za-z_:][A-Za-z0-9_:]*\s*,\s*([A-Za-z_]+)").unwrap();
    ident
        .find_iter(&bare)
        .map(|m| m.as_str())
        .filter(|w| !PROMQL_WORDS.contains(w))
        .filter(|w| {
            // `label_values(metric, label)`: the label is no metric.
            !label_values.captures_iter(expr).any(|c| &c[1] == *w)
        })
        .map(str::to_string)
        .collect()
}

/// The labels an expression selects on or groups by, with the metric each belongs to (`None`
/// for a grouping, which may name a label of any metric of the expression), and the value of
/// each `=` matcher.
fn labels_used(expr: &str) -> Vec<(Option<String>, String, Option<String>)> {
    let selector = regex::Regex::new(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}").unwrap();
    let matcher =
        regex::Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)""#).unwrap();
    let grouping = regex::Regex::new(r"\b(?:by|without)\s*\(([^)]*)\)").unwrap();
    let mut used = Vec::new();
    for s in selector.captures_iter(expr) {
        for m in matcher.captures_iter(&s[2]) {
            let value = (&m[2] == "=").then(|| m[3].to_string());
            used.push((Some(s[1].to_string()), m[1].to_string(), value));
        }
    }
    for g in grouping.captures_iter(expr) {
        for label in g[1].split(',').map(str::trim).filter(|l| !l.is_empty()) {
            used.push((None, label.to_string(), None));
        }
    }
    if let Some(c) =
        regex::Regex::new(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_]+)")
            .unwrap()
            .captures(expr)
    {
        used.push((Some(c[1].to_string()), c[2].to_string(), None));
    }
    used
}

#[tokio::test]
async fn the_dashboard_queries_only_metrics_and_labels_verdict_emits() {
    let text = scrape_after_a_decision().await;
    // Every family, with the series names a histogram adds, and the labels of each series.
    let mut emitted = std::collections::BTreeSet::new();
    let mut labels: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    let series = regex::Regex::new(r#"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? "#).unwrap();
    let label = regex::Regex::new(r#"([A-Za-z_][A-Za-z0-9_]*)=""#).unwrap();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            emitted.insert(name.to_string());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    emitted.insert(format!("{name}{suffix}"));
                }
            }
        } else if let Some(c) = series.captures(line) {
            let names = labels.entry(c[1].to_string()).or_default();
            if let Some(pairs) = c.get(2) {
                names.extend(
                    label
                        .captures_iter(pairs.as_str())
                        .map(|l| l[1].to_string()),
                );
            }
        }
    }
    // The scrape config gives every target its `node`.
    let scrape = std::fs::read_to_string(common::repo().join("deploy/prometheus/prometheus.yml"));
    assert!(
        scrape.unwrap().contains("node: "),
        "the scrape config sets no node label"
    );
    let outcomes = ["allow", "deny", "defined", "undefined", "error"];

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
        for name in &names {
            assert!(emitted.contains(name), "{name} (in {expr}) is not emitted");
            used.insert(name.clone());
        }
        let known = |metric: &str, l: &str| {
            l == "node" || labels.get(metric).is_some_and(|set| set.contains(l))
        };
        for (metric, l, value) in labels_used(expr) {
            let ok = match &metric {
                Some(m) => known(m, &l),
                None => names.iter().any(|m| known(m, &l)),
            };
            assert!(ok, "label {l} (in {expr}) is not on {metric:?}");
            match (l.as_str(), value) {
                ("outcome", Some(v)) => assert!(outcomes.contains(&v.as_str()), "{v} in {expr}"),
                ("handler", Some(v)) => {
                    assert!(text.contains(&format!("handler=\"{v}\"")), "{v} in {expr}")
                }
                _ => {}
            }
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
        "verdict_bundle_failures_total",
    ] {
        assert!(used.contains(needed), "the dashboard does not use {needed}");
    }
    // The checks can fail: a made-up label, value or bare metric is caught.
    assert_eq!(metric_names("max(made_up_total) / 2"), ["made_up_total"]);
    let wrong = labels_used(r#"sum by (shoe) (verdict_decisions_total{outcome="maybe"})"#);
    assert!(wrong.iter().any(|(_, l, _)| l == "shoe"));
    assert!(wrong.iter().any(|(_, _, v)| v.as_deref() == Some("maybe")));
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
