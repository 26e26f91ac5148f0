//! Decision log tests' shared pieces: verdict configured to upload to a local collector,
//! decisions made over HTTP, and samples read from `/metrics`.

use std::path::Path;

use serde_json::{json, Value as Json};
use verdict::bundle::Source;
use verdict::config::Config;

use super::{golden, http, WAIT};

/// verdict configured as OPA's instance D was (tests/golden), uploading to `collector` often.
pub fn config(collector: &str, dir: &Path, extra: Json) -> Config {
    let mut tree = json!({
        "labels": {"app": "payment-gateway"},
        "services": {"ctl": {"url": collector, "response_header_timeout_seconds": 1}},
        "decision_logs": {
            "service": "ctl",
            "reporting": {"min_delay_seconds": 0.05, "max_delay_seconds": 0.1},
            "request_context": {"http": {"headers": ["X-Request-Id"]}}
        },
        "persistence_directory": dir,
        "verdict": {"addr": ["127.0.0.1:0"], "watch": false}
    });
    merge(&mut tree, extra);
    Config::from_tree(tree).unwrap().0
}

pub fn merge(into: &mut Json, from: Json) {
    match (into, from) {
        (Json::Object(a), Json::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Json::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

pub fn payment_bundle() -> Source {
    Source {
        name: "payment-bundle.tar.gz".into(),
        ..Source::path(golden("fixtures/payment-bundle.tar.gz"))
    }
}

pub const INPUT: &str =
    r#"{"role": "customer", "amount": 250, "currency": "EUR", "merchant": "m-123"}"#;

/// POSTs one decision; returns the status and the body.
pub async fn decide(addr: &str, path: &str, input: &str) -> (u16, Json) {
    let response = http()
        .post(format!("http://{addr}/v1/data/{path}"))
        .header("X-Request-Id", "req-7")
        .body(format!(r#"{{"input": {input}}}"#))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Makes `n` allowed decisions, 10 at a time, and returns their decision ids.
pub async fn decisions(addr: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for batch in 0..n.div_ceil(10) {
        let calls = (0..10.min(n - batch * 10)).map(|_| decide(addr, "payment/allow", INPUT));
        for (status, body) in futures_util::future::join_all(calls).await {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["result"], json!(true));
            ids.push(body["decision_id"].as_str().unwrap().to_string());
        }
    }
    ids
}

/// The value of one sample line of `/metrics`, 0 when absent.
pub async fn metric(addr: &str, sample: &str) -> f64 {
    let text = super::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Asks `/metrics` until `want` holds of `sample`: the spool's gauges move after the
/// collector has answered, so the collector alone cannot tell.
pub async fn wait_metric(addr: &str, sample: &str, want: impl Fn(f64) -> bool) -> f64 {
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let v = metric(addr, sample).await;
            if want(v) {
                return v;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{sample} never reached the wanted value"))
}

/// `verdict run` arguments for the real binary on the golden bundle, uploading to `collector`
/// often, its config file and persistence directory in `dir`.
pub fn binary_args(dir: &Path, collector: std::net::SocketAddr) -> Vec<String> {
    let config_file = dir.join("config.json");
    let file = json!({
        "services": {"ctl": {"url": format!("http://{collector}")}},
        "decision_logs": {"service": "ctl", "reporting": {"min_delay_seconds": 0.05, "max_delay_seconds": 0.1}},
        "persistence_directory": dir.join("persist"),
    });
    std::fs::write(&config_file, file.to_string()).unwrap();
    let bundle = golden("fixtures/payment-bundle.tar.gz");
    let (config, bundle) = (config_file.display(), bundle.display());
    [
        "-c",
        &config.to_string(),
        "--addr",
        "127.0.0.1:0",
        "-b",
        &bundle.to_string(),
    ]
    .map(str::to_string)
    .to_vec()
}

/// One decision, or why there was none (the server is gone).
pub async fn try_decide(addr: &str) -> Result<String, reqwest::Error> {
    let body: Json = http()
        .post(format!("http://{addr}/v1/data/payment/allow"))
        .body(format!(r#"{{"input": {INPUT}}}"#))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["decision_id"].as_str().unwrap().to_string())
}
