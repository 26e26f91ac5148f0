//! Shared pieces of the remote-bundle tests: OPA's recorded bundle variants, a config for
//! one remote bundle, and the payment decision that tells v1 from v2.

use std::path::Path;

use serde_json::{json, Value as Json};
use verdict::config::Config;

use super::bundle_server::BundleServer;
use super::{golden, Server};

pub fn variant(name: &str) -> Vec<u8> {
    std::fs::read(golden(&format!("fixtures/variants/{name}.tar.gz"))).unwrap()
}

/// OPA's config-svc.yaml, pointed at the test server, with a persistence directory.
pub fn remote_config(server: &BundleServer, persist_dir: &Path, bundle_extra: Json) -> Config {
    let mut payment = json!({
        "service": "ctl",
        "resource": "bundles/payment.tar.gz",
        "persist": true,
        "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1},
    });
    merge(&mut payment, bundle_extra);
    let tree = json!({
        "labels": {"app": "payment-gateway"},
        "services": {"ctl": {"url": server.url("http"), "response_header_timeout_seconds": 2}},
        "bundles": {"payment": payment},
        "persistence_directory": persist_dir.display().to_string(),
        "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
    });
    Config::from_tree(tree).unwrap().0
}

fn merge(into: &mut Json, from: Json) {
    if let (Json::Object(a), Json::Object(b)) = (into, from) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

pub async fn start(config: Config) -> Server {
    let sources = verdict::app::sources(&config).unwrap();
    Server::start(config, sources).await
}

pub async fn status_entry(server: &Server) -> Json {
    let body: Json = super::get(server.url("/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["result"]["bundles"]["payment"].clone()
}

/// The request body of a 1200 EUR customer payment.
pub fn payment_1200() -> Json {
    json!({"input": {"method": "POST", "path": "/api/payment", "role": "customer",
        "amount": 1200, "currency": "EUR", "merchant": "m-1", "country": "DE", "velocity": 1}})
}

/// A payment of 1200 EUR by a customer: allowed under v2's limit of 1500, refused under v1's
/// 1000. Which answer comes back shows which bundle decided.
pub async fn allowed(server: &Server) -> Json {
    let r: Json = super::http()
        .post(server.url("/v1/data/payment/allow"))
        .json(&payment_1200())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["result"].clone()
}

/// Waits until the persisted copy of the payment bundle is the variant `name`. The reloader
/// persists before it records the activation, so the wait wakes on that record.
pub async fn wait_persisted(server: &Server, persistence_dir: &Path, name: &str) {
    let path = persistence_dir.join("bundles/payment/bundle.tar.gz");
    let want = variant(name);
    server
        .wait_until(&format!("{name} persisted"), |_| {
            std::fs::read(&path).is_ok_and(|b| b == want)
        })
        .await;
}

/// `variant` signed with the test RSA key, optionally with its data changed after signing.
pub fn signed(name: &str, tamper: bool) -> Vec<u8> {
    use verdict::bundle::{build, reader, signing};
    let mut files = reader::read_tarball(variant(name).as_slice(), u64::MAX).unwrap();
    let key_path = super::fixture("sign/rsa-private.pem");
    let key = signing::SigningKey::new(key_path.to_str().unwrap(), "RS256", None).unwrap();
    let claims = json!({"scope": "write"}).as_object().unwrap().clone();
    let signatures = signing::sign(&files, &key, Some(claims)).unwrap();
    build::add_signatures(&mut files, signatures);
    if tamper {
        let data = files
            .iter_mut()
            .find(|f| f.path.ends_with("data.json"))
            .unwrap();
        data.bytes = br#"{"limits": {"customer": 1000000}}"#.to_vec();
    }
    let mut out = Vec::new();
    build::write_tarball(&files, &mut out).unwrap();
    out
}
