//! Replays HTTP exchanges recorded from a real OPA 1.9 server (tests/golden/cases.jsonl)
//! against verdict configured the same way, and requires the same status, the same headers
//! that carry meaning, and the same body bytes, ignoring only what varies between runs
//! (decision ids, per-process ids, timings, the product version).
//!
//! Cases verdict cannot match are listed with their reason in tests/golden/KNOWN-GAPS.md. The
//! list can only shrink: a listed case that starts matching fails the test until it is removed.
//!
//! The replay is stateful, as the recording was: each instance is one server, and cases run in
//! the recorded order, so the Data API writes (`data-put-*`, `data-patch-*`, `data-delete*`)
//! build on one another and run after the reads of the whole document recorded before them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine as _;
use common::{golden, recorded_request, request, test_config, Server};
use regex::Regex;
use serde_json::Value as Json;
use verdict::bundle::Source;
use verdict::config::Config;

struct Case {
    name: String,
    instance: String,
    request: Vec<u8>,
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Requests OPA's recording made but did not keep, replayed before the named case so that the
/// state matches: (before case, method, path, body, expected status). Request 54 of instance A
/// created `/scratch/flags` (the bad-JSON PUT after it names that path, and `data-delete`
/// later removes it with a 204). Request 77 put the `scratch` policy that `policies-put-same`
/// puts again unchanged, and request 87 deleted it again before `policies-delete-missing`.
const UNRECORDED: &[(&str, &str, &str, &str, u16)] = &[
    (
        "data-put-bad-json",
        "PUT",
        "/v1/data/scratch/flags",
        r#"{"beta": true}"#,
        204,
    ),
    (
        "policies-put-same",
        "PUT",
        "/v1/policies/scratch",
        "package scratch\n\nvip_merchant(m) if data.scratch.merchants[m].tier == \"platinum\"\n",
        200,
    ),
    (
        "policies-delete-missing",
        "DELETE",
        "/v1/policies/scratch",
        "",
        200,
    ),
];

/// Headers whose values a client acts on; Date and lengths vary or follow from the body.
const COMPARED_HEADERS: &[&str] = &["content-type", "content-encoding", "location", "vary"];

fn load_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(golden("cases.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let c: Json = serde_json::from_str(line).unwrap();
            let req = &c["request"];
            let resp = &c["response"];
            let response_headers = resp["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|kv| {
                    (
                        kv[0].as_str().unwrap().to_ascii_lowercase(),
                        kv[1].as_str().unwrap().to_string(),
                    )
                })
                .filter(|(k, _)| COMPARED_HEADERS.contains(&k.as_str()))
                .collect();
            let expected_body = match resp["body_b64"].as_str() {
                Some(b64) => gunzip(
                    &base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap(),
                ),
                None => resp["body"].as_str().unwrap_or("").as_bytes().to_vec(),
            };
            Case {
                name: c["name"].as_str().unwrap().to_string(),
                instance: c["instance"].as_str().unwrap()[..1].to_string(),
                request: recorded_request(req),
                status: resp["status"].as_u64().unwrap() as u16,
                headers: response_headers,
                body: expected_body,
            }
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Case name -> reason, from the table rows of KNOWN-GAPS.md ("| `name` | reason |").
fn known_gaps() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(golden("KNOWN-GAPS.md")).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(name, reason)| {
            (
                name.to_string(),
                reason.trim_end_matches('|').trim().to_string(),
            )
        })
        .collect()
}

