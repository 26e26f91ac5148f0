//! OPA's policy API end to end on a real server: a module put through `PUT /v1/policies/{id}`
//! compiles with the bundle and serves decisions, is listed with an AST clients can read,
//! survives a bundle reload and a restart, and is refused where OPA refuses it (a bundle's
//! module or roots, a module that does not compile with the rest).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;

use common::{bundle_tar, replace_file, test_config, Server};
use reqwest::Method;
use serde_json::{json, Value as Json};
use verdict::bundle::Source;

fn bundle(revision: &str) -> Vec<u8> {
    bundle_tar(&[
        (
            ".manifest".to_string(),
            json!({"revision": revision, "roots": ["app"]})
                .to_string()
                .into_bytes(),
        ),
        (
            "app/policy.rego".to_string(),
            b"package app\n\nlimit := 100\n".to_vec(),
        ),
    ])
}

async fn server_in(dir: &Path) -> Server {
    let path = dir.join("bundle.tar.gz");
    if !path.exists() {
        std::fs::write(&path, bundle("r1")).unwrap();
    }
    let mut config = test_config();
    config.remote.persistence_directory = dir.join("persist");
    // Named as `-b bundle.tar.gz` names it from its own directory: module ids start with it.
    let source = Source {
        name: "bundle.tar.gz".into(),
        ..Source::path(&path)
    };
    Server::start(config, vec![source]).await
}

async fn send(server: &Server, method: Method, path: &str, body: &str) -> (u16, Json) {
    let response = common::http()
        .request(method, server.url(path))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Json::Null))
}

async fn decide(server: &Server, path: &str, input: Json) -> Json {
    let (status, body) = send(
        server,
        Method::POST,
        &format!("/v1/data/{path}"),
        &json!({ "input": input }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

const EXTRA: &str = "package extra\n\nimport rego.v1\n\nallow if input.amount <= data.app.limit\n\nsizes contains s if some s in [\"s\", \"m\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_policy_serves_beside_the_bundle_and_is_listed_with_its_ast() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_in(dir.path()).await;
    let (status, body) = send(
        &server,
        Method::PUT,
        "/v1/policies/extra%2Fone?metrics",
        EXTRA,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let metrics = body["metrics"].as_object().unwrap();
    for timer in [
        "timer_rego_module_compile_ns",
        "timer_rego_module_parse_ns",
        "timer_server_read_bytes_ns",
    ] {
        assert!(metrics[timer].as_u64().unwrap() > 0, "{timer}: {body}");
    }
    assert_eq!(
        decide(&server, "extra/allow", json!({"amount": 50})).await,
        true
    );
    assert_eq!(
        decide(&server, "extra/allow", json!({"amount": 500})).await,
        Json::Null
    );

    let (status, listed) = send(&server, Method::GET, "/v1/policies", "").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"extra/one"), "{ids:?}");
    let (status, one) = send(&server, Method::GET, "/v1/policies/extra/one", "").await;
    assert_eq!(status, 200);
    assert_eq!(one["result"]["raw"], EXTRA);
    let ast = &one["result"]["ast"];
    assert_eq!(
        ast["package"]["path"],
        json!([{"type": "var", "value": "data"}, {"type": "string", "value": "extra"}])
    );
    let names: Vec<&str> = ast["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["head"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["allow", "sizes"]);
    // Every module has an AST, the bundle's too.
    for policy in listed["result"].as_array().unwrap() {
        assert!(policy["ast"]["package"]["path"].is_array(), "{policy}");
    }

    // Put again as it is: nothing to do. Then a change, then the delete.
    let (status, body) = send(&server, Method::PUT, "/v1/policies/extra/one", EXTRA).await;
    assert_eq!((status, body), (200, json!({})));
    let changed = EXTRA.replace("<= data.app.limit", "< 10");
    let (status, _) = send(&server, Method::PUT, "/v1/policies/extra/one", &changed).await;
    assert_eq!(status, 200);
    assert_eq!(
        decide(&server, "extra/allow", json!({"amount": 50})).await,
        Json::Null
    );
    let (status, body) = send(&server, Method::DELETE, "/v1/policies/extra/one", "").await;
    assert_eq!((status, body), (200, json!({})));
    assert_eq!(
        decide(&server, "extra/allow", json!({"amount": 5})).await,
        Json::Null
    );
    let (status, body) = send(&server, Method::DELETE, "/v1/policies/extra/one", "").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "resource_not_found");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_the_bundle_owns_or_that_do_not_compile_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = server_in(dir.path()).await;
    let cases = [
        (
            Method::PUT,
            "/v1/policies/mine",
            "package app.more\n\nx := 1\n",
            "path app/more is owned by bundle \"bundle.tar.gz\"",
        ),
        (
            Method::PUT,
            "/v1/policies/bundle.tar.gz/app/policy.rego",
            "package elsewhere\n",
            "path app is owned by bundle \"bundle.tar.gz\"",
        ),
        (
            Method::DELETE,
            "/v1/policies/bundle.tar.gz/app/policy.rego",
            "",
            "path app is owned by bundle \"bundle.tar.gz\"",
        ),
        (
            Method::PUT,
            "/v1/policies/mine",
            "package mine\n\nx := unknown_function(1)\n",
            "error(s) occurred while compiling module(s)",
        ),
        (
            Method::PUT,
            "/v1/policies/mine",
            "# nothing\n",
            "mine:0: rego_parse_error: empty module",
        ),
    ];
    for (method, path, body, message) in cases {
        let (status, answer) = send(&server, method.clone(), path, body).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "invalid_parameter", "{answer}");
        assert_eq!(answer["message"], message, "{answer}");
    }
    let (_, compile) = send(
        &server,
        Method::PUT,
        "/v1/policies/mine",
        "package mine\n\nx := unknown_function(1)\n",
    )
    .await;
    assert_eq!(compile["errors"][0]["code"], "rego_type_error", "{compile}");
    assert_eq!(
        compile["errors"][0]["location"]["file"], "mine",
        "{compile}"
    );
    // Nothing refused was kept.
    let (_, listed) = send(&server, Method::GET, "/v1/policies", "").await;
    assert_eq!(listed["result"].as_array().unwrap().len(), 1, "{listed}");
    server.stop().await;
}

