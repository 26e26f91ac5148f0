//! Pushed data through OPA's Data API writes, end to end on a real server: OPA's answers and
//! errors, decisions that read the pushed documents, durability across a restart, atomicity
//! under concurrent decisions, and what a later bundle activation does to pushed data.
//! (Restarts, atomicity and activations are in `pushed_data_lifecycle`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;

use common::{bundle_tar, test_config, Server};
use reqwest::Method;
use serde_json::{json, Value as Json};
use verdict::bundle::Source;

const POLICY: &str = r#"package app

default allow := false

allow if not blocked

blocked if input.merchant in data.sanctions.merchants

pair := {"a": data.pair.a, "b": data.pair.b}
"#;

/// A bundle owning `roots`, with the policy above and any extra files.
pub(crate) fn bundle(revision: &str, roots: &[&str], extra: &[(&str, &str)]) -> Vec<u8> {
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
pub(crate) async fn server_in(dir: &Path) -> Server {
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
pub(crate) async fn send(
    server: &Server,
    method: Method,
    path: &str,
    body: Option<String>,
) -> (u16, Json) {
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

pub(crate) async fn put(server: &Server, path: &str, body: &str) -> (u16, Json) {
    send(server, Method::PUT, path, Some(body.to_string())).await
}

pub(crate) async fn patch(server: &Server, path: &str, ops: Json) -> (u16, Json) {
    send(server, Method::PATCH, path, Some(ops.to_string())).await
}

/// The document at `path` as `GET /v1/data` answers it; `None` when undefined.
pub(crate) async fn read(server: &Server, path: &str) -> Option<Json> {
    let (status, body) = send(server, Method::GET, &format!("/v1/data/{path}"), None).await;
    assert_eq!(status, 200, "{body}");
    body.get("result").cloned()
}

pub(crate) async fn allowed(server: &Server, merchant: &str) -> Json {
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
