//! Hot swap while serving: every request during a stream of bundle swaps succeeds and sees one
//! whole revision (its policy and its data together), including swaps done the way Kubernetes
//! updates a mounted ConfigMap (an atomic rename of the `..data` symlink).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{
    bundle_tar, configmap_publish, raw_exchange, replace_file, request, test_config, Server,
};
use serde_json::{json, Value as Json};
use tokio::io::AsyncWriteExt;
use verdict::bundle::Source;
use verdict::runtime::Trigger;

/// A bundle whose policy and data both carry the revision, so a half-swapped state would show
/// as a mismatch.
fn versioned(revision: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (
            ".manifest".into(),
            format!(r#"{{"revision": "{revision}", "roots": ["app"]}}"#).into_bytes(),
        ),
        (
            "app/policy.rego".into(),
            format!(
                "package app\n\npolicy_revision := \"{revision}\"\n\ndecision := {{\"policy\": policy_revision, \"data\": data.app.config.revision, \"n\": count([1 | some i in numbers.range(1, input.n); some j in numbers.range(1, input.n)])}}\n"
            )
            .into_bytes(),
        ),
        (
            "app/config/data.json".into(),
            format!(r#"{{"revision": "{revision}"}}"#).into_bytes(),
        ),
    ]
}

/// A quick decision on whatever bundle serves now.
async fn decide(server: &Server) -> common::RawResponse {
    server
        .raw(&request(
            "POST",
            "/v1/data/app/decision",
            &[],
            br#"{"input": {"n": 1}}"#,
        ))
        .await
}

fn watched_config() -> verdict::config::Config {
    let mut config = test_config();
    config.verdict.watch = true;
    config.verdict.eval_timeout_ms = 10_000;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_or_mixes_revisions_during_swaps() {
    let _heavy = common::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&versioned("r0"))).unwrap();
    let server = Server::start(watched_config(), vec![Source::path(&path)]).await;
    let url = server.url("/v1/data/app/decision");
    let stop = Arc::new(AtomicBool::new(false));

    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, stop) = (url.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let client = common::http();
            let mut seen: BTreeMap<String, u64> = BTreeMap::new();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let response = client
                    .post(&url)
                    .body(r#"{"input": {"n": 3}}"#)
                    .send()
                    .await;
                let body: Json = match response {
                    Ok(r) if r.status() == 200 => r.json().await.unwrap(),
                    Ok(r) => {
                        failures.push(format!("status {}", r.status()));
                        continue;
                    }
                    Err(e) => {
                        failures.push(e.to_string());
                        continue;
                    }
                };
                let d = &body["result"];
                if d["policy"] != d["data"] || d["n"] != json!(9) {
                    failures.push(format!("mixed or partial state: {d}"));
                }
                *seen
                    .entry(d["policy"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            (seen, failures)
        }));
    }
    for i in 1..=15 {
        let revision = format!("r{i}");
        replace_file(&path, &bundle_tar(&versioned(&revision)));
        server.wait_for_revision(&revision).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total: BTreeMap<String, u64> = BTreeMap::new();
    for client in clients {
        let (seen, failures) = client.await.unwrap();
        assert!(
            failures.is_empty(),
            "requests failed during swaps: {failures:?}"
        );
        for (rev, n) in seen {
            *total.entry(rev).or_default() += n;
        }
    }
    assert!(total.len() >= 2, "clients saw the swaps: {total:?}");
    assert!(
        total.values().sum::<u64>() > 15,
        "clients kept asking: {total:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_finishes_on_its_own_snapshot() {
    let _heavy = common::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&versioned("slow-1"))).unwrap();
    // The evaluation only has to outlast the swap; a slow machine must not time it out.
    let mut config = watched_config();
    config.verdict.eval_timeout_ms = 60_000;
    let server = Server::start(config, vec![Source::path(&path)]).await;
    // The whole request is on the wire before the new bundle is written; the swap comes at
    // least a debounce period (50 ms) later, and the evaluation outlasts it (asserted below).
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let body = br#"{"input": {"n": 1500}}"#;
    stream
        .write_all(&request("POST", "/v1/data/app/decision", &[], body))
        .await
        .unwrap();
    let slow = tokio::spawn(raw_exchange(stream, b""));
    replace_file(&path, &bundle_tar(&versioned("slow-2")));
    server.wait_for_revision("slow-2").await;
    assert!(
        !slow.is_finished(),
        "the request should still be evaluating when slow-2 is activated; make it longer"
    );
    let answer = slow.await.unwrap();
    let d = answer.json()["result"].clone();
    assert_eq!(
        d["policy"],
        json!("slow-1"),
        "finished on the snapshot it started with: {} {}",
        answer.status,
        answer.text()
    );
    assert_eq!(
        d["data"],
        json!("slow-1"),
        "policy and data of one revision: {d}"
    );
    assert_eq!(d["n"], json!(1500 * 1500));
    let next = decide(&server).await;
    assert_eq!(
        next.json()["result"]["policy"],
        json!("slow-2"),
        "the next request"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_writes_settle_on_the_last_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&versioned("w0"))).unwrap();
    let server = Server::start(watched_config(), vec![Source::path(&path)]).await;
    for i in 1..=10 {
        // Plain rewrites in place, no atomic rename: the debounce must still see the end state.
        std::fs::write(&path, bundle_tar(&versioned(&format!("w{i}")))).unwrap();
    }
    server.wait_for_revision("w10").await;
    let r = decide(&server).await;
    assert_eq!(r.json()["result"]["policy"], json!("w10"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_symlink_swap_of_a_tarball_is_picked_up() {
    let mount = tempfile::tempdir().unwrap();
    let tarball = |rev: &str| vec![("bundle.tar.gz".to_string(), bundle_tar(&versioned(rev)))];
    configmap_publish(mount.path(), 1, &tarball("cm-1"));
    let path = mount.path().join("bundle.tar.gz");
    let server = Server::start(watched_config(), vec![Source::path(&path)]).await;
    assert_eq!(server.revision(), "cm-1");
    configmap_publish(mount.path(), 2, &tarball("cm-2"));
    server.wait_for_revision("cm-2").await;
    configmap_publish(mount.path(), 3, &tarball("cm-3"));
    server.wait_for_revision("cm-3").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_symlink_swap_of_a_directory_bundle_is_picked_up() {
    let mount = tempfile::tempdir().unwrap();
    configmap_publish(mount.path(), 1, &versioned("dir-1"));
    let server = Server::start(watched_config(), vec![Source::path(mount.path())]).await;
    assert_eq!(server.revision(), "dir-1");
    configmap_publish(mount.path(), 2, &versioned("dir-2"));
    server.wait_for_revision("dir-2").await;
    let r = decide(&server).await;
    assert_eq!(r.json()["result"]["data"], json!("dir-2"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_watching_only_an_explicit_reload_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&versioned("h-1"))).unwrap();
    let mut config = test_config();
    config.verdict.watch = false;
    let server = Server::start(config, vec![Source::path(&path)]).await;
    // A watching server on the same file shows when a watcher would have reloaded.
    let control = Server::start(watched_config(), vec![Source::path(&path)]).await;
    replace_file(&path, &bundle_tar(&versioned("h-2")));
    control.wait_for_revision("h-2").await;
    assert_eq!(server.attempts(), 0, "nothing watches the file");
    assert_eq!(server.revision(), "h-1");
    control.stop().await;
    let before = server.attempts();
    // SIGHUP's trigger (the signal itself is exercised against the binary in tests/cli.rs).
    server.triggers.send(Trigger::All).unwrap();
    server.reloads_after(before, 1).await;
    assert_eq!(server.revision(), "h-2");
    server.stop().await;
}

/// A directory bundle moved aside and replaced by another directory (`mv app app.old && mv
/// app.new app`): the watch follows the new directory, and edits inside it right after each
/// reload are seen (re-arming the watch after every reload used to drop them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_replaced_by_a_rename_is_followed_and_no_edit_is_lost() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("app");
    common::write_dir(&path, &versioned("d1"));
    let server = Server::start(watched_config(), vec![Source::path(&path)]).await;
    assert_eq!(server.revision(), "d1");

    let next = root.path().join("app.new");
    common::write_dir(&next, &versioned("d2"));
    std::fs::rename(&path, root.path().join("app.old")).unwrap();
    std::fs::rename(&next, &path).unwrap();
    server.wait_for_revision("d2").await;

    // Edits in the new directory, each right after the reload before it.
    for rev in ["d3", "d4", "d5"] {
        common::write_dir(&path, &versioned(rev));
        server.wait_for_revision(rev).await;
    }
    let r = decide(&server).await;
    assert_eq!(r.json()["result"]["data"], json!("d5"));
    server.stop().await;
}
