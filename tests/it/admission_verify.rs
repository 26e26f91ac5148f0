//! The real `verdict` binary on admission: `verify` runs gator suites with CI's exit codes
//! (gatekeeper-library's own suites reach gator's verdicts), and `run` serves the webhook
//! from the config file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::{Command, Output};

use common::admission::{client_trusting, review, sample};
use common::{repo, WAIT};
use serde_json::Value as Json;

const BIN: &str = env!("CARGO_BIN_EXE_verdict");

fn verify(args: &[&str]) -> (Option<i32>, String) {
    let out: Output = Command::new(BIN)
        .arg("verify")
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn gatekeeper_library_suites_pass_as_with_gator() {
    let (code, out) = verify(&["tests/fixtures/admission/gatekeeper-library", "-v"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.ends_with("19 passed, 0 failed, 0 skipped\n"), "{out}");
    assert!(out.contains("ok   tests/fixtures/admission/gatekeeper-library/allowedrepos/suite.yaml allowed-repos/all-disallowed"), "{out}");
}

#[test]
fn the_payment_suite_passes() {
    let (code, out) = verify(&["policies/admission/suite.yaml"]);
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "11 passed, 0 failed, 0 skipped\n")
    );
}

#[test]
fn a_failing_case_exits_1_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let suite = std::fs::read_to_string(repo().join("policies/admission/suite.yaml"))
        .unwrap()
        .replace(
            "templates/",
            &format!("{}/policies/admission/templates/", repo().display()),
        )
        .replace(
            "constraints/",
            &format!("{}/policies/admission/constraints/", repo().display()),
        )
        .replace(
            "samples/",
            &format!("{}/policies/admission/samples/", repo().display()),
        )
        .replace("          - violations: 3\n", "          - violations: 4\n");
    let path = dir.path().join("suite.yaml");
    std::fs::write(&path, suite).unwrap();
    let (code, out) = verify(&[path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("required-limits/limits-missing: got 3 violations, want 4"),
        "{out}"
    );
    assert!(out.ends_with("10 passed, 1 failed, 0 skipped\n"), "{out}");

    // A broken template fails its cases (exit 1), with the Rego error.
    let template =
        std::fs::read_to_string(repo().join("policies/admission/templates/required-limits.yaml"))
            .unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, template.replace("sprintf(", "sprintff(")).unwrap();
    let suite = std::fs::read_to_string(&path).unwrap().replace(
        &format!(
            "{}/policies/admission/templates/required-limits.yaml",
            repo().display()
        ),
        broken.to_str().unwrap(),
    );
    std::fs::write(&path, suite).unwrap();
    let (code, out) = verify(&[path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("undefined function sprintff"), "{out}");
}

#[test]
fn an_unusable_suite_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    for (path, why) in [
        (write("not-yaml.yaml", "tests: [\n"), "not a gator Suite"),
        (
            write("pod.yaml", "kind: Pod\napiVersion: v1\n"),
            "kind is \"Pod\"",
        ),
        (
            dir.path().join("missing.yaml").display().to_string(),
            "cannot read",
        ),
    ] {
        let (code, out) = verify(&[&path]);
        assert_eq!(code, Some(64), "{path}: {out}");
        assert!(out.contains(why), "{out}");
    }
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(verify(&[empty.path().to_str().unwrap()]).0, Some(64));
}

#[tokio::test]
async fn run_serves_the_webhook_from_the_config_file() {
    let pki = common::pki::Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (cert, key) = (
        file("tls.crt", &pki.server_cert_pem),
        file("tls.key", &pki.server_key_pem),
    );
    let policies = repo().join("policies/admission");
    let config = file(
        "verdict.yaml",
        &format!(
            "verdict:\n  addr: [\"127.0.0.1:0\"]\n  admission:\n    addr: 127.0.0.1:0\n    policies: [{p}/templates, {p}/constraints]\n    tls_cert_file: {cert}\n    tls_private_key_file: {key}\n    failure_policy: Fail\n    deadline_ms: 2500\n",
            p = policies.display()
        ),
    );
    let (mut child, line) = common::spawn_verdict(
        &["run", "-c", &config],
        &repo(),
        "admission webhook serving HTTPS",
    )
    .await;
    let port = line["addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let client = client_trusting(&pki.ca_pem, None);
    let answer: Json = client
        .post(format!("https://127.0.0.1:{port}/v1/admit"))
        .body(review("CREATE", &sample("privileged.yaml")).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["response"]["status"]["message"],
        "[no-privileged] privileged container <shell> is not allowed"
    );
    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_shipped_webhook_manifest_fits_verdict() {
    let text = std::fs::read_to_string(repo().join("deploy/k8s/admission/webhook.yaml")).unwrap();
    let docs = verdict::admission::resources::parse_objects(&text).unwrap();
    let find = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap();
    let webhook = &find("ValidatingWebhookConfiguration")["webhooks"][0];
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(webhook["clientConfig"]["service"]["path"], "/v1/admit");
    let excluded = &webhook["namespaceSelector"]["matchExpressions"][0]["values"];
    assert_eq!(
        *excluded,
        serde_json::json!(["kube-system", "verdict-system"])
    );

    // The config in the ConfigMap is one verdict accepts, and its deadline and failure policy
    // agree with the webhook's.
    let config_text = find("ConfigMap")["data"]["verdict.yaml"].as_str().unwrap();
    let tree: Json = yaml_serde::from_str(config_text).unwrap();
    let (config, warnings) = verdict::config::Config::from_tree(tree).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let admission = config.verdict.admission.unwrap();
    assert!(admission.deadline_ms < webhook["timeoutSeconds"].as_u64().unwrap() * 1000);
    assert_eq!(
        format!("{:?}", admission.failure_policy),
        webhook["failurePolicy"].as_str().unwrap()
    );
}
