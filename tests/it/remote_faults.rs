//! Remote bundles that go wrong, against a real local bundle server: an offline start from
//! the persisted bundle (never a corrupt one), decompression bombs and path traversal, a
//! download over the size limit, status uploads on every change, overlapping roots, and the
//! deploy config's commented remote example.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::remote::assert_like_opa;

use common::bundle_server::{bundle, BundleServer, Mode};
use common::remote::{allowed, remote_config, start, status_entry, variant, wait_persisted};
use serde_json::{json, Value as Json};
use verdict::config::Config;

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

/// OPA's reader parses every module before it checks the manifest: a download with a module
/// that does not parse and overlapping roots is refused for the module, as a request that
/// failed (the last successful download stays the earlier one), with the parser's errors and
/// the time parsing took.
#[tokio::test]
async fn a_download_whose_module_does_not_parse_is_refused_for_it_before_its_roots() {
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(remote_config(&bundles, dir.path(), json!({}))).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    let downloaded = server.state.bundle_status()[0].last_successful_download;
    let manifest = br#"{"revision": "broken-1", "roots": ["payment", "payment/sub"]}"#;
    let broken = common::tar_gz(&[
        (".manifest", manifest.as_slice()),
        (
            "payment/policy.rego",
            b"package payment\n\nallow if {\n".as_slice(),
        ),
    ]);
    bundles.set(bundle(broken, "broken-1"));
    let status = server
        .wait_for_error("error(s) occurred while compiling module(s)")
        .await;
    assert_eq!(status.errors[0].code, "rego_parse_error", "{status:?}");
    assert_eq!(
        status.last_successful_download, downloaded,
        "a failed request, not a download"
    );
    let metrics = status.metrics.unwrap();
    assert!(metrics.timer_rego_module_parse_ns.is_some(), "{metrics:?}");
    assert!(metrics.timer_rego_load_bundles_ns.is_some(), "{metrics:?}");
    assert_eq!(metrics.timer_rego_module_compile_ns, None, "never compiled");
    assert_eq!(allowed(&server).await, json!(false), "v1 still decides");

    // The module fixed: now the roots are what is wrong, found once the modules parsed.
    let overlapping = common::tar_gz(&[
        (".manifest", manifest.as_slice()),
        (
            "payment/policy.rego",
            b"package payment\n\nallow := true\n".as_slice(),
        ),
    ]);
    bundles.set(bundle(overlapping, "overlapping-1"));
    let status = server.wait_for_error("overlapped roots").await;
    assert!(status.errors.is_empty(), "{status:?}");
    let metrics = status.metrics.unwrap();
    assert!(metrics.timer_rego_module_parse_ns.is_some(), "{metrics:?}");
    assert_eq!(status.last_successful_download, downloaded);
    assert_eq!(allowed(&server).await, json!(false), "v1 still decides");
}

/// Stopping the service stops its reloader, bundle poller and uploaders too: once the drain
/// is over nothing of the instance is left running, holding its state or asking the server.
#[tokio::test]
async fn stopping_ends_the_pollers_and_uploaders() {
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = remote_config(&bundles, dir.path(), json!({}));
    let extra = json!({
        "status": {"service": "ctl"},
        "decision_logs": {"service": "ctl", "reporting": {"min_delay_seconds": 1}},
    });
    let tree = serde_json::to_value(&config).unwrap();
    let mut tree = tree.as_object().unwrap().clone();
    tree.extend(extra.as_object().unwrap().clone());
    config = Config::from_tree(Json::Object(tree)).unwrap().0;
    let server = start(config).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    bundles
        .wait_for("a status report", |s| s.path == "/status")
        .await;
    let state = std::sync::Arc::downgrade(&server.state);
    server.stop().await;
    let ended = tokio::time::timeout(common::WAIT, async {
        while state.upgrade().is_some() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "a task of the stopped instance still holds its state"
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
    // The key comes from the environment in the example; here, a real one in its place.
    let key = std::fs::read_to_string(common::fixture("sign/rsa-public.pem")).unwrap();
    let uncommented = uncommented.replace(
        "\"${BUNDLE_SIGNING_PUBLIC_KEY}\"",
        &serde_json::to_string(&key).unwrap(),
    );
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
    let sources = verdict::app::sources(&config).unwrap();
    assert_eq!(sources.len(), 1);
    assert!(sources[0].is_remote());
    let logs = config.decision_logs.unwrap();
    assert_eq!(logs.service.as_deref(), Some("ctl"));
    assert_eq!(logs.request_context.http.headers, ["X-Request-Id"]);
}
