//! Deep policies over real sockets. Without recursion, a chain of rules still recurses on the
//! evaluator's stack: ~500 plain rules overflowed a 2 MiB thread and aborted the process. A
//! chain the guard admits is decided on every path of the real binary (the interpreter on a
//! blocking thread, the bytecode VM on an async worker, the Query API) and by `verdict eval`;
//! one past the limit is refused, at start and on reload, while the last good revision serves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::running::Running;
use common::{bundle_tar, raw_exchange, replace_file, request, simple_bundle, test_config, Server};
use serde_json::{json, Value as Json};
use verdict::bundle::Source;
use verdict::policy::guard::recursion::MAX_DEPTH;

/// Package `package`: `allow` reads `r0`, each `r<i>` reads `r<i+1>` through `link` (`{next}`
/// stands for it), and the last reads `input.x`.
fn chain(package: &str, n: usize, link: &str) -> String {
    let mut text = format!("package {package}\n\nallow := r0\n");
    for i in 0..n {
        let next = format!("r{}", i + 1);
        text.push_str(&format!("r{i} := {}\n", link.replace("{next}", &next)));
    }
    text.push_str(&format!("r{n} := input.x\n"));
    text
}

async fn post(addr: &str, path: &str, body: &[u8]) -> (u16, Json) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let response = raw_exchange(stream, &request("POST", path, &[], body)).await;
    (response.status, response.json())
}

async fn engine_report(addr: &str, path: &str) -> Json {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let status = raw_exchange(stream, &request("GET", "/v1/status", &[], b"")).await;
    let engines = status.json()["result"]["engines"].clone();
    engines
        .as_array()
        .and_then(|all| all.iter().find(|e| e["path"] == path).cloned())
        .unwrap_or(Json::Null)
}

#[tokio::test]
async fn a_long_chain_is_decided_by_both_engines_the_query_api_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    for package in ["c", "n"] {
        std::fs::create_dir_all(dir.path().join(package)).unwrap();
    }
    // 600 plain rules (past the ~500 that overflowed a 2 MiB thread on a release build), and
    // 100 rules each nesting a comprehension in two arrays. Loading a chain is quadratic in
    // its length (validation evaluates every rule once), so they stay this short.
    std::fs::write(dir.path().join("c/c.rego"), chain("c", 600, "{next}")).unwrap();
    let nested = chain("n", 100, "[y | some y in [[{next}]]][0][0]");
    std::fs::write(dir.path().join("n/n.rego"), nested).unwrap();
    let bundle = dir.path().to_str().unwrap();
    let input = br#"{"input": {"x": 5}}"#;

    let mut server = Running::spawn(&[
        "--addr",
        "127.0.0.1:0",
        "--set",
        "verdict.engine=interpreter",
        bundle,
    ]);
    let addr = server.address().await;
    for _ in 0..2 {
        assert_eq!(
            post(&addr, "/v1/data/c/allow", input).await,
            (200, json!({"result": 5}))
        );
    }
    let query = br#"{"query": "x := data.n.allow", "input": {"x": 7}}"#;
    assert_eq!(
        post(&addr, "/v1/query", query).await,
        (200, json!({"result": [{"x": 7}]}))
    );
    let (lines, code) = server.stop().await;
    assert_eq!(code, Some(0), "{lines:#?}");

    let out = crate::cli_habits::verdict_with_stdin(
        &[
            "eval",
            "-d",
            bundle,
            "--format",
            "raw",
            "data.n.allow",
            "-I",
        ],
        br#"{"x": 9}"#,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out, "9\n");

    // The VM, on a chain of 300 functions: functions are not entrypoints, so `allow` is the
    // only one verified, which the rules of a long chain would each be.
    let vm_dir = tempfile::tempdir().unwrap();
    let mut text = String::from("package a\n\nallow := f0(input.x)\n");
    for i in 0..300 {
        text.push_str(&format!("f{i}(x) := f{}(x)\n", i + 1));
    }
    text.push_str("f300(x) := x\n");
    std::fs::write(vm_dir.path().join("a.rego"), text).unwrap();
    let mut server = Running::spawn(&["--addr", "127.0.0.1:0", vm_dir.path().to_str().unwrap()]);
    let addr = server.address().await;
    // A path's first decision is the interpreter's; once verified, the VM answers.
    assert_eq!(
        post(&addr, "/v1/data/a/allow", input).await,
        (200, json!({"result": 5}))
    );
    if !server.seen.iter().any(|l| l.contains("fast path verified")) {
        server.wait_for_log("fast path verified").await;
    }
    let report = engine_report(&addr, "a/allow").await;
    assert_eq!(report["engine"], "vm", "{report}");
    for _ in 0..2 {
        assert_eq!(
            post(&addr, "/v1/data/a/allow", input).await,
            (200, json!({"result": 5}))
        );
    }
    let report = engine_report(&addr, "a/allow").await;
    assert_eq!(report["vm_decisions"], 2, "{report}");
    assert_eq!(report["fallbacks"], 0, "{report}");
    let (lines, code) = server.stop().await;
    assert_eq!(code, Some(0), "{lines:#?}");
}

fn too_deep(revision: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = simple_bundle(revision, "true");
    // `allow`, the chain and its last rule: one level more than the limit.
    let text = chain("app.deep", MAX_DEPTH as usize - 1, "{next}");
    files.push(("app/deep.rego".into(), text.into_bytes()));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_past_the_limit_is_refused_at_start_and_on_reload() {
    let expected = format!(
        "app/deep.rego:3: rego_compile_error: rule data.app.deep.allow is evaluated {} levels deep",
        MAX_DEPTH + 1
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&too_deep("deep-1"))).unwrap();
    let err = Server::try_start(test_config(), vec![Source::path(&path)])
        .await
        .err()
        .expect("a bundle past the depth limit does not start");
    assert!(format!("{err:#}").contains(&expected), "{err:#}");

    std::fs::write(&path, bundle_tar(&simple_bundle("good-1", "true"))).unwrap();
    let mut config = test_config();
    config.verdict.watch = true;
    let server = Server::start(config, vec![Source::path(&path)]).await;
    replace_file(&path, &bundle_tar(&too_deep("deep-2")));
    let status = server.wait_for_error("levels deep").await;
    assert_eq!(status.active_revision, "good-1");
    let allow = server
        .raw(&request(
            "POST",
            "/v1/data/app/allow",
            &[],
            br#"{"input": {}}"#,
        ))
        .await;
    assert_eq!(allow.json(), json!({"result": true}));
    let health = server.raw(&request("GET", "/health", &[], b"")).await;
    assert_eq!(health.status, 200);
    let warning = common::health::rejection_warning(&server).await;
    assert!(warning.contains("levels deep"), "{warning}");
    server.stop().await;
}