/// Removes what legitimately differs between two servers and two runs.
fn normalize(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).into_owned();
    let rules = [
        (r#""decision_id":\s*"[^"]*",\s*"#, ""),
        (r#",?\s*"decision_id":\s*"[^"]*""#, ""),
        (r"\{\s+\}", "{}"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<uuid>",
        ),
        (r#""version":(\s*)"[^"]*""#, r#""version":$1"<version>""#),
        // OPA was recorded without build flags (empty fields); verdict fills them at build.
        (
            r#""build_(commit|timestamp|hostname)":(\s*)"[^"]*""#,
            r#""build_$1":$2"<build>""#,
        ),
        (r#""(timer_[a-z_]+)":(\s*)\d+"#, r#""$1":${2}0"#),
    ];
    rules.iter().fold(text, |t, (pattern, with)| {
        Regex::new(pattern)
            .unwrap()
            .replace_all(&t, *with)
            .into_owned()
    })
}

/// Keeps failure reports readable when a body is a page long.
fn clip(s: &str) -> String {
    if s.chars().count() > 600 {
        format!("{}...", s.chars().take(600).collect::<String>())
    } else {
        s.to_string()
    }
}

async fn instance(kind: &str, pushed_data: &std::path::Path) -> Server {
    let (mut config, source) = match kind {
        "A" => {
            let (mut config, _) =
                Config::load(Some(&golden("fixtures/config-golden.yaml")), &[]).unwrap();
            config.verdict = test_config().verdict;
            let source = Source {
                name: "payment-bundle.tar.gz".into(),
                ..Source::path(golden("fixtures/payment-bundle.tar.gz"))
            };
            (config, source)
        }
        "B" | "C" => {
            let mut config = test_config();
            if kind == "C" {
                config.default_decision = "/payment/allow".into();
            }
            let source = Source {
                name: "bundle".into(),
                ..Source::path(golden("fixtures/bundle"))
            };
            (config, source)
        }
        other => panic!("no instance {other}"),
    };
    // Each run starts from no pushed data, as the recorded OPA did, and leaves none behind.
    config.remote.persistence_directory = pushed_data.join(kind);
    Server::start(config, vec![source]).await
}

/// Compares one exchange; `None` when verdict answered as OPA did.
async fn mismatch(server: &Server, case: &Case) -> Option<String> {
    // The exchange is HTTP's contract alone: it runs on the router in process.
    let got = server.in_process(&case.request).await;
    let mut problems = Vec::new();
    if got.status != case.status {
        problems.push(format!("status {} (OPA {})", got.status, case.status));
    }
    for name in COMPARED_HEADERS {
        let ours = got.header(name).map(str::to_string);
        let theirs = case.headers.get(*name).cloned();
        if ours != theirs {
            problems.push(format!("header {name}: {ours:?} (OPA {theirs:?})"));
        }
    }
    let body = if got.header("content-encoding") == Some("gzip") {
        gunzip(&got.body)
    } else {
        got.body.clone()
    };
    let (ours, theirs) = (normalize(&body), normalize(&case.body));
    if ours != theirs {
        problems.push(format!(
            "body\n    verdict: {:?}\n    OPA:     {:?}",
            clip(&ours),
            clip(&theirs)
        ));
    }
    (!problems.is_empty()).then(|| problems.join("\n  "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opa_golden_exchanges_replay_identically() {
    let cases = load_cases();
    let gaps = known_gaps();
    assert!(cases.len() >= 80, "the recorded cases are all there");
    let pushed_data = tempfile::tempdir().unwrap();
    let mut servers = BTreeMap::new();
    for kind in ["A", "B", "C"] {
        servers.insert(kind.to_string(), instance(kind, pushed_data.path()).await);
    }
    let mut failures = Vec::new();
    let mut matched = 0;
    for case in &cases {
        let server = &servers[&case.instance];
        for (_, method, path, body, status) in UNRECORDED.iter().filter(|u| u.0 == case.name) {
            let got = server
                .raw(&request(method, path, &[], body.as_bytes()))
                .await;
            assert_eq!(
                got.status,
                *status,
                "unrecorded {method} {path}: {}",
                got.text()
            );
        }
        let result = mismatch(server, case).await;
        match (result, gaps.get(&case.name)) {
            (None, None) => matched += 1,
            (Some(problem), None) => failures.push(format!("{}: {problem}", case.name)),
            (None, Some(_)) => failures.push(format!(
                "{}: now matches OPA; remove it from tests/golden/KNOWN-GAPS.md",
                case.name
            )),
            (Some(_), Some(_)) => {}
        }
    }
    for (before, ..) in UNRECORDED {
        assert!(
            cases.iter().any(|c| c.name == *before),
            "UNRECORDED precedes {before}, which is not a recorded case"
        );
    }
    for name in gaps.keys() {
        assert!(
            cases.iter().any(|c| &c.name == name),
            "KNOWN-GAPS.md lists {name}, which is not a recorded case"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} exchanges differ from OPA ({matched} match):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn normalization_keeps_everything_but_ids_and_timings() {
    let a = br#"{"decision_id":"c952bddf-49c9-4e46-a9ce-cc84975c2a67","result":false}"#;
    assert_eq!(normalize(a), r#"{"result":false}"#);
    let b = br#"{"metrics":{"timer_rego_query_eval_ns":745510},"result":true}"#;
    assert_eq!(
        normalize(b),
        r#"{"metrics":{"timer_rego_query_eval_ns":0},"result":true}"#
    );
    assert_ne!(
        normalize(b"{\"result\":true}"),
        normalize(b"{\"result\":false}")
    );
}
