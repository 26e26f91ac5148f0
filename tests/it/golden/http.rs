//! Instances A, B and C of the recording: HTTP exchanges replayed against verdict configured
//! as OPA was, compared by status, the headers that carry meaning and the normalised body.
//!
//! The replay is stateful, as the recording was: each instance is one server, and cases run in
//! the recorded order, so the Data API writes (`data-put-*`, `data-patch-*`, `data-delete*`)
//! build on one another and run after the reads of the whole document recorded before them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use super::normalize;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use base64::Engine as _;
use common::{recorded_request, request, test_config, Server};
use serde_json::Value as Json;
use verdict::bundle::Source;
use verdict::config::Config;

pub struct Case {
    pub name: String,
    pub instance: String,
    pub request: Vec<u8>,
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

/// A recorded case of golden.jsonl.
pub fn parse(c: &Json) -> Case {
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
        instance: c["instance"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_string(),
        request: recorded_request(req),
        status: resp["status"].as_u64().unwrap() as u16,
        headers: response_headers,
        body: expected_body,
    }
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Keeps failure reports readable when a body is a page long.
pub fn clip(s: &str) -> String {
    if s.chars().count() > 600 {
        format!("{}...", s.chars().take(600).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Both texts from a little before where they first differ, clipped: long bodies that differ
/// late show where.
pub fn clip_both(ours: &str, theirs: &str) -> (String, String) {
    let same = ours
        .chars()
        .zip(theirs.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let from = same.saturating_sub(200);
    let window = |s: &str| {
        let rest: String = s.chars().skip(from).collect();
        let prefix = if from > 0 { "..." } else { "" };
        format!("{prefix}{}", clip(&rest))
    };
    (window(ours), window(theirs))
}

async fn instance(kind: &str, dir: &Path, pushed_data: &Path) -> Server {
    let (mut config, source) = match kind {
        "A" => {
            let (mut config, _) =
                Config::load(Some(&dir.join("fixtures/config-golden.yaml")), &[]).unwrap();
            config.verdict = test_config().verdict;
            let source = Source {
                name: "payment-bundle.tar.gz".into(),
                ..Source::path(dir.join("fixtures/payment-bundle.tar.gz"))
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
                ..Source::path(dir.join("fixtures/bundle"))
            };
            (config, source)
        }
        other => panic!("no instance {other}"),
    };
    // OPA was run without `--watch`; verdict watches unless told not to (`--no-watch`).
    config.verdict.watch = false;
    // Each run starts from no pushed data, as the recorded OPA did, and leaves none behind.
    config.remote.persistence_directory = pushed_data.join(kind);
    Server::start(config, vec![source]).await
}

/// Compares one exchange; `None` when verdict answered as OPA did.
async fn mismatch(server: &Server, case: &Case) -> Option<String> {
    // The exchange is HTTP's contract alone: it runs on the router in process.
    compare(server.in_process(&case.request).await, case)
}

/// Compares verdict's answer with OPA's recorded one; `None` when they are the same.
pub fn compare(got: common::RawResponse, case: &Case) -> Option<String> {
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
    let opa_type = case.headers.get("content-type").map(String::as_str);
    let families = normalize::family_names(opa_type, &case.body);
    let (ours, theirs) = (
        normalize::body(got.header("content-type"), &body, Some(&families)),
        normalize::body(opa_type, &case.body, Some(&families)),
    );
    if ours != theirs {
        let (ours, theirs) = clip_both(&ours, &theirs);
        problems.push(format!(
            "body\n    verdict: {ours:?}\n    OPA:     {theirs:?}"
        ));
    }
    (!problems.is_empty()).then(|| problems.join("\n  "))
}

/// Replays the cases of instances A, B and C: each case's name and what differs, if anything.
pub async fn replay(dir: &Path, cases: &[Case]) -> Vec<(String, Option<String>)> {
    let pushed_data = tempfile::tempdir().unwrap();
    let mut servers = BTreeMap::new();
    for kind in ["A", "B", "C"] {
        servers.insert(kind, instance(kind, dir, pushed_data.path()).await);
    }
    for (before, ..) in UNRECORDED {
        assert!(
            cases.iter().any(|c| c.name == *before),
            "UNRECORDED precedes {before}, which is not a recorded case"
        );
    }
    let mut outcomes = Vec::new();
    for case in cases {
        let server = &servers[case.instance.as_str()];
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
        outcomes.push((case.name.clone(), mismatch(server, case).await));
    }
    for (_, server) in servers {
        server.stop().await;
    }
    outcomes
}
