//! Envoy ext_authz replayed against verdict over real gRPC: every `grpc-check-*` exchange
//! recorded from OPA 1.9 with opa-envoy-plugin (tests/golden/grpc/) must get the same
//! CheckResponse, or the same gRPC error, from verdict; and the input document verdict builds
//! must equal the one OPA logged.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{golden, test_config, Server};
use serde_json::{json, Value as Json};
use verdict::bundle::Source;
use verdict::config::ExtAuthzConfig;

/// One recorded exchange.
pub(crate) struct Exchange {
    pub(crate) name: String,
    pub(crate) request: String,
    /// The CheckResponse as proto3 JSON, or the gRPC error's code name and message.
    pub(crate) response: Result<Json, (String, String)>,
    /// The `input` OPA's decision log shows, when it logged one.
    logged_input: Option<Json>,
}

fn read_exchange(name: &str) -> Exchange {
    let text = std::fs::read_to_string(golden(&format!("grpc/{name}.grpc.txt"))).unwrap();
    parse_exchange(name, &text)
}

/// One `*.grpc.txt` capture.
pub(crate) fn parse_exchange(name: &str, text: &str) -> Exchange {
    let section = |start: &str, end: &str| -> String {
        let from = text
            .find(start)
            .unwrap_or_else(|| panic!("{name}: no {start}"));
        let body = &text[from..];
        let body = &body[body.find('\n').unwrap() + 1..];
        let to = body.find(end).unwrap_or(body.len());
        body[..to].trim().to_string()
    };
    let request = section("### REQUEST", "### RESPONSE");
    let raw_response = section("### RESPONSE", "### OPA LOG LINES");
    let response = match raw_response.strip_prefix("gRPC error: ") {
        Some(error) => {
            let re = regex::Regex::new(r"^code=StatusCode\.(\w+) details='(.*)'$").unwrap();
            let caps = re.captures(error).unwrap();
            Err((caps[1].to_string(), caps[2].to_string()))
        }
        None => Ok(serde_json::from_str(&raw_response).unwrap()),
    };
    let log: Json = serde_json::from_str(
        section("### OPA LOG LINES", "\n###")
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    Exchange {
        name: name.into(),
        request,
        response,
        logged_input: Some(log["input"].clone()).filter(|i| !i.is_null()),
    }
}

/// The server OPA answered from: its ext_authz path, dry-run, and the bundles it served.
pub(crate) fn instance(name: &str) -> (&'static str, bool) {
    match name {
        "grpc-check-bool-variant" => ("envoy/authz/allow_bool", false),
        "grpc-check-bool-false" => ("debug/bool_false", false),
        "grpc-check-dry-run" => ("debug/bool_false", true),
        "grpc-check-input-as-seen-by-policy" => ("debug/allow", false),
        "grpc-check-string-result" => ("debug/string_result", false),
        _ => ("envoy/authz/allow", false),
    }
}

pub(crate) async fn start(path: &str, dry_run: bool, bundles: Vec<Source>) -> Server {
    let mut config = test_config();
    config.plugins.envoy_ext_authz_grpc = Some(ExtAuthzConfig {
        addr: "127.0.0.1:0".into(),
        path: path.into(),
        dry_run,
        ..ExtAuthzConfig::default()
    });
    Server::start(config, bundles).await
}

fn golden_bundles() -> Vec<Source> {
    vec![
        Source::path(golden("fixtures/bundle")),
        Source::path(golden("fixtures/debugbundle")),
    ]
}

/// Decision ids differ from run to run.
fn without_decision_id(mut response: Json) -> Json {
    if let Some(metadata) = response.get_mut("dynamic_metadata") {
        if let Some(id) = metadata.get_mut("decision_id") {
            assert!(
                uuid_like(id.as_str().unwrap_or_default()),
                "decision_id {id}"
            );
            *id = json!("<decision id>");
        }
    }
    response
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

const CASES: &[&str] = &[
    "grpc-check-allow-object",
    "grpc-check-deny-object",
    "grpc-check-truncated-body",
    "grpc-check-bad-json-body",
    "grpc-check-bool-variant",
    "grpc-check-bool-false",
    "grpc-check-dry-run",
    "grpc-check-input-as-seen-by-policy",
    "grpc-check-string-result",
];

/// Sends the exchange's request; `None` when verdict answers as OPA did.
pub(crate) async fn mismatch(server: &Server, exchange: &Exchange) -> Option<String> {
    let mut client = common::grpc::authz_client(server).await;
    let request = common::grpc::check_request_from_json(&exchange.request);
    let got = client.check(request).await;
    match (&exchange.response, got) {
        (Ok(want), Ok(response)) => {
            let got = without_decision_id(common::grpc::response_json(response.get_ref()));
            let want = without_decision_id(want.clone());
            (got != want).then(|| format!("want {want}\n  got  {got}"))
        }
        (Err((code, message)), Err(status)) => {
            let got_code = format!("{:?}", status.code()).to_uppercase();
            (got_code != *code || status.message() != message).then(|| {
                format!(
                    "want {code} {message:?}, got {got_code} {:?}",
                    status.message()
                )
            })
        }
        (want, got) => Some(format!("want {want:?}, got {got:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_check_gets_opas_response() {
    let mut mismatches = Vec::new();
    for name in CASES {
        let exchange = read_exchange(name);
        let (path, dry_run) = instance(name);
        let server = start(path, dry_run, golden_bundles()).await;
        if let Some(problem) = mismatch(&server, &exchange).await {
            mismatches.push(format!("{name}: {problem}"));
        }
        server.stop().await;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// OPA's decision log shows its input with two artefacts of logging, not of the input: the
/// mask policy's upsert of `merchant`, and `version` printed as an AST object (pairs of
/// terms). Policies see `version` as an object, as the input-as-seen-by-policy case shows.
fn as_policies_see_it(mut logged: Json) -> Json {
    let object = logged.as_object_mut().unwrap();
    object.remove("merchant");
    object.insert(
        "version".into(),
        json!({"encoding": "protojson", "ext_authz": "v3"}),
    );
    logged
}

/// Struct values carry every number as a double: compare numbers as doubles.
fn numbers_as_doubles(value: Json) -> Json {
    match value {
        Json::Number(n) => json!(n.as_f64().unwrap()),
        Json::Array(items) => Json::Array(items.into_iter().map(numbers_as_doubles).collect()),
        Json::Object(fields) => Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, numbers_as_doubles(v)))
                .collect(),
        ),
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_input_document_is_the_one_opa_built() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(
        dir.path(),
        &[
            (
                ".manifest".into(),
                br#"{"revision": "echo", "roots": ["echo"]}"#.to_vec(),
            ),
            (
                "echo/echo.rego".into(),
                b"package echo\n\nallow := {\"allowed\": true, \"dynamic_metadata\": {\"input\": input}}\n"
                    .to_vec(),
            ),
        ],
    );
    let server = start("echo/allow", false, vec![Source::path(dir.path())]).await;
    let mut client = common::grpc::authz_client(&server).await;
    let mut compared = 0;
    for name in CASES {
        let exchange = read_exchange(name);
        let Some(logged) = exchange.logged_input else {
            continue;
        };
        let request = common::grpc::check_request_from_json(&exchange.request);
        let response = client.check(request).await.unwrap();
        let got =
            common::grpc::response_json(response.get_ref())["dynamic_metadata"]["input"].clone();
        assert_eq!(
            numbers_as_doubles(got),
            numbers_as_doubles(as_policies_see_it(logged)),
            "{}",
            exchange.name
        );
        compared += 1;
    }
    assert_eq!(
        compared,
        CASES.len() - 1,
        "every case but the unparseable body logs an input"
    );
    server.stop().await;
}
