//! Pushed data through OPA's Data API writes, end to end on a real server: OPA's answers and
//! errors, decisions that read the pushed documents, durability across a restart, atomicity
//! under concurrent decisions, and what a later bundle activation does to pushed data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{bundle_tar, replace_file, test_config, Server};
use reqwest::Method;
use serde_json::{json, Value as Json};
use verdict::bundle::Source;
use verdict::runtime::Trigger;

const POLICY: &str = r#"package app

default allow := false

allow if not blocked

blocked if input.merchant in data.sanctions.merchants

pair := {"a": data.pair.a, "b": data.pair.b}
"#;

/// A bundle owning `roots`, with the policy above and any extra files.
fn bundle(revision: &str, roots: &[&str], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut files = vec![
        (
            ".manifest".to_string(),
            json!({"revision": revision, "roots": roots})
                .to_string()
                .into_bytes(),
        ),
        ("app/policy.rego".to_string(), POLICY.as_bytes().to_vec()),
    ];
    for (name, text) in extra {
        files.push((name.to_string(), text.as_bytes().to_vec()));
    }
    bundle_tar(&files)
}

/// A server on `bundle.tar.gz` in `dir`, keeping its pushed data in `dir/persist`.
async fn server_in(dir: &Path) -> Server {
    let path = dir.join("bundle.tar.gz");
    if !path.exists() {
        std::fs::write(&path, bundle("r1", &["app"], &[])).unwrap();
    }
    let mut config = test_config();
    config.verdict.watch = false;
    config.server.decoding.max_length = 64 * 1024;
    config.remote.persistence_directory = dir.join("persist");
    Server::start(config, vec![Source::path(&path)]).await
}

/// One request; the status and the JSON body (`null` when there is none).
async fn send(server: &Server, method: Method, path: &str, body: Option<String>) -> (u16, Json) {
    let mut request = common::http().request(method, server.url(path));
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Json::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, body)
}

async fn put(server: &Server, path: &str, body: &str) -> (u16, Json) {
    send(server, Method::PUT, path, Some(body.to_string())).await
}

async fn patch(server: &Server, path: &str, ops: Json) -> (u16, Json) {
    send(server, Method::PATCH, path, Some(ops.to_string())).await
}

/// The document at `path` as `GET /v1/data` answers it; `None` when undefined.
async fn read(server: &Server, path: &str) -> Option<Json> {
    let (status, body) = send(server, Method::GET, &format!("/v1/data/{path}"), None).await;
    assert_eq!(status, 200, "{body}");
    body.get("result").cloned()
}