#[test]
fn put_policies_survive_a_bundle_reload_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    runtime().block_on(async {
        let server = server_in(dir.path()).await;
        let (status, body) = send(&server, Method::PUT, "/v1/policies/extra", EXTRA).await;
        assert_eq!(status, 200, "{body}");
        replace_file(&dir.path().join("bundle.tar.gz"), &bundle("r2"));
        server.wait_for_revision("r2").await;
        assert_eq!(
            decide(&server, "extra/allow", json!({"amount": 50})).await,
            true
        );
        server.stop().await;
    });
    runtime().block_on(async {
        let server = server_in(dir.path()).await;
        assert_eq!(
            decide(&server, "extra/allow", json!({"amount": 50})).await,
            true
        );
        let (status, one) = send(&server, Method::GET, "/v1/policies/extra", "").await;
        assert_eq!(status, 200);
        assert_eq!(one["result"]["raw"], EXTRA);
        server.stop().await;
    });
}

/// README's "Policies over the API" and "Batch decisions" examples, on the built-in bundle
/// `verdict run` serves without `-b`, answer what README shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_examples_answer_as_written() {
    let readme = std::fs::read_to_string(common::repo().join("README.md")).unwrap();
    let server = Server::start(test_config(), common::payment_sources()).await;
    let put = "package vip\n\nallow if input.amount < 100\n";
    assert!(readme.contains("--data-binary $'package vip\\n\\nallow if input.amount < 100\\n'"));
    let (status, body) = send(&server, Method::PUT, "/v1/policies/vip", put).await;
    assert_eq!((status, body), (200, json!({})));
    let (status, body) = send(
        &server,
        Method::POST,
        "/v1/data/vip/allow",
        r#"{"input": {"amount": 50}}"#,
    )
    .await;
    assert_eq!(
        (status, body.to_string()),
        (200, r#"{"result":true}"#.into())
    );

    let start = readme
        .find("curl -s localhost:8181/v1/batch/data/")
        .unwrap();
    let request = &readme[start..];
    let body = &request[request.find("-d '").unwrap() + 4..];
    let body = &body[..body.find("'\n").unwrap()];
    let shown = request.lines().find_map(|l| l.strip_prefix("# ")).unwrap();
    let (status, answer) = send(
        &server,
        Method::POST,
        "/v1/batch/data/payment/decision",
        body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, serde_json::from_str::<Json>(shown).unwrap());
    server.stop().await;
}
