//! The `verdict` binary with bundles as users give them: persistence surviving `kill -9`,
//! a decompression bomb refused within bounded memory, and `-b` signed bundles verified with
//! OPA's flags and messages. Real processes, real sockets, every wait under a timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::running::{Running, BIN};
use common::{raw_exchange, request, WAIT};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufReadExt, BufReader};

fn variant(name: &str) -> Vec<u8> {
    std::fs::read(common::golden(&format!("fixtures/variants/{name}.tar.gz"))).unwrap()
}

/// An OPA config for one remote bundle `payment` from `url`, persisted under `dir`.
fn remote_config_file(dir: &Path, url: &str, extra: Json) -> String {
    let mut payment = json!({
        "service": "ctl",
        "resource": "bundles/payment.tar.gz",
        "persist": true,
        "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1,
                    "long_polling_timeout_seconds": 5},
    });
    if let (Json::Object(p), Json::Object(e)) = (&mut payment, extra) {
        p.extend(e);
    }
    let config = json!({
        "services": {"ctl": {"url": url}},
        "bundles": {"payment": payment},
        "persistence_directory": dir.join("persist").display().to_string(),
    });
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path.display().to_string()
}

async fn active_revision(addr: &str) -> Json {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let status = raw_exchange(stream, &request("GET", "/v1/status", &[], b""))
        .await
        .json();
    status["result"]["bundles"]["payment"]["active_revision"].clone()
}

#[tokio::test]
async fn a_kill_9_at_any_point_of_persistence_leaves_a_whole_bundle_to_start_from() {
    use common::bundle_server::{BundleServer, Mode};
    let alternate = Mode::Alternate(vec![
        (variant("v1").into(), "v1".into()),
        (variant("v2").into(), "v2".into()),
    ]);
    let bundles = BundleServer::start(alternate.clone(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let config = remote_config_file(dir.path(), &bundles.url("http"), json!({}));
    let revisions = [
        json!("payments-2025-01-01.1"),
        json!("payments-2025-01-02.1"),
    ];
    for round in 0..4 {
        bundles.set(alternate.clone());
        let args = [
            "--config",
            &config,
            "--addr",
            "127.0.0.1:0",
            "--log-level",
            "debug",
        ];
        let mut verdict = Running::spawn(&args);
        verdict.address().await;
        // The server hands out a new bundle on every request, so activations and writes
        // follow each other without pause: the kill lands somewhere inside one of them.
        for _ in 0..(2 + round) {
            verdict.wait_for_log("bundle persisted").await;
        }
        verdict.signal("KILL");
        assert_eq!(verdict.exit_code().await, None, "killed by a signal");

        bundles.set(Mode::Status(503));
        let mut again = Running::spawn(&args);
        let addr = again.address().await;
        let revision = active_revision(&addr).await;
        assert!(revisions.contains(&revision), "round {round}: {revision}");
        again.signal("KILL");
        again.exit_code().await;
    }
}

#[tokio::test]
async fn a_decompression_bomb_is_rejected_within_bounded_memory() {
    use common::bundle_server::{bundle, BundleServer};
    let bomb = std::fs::read(common::fixture("bomb-1gib.tar.gz")).unwrap();
    let bundles = BundleServer::start(bundle(bomb, "bomb"), None).await;
    let dir = tempfile::tempdir().unwrap();
    // verdict's default size limit (256 MiB) applies; the bomb holds 1000 MiB.
    let config = remote_config_file(dir.path(), &bundles.url("http"), json!({"persist": false}));
    let mut verdict = Running::spawn(&["--config", &config, "--addr", "127.0.0.1:0"]);
    let line = verdict.wait_for_log("bundle rejected").await;
    assert!(
        line["error"]
            .as_str()
            .unwrap()
            .contains("bundle exceeds the size limit of 268435456 bytes"),
        "{line}"
    );
    let pid = verdict.child.id().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    eprintln!("peak RSS while refusing the bomb: {peak_kib} KiB");
    // The limit's worth of bytes plus the process itself, never the bomb's gigabyte.
    assert!(peak_kib < 400 * 1024, "peak RSS {peak_kib} KiB");
    verdict.signal("KILL");
}

#[test]
fn signed_b_bundles_are_verified_with_opas_flags_and_messages() {
    // Each refusal as OPA 1.9 printed it (E-bundle-signing.txt), from the same directory.
    let cases: [(&[&str], &str); 4] = [
        (
            &["--verification-key", "public.pem", "-b", "signed.tar.gz"],
            "error: load error: bundle signed.tar.gz: scope mismatch",
        ),
        (
            &["--verification-key", "public.pem", "--scope", "write", "-b", "tampered.tar.gz"],
            "error: load error: bundle tampered.tar.gz: data.json: digest mismatch (want: 345aab4c4b59a7ed5da036c284cbb2a9c66d1296ebe244639bd61e9381f31518, got: 69ba2d8fb895fa6f2df1fa05c0c35985ec8298674b9c4a2e4a58bd839edfa411)",
        ),
        (
            &["-b", "signed.tar.gz"],
            "error: load error: bundle signed.tar.gz: verification key not provided",
        ),
        (
            &["--verification-key", "public.pem", "--scope", "write", "--signing-alg", "ES256", "-b", "signed.tar.gz"],
            "error: load error: bundle signed.tar.gz: failed to verify JWT signature",
        ),
    ];
    for (args, message) in cases {
        let out = Command::new(BIN)
            .arg("run")
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(common::fixture("sign"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.lines().any(|l| l.starts_with(message)),
            "{args:?}: want {message:?} in {stderr}"
        );
    }
}

#[tokio::test]
async fn signed_b_bundles_serve_with_the_right_key_or_skip_verify() {
    for args in [
        &["--verification-key", "public.pem", "--scope", "write"][..],
        &["--skip-verify"][..],
    ] {
        let mut all = vec!["--addr", "127.0.0.1:0", "-b", "signed.tar.gz"];
        all.extend_from_slice(args);
        let mut child = tokio::process::Command::new(BIN)
            .arg("run")
            .args(&all)
            .current_dir(common::fixture("sign"))
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let started = tokio::time::timeout(WAIT, async {
            while let Some(line) = log.next_line().await.unwrap() {
                if line.contains("server started") {
                    return line;
                }
            }
            panic!("{args:?}: verdict exited before serving");
        })
        .await
        .unwrap();
        assert!(started.contains("payments-2025-01-01.1"), "{started}");
    }
}
