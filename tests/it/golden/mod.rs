//! Every exchange recorded from OPA 1.9 in the shared recordings (`../shared/opa-golden`,
//! reference data beside the repository, never copied into it) replayed against verdict, and
//! counted: the HTTP exchanges of golden.jsonl (instances A, B, C in process; D, D2, D3
//! against a local bundle server) and the captures beside them (Envoy `Check`s, uploads,
//! bundle polling, signing, start-up errors, reflection).
//!
//! Each exchange verdict does not answer as OPA did is listed with its reason in
//! tests/golden/KNOWN-GAPS.md. The test fails when an unlisted exchange differs and when a
//! listed one starts matching, so the list can only shrink. What may differ without being a
//! difference is in `normalize`.
//!
//! `VERDICT_GOLDEN_VERBOSE=1` prints how each listed exchange still differs.
//!
//! The recordings are found through `VERDICT_GOLDEN_DIR` (`.ci/run` sets it), else beside the
//! repository; without them the test says it skipped, and fails under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod captures;
mod http;
mod normalize;
mod remote;
mod signed;
mod upload;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value as Json;

use crate::common;

const DIR_ENV: &str = "VERDICT_GOLDEN_DIR";

fn recordings() -> Option<PathBuf> {
    let dir = std::env::var_os(DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join("../shared/opa-golden"));
    if dir.join("golden.jsonl").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").map_or(true, |ci| ci != "true"),
        "golden: OPA's recordings are not at {} (set {DIR_ENV} to ../shared/opa-golden)",
        dir.display()
    );
    println!(
        "golden: SKIPPED: OPA's recordings are not at {} (set {DIR_ENV})",
        dir.display()
    );
    None
}

/// Exchange name -> reason, from the table rows of KNOWN-GAPS.md ("| `name` | reason |").
fn known_gaps() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(common::golden("KNOWN-GAPS.md")).unwrap();
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

/// The name of the exchange a recorded file holds: its name without the extension.
fn exchange_name(file: &str) -> Option<String> {
    if file == "README.md" || file == "golden.jsonl" {
        return None;
    }
    [".grpc.txt", ".http", ".txt", ".log", ".pb"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_opa_exchange_against_the_ledger() {
    let Some(dir) = recordings() else {
        return;
    };
    let mut recorded = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            if let Some(name) = exchange_name(&entry.file_name().to_string_lossy()) {
                recorded.insert(name);
            }
        }
    }
    let cases: Vec<http::Case> = std::fs::read_to_string(dir.join("golden.jsonl"))
        .unwrap()
        .lines()
        .map(|line| http::parse(&serde_json::from_str::<Json>(line).unwrap()))
        .collect();
    for case in &cases {
        assert!(
            recorded.contains(&case.name),
            "golden.jsonl holds {}, which has no .http file",
            case.name
        );
    }
    let (local, served): (Vec<_>, Vec<_>) = cases
        .into_iter()
        .partition(|c| ["A", "B", "C"].contains(&c.instance.as_str()));
    let mut outcomes: BTreeMap<String, Option<String>> = BTreeMap::new();
    outcomes.extend(http::replay(&dir, &local).await);
    outcomes.extend(remote::replay(&dir, &served).await);
    let captures: Vec<String> = recorded
        .iter()
        .filter(|name| !outcomes.contains_key(*name))
        .cloned()
        .collect();
    outcomes.extend(captures::replay(&dir, &captures).await);
    assert_eq!(
        outcomes.keys().collect::<BTreeSet<_>>(),
        recorded.iter().collect::<BTreeSet<_>>(),
        "every recorded exchange is replayed"
    );

    let gaps = known_gaps();
    for name in gaps.keys() {
        assert!(
            recorded.contains(name),
            "KNOWN-GAPS.md lists {name}, which is not a recorded exchange"
        );
    }
    let mut failures = Vec::new();
    let mut matched = 0;
    for (name, outcome) in &outcomes {
        match (outcome, gaps.get(name)) {
            (None, None) => matched += 1,
            (Some(problem), None) => failures.push(format!("{name}: {problem}")),
            (None, Some(_)) => failures.push(format!(
                "{name}: now matches OPA; remove it from tests/golden/KNOWN-GAPS.md"
            )),
            (Some(problem), Some(_)) => {
                if std::env::var_os("VERDICT_GOLDEN_VERBOSE").is_some() {
                    println!("listed: {name}: {problem}");
                }
            }
        }
    }
    println!(
        "golden: {matched}/{} recorded OPA 1.9 exchanges match ({} listed in KNOWN-GAPS.md)",
        outcomes.len(),
        gaps.len()
    );
    assert!(
        failures.is_empty(),
        "{} exchanges differ from OPA unlike the ledger says ({matched} of {} match):\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}
