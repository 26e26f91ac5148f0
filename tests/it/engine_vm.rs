//! `verdict.engine: auto`: the bytecode VM serves the entrypoints verified to agree with the
//! interpreter, answers byte for byte as the interpreter does on the recorded payment
//! exchanges, and says in `/v1/status` and `/metrics` which engine serves what.

use crate::common;

use std::time::Duration;

use common::{golden, recorded_request, request, test_config, write_dir, Server};
use serde_json::Value as Json;
use verdict::bundle::Source;
use verdict::policy::vm::EngineChoice;

const WAIT: Duration = Duration::from_secs(120);

fn config(engine: EngineChoice) -> verdict::config::Config {
    let mut config = test_config();
    config.verdict.engine = engine;
    // Every VM answer is shadow-checked: a disagreement would show as a mismatch.
    config.verdict.engine_shadow_every = 1;
    config
}

/// Waits, off the async threads, until the active revision's entrypoints are verified.
async fn verified(server: &Server) {
    let state = server.state.clone();
    let done = tokio::task::spawn_blocking(move || {
        let snapshot = state.snapshot();
        snapshot
            .policy
            .fast_path()
            .is_some_and(|f| f.wait_verified(WAIT))
    })
    .await
    .unwrap();
    assert!(done, "verification finished");
}

async fn status_engines(server: &Server) -> Vec<Json> {
    let status = server
        .raw(&request("GET", "/v1/status", &[], b""))
        .await
        .json();
    status["result"]["engines"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn engine_of<'a>(engines: &'a [Json], path: &str) -> &'a str {
    engines
        .iter()
        .find(|e| e["path"] == path)
        .and_then(|e| e["engine"].as_str())
        .unwrap_or("absent")
}

/// A response as compared across engines: status and body, without what differs per request
/// (ids, timers, and the clock the payment policy reads when a payment has no timestamp).
fn comparable(response: &common::RawResponse) -> (u16, String) {
    fn strip(value: &mut Json) {
        if let Json::Object(o) = value {
            for key in ["decision_id", "metrics", "now_ns"] {
                o.remove(key);
            }
            o.values_mut().for_each(strip);
        }
    }
    let text = if response.header("content-encoding") == Some("gzip") {
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(response.body.as_slice()),
            &mut text,
        )
        .unwrap();
        text
    } else {
        response.text()
    };
    let body = match serde_json::from_str::<Json>(&text) {
        Ok(mut json) => {
            strip(&mut json);
            json.to_string()
        }
        _ => text,
    };
    (response.status, body)
}

#[tokio::test]
async fn payment_entrypoints_go_to_the_vm_and_answer_the_recorded_exchanges_as_the_interpreter() {
    let vm = Server::start(config(EngineChoice::Auto), common::payment_sources()).await;
    let interpreter =
        Server::start(config(EngineChoice::Interpreter), common::payment_sources()).await;
    verified(&vm).await;
    let engines = status_engines(&vm).await;
    assert_eq!(engine_of(&engines, "payment/decision"), "vm", "{engines:?}");
    assert_eq!(engine_of(&engines, "payment/allow"), "vm", "{engines:?}");
    assert_eq!(engine_of(&engines, "system/main"), "vm", "{engines:?}");
    // `with` in its rules: the ext_authz decision stays on the interpreter.
    assert_eq!(engine_of(&engines, "envoy/authz/allow"), "interpreter");
    assert!(status_engines(&interpreter).await.is_empty());

    let mut replayed = 0;
    for line in std::fs::read_to_string(golden("cases.jsonl"))
        .unwrap()
        .lines()
    {
        let case: Json = serde_json::from_str(line).unwrap();
        let req = &case["request"];
        let path = req["path"].as_str().unwrap_or("");
        let reads = matches!(req["method"].as_str(), Some("GET" | "POST"));
        if !reads || !(path.starts_with("/v1/data") || path == "/") {
            continue;
        }
        let raw = recorded_request(req);
        let (a, b) = (vm.raw(&raw).await, interpreter.raw(&raw).await);
        assert_eq!(comparable(&a), comparable(&b), "{}", case["name"]);
        replayed += 1;
    }
    assert!(replayed > 20, "only {replayed} exchanges replayed");

    let engines = status_engines(&vm).await;
    let decision = engines
        .iter()
        .find(|e| e["path"] == "payment/decision")
        .unwrap();
    assert!(decision["vm_decisions"].as_u64().unwrap() > 0, "{decision}");
    let metrics = vm.raw(&request("GET", "/metrics", &[], b"")).await.text();
    assert!(
        metrics.contains(r#"verdict_engine_entrypoints{engine="vm",path="payment/decision"} 1"#),
        "{metrics}"
    );
    // Every VM answer was re-run on the interpreter: none disagreed.
    assert!(
        tokio::task::spawn_blocking(|| verdict::policy::vm::shadow::wait_idle(WAIT))
            .await
            .unwrap()
    );
    for e in status_engines(&vm).await {
        assert_eq!(e["shadow_mismatches"], 0, "{e}");
    }
    vm.stop().await;
    interpreter.stop().await;
}

#[tokio::test]
async fn a_bundle_whose_test_rules_disagree_between_engines_stays_on_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    // The test's input reaches a rule body the engines evaluate differently (each reads the
    // clock at its own moment); the generated inputs cannot (`input[k]` hides the field).
    let policy = "package t\n\nk := \"a\"\n\nstamp := time.now_ns() if input[k] == \"now\"\n\nplain := input.b\n\ntest_stamp if stamp > 0 with input as {\"a\": \"now\"}\n";
    write_dir(
        dir.path(),
        &[
            (".manifest".into(), br#"{"roots": ["t"]}"#.to_vec()),
            ("t/t.rego".into(), policy.as_bytes().to_vec()),
        ],
    );
    let server = Server::start(
        config(EngineChoice::Auto),
        vec![Source::path(dir.path().to_path_buf())],
    )
    .await;
    verified(&server).await;
    let engines = status_engines(&server).await;
    assert_eq!(engine_of(&engines, "t/stamp"), "interpreter", "{engines:?}");
    assert_eq!(engine_of(&engines, "t/plain"), "vm", "{engines:?}");
    let reason = engines.iter().find(|e| e["path"] == "t/stamp").unwrap()["reason"].clone();
    assert!(reason.as_str().unwrap().contains("disagree"), "{reason}");
    // Still answered, by the interpreter.
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/t/stamp",
            &[],
            br#"{"input": {"a": "now"}}"#,
        ))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.json()["result"].as_u64().is_some(), "{}", r.text());
    server.stop().await;
}
