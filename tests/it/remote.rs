//! Remote bundles against a real local bundle server: ETags and long polling, the faults a
//! flaky network and a bad publish produce, persistence for an offline start, status reports,
//! and OPA's status for each (replayed from OPA 1.9's answers). Persistence, bad downloads,
//! status uploads and overlapping roots are in `remote_faults`; trust (TLS, signatures) in
//! `remote_trust`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::bundle_server::{bundle, BundleServer, Mode};
use common::golden;
use common::remote::{allowed, remote_config, start, status_entry, variant, wait_persisted};
use serde_json::{json, Value as Json};

pub(crate) fn assert_like_opa(case: &str, ours: &Json) {
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
    assert_eq!(later.headers["prefer"], "modes=snapshot,delta");
    // Every request is timed in OPA's histogram, the 304s too.
    let series =
        r#"bundle_loading_duration_ns_count{name="payment",stage="timer_bundle_request_ns"}"#;
    let timed = tokio::time::timeout(common::WAIT, async {
        loop {
            let text = common::get(server.url("/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let count = text
                .lines()
                .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok());
            if count.is_some_and(|n| n >= 3.0) {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        timed.is_ok(),
        "bundle requests not timed in bundle_loading_duration_ns"
    );

    bundles.set(bundle(variant("v2"), "v2"));
    server.wait_for_revision("payments-2025-01-02.1").await;
    assert_eq!(allowed(&server).await, json!(true));
    // Persisted after activation, as v2's bytes exactly.
    wait_persisted(&server, dir.path(), "v2").await;
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
        .all(|r| r.headers["prefer"] == "modes=snapshot,delta;wait=20"));
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
        bundles.set(mode);
        let status = server.wait_for_error(error).await;
        assert_eq!(status.active_revision, "payments-2025-01-02.1", "{error}");
        // As in OPA: a bundle that reads but does not activate was still downloaded; one that
        // cannot be read, or a failed request, was not. Judged on the request that left this
        // error (the poller keeps asking, so a time taken before it could already be stale).
        let read = error == "var x is unsafe" || error == "do not permit data";
        assert_eq!(
            status.last_successful_download.at() == status.last_request,
            read,
            "{error}: last_successful_download {:?}, last_request {:?}",
            status.last_successful_download,
            status.last_request
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