async fn allowed(server: &Server, merchant: &str) -> Json {
    let input = json!({"input": {"merchant": merchant}}).to_string();
    let (status, body) = send(server, Method::POST, "/v1/data/app/allow", Some(input)).await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

fn error(status: u16, code: &str, message: &str) -> (u16, Json) {
    (status, json!({"code": code, "message": message}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_round_trip_and_decisions_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_in(dir.path()).await;
    assert_eq!(allowed(&server, "m-bad").await, json!(true));

    let sanctions = r#"{"merchants": ["m-bad"], "updated": "2026-11-24"}"#;
    assert_eq!(
        put(&server, "/v1/data/sanctions", sanctions).await,
        (204, Json::Null)
    );
    assert_eq!(
        read(&server, "sanctions/merchants").await,
        Some(json!(["m-bad"]))
    );
    assert_eq!(allowed(&server, "m-bad").await, json!(false));
    assert_eq!(allowed(&server, "m-good").await, json!(true));

    // If-None-Match: * leaves an existing document alone.
    let (status, _) = common::http()
        .put(server.url("/v1/data/sanctions"))
        .header("If-None-Match", "*")
        .body("{}")
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 304);
    assert_eq!(allowed(&server, "m-bad").await, json!(false));

    let ops = json!([
        {"op": "add", "path": "/merchants/-", "value": "m-worse"},
        {"op": "replace", "path": "updated", "value": "2026-11-25"}
    ]);
    assert_eq!(
        patch(&server, "/v1/data/sanctions", ops).await,
        (204, Json::Null)
    );
    assert_eq!(allowed(&server, "m-worse").await, json!(false));
    assert_eq!(
        read(&server, "sanctions").await,
        Some(json!({"merchants": ["m-bad", "m-worse"], "updated": "2026-11-25"}))
    );

    let (status, _) = send(&server, Method::DELETE, "/v1/data/sanctions", None).await;
    assert_eq!(status, 204);
    assert_eq!(read(&server, "sanctions").await, None);
    assert_eq!(allowed(&server, "m-bad").await, json!(true));

    // Parents are created, and the whole document shows the pushed data beside the bundle's.
    assert_eq!(put(&server, "/v1/data/keys/a/b", r#""k1""#).await.0, 204);
    let (_, root) = send(&server, Method::GET, "/v1/data", None).await;
    assert_eq!(root["result"]["keys"], json!({"a": {"b": "k1"}}));
    assert!(root["result"]["app"].is_object());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_as_opa_does_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_in(dir.path()).await;
    put(&server, "/v1/data/scratch", r#"{"list": [1]}"#).await;
    let owned = r#"path app/x is owned by bundle "#.to_string()
        + &serde_json::to_string(&dir.path().join("bundle.tar.gz").display().to_string()).unwrap();
    let cases: Vec<(Method, &str, String, (u16, Json))> = vec![
        (
            Method::PUT,
            "/v1/data/app/x",
            "1".into(),
            error(400, "invalid_parameter", &owned),
        ),
        (
            Method::PUT,
            "/v1/data",
            "{}".into(),
            error(
                400,
                "invalid_parameter",
                "can't write to document root with bundle roots configured",
            ),
        ),
        (
            Method::PUT,
            "/v1/data/scratch/x",
            r#"{"a":"#.into(),
            error(400, "invalid_parameter", "unexpected EOF"),
        ),
        (
            Method::PUT,
            "/v1/data/scratch/x",
            "".into(),
            error(400, "invalid_parameter", "EOF"),
        ),
        (
            Method::PATCH,
            "/v1/data/scratch",
            r#"{"op": "add"}"#.into(),
            error(
                400,
                "invalid_parameter",
                "json: cannot unmarshal object into Go value of type []types.PatchV1",
            ),
        ),
        (
            Method::PATCH,
            "/v1/data/scratch",
            r#"[{"op": "copy", "path": "x"}]"#.into(),
            error(400, "invalid_parameter", "bad patch operation: copy"),
        ),
        (
            Method::PATCH,
            "/v1/data/scratch",
            r#"[{"op": "add", "path": "x", "value": 1}, {"op": "remove", "path": "nope"}]"#.into(),
            error(
                404,
                "resource_not_found",
                "storage_not_found_error: /scratch/nope: document does not exist",
            ),
        ),
        (
            Method::PATCH,
            "/v1/data/scratch",
            r#"[{"op": "replace", "path": "list/7", "value": 1}]"#.into(),
            error(
                404,
                "resource_not_found",
                "storage_not_found_error: /scratch/list/7: array index out of range",
            ),
        ),
        (
            Method::PUT,
            "/v1/data/scratch/list/0/x",
            "1".into(),
            error(
                404,
                "resource_conflict",
                "storage_write_conflict_error: /scratch/list/0",
            ),
        ),
        (
            Method::DELETE,
            "/v1/data/scratch/nope",
            "".into(),
            error(
                404,
                "resource_not_found",
                "storage_not_found_error: /scratch/nope: document does not exist",
            ),
        ),
        (
            Method::PUT,
            "/v1/data/scratch/big",
            format!("\"{}\"", "x".repeat(64 * 1024)),
            error(400, "invalid_parameter", "request body too large"),
        ),
    ];
    for (method, path, body, expected) in cases {
        let got = send(&server, method.clone(), path, Some(body)).await;
        assert_eq!(got, expected, "{method} {path}");
    }
    // Too deep for the JSON parser, and too deep to be merged and stored.
    for (depth, text) in [
        (200, "recursion limit"),
        (110, "nested deeper than 100 levels"),
    ] {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let (status, err) = put(&server, "/v1/data/scratch/deep", &body).await;
        assert_eq!(
            (status, &err["code"]),
            (400, &json!("invalid_parameter")),
            "{err}"
        );
        assert!(err["message"].as_str().unwrap().contains(text), "{err}");
    }
    assert_eq!(
        read(&server, "scratch").await,
        Some(json!({"list": [1]})),
        "nothing applied"
    );
    server.stop().await;
}

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
