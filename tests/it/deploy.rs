//! The Kubernetes deployment's side of verdict: the config in `deploy/k8s` is one verdict
//! accepts and serves with, its bundle copy is the shipped bundle, and a container whose
//! config can never work exits 64 with the reason instead of crash-looping as if it crashed.
//! The manifests themselves are rendered and schema-checked by `.ci/validate-deploy`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;
use std::process::Stdio;

use common::{repo, Server, WAIT};
use serde_json::{json, Value as Json};
use verdict::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_verdict");

/// Every file under `dir`, relative paths in order, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_configmap_bundle_is_the_shipped_bundle() {
    let shipped = files(&repo().join("bundles/payment"));
    let copy = files(&repo().join("deploy/k8s/base/bundle"));
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&copy), names(&shipped));
    for ((name, a), (_, b)) in copy.iter().zip(&shipped) {
        assert!(
            a == b,
            "deploy/k8s/base/bundle/{name} differs from bundles/payment/{name}: copy it again"
        );
    }
}

#[tokio::test]
async fn the_kubernetes_config_serves_decisions_on_every_interface() {
    let path = repo().join("deploy/k8s/base/verdict.yaml");
    let (mut config, warnings) = Config::load(Some(&path), &[]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    // What the manifests rely on: probes reach the pod IP, the Service targets 9191, the
    // state volume and the ConfigMap bundle are mounted where the config looks.
    assert_eq!(config.verdict.addr, vec![":8181".to_string()]);
    let authz = config.plugins.envoy_ext_authz_grpc.clone().unwrap();
    assert_eq!(authz.addr, ":9191");
    assert_eq!(
        config.remote.persistence_directory,
        Path::new("/var/lib/verdict")
    );
    assert_eq!(
        config.verdict.bundles,
        vec![Path::new("/bundles/payment").to_path_buf()]
    );
    assert_eq!(config.verdict.shutdown_grace_period_seconds, 10);
    assert_eq!(config.verdict.bundle_size_limit_bytes, 64 << 20);

    // Served as in the pod, with the mounts replaced by this checkout's paths.
    let state = tempfile::tempdir().unwrap();
    config.verdict.addr = vec!["127.0.0.1:0".into()];
    config.verdict.bundles = vec![repo().join("deploy/k8s/base/bundle")];
    config.remote.persistence_directory = state.path().to_path_buf();
    config.plugins.envoy_ext_authz_grpc.as_mut().unwrap().addr = "127.0.0.1:0".into();
    let sources = verdict::app::sources(&config).unwrap();
    let server = Server::start(config, sources).await;
    let client = common::http();
    let answer: Json = client
        .post(server.url("/v1/data/payment/decision"))
        .json(&json!({"input": {
            "method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500,
            "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"result": {"allow": true, "reasons": []}}));
    let ready = client
        .get(server.url("/health?bundles"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "the readiness probe's URL");
    assert!(server.grpc_addr.is_some());
}

#[test]
fn the_remote_bundle_component_config_is_accepted_and_logs_decisions() {
    let path = repo().join("deploy/k8s/components/remote-bundle/verdict.yaml");
    let (config, warnings) = Config::load(Some(&path), &[]).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let logs = config.decision_logs.as_ref().unwrap();
    assert!(logs.enabled());
    assert_eq!(logs.service.as_deref(), Some("ctl"));
    assert!(config.remote.service("ctl").is_some());
    assert_eq!(
        config.remote.persistence_directory,
        Path::new("/var/lib/verdict")
    );
}

/// Runs `verdict run` with a config file and waits for it to exit.
async fn exit_of(config: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("verdict.yaml");
    std::fs::write(&path, config).unwrap();
    let child = tokio::process::Command::new(BIN)
        .args(["run", "--addr", "127.0.0.1:0", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("verdict started with a config that cannot work")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr)
}

#[tokio::test]
async fn a_config_that_cannot_be_put_to_use_exits_64_with_the_reason() {
    let (code, stderr) =
        exit_of("plugins:\n  envoy_ext_authz_grpc:\n    addr: gateway-port\n").await;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("error: cannot listen on gateway-port"),
        "{stderr}"
    );

    let (code, stderr) = exit_of(
        "services:\n  ctl:\n    url: https://127.0.0.1:1\n    tls: {ca_cert: /nonexistent/ca.pem}\n\
         bundles:\n  payment: {service: ctl, resource: payment.tar.gz}\n",
    )
    .await;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("cannot read CA certificate /nonexistent/ca.pem"),
        "{stderr}"
    );

    // A signing key no signature could be checked with (the remote-bundle component's
    // placeholder, left unedited) stops the start, not the first download.
    let component = repo().join("deploy/k8s/components/remote-bundle/verdict.yaml");
    let text = std::fs::read_to_string(component).unwrap();
    let placeholder = text.replace("/var/lib/verdict", "/nonexistent-state");
    let (code, stderr) = exit_of(&placeholder).await;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains(
            "bundles.payment.signing: failed to parse the RS256 key: keys.payments_ci_2026"
        ),
        "{stderr}"
    );

    // A port already taken is the node's state, not the config's: still 1.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, stderr) = exit_of(&format!(
        "plugins:\n  envoy_ext_authz_grpc:\n    addr: 127.0.0.1:{port}\n"
    ))
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}
