//! The shell examples of README.md and deploy/README.md marked
//! `<!-- run by tests/it/docs_examples.rs -->`, run as written (with `verdict` on the PATH and
//! OpenSSL making the keys) in a scratch copy of the example bundle: signing with a claims
//! file's `kid`, `verdict sign -o`, serving the signed bundles, and the key rotation's step.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value as Json};
use verdict::bundle::reader::{read_tarball, RawFile};
use verdict::bundle::signing::{self, KeyConfig, SigningConfig, VerificationConfig};

use crate::common::repo;
use crate::common::running::{Running, BIN};

const MARKER: &str = "<!-- run by tests/it/docs_examples.rs -->";

/// The `sh` blocks that follow the marker, their indentation removed.
fn tested_blocks(markdown: &str) -> Vec<String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != MARKER {
            continue;
        }
        let open = lines[i + 1];
        assert_eq!(open.trim(), "```sh", "a shell block follows the marker");
        let indent = open.len() - open.trim_start().len();
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .map(|l| l.get(indent..).unwrap_or(""))
            .collect();
        blocks.push(body.join("\n"));
    }
    blocks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A scratch directory holding `bundles/payment`, as the examples expect.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("bundles/payment"),
        &dir.path().join("bundles/payment"),
    );
    dir
}

fn run_block(dir: &Path, block: &str) {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-euc", block])
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{block}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tarball_files(path: &Path) -> Vec<RawFile> {
    read_tarball(std::fs::read(path).unwrap().as_slice(), 1 << 30).unwrap()
}

/// The JWT header of a bundle's `.signatures.json`.
fn jwt_header(files: &[RawFile]) -> Json {
    let file = files
        .iter()
        .find(|f| f.path == "/.signatures.json")
        .unwrap();
    let doc: Json = serde_json::from_slice(&file.bytes).unwrap();
    let token = doc["signatures"][0].as_str().unwrap();
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice(&header).unwrap()
}

/// Public keys by id and no `signing.keyid`: each bundle is checked with the key its JWT names,
/// as in deploy's remote-bundle config. `scope` is the keys' (a signed scope must match it).
fn keys_by_id(keys: &[(&str, &Path)], scope: Option<&str>) -> VerificationConfig {
    let keys: BTreeMap<String, KeyConfig> = keys
        .iter()
        .map(|(id, pem)| {
            let key = std::fs::read_to_string(pem).unwrap();
            let mut config = json!({"key": key, "algorithm": "RS256"});
            if let Some(scope) = scope {
                config["scope"] = json!(scope);
            }
            (id.to_string(), serde_json::from_value(config).unwrap())
        })
        .collect();
    VerificationConfig::from_config(keys, &SigningConfig::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_signing_examples_run_as_written() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = tested_blocks(&readme);
    assert_eq!(blocks.len(), 2, "README's tested blocks: {blocks:?}");
    let dir = workspace();
    run_block(dir.path(), &blocks[0]);

    // The claims file's kid named the key in the header, so a verifier with keys by id finds it.
    let built = tarball_files(&dir.path().join("payment.tar.gz"));
    assert_eq!(jwt_header(&built)["kid"], "payments_ci");
    let public = dir.path().join("ci-public.pem");
    signing::verify(
        &built,
        &keys_by_id(&[("payments_ci", &public)], Some("write")),
    )
    .unwrap();
    assert!(
        dir.path()
            .join("bundles/payment/.signatures.json")
            .is_file(),
        "sign -o bundles/payment writes into the bundle"
    );
    assert!(!dir.path().join(".signatures.json").exists());

    // Both signed bundles serve, verified, with the commands as the README gives them (on a
    // free port instead of 8181, beside other tests).
    for line in blocks[1].lines() {
        let args: Vec<&str> = line
            .strip_prefix("verdict run ")
            .unwrap()
            .split_whitespace()
            .chain(["--addr", "127.0.0.1:0"])
            .collect();
        let mut verdict = Running::spawn_in(dir.path(), &args, &[]);
        let activated = verdict.wait_for_log("bundle activated").await;
        assert!(
            activated["revision"]
                .as_str()
                .unwrap()
                .starts_with("payment-"),
            "{line}: {activated}"
        );
        verdict.address().await;
        let (_, code) = verdict.stop().await;
        assert_eq!(code, Some(0), "{line}");
    }
}

#[test]
fn the_key_rotation_step_runs_as_written_and_verifies_by_kid() {
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    let blocks = tested_blocks(&readme);
    assert_eq!(blocks.len(), 1, "deploy/README's tested blocks: {blocks:?}");
    let dir = workspace();
    run_block(dir.path(), &blocks[0]);

    let built = tarball_files(&dir.path().join("payment.tar.gz"));
    assert_eq!(jwt_header(&built)["kid"], "payments_ci_2027");
    let old = repo().join("tests/fixtures/sign/rsa-public.pem");
    let new = dir.path().join("payments_ci_2027.pub.pem");
    // Step 2's config: both keys. The bundle is verified with the one its kid names.
    // deploy's keys carry no scope, and the step's claims sign none.
    let both = keys_by_id(
        &[("payments_ci_2026", &old), ("payments_ci_2027", &new)],
        None,
    );
    signing::verify(&built, &both).unwrap();
    // Without the new key (a node that missed step 2), the refusal names the key.
    let old_only = keys_by_id(&[("payments_ci_2026", &old)], None);
    let err = signing::verify(&built, &old_only).unwrap_err().to_string();
    assert!(err.contains("payments_ci_2027"), "{err}");
}
