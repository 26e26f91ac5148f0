//! OPA's status report as verdict builds it: the stages a downloaded bundle's `metrics` time,
//! the reports the status service did not get (`counter_status_dropped_buffer_limit_exceeded`),
//! and which bundles the report lists.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::{json, Value as Json};
use verdict::config::Config;
use verdict::runtime::Trigger;

use crate::common::bundle_server::{bundle, BundleServer, Mode};
use crate::common::remote::{remote_config, start, status_entry, variant};
use crate::common::{self, payment_sources, request, test_config, Server};

fn long_polled(name: &str) -> Mode {
    Mode::Bundle {
        bytes: Bytes::from(variant(name)),
        etag: format!("\"{name}\""),
        long_poll: true,
    }
}

async fn metric_keys(server: &Server) -> BTreeSet<String> {
    let entry = status_entry(server).await;
    let metrics = entry["metrics"].as_object().cloned().unwrap_or_default();
    assert!(
        metrics.values().all(|v| v.as_u64().is_some()),
        "timers are numbers: {entry}"
    );
    metrics.keys().cloned().collect()
}

fn keys(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn a_bundles_metrics_time_the_stages_its_last_download_went_through() {
    // Long polling: each new variant is answered at once, and no 304 replaces the download's
    // timers before they are read.
    let bundles = BundleServer::start(long_polled("v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({"polling": {"min_delay_seconds": 1, "max_delay_seconds": 1,
                                   "long_polling_timeout_seconds": 60}});
    let server = start(remote_config(&bundles, dir.path(), extra)).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    let all = keys(&[
        "timer_bundle_request_ns",
        "timer_rego_load_bundles_ns",
        "timer_rego_module_compile_ns",
        "timer_rego_module_parse_ns",
    ]);
    assert_eq!(metric_keys(&server).await, all, "read, parsed, compiled");

    bundles.set(long_polled("garbage"));
    server.wait_for_error("gzip: invalid header").await;
    assert_eq!(
        metric_keys(&server).await,
        keys(&["timer_bundle_request_ns", "timer_rego_load_bundles_ns"]),
        "not even read: nothing was parsed"
    );

    bundles.set(long_polled("bad-compile"));
    server.wait_for_error("var x is unsafe").await;
    assert_eq!(metric_keys(&server).await, all, "parsed, refused compiling");

    bundles.set(Mode::Status(500));
    server.wait_for_error("Internal Server Error").await;
    assert_eq!(
        metric_keys(&server).await,
        keys(&["timer_bundle_request_ns"]),
        "a failed request read nothing"
    );
}

/// A remote bundle whose status reports go to `status_url`, with the Prometheus families.
fn reporting_to(bundles: &BundleServer, dir: &std::path::Path, status_url: &str) -> Config {
    let tree = json!({
        "labels": {"app": "payment-gateway"},
        "services": {
            "ctl": {"url": bundles.url("http"), "response_header_timeout_seconds": 2},
            "reports": {"url": status_url, "response_header_timeout_seconds": 2},
        },
        "bundles": {"payment": {"service": "ctl", "resource": "bundles/payment.tar.gz",
                                "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1}}},
        "status": {"service": "reports", "prometheus": true},
        "persistence_directory": dir.display().to_string(),
        "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
    });
    Config::from_tree(tree).unwrap().0
}

async fn status_metrics(server: &Server) -> Json {
    let status = server.raw(&request("GET", "/v1/status", &[], b"")).await;
    status.json()["result"]["metrics"]["prometheus"].clone()
}

const DROPPED: &str = "counter_status_dropped_buffer_limit_exceeded";

#[tokio::test]
async fn reports_the_status_service_did_not_get_are_counted_under_opas_name() {
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: every upload fails.
    let server = start(reporting_to(&bundles, dir.path(), "http://127.0.0.1:1")).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    // Checked on each reload event: the bundle's polls bring one every second.
    server
        .wait_until("a status report the service did not get", |s| {
            s.metrics
                .as_ref()
                .is_some_and(|m| m.status_reports_dropped() > 0)
        })
        .await;
    let metrics = status_metrics(&server).await;
    assert!(
        metrics[DROPPED].as_u64().is_some_and(|n| n >= 1),
        "a plain count beside the families, as OPA has it: {}",
        metrics[DROPPED]
    );
    let exposition = server.raw(&request("GET", "/metrics", &[], b"")).await;
    assert!(
        !exposition.text().contains(DROPPED),
        "no Prometheus family in OPA either"
    );
    server.stop().await;

    // A status service that takes every report: nothing is counted, and OPA shows no key.
    let dir = tempfile::tempdir().unwrap();
    let url = bundles.url("http");
    let server = start(reporting_to(&bundles, dir.path(), &url)).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    bundles
        .wait_for("a report of the active bundle", |s| {
            s.method == "POST"
                && serde_json::from_slice::<Json>(&s.body).is_ok_and(|r| {
                    r["bundles"]["payment"]["active_revision"] == "payments-2025-01-01.1"
                })
        })
        .await;
    let metrics = status_metrics(&server).await;
    assert!(metrics.is_object(), "{metrics}");
    assert!(metrics.get(DROPPED).is_none(), "{}", metrics[DROPPED]);
}

async fn status(server: &Server) -> Json {
    let status = server.raw(&request("GET", "/v1/status", &[], b"")).await;
    status.json()["result"].clone()
}

#[tokio::test]
async fn bundles_given_with_b_are_listed_only_where_they_can_be_reloaded() {
    let mut config = test_config();
    config.verdict.watch = false;
    let server = Server::start(config, payment_sources()).await;
    let unwatched = status(&server).await;
    assert!(
        unwatched.get("bundles").is_none(),
        "OPA's shape: {unwatched}"
    );
    assert!(
        unwatched["plugins"].get("bundle").is_none(),
        "no bundle plugin: {unwatched}"
    );
    server.stop().await;

    let server = Server::start(test_config(), payment_sources()).await;
    let watched = status(&server).await;
    let name = verdict::EMBEDDED_BUNDLE_NAME;
    assert_eq!(watched["bundles"][name]["name"], name, "{watched}");
    assert_eq!(watched["plugins"]["bundle"]["state"], "OK", "{watched}");
}

#[tokio::test]
async fn a_rejected_sighup_reload_of_a_b_bundle_is_listed_without_watching() {
    let dir = tempfile::tempdir().unwrap();
    let files = common::simple_bundle("good-1", "true");
    common::write_dir(dir.path(), &files);
    let mut config = test_config();
    config.verdict.watch = false;
    let source = verdict::bundle::Source::path(dir.path().to_path_buf());
    let server = Server::start(config, vec![source]).await;
    assert!(status(&server).await.get("bundles").is_none());

    let (path, _) = files.iter().find(|(p, _)| p.ends_with(".rego")).unwrap();
    common::replace_file(&dir.path().join(path), b"package broken\n\nallow if {\n");
    let before = server.attempts();
    server.triggers.send(Trigger::All).unwrap();
    server.reloads_after(before, 1).await;
    let report = status(&server).await;
    let entries = report["bundles"].as_object().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{report}");
    let entry = entries.values().next().unwrap();
    assert_eq!(entry["code"], "bundle_error", "{report}");
    assert_eq!(entry["active_revision"], "good-1", "{report}");
}
