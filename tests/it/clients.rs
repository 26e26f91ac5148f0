//! The published OPA clients themselves against a real `verdict run` on the golden payment
//! bundle: opa-python-client 3.0.0 (PyPI) and @styra/opa 1.7.10 (npm), each driven by a small
//! script in tests/clients that makes every call an OPA user makes with it (policy API reads
//! and writes, data writes, decisions, ad-hoc and bulk queries; evaluate, the default decision
//! evaluateBatch on the real batch endpoint, and the provenance a build fills).
//!
//! `.ci/install-clients` (run by `.ci/run`) installs them into target/e2e-clients. Locally the
//! test says it is skipped when they are not there; under CI (`CI=true`) it fails instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::running::Running;
use common::{golden, repo, WAIT};
use serde_json::json;

struct Clients {
    python: PathBuf,
    npm: PathBuf,
}

fn installed() -> Option<Clients> {
    let dir = repo().join("target/e2e-clients");
    let clients = Clients {
        python: dir.join("venv/bin/python"),
        npm: dir.join("npm"),
    };
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let present = clients.python.exists()
        && clients
            .npm
            .join("node_modules/@styra/opa/package.json")
            .exists();
    (node && present).then_some(clients)
}

async fn run(program: &Path, args: &[&str]) -> Output {
    let run = tokio::process::Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} did not finish in time", program.display()))
        .unwrap()
}

fn assert_passed(client: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{client} failed against verdict:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all calls passed"), "{client}:\n{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_opa_clients_work_unchanged() {
    let Some(clients) = installed() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the published clients are not in target/e2e-clients: .ci/run installs them with .ci/install-clients"
        );
        eprintln!(
            "SKIPPED published_opa_clients_work_unchanged: run .ci/install-clients to install opa-python-client and @styra/opa"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let settings = json!({
        "persistence_directory": dir.path().join("persist"),
        "default_decision": "/payment/allow",
    });
    std::fs::write(&config, settings.to_string()).unwrap();
    let mut server = Running::spawn_in(
        &golden("fixtures"),
        &[
            "-c",
            config.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
            "-b",
            "payment-bundle.tar.gz",
        ],
        &[],
    );
    let addr = server.address().await;
    let port = addr.rsplit(':').next().unwrap().to_string();
    let scripts = repo().join("tests/clients");

    let python = run(
        &clients.python,
        &[
            scripts.join("opa_python_client.py").to_str().unwrap(),
            &port,
        ],
    )
    .await;
    assert_passed("opa-python-client", &python);

    let url = format!("http://{addr}");
    let script = scripts.join("styra_opa.mjs");
    let args = [
        script.to_str().unwrap(),
        &url,
        clients.npm.to_str().unwrap(),
    ];
    let node = run(Path::new("node"), &args).await;
    assert_passed("@styra/opa", &node);
    server.stop().await;
}
