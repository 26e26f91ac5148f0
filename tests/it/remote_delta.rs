//! Delta bundles from a real local bundle server: patches applied to the bundle serving, the
//! delta's revision and OPA's `delta` type in the status, a delta that does not apply refused
//! while the last good bundle serves, and the snapshot kept on disk for an offline start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::bundle_server::{bundle, BundleServer};
use common::remote::{allowed, remote_config, start, status_entry, variant, wait_persisted};
use serde_json::json;

const ROOTS: &str = r#"["payment", "limits", "envoy", "system"]"#;

fn delta(revision: &str, patch: &str) -> Vec<u8> {
    let manifest = format!(r#"{{"revision": "{revision}", "roots": {ROOTS}}}"#);
    common::tar_gz(&[
        ("/.manifest", manifest.as_bytes()),
        ("/patch.json", patch.as_bytes()),
    ])
}

#[tokio::test]
async fn a_delta_patches_the_serving_bundle_and_a_bad_one_changes_nothing() {
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start(remote_config(&bundles, dir.path(), json!({}))).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    assert_eq!(allowed(&server).await, json!(false), "1200 over v1's 1000");
    wait_persisted(&server, dir.path(), "v1").await;

    // The customer limit raised by a patch: the policies stay, the data changes.
    bundles.set(bundle(
        delta(
            "delta-1",
            r#"{"data": [{"op": "upsert", "path": "/limits/roles/customer/max_amount", "value": 1500},
                        {"op": "remove", "path": "/limits/currencies/2"}]}"#,
        ),
        "d1",
    ));
    server.wait_for_revision("delta-1").await;
    assert_eq!(
        allowed(&server).await,
        json!(true),
        "1200 under the patched 1500"
    );
    let limits = common::get(server.url("/v1/data/limits/currencies"))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(limits["result"], json!(["EUR", "USD"]));
    let status = status_entry(&server).await;
    assert_eq!(status["type"], "delta", "{status}");
    assert_eq!(status["active_revision"], "delta-1");
    let requests = bundles.requests();
    let last = requests.last().unwrap();
    assert!(last.headers["prefer"]
        .to_str()
        .unwrap()
        .starts_with("modes=snapshot,delta"));
    assert_eq!(last.headers["accept-encoding"], "gzip");

    // A delta removing what is not there: refused, delta-1 keeps serving.
    bundles.set(bundle(
        delta(
            "delta-2",
            r#"{"data": [{"op": "remove", "path": "/limits/nope"}]}"#,
        ),
        "d2",
    ));
    let refused = tokio::time::timeout(common::WAIT, async {
        loop {
            let s = status_entry(&server).await;
            if s["message"]
                .as_str()
                .is_some_and(|m| m.contains("/limits/nope: document does not exist"))
            {
                return s;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the bad delta shows in the status");
    assert_eq!(refused["active_revision"], "delta-1");
    assert_eq!(allowed(&server).await, json!(true));

    // As OPA, a delta is not persisted: the snapshot it patched stays on disk.
    let persisted = std::fs::read(dir.path().join("bundles/payment/bundle.tar.gz")).unwrap();
    assert_eq!(persisted, variant("v1"));

    // A delta on disk has nothing to patch: refused at start, with the reason.
    let file = dir.path().join("delta.tar.gz");
    std::fs::write(&file, delta("x", r#"{"data": []}"#)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["eval", "-b"])
        .arg(&file)
        .arg("data")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("delta bundle patches a bundle downloaded"),
        "{stderr}"
    );
}
