//! Remote bundles against a real local bundle server: ETags and long polling, the faults a
//! flaky network and a bad publish produce, persistence for an offline start, and OPA's status
//! for each (replayed from OPA 1.9's answers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::bundle_server::{bundle, BundleServer, Mode};
use common::{golden, Server};
use serde_json::{json, Value as Json};
use verdict::config::Config;

fn variant(name: &str) -> Vec<u8> {
    std::fs::read(golden(&format!("fixtures/variants/{name}.tar.gz"))).unwrap()
}

/// OPA's config-svc.yaml, pointed at the test server, with a persistence directory.
fn remote_config(server: &BundleServer, persist_dir: &Path, bundle_extra: Json) -> Config {
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

async fn start(config: Config) -> Server {
    let sources = verdict::cli::run::sources(&config).unwrap();
    Server::start(config, sources).await
}

async fn status_entry(server: &Server) -> Json {
    let body: Json = common::get(server.url("/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["result"]["bundles"]["payment"].clone()
}

/// A payment of 1200 EUR by a customer: allowed under v2's limit of 1500, refused under v1's
/// 1000. Which answer comes back shows which bundle decided.
async fn allowed(server: &Server) -> Json {
    let input = json!({"input": {"method": "POST", "path": "/api/payment", "role": "customer",
        "amount": 1200, "currency": "EUR", "merchant": "m-1", "country": "DE", "velocity": 1}});
    let r: Json = common::http()
        .post(server.url("/v1/data/payment/allow"))
        .json(&input)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["result"].clone()
}

/// Compares a status entry with OPA's: the same fields, and the same values except times and
/// timers, whose presence (and Go's zero time) must match.
fn assert_like_opa(case: &str, ours: &Json) {
    let all: Json =
        serde_json::from_slice(&std::fs::read(golden("remote/status.json")).unwrap()).unwrap();
    let opa = &all[case];
    let keys = |v: &Json| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(ours), keys(opa), "{case}: fields differ: {ours:#}");
    for (k, want) in opa.as_object().unwrap() {
        let got = &ours[k];
        if k.starts_with("last_") {
            let zero = "0001-01-01T00:00:00Z";
            assert_eq!(
                got == zero,
                want == zero,
                "{case}: {k} is {got}, OPA's {want}"
            );
            assert!(
                chrono::DateTime::parse_from_rfc3339(got.as_str().unwrap()).is_ok(),
                "{case}: {k}"
            );
        } else if k == "metrics" {
            assert!(
                got["timer_bundle_request_ns"].as_u64().is_some(),
                "{case}: {got}"
            );
        } else {
            assert_eq!(got, want, "{case}: {k}");
        }
    }
}

#[tokio::test]
async fn downloads_with_etags_and_activates_new_revisions_without_restart() {
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(remote_config(&bundles, dir.path(), json!({}))).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    assert_eq!(allowed(&server).await, json!(false));
    assert_like_opa("D-status-v1", &status_entry(&server).await);
    let health = common::get(server.url("/health?bundles")).await.unwrap();
    assert_eq!(health.status(), 200);

    // Unchanged: the next polls are conditional and answered 304.
    let seen = bundles.request_count();
    bundles.wait_for_requests(seen + 2).await;
    let requests = bundles.requests();
    assert_eq!(requests[0].path, "/bundles/payment.tar.gz");
    assert!(requests[0].headers.get("if-none-match").is_none());
    let later = &requests[seen + 1];
    assert_eq!(later.headers["if-none-match"], "\"v1\"");
    assert_eq!(later.status, 304);
    assert_eq!(later.headers["prefer"], "modes=snapshot");

    bundles.set(bundle(variant("v2"), "v2"));
    server.wait_for_revision("payments-2025-01-02.1").await;
    assert_eq!(allowed(&server).await, json!(true));
    // Persisted after activation, as v2's bytes exactly.
    wait_persisted(&server, dir.path(), "v2").await;
}

/// Waits until the persisted copy of the payment bundle is the variant `name`. The reloader
/// persists before it records the activation, so the wait wakes on that record.
async fn wait_persisted(server: &Server, persistence_dir: &Path, name: &str) {
    let path = persistence_dir.join("bundles/payment/bundle.tar.gz");
    let want = variant(name);
    server
        .wait_until(&format!("{name} persisted"), |_| {
            std::fs::read(&path).is_ok_and(|b| b == want)
        })
        .await;
}

#[tokio::test]
async fn long_polls_while_the_server_answers_with_opas_media_type() {
    let mode = |bytes, etag: &str| Mode::Bundle {
        bytes,
        etag: format!("\"{etag}\""),
        long_poll: true,
    };
    let bundles = BundleServer::start(mode(variant("v1").into(), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = remote_config(
        &bundles,
        dir.path(),
        json!({"polling": {"min_delay_seconds": 30, "max_delay_seconds": 60,
                            "long_polling_timeout_seconds": 20}}),
    );
    let server = start(config).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    // With a 30 s polling delay, only a held long poll can bring v2 within the test's wait.
    bundles.set(mode(variant("v2").into(), "v2"));
    server.wait_for_revision("payments-2025-01-02.1").await;
    let requests = bundles.requests();
    assert!(requests
        .iter()
        .all(|r| r.headers["prefer"] == "modes=snapshot;wait=20"));
    assert_eq!(requests[1].headers["if-none-match"], "\"v1\"");
}

#[tokio::test]
async fn faults_keep_the_last_good_bundle_serving_and_show_in_status_as_in_opa() {
    let bundles = BundleServer::start(bundle(variant("v2"), "v2"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(remote_config(&bundles, dir.path(), json!({}))).await;
    server.wait_for_revision("payments-2025-01-02.1").await;

    let cases = [
        (
            bundle(variant("bad-compile"), "bad-compile"),
            "var x is unsafe",
            Some("D-status-after-bad-compile"),
        ),
        (
            bundle(variant("bad-overlap"), "bad-overlap"),
            "overlapped roots",
            Some("D-status-after-bad-overlap"),
        ),
        (
            bundle(variant("bad-roots"), "bad-roots"),
            "do not permit data",
            None,
        ),
        (
            bundle(variant("garbage"), "garbage"),
            "gzip: invalid header",
            Some("D-status-after-garbage"),
        ),
        (
            Mode::Status(500),
            "Internal Server Error",
            Some("D-status-after-500"),
        ),
        (Mode::Status(404), "server replied with Not Found", None),
        (
            Mode::Truncated(variant("v1").into()),
            "bundle download interrupted",
            None,
        ),
        (Mode::Hang, "no response from the server within 2s", None),
    ];
    for (mode, error, opa_case) in cases {
        let before = server.state.bundle_status()[0].last_successful_download;
        bundles.set(mode);
        let status = server.wait_for_error(error).await;
        assert_eq!(status.active_revision, "payments-2025-01-02.1", "{error}");
        // As in OPA: a bundle that reads but does not activate was still downloaded; one that
        // cannot be read, or a failed request, was not.
        let read = error == "var x is unsafe" || error == "do not permit data";
        assert_eq!(
            status.last_successful_download != before,
            read,
            "{error}: last_successful_download"
        );
        assert_eq!(
            allowed(&server).await,
            json!(true),
            "{error}: v2 still decides"
        );
        if let Some(case) = opa_case {
            assert_like_opa(case, &status_entry(&server).await);
        }
        let health = common::get(server.url("/health?bundles")).await.unwrap();
        assert_eq!(health.status(), 200, "{error}: ready once activated");
    }

    bundles.set(bundle(variant("v1"), "v1"));
    server.wait_for_revision("payments-2025-01-01.1").await;
    assert_eq!(allowed(&server).await, json!(false));
    assert_like_opa("D-status-recovered", &status_entry(&server).await);

    // An outage, then the same bundle again: a 304 ends the error, as OPA's does.
    bundles.set(Mode::Status(503));
    server.wait_for_error("Service Unavailable").await;
    bundles.set(bundle(variant("v1"), "v1"));
    server
        .wait_until("the error cleared by a 304", |s| {
            s.bundle_status()[0].code.is_empty()
        })
        .await;
    let status = server.state.bundle_status()[0].clone();
    assert_eq!(status.http_code, None);
    assert_eq!(bundles.requests().last().unwrap().status, 304);
}

#[tokio::test]
async fn starts_from_the_persisted_bundle_while_the_server_is_down() {
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let first = start(remote_config(&bundles, dir.path(), json!({}))).await;
    first.wait_for_revision("payments-2025-01-01.1").await;
    wait_persisted(&first, dir.path(), "v1").await;
    first.stop().await;

    bundles.set(Mode::Status(503));
    let seen = bundles.request_count();
    let second = start(remote_config(&bundles, dir.path(), json!({}))).await;
    // Serving v1 before the server was asked anything.
    assert_eq!(second.revision(), "payments-2025-01-01.1");
    assert!(second.state.bundles_ready());
    assert_eq!(allowed(&second).await, json!(false));
    second.wait_for_error("Service Unavailable").await;
    assert!(bundles.request_count() > seen);
    assert_like_opa("D2-status", &status_entry(&second).await);

    bundles.set(bundle(variant("v2"), "v2"));
    second.wait_for_revision("payments-2025-01-02.1").await;
}

#[tokio::test]
async fn a_corrupt_or_missing_persisted_bundle_is_never_served() {
    let bundles = BundleServer::start(Mode::Status(503), None).await;
    let dir = tempfile::tempdir().unwrap();

    // Nothing persisted, server down: not ready, nothing served, OPA's status.
    let server = start(remote_config(&bundles, dir.path(), json!({}))).await;
    assert!(!server.state.bundles_ready());
    server.wait_for_error("Service Unavailable").await;
    assert_like_opa("D3-status", &status_entry(&server).await);
    let health = common::get(server.url("/health?bundles")).await.unwrap();
    assert_eq!(health.status(), 500);
    assert_eq!(allowed(&server).await, Json::Null);
    server.stop().await;

    // A torn file (half of v2) where the persisted bundle should be.
    let persisted = dir.path().join("bundles/payment");
    std::fs::create_dir_all(&persisted).unwrap();
    let v2 = variant("v2");
    std::fs::write(persisted.join("bundle.tar.gz"), &v2[..v2.len() / 2]).unwrap();
    let server = start(remote_config(&bundles, dir.path(), json!({}))).await;
    assert!(!server.state.bundles_ready());
    assert!(server.state.snapshot().bundles.is_empty());

    // The server comes back: the download replaces the torn file and serves.
    bundles.set(bundle(variant("v1"), "v1"));
    server.wait_for_revision("payments-2025-01-01.1").await;
    assert!(server.state.bundles_ready());
    wait_persisted(&server, dir.path(), "v1").await;
}

#[tokio::test]
async fn a_decompression_bomb_and_path_traversal_are_rejected() {
    let bundles = BundleServer::start(bundle(variant("v2"), "v2"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = remote_config(&bundles, dir.path(), json!({"size_limit_bytes": 16 << 20}));
    let server = start(config).await;
    server.wait_for_revision("payments-2025-01-02.1").await;

    let bomb = std::fs::read(common::fixture("bomb-1gib.tar.gz")).unwrap();
    bundles.set(bundle(bomb, "bomb"));
    server
        .wait_for_error("bundle exceeds the size limit of 16777216 bytes")
        .await;

    let traversal = common::tar_gz(&[
        (
            ".manifest",
            br#"{"revision": "evil", "roots": ["payment"]}"#.as_slice(),
        ),
        (
            "../../etc/payment/policy.rego",
            b"package payment\nallow := true\n",
        ),
    ]);
    bundles.set(bundle(traversal, "traversal"));
    server
        .wait_for_error("would be written outside the bundle")
        .await;
    assert_eq!(server.revision(), "payments-2025-01-02.1");
    assert_eq!(allowed(&server).await, json!(true));
    // Nothing of either was persisted.
    let persisted = std::fs::read(dir.path().join("bundles/payment/bundle.tar.gz")).unwrap();
    assert_eq!(persisted, variant("v2"));
}

#[tokio::test]
async fn a_download_over_the_size_limit_is_refused_before_it_is_read() {
    let bundles = BundleServer::start(bundle(vec![0x1f; 4096], "big"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(remote_config(
        &bundles,
        dir.path(),
        json!({"size_limit_bytes": 1024, "persist": false}),
    ))
    .await;
    let status = server
        .wait_for_error("bundle exceeds the size limit of 1024 bytes")
        .await;
    assert!(status.active_revision.is_empty());
    assert!(!dir.path().join("bundles").exists());
}

#[tokio::test]
async fn https_with_a_custom_ca_a_client_certificate_and_a_rotated_bearer_token() {
    let pki = common::pki::Pki::new();
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), Some(pki.server_config())).await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (ca, cert, key) = (
        file("ca.pem", &pki.ca_pem),
        file("client.pem", &pki.client_cert_pem),
        file("client-key.pem", &pki.client_key_pem),
    );
    let token = file("token", "first-token\n");
    let service = |credentials: Json, ca: Option<&str>| {
        let mut tree = json!({
            "services": {"ctl": {
                "url": bundles.url("https"),
                "response_header_timeout_seconds": 2,
                "credentials": credentials,
            }},
            "bundles": {"payment": {"resource": "bundles/payment.tar.gz",
                "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1}}},
            "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
        });
        if let Some(ca) = ca {
            tree["services"]["ctl"]["tls"] = json!({"ca_cert": ca});
        }
        Config::from_tree(tree).unwrap().0
    };
    let full = json!({
        "client_tls": {"cert": cert, "private_key": key},
        "bearer": {"token_path": token},
    });
    let server = start(service(full.clone(), Some(&ca))).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    assert_eq!(
        bundles.requests()[0].headers["authorization"],
        "Bearer first-token"
    );
    // A rotated token file is used from the next request on.
    std::fs::write(dir.path().join("token"), "rotated-token").unwrap();
    let seen = bundles.request_count();
    bundles.wait_for_requests(seen + 2).await;
    assert_eq!(
        bundles.requests().last().unwrap().headers["authorization"],
        "Bearer rotated-token"
    );
    server.stop().await;

    // No client certificate, or no trust in the server's CA: no bundle, and the status says
    // why.
    let refused = [
        (json!({"bearer": {"token": "t"}}), Some(ca.as_str())),
        (full, None),
    ];
    for (credentials, ca) in refused {
        let server = start(service(credentials, ca)).await;
        server
            .wait_until("a TLS failure in the status", |s| {
                s.bundle_status()[0].code == "bundle_error"
            })
            .await;
        let status = server.state.bundle_status()[0].clone();
        assert!(!status.is_activated(), "{status:?}");
        assert!(
            status.message.contains("certificate") || status.message.contains("alert"),
            "{}",
            status.message
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn only_bundles_signed_with_the_configured_key_activate() {
    let sign = |name: &str| std::fs::read(common::fixture(&format!("sign/{name}"))).unwrap();
    let bundles = BundleServer::start(bundle(sign("signed.tar.gz"), "signed"), None).await;
    let dir = tempfile::tempdir().unwrap();
    // OPA's sign/config-signed.json, pointed at the test server.
    let key = String::from_utf8(sign("public.pem")).unwrap();
    let tree = json!({
        "services": {"ctl": {"url": bundles.url("http")}},
        "keys": {"payments_ci": {"key": key, "algorithm": "RS256"}},
        "bundles": {"payment": {
            "service": "ctl",
            "resource": "bundles/payment.tar.gz",
            "persist": true,
            "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1},
            "signing": {"keyid": "payments_ci", "scope": "write"},
        }},
        "persistence_directory": dir.path().display().to_string(),
        "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
    });
    let config = || Config::from_tree(tree.clone()).unwrap().0;
    let server = start(config()).await;
    server.wait_for_revision("payments-2025-01-01.1").await;

    // OPA's words for each refusal, recorded from OPA 1.9 (E-bundle-signing.txt).
    let refused = [
        (
            bundle(sign("tampered.tar.gz"), "tampered"),
            "data.json: digest mismatch (want: 345aab4c4b59a7ed5da036c284cbb2a9c66d1296ebe244639bd61e9381f31518, got: 69ba2d8fb895fa6f2df1fa05c0c35985ec8298674b9c4a2e4a58bd839edfa411)",
        ),
        (
            bundle(variant("v2"), "unsigned"),
            "bundle missing .signatures.json file",
        ),
    ];
    for (mode, message) in refused {
        bundles.set(mode);
        let status = server.wait_for_error(message).await;
        assert_eq!(status.message, message);
        assert_eq!(status.active_revision, "payments-2025-01-01.1");
    }
    let body: Json = common::get(server.url("/v1/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["result"]["keys"]["payments_ci"],
        json!({"algorithm": "RS256"}),
        "key material is not shown"
    );
    server.stop().await;

    // The persisted copy is checked again at start: a tampered file there is not served.
    let persisted = dir.path().join("bundles/payment/bundle.tar.gz");
    assert_eq!(std::fs::read(&persisted).unwrap(), sign("signed.tar.gz"));
    std::fs::write(&persisted, sign("tampered.tar.gz")).unwrap();
    bundles.set(Mode::Status(503));
    let server = start(config()).await;
    assert!(!server.state.bundles_ready());
    assert!(server.state.snapshot().bundles.is_empty());
}

#[tokio::test]
async fn status_reports_are_uploaded_on_every_change() {
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = remote_config(&bundles, dir.path(), json!({}));
    config.remote.status = Some(verdict::config::StatusConfig {
        service: "ctl".into(),
        ..Default::default()
    });
    let server = start(config).await;
    let report = |seen: &common::bundle_server::Seen| -> Json {
        serde_json::from_slice(&seen.body).unwrap_or(Json::Null)
    };
    let active = bundles
        .wait_for("a report of v1 active", |s| {
            s.method == "POST"
                && report(s)["bundles"]["payment"]["active_revision"] == "payments-2025-01-01.1"
        })
        .await;
    assert_eq!(active.path, "/status");
    assert_eq!(active.headers["content-type"], "application/json");
    let body = report(&active);
    assert_eq!(body["labels"]["app"], "payment-gateway");
    assert_eq!(
        body["labels"]["id"].as_str().unwrap(),
        server.state.instance_id
    );
    assert_eq!(body["plugins"]["bundle"]["state"], "OK");
    assert_eq!(body["plugins"]["status"]["state"], "OK");

    bundles.set(bundle(variant("garbage"), "garbage"));
    let failed = bundles
        .wait_for("a report of the rejected bundle", |s| {
            s.method == "POST" && report(s)["bundles"]["payment"]["code"] == "bundle_error"
        })
        .await;
    let entry = &report(&failed)["bundles"]["payment"];
    assert_eq!(
        entry["message"],
        "bundle read failed: archive read failed: gzip: invalid header"
    );
    assert_eq!(entry["active_revision"], "payments-2025-01-01.1");
}

/// `variant` signed with the test RSA key, optionally with its data changed after signing.
fn signed(name: &str, tamper: bool) -> Vec<u8> {
    use verdict::bundle::{build, reader, signing};
    let mut files = reader::read_tarball(variant(name).as_slice(), u64::MAX).unwrap();
    let key_path = common::fixture("sign/rsa-private.pem");
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

#[tokio::test]
async fn behind_a_flapping_network_every_decision_comes_from_a_verified_bundle() {
    let bundles = BundleServer::start(bundle(signed("v1", false), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let key = std::fs::read_to_string(common::fixture("sign/rsa-public.pem")).unwrap();
    let mut tree = json!({
        "services": {"ctl": {"url": bundles.url("http"), "response_header_timeout_seconds": 1}},
        "keys": {"ci": {"key": key, "algorithm": "RS256"}},
        "bundles": {"payment": {
            "resource": "bundles/payment.tar.gz",
            "persist": true,
            "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1},
            "signing": {"keyid": "ci", "scope": "write"},
        }},
        "persistence_directory": dir.path().display().to_string(),
        "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
    });
    let server = start(Config::from_tree(tree.take()).unwrap().0).await;
    server.wait_for_revision("payments-2025-01-01.1").await;

    // Decisions run without pause for the whole test; every one must come from v1 or v2 as
    // signed (a tampered bundle would allow 1200 for a customer under both).
    let url = server.url("/v1/data/payment/allow?provenance");
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let decisions = tokio::spawn(async move {
        let client = common::http();
        let input = json!({"input": {"method": "POST", "path": "/api/payment", "role": "customer",
            "amount": 1200, "currency": "EUR", "merchant": "m-1", "country": "DE", "velocity": 1}});
        let mut count = 0u32;
        loop {
            if stopped.try_recv().is_ok() {
                return count;
            }
            let r: Json = client
                .post(&url)
                .json(&input)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let revision = &r["provenance"]["bundles"]["payment"]["revision"];
            match revision.as_str() {
                Some("payments-2025-01-01.1") => assert_eq!(r["result"], json!(false), "{r}"),
                Some("payments-2025-01-02.1") => assert_eq!(r["result"], json!(true), "{r}"),
                _ => panic!("decided by an unexpected bundle: {r}"),
            }
            count += 1;
        }
    });

    for round in 0..2 {
        let steps = [
            (Mode::Status(503), "Service Unavailable"),
            (
                bundle(signed("v2", true), &format!("tampered-{round}")),
                "digest mismatch",
            ),
            (Mode::Hang, "no response from the server"),
            (
                bundle(signed("v2", false), &format!("v2-{round}")),
                "payments-2025-01-02.1",
            ),
            (
                Mode::Truncated(signed("v1", false).into()),
                "bundle download interrupted",
            ),
            (
                bundle(signed("v1", false), &format!("v1-{round}")),
                "payments-2025-01-01.1",
            ),
        ];
        for (mode, outcome) in steps {
            bundles.set(mode);
            if outcome.starts_with("payments-") {
                server.wait_for_revision(outcome).await;
            } else {
                server.wait_for_error(outcome).await;
            }
        }
    }
    stop.send(()).unwrap();
    let count = decisions.await.unwrap();
    assert!(count > 0);
}

#[tokio::test]
async fn a_download_whose_roots_overlap_another_bundle_is_refused() {
    let payment = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let manifest = br#"{"revision": "extra-1", "roots": ["extra"]}"#;
    let extra_v1 = common::tar_gz(&[
        (".manifest", manifest.as_slice()),
        ("extra/policy.rego", b"package extra\n\nenabled := true\n"),
    ]);
    let extra = BundleServer::start(bundle(extra_v1, "extra-1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let polling = json!({"min_delay_seconds": 1, "max_delay_seconds": 1});
    let tree = json!({
        "services": {"a": {"url": payment.url("http")}, "b": {"url": extra.url("http")}},
        "bundles": {
            "payment": {"service": "a", "resource": "bundles/payment.tar.gz", "polling": polling},
            "extra": {"service": "b", "resource": "bundles/extra.tar.gz", "polling": polling},
        },
        "persistence_directory": dir.path().display().to_string(),
        "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
    });
    let server = start(Config::from_tree(tree).unwrap().0).await;
    server
        .wait_until("both bundles active", |s| s.bundles_ready())
        .await;

    // The extra bundle's next revision claims a root inside the payment bundle's.
    let grabbing = common::tar_gz(&[(
        ".manifest",
        br#"{"revision": "extra-2", "roots": ["extra", "payment/limits"]}"#.as_slice(),
    )]);
    extra.set(bundle(grabbing, "extra-2"));
    server.wait_for_error("overlapping roots").await;
    let statuses = server.state.bundle_status();
    let named = |name: &str| statuses.iter().find(|b| b.name == name).unwrap();
    assert!(
        named("payment").message.is_empty(),
        "{:?}",
        named("payment")
    );
    assert_eq!(named("payment").active_revision, "payments-2025-01-01.1");
    assert_eq!(named("extra").active_revision, "extra-1");
    assert!(
        named("extra").message.contains("payment/limits"),
        "{}",
        named("extra").message
    );
    assert_eq!(
        allowed(&server).await,
        json!(false),
        "payment v1 still decides"
    );
}

#[test]
fn the_commented_remote_example_in_the_deploy_config_is_valid() {
    // deploy/verdict.yaml carries the remote-bundle sections commented out; uncommented, they
    // must make a config verdict accepts.
    let text = std::fs::read_to_string(common::repo().join("deploy/verdict.yaml")).unwrap();
    let start = text.find("# services:").unwrap();
    let end = text[start..].find("\n\n").map_or(text.len(), |e| start + e);
    let uncommented: String = text[start..end]
        .lines()
        // Prose comments start with a capital; the commented-out YAML does not.
        .filter(|l| {
            !l.trim_start_matches(['#', ' '])
                .starts_with(char::is_uppercase)
        })
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("remote.yaml");
    std::fs::write(&path, &uncommented).unwrap();
    let (config, warnings) = Config::load(Some(&path), &[]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let payment = &config.remote.bundles["payment"];
    assert_eq!(payment.service, "ctl");
    assert!(payment.persist);
    assert_eq!(payment.polling.long_polling_timeout_seconds, Some(60));
    assert_eq!(
        config.remote.persistence_directory,
        std::path::PathBuf::from("/var/lib/verdict")
    );
    let sources = verdict::cli::run::sources(&config).unwrap();
    assert_eq!(sources.len(), 1);
    assert!(sources[0].is_remote());
}

#[test]
fn a_signature_covers_files_verdict_does_not_read() {
    use verdict::bundle::{build, reader, signing, Bundle, Location, Source, Verification};
    // A signed tarball with a README, as `opa build` signs every file of a bundle.
    let mut files = reader::read_tarball(variant("v1").as_slice(), u64::MAX).unwrap();
    files.push(reader::RawFile {
        path: "/README.md".into(),
        bytes: b"payment policy\n".to_vec(),
    });
    let key_path = common::fixture("sign/rsa-private.pem");
    let key = signing::SigningKey::new(key_path.to_str().unwrap(), "RS256", None).unwrap();
    let signatures = signing::sign(&files, &key, None).unwrap();
    build::add_signatures(&mut files, signatures);
    let tarball = |files: &[reader::RawFile]| {
        let mut out = Vec::new();
        build::write_tarball(files, &mut out).unwrap();
        out
    };
    let public = std::fs::read_to_string(common::fixture("sign/rsa-public.pem")).unwrap();
    let verification =
        signing::VerificationConfig::from_flags(&public, "default", "RS256", None, Vec::new())
            .unwrap();
    let source = Source {
        location: Location::Remote { persist_dir: None },
        verification: Verification::Keys(std::sync::Arc::new(verification)),
        ..Source::path("payment")
    };
    let options = verdict::bundle::LoadOptions::default();
    let bundle = Bundle::from_download(&source, &tarball(&files), options).unwrap();
    assert_eq!(bundle.revision(), "payments-2025-01-01.1");

    // The README changed after signing: refused, as OPA refuses it.
    let readme = files.iter_mut().find(|f| f.path == "/README.md").unwrap();
    readme.bytes = b"tampered\n".to_vec();
    let err = Bundle::from_download(&source, &tarball(&files), options).unwrap_err();
    assert!(
        err.to_string().contains("README.md: digest mismatch"),
        "{err}"
    );
}
