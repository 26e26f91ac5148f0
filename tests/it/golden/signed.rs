//! The last part of E-bundle-signing: a signed bundle downloaded with `keys` and
//! `bundles.*.signing` configured, then a tampered and an unsigned one refused with OPA's
//! status words while the signed revision keeps serving, and the key material left out of
//! `/v1/config`.

use std::path::Path;

use regex::Regex;
use serde_json::Value as Json;
use verdict::config::Config;

use crate::common::bundle_server::{bundle, BundleServer};
use crate::common::{request, test_config, Server};

/// OPA's status entries after each refusal, and its `keys` entry in `/v1/config`, as the
/// capture gives them: (code, message) pairs and the keys JSON.
fn recorded(text: &str) -> (Vec<(String, String)>, Json) {
    let entry = Regex::new(r#"^\{"code": "([^"]*)", "message": "([^"]*)""#).unwrap();
    let refusals = text
        .lines()
        .filter_map(|l| l.split_once(" -> ").map_or(Some(l), |(_, r)| Some(r)))
        .filter_map(|l| entry.captures(l))
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect();
    let keys = text
        .lines()
        .find_map(|l| l.split_once("keys.payments_ci = "))
        .and_then(|(_, rest)| rest.split(" (").next())
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or(Json::Null);
    (refusals, keys)
}

async fn status_entry(server: &Server) -> Json {
    let got = server
        .in_process(&request("GET", "/v1/status", &[], b""))
        .await;
    got.json()["result"]["bundles"]["payment"].clone()
}

pub async fn service(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("E-bundle-signing.txt")).unwrap();
    let (refusals, keys) = recorded(&text);
    assert_eq!(refusals.len(), 2, "the capture's two refusals");
    let read = |name: &str| std::fs::read(dir.join("fixtures").join(name)).unwrap();
    let bundles = BundleServer::start(bundle(read("sign/signed.tar.gz"), "signed"), None).await;
    let sets = [format!("services.ctl.url={}", bundles.url("http"))];
    let (mut config, _) =
        Config::load(Some(&dir.join("fixtures/sign/config-signed.json")), &sets).unwrap();
    config.verdict = test_config().verdict;
    let persist = tempfile::tempdir().unwrap();
    config.remote.persistence_directory = persist.path().to_path_buf();
    let sources = verdict::app::sources(&config).unwrap();
    let server = Server::start(config, sources).await;
    server.wait_for_revision("payments-2025-01-01.1").await;

    let mut problems = Vec::new();
    let published = [
        (read("sign/tampered.tar.gz"), "tampered"),
        (read("payment-bundle.tar.gz"), "unsigned"),
    ];
    for ((bytes, etag), (code, message)) in published.into_iter().zip(&refusals) {
        bundles.set(bundle(bytes, etag));
        server.wait_for_error(message).await;
        let entry = status_entry(&server).await;
        let got = (entry["code"].as_str(), entry["message"].as_str());
        if got != (Some(code.as_str()), Some(message.as_str())) {
            problems.push(format!(
                "{etag}: status {got:?}, OPA's ({code:?}, {message:?})"
            ));
        }
        if entry["active_revision"] != "payments-2025-01-01.1" {
            problems.push(format!(
                "{etag}: the signed revision no longer serves: {entry}"
            ));
        }
    }
    let config = server
        .in_process(&request("GET", "/v1/config", &[], b""))
        .await
        .json();
    if config["result"]["keys"]["payments_ci"] != keys {
        problems.push(format!(
            "/v1/config keys: {}, OPA's {keys}",
            config["result"]["keys"]
        ));
    }
    server.stop().await;
    (!problems.is_empty()).then(|| problems.join("\n  "))
}
