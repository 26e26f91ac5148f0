//! Pushed data over its lifetime, end to end on a real server: back after a restart before the
//! first request, an unreadable store stopping the start, no decision seeing half a write,
//! and a bundle activation erasing pushed data under its roots only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::pushed_data::{allowed, bundle, patch, put, read, send, server_in};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{replace_file, test_config, Server};
use reqwest::Method;
use serde_json::json;
use verdict::bundle::Source;
use verdict::runtime::Trigger;

#[test]
fn pushed_data_is_back_after_a_restart_before_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    // The first server lives in a runtime of its own: dropping it ends every task of that
    // server, the reloader and its database connection included, as a process exit does.
    runtime().block_on(async {
        let server = server_in(dir.path()).await;
        put(&server, "/v1/data/sanctions", r#"{"merchants": ["m-bad"]}"#).await;
        patch(
            &server,
            "/v1/data/sanctions/merchants",
            json!([{"op": "add", "path": "-", "value": "m-2"}]),
        )
        .await;
        put(&server, "/v1/data/gone", "1").await;
        send(&server, Method::DELETE, "/v1/data/gone", None).await;
        server.stop().await;
    });
    runtime().block_on(async {
        let server = server_in(dir.path()).await;
        assert_eq!(
            allowed(&server, "m-2").await,
            json!(false),
            "the first decision sees it"
        );
        assert_eq!(
            read(&server, "sanctions").await,
            Some(json!({"merchants": ["m-bad", "m-2"]}))
        );
        assert_eq!(read(&server, "gone").await, None);
        server.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_store_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("persist")).unwrap();
    std::fs::write(dir.path().join("persist/pushed-data.db"), [0x5a; 4096]).unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle("r1", &["app"], &[])).unwrap();
    let mut config = test_config();
    config.remote.persistence_directory = dir.path().join("persist");
    let err = match Server::try_start(config, vec![Source::path(&path)]).await {
        Ok(_) => panic!("started on a corrupt store"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("pushed data store unreadable"), "{err}");
    assert!(err.contains("pushed-data.db"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decisions_never_see_half_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(server_in(dir.path()).await);
    put(&server, "/v1/data/pair", r#"{"a": 0, "b": 0}"#).await;
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (server, done) = (server.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = std::collections::BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                let (status, body) = send(
                    &server,
                    Method::POST,
                    "/v1/data/app/pair",
                    Some("{}".into()),
                )
                .await;
                assert_eq!(status, 200, "{body}");
                let pair = &body["result"];
                assert_eq!(pair["a"], pair["b"], "a decision saw half a write: {pair}");
                seen.insert(pair["a"].as_u64().unwrap());
            }
            seen
        }));
    }
    for i in 1..=25u64 {
        let ops = json!([
            {"op": "replace", "path": "a", "value": i},
            {"op": "replace", "path": "b", "value": i}
        ]);
        assert_eq!(patch(&server, "/v1/data/pair", ops).await.0, 204);
        // Answered means live: the next read sees it.
        assert_eq!(read(&server, "pair/a").await, Some(json!(i)));
    }
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        let seen = reader.await.unwrap();
        assert!(!seen.is_empty());
    }
    // Concurrent writers lose nothing: each write applies to the result of the one before.
    let writers: Vec<_> = (0..10)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let ops = json!([{"op": "add", "path": format!("k{i}"), "value": i}]);
                patch(&server, "/v1/data/pair", ops).await.0
            })
        })
        .collect();
    for writer in writers {
        assert_eq!(writer.await.unwrap(), 204);
    }
    let pair = read(&server, "pair").await.unwrap();
    assert_eq!(pair.as_object().unwrap().len(), 12, "{pair}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_erases_pushed_data_under_its_roots_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_in(dir.path()).await;
    put(&server, "/v1/data/newroot/x", "1").await;
    put(&server, "/v1/data/shared", r#"{"a": 1, "b": 2}"#).await;
    put(&server, "/v1/data/sanctions", r#"{"merchants": ["m-bad"]}"#).await;

    // As OPA's activation does (bundle/store.go eraseData): whatever lies at the roots the
    // bundle now owns is replaced by the bundle's own data; everything else stays.
    let v2 = bundle(
        "r2",
        &["app", "newroot", "shared/a"],
        &[("shared/a/data.json", r#"{"from": "bundle"}"#)],
    );
    replace_file(&dir.path().join("bundle.tar.gz"), &v2);
    server.triggers.send(Trigger::All).unwrap();
    server.wait_for_revision("r2").await;

    assert_eq!(read(&server, "newroot").await, None);
    assert_eq!(
        read(&server, "shared").await,
        Some(json!({"a": {"from": "bundle"}, "b": 2}))
    );
    assert_eq!(
        allowed(&server, "m-bad").await,
        json!(false),
        "pushed data outside the roots stays"
    );
    let (status, err) = put(&server, "/v1/data/newroot/y", "1").await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("path newroot/y is owned by bundle"),
        "{err}"
    );
    server.stop().await;
}
