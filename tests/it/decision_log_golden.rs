//! The console decision log (`decision_logs.console: true`) against OPA 1.9's own lines: the
//! Data API requests of tests/golden/cases.jsonl are replayed, in the recorded order, against
//! the real binary configured as OPA's instance A was, and each "Decision Log" line verdict
//! prints must equal OPA's, but for what varies between runs (ids, peers, times, timers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::running::Running;
use common::{golden, raw_exchange, recorded_request, WAIT};
use serde_json::{json, Value as Json};

/// Cases where verdict logs no line or a different one, with the reason; they are not
/// replayed.
const KNOWN_GAPS: &[(&str, &str)] = &[
    (
        "data-post-path-quote",
        "OPA logs a decision for a path it cannot parse (error invalid_parameter); verdict refuses the request before deciding",
    ),
    (
        "query-post-unsafe",
        "OPA reports every unsafe variable of the query (x and _); verdict's compile check reports the first",
    ),
    (
        "enc-number-fidelity",
        "OPA logs numbers as the client wrote them (1.0, 1e3); verdict keeps their value (1, 1000), as in its responses (tests/golden/KNOWN-GAPS.md)",
    ),
    (
        "data-post-path-escaped",
        "OPA logs the path still percent-escaped (limits/roles/cust%6Fmer); verdict logs the path it decided (limits/roles/customer)",
    ),
];

/// Fields that vary between two runs or two servers.
fn normalize(mut line: Json) -> Json {
    let o = line.as_object_mut().unwrap();
    for field in [
        "decision_id",
        "req_id",
        "requested_by",
        "time",
        "timestamp",
        "metrics",
    ] {
        o.remove(field);
    }
    let labels = o["labels"].as_object_mut().unwrap();
    labels.remove("id");
    labels.remove("version");
    line
}

#[tokio::test]
async fn console_lines_are_opas() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    // OPA's instance A (fixtures/config-golden.yaml) without its Envoy plugin's fixed port.
    let file = json!({
        "labels": {"app": "payment-gateway", "region": "edge-1"},
        "decision_logs": {"console": true, "request_context": {"http": {"headers": ["X-Request-Id"]}}},
        "persistence_directory": dir.path().join("persist"),
    });
    std::fs::write(&config, file.to_string()).unwrap();
    let fixtures = golden("fixtures");
    let mut server = Running::spawn_in(
        &fixtures,
        &[
            "-c",
            config.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "-b",
            "payment-bundle.tar.gz",
        ],
        &[],
    );
    let addr = server.address().await;

    let mut compared = 0;
    let mut mismatches = Vec::new();
    for line in std::fs::read_to_string(golden("cases.jsonl"))
        .unwrap()
        .lines()
    {
        let case: Json = serde_json::from_str(line).unwrap();
        let (req, name) = (&case["request"], case["name"].as_str().unwrap());
        let path = req["path"].as_str().unwrap();
        let query_api = path.starts_with("/v1/query");
        let data_api = path.starts_with("/v1/data") || path.starts_with("/v0/data") || query_api;
        let method = req["method"].as_str().unwrap();
        // Writes are left out, and so are the reads that depend on them.
        if !case["instance"].as_str().unwrap().starts_with('A')
            || KNOWN_GAPS.iter().any(|(g, _)| *g == name)
            || !data_api
            || !["GET", "POST"].contains(&method)
            || ["data-get-after-patch", "policies-query-new-module"].contains(&name)
        {
            continue;
        }
        let opa: Vec<Json> = case["logs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .filter(|l| l.contains("\"Decision Log\""))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        raw_exchange(stream, &recorded_request(req)).await;
        let Some(want) = opa.into_iter().next() else {
            continue;
        };
        // The next line verdict logs belongs to this request: requests go one at a time, and a
        // stray line (a decision OPA did not log) would show as the wrong one here.
        let got = tokio::time::timeout(WAIT, server.wait_for_log("\"Decision Log\""))
            .await
            .unwrap_or_else(|_| panic!("{name}: no decision log line"));
        let (mut got, mut want) = (normalize(got), normalize(want));
        if query_api {
            // OPA logs the query as its compiler prints it back (`assign(x, ...)`); verdict
            // logs the text the client sent. The rest of the line must be OPA's.
            let sent = got.as_object_mut().unwrap().remove("query");
            assert!(sent.as_ref().is_some_and(Json::is_string), "{name}: {got}");
            want.as_object_mut().unwrap().remove("query");
        }
        compared += 1;
        if got != want {
            mismatches.push(format!("{name}:\n  verdict {got}\n  OPA     {want}"));
        }
    }
    assert!(compared >= 25, "only {compared} lines compared");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} lines differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
