//! The commands and flags an OPA user reaches for, run as the real binary: `version`,
//! `check`, `inspect`, `eval`'s `--fail`/`--fail-defined`/`-I`/`-f pretty`/
//! `--strict-builtin-errors`, `test --format json --run REGEX`, and `run` with positional
//! bundles, `-s`, `-w`, plain-text logs and a pushed-data store another verdict holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;

use crate::common::repo;
use crate::common::running::{Running, BIN};

fn verdict(args: &[&str]) -> Output {
    verdict_with_stdin(args, b"")
}

/// `verdict ARGS` run in the repository with `stdin` on its standard input.
pub(crate) fn verdict_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const PAYMENT: &str = r#"{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500, "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}"#;

#[test]
fn version_prints_the_build() {
    let out = verdict(&["version"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("Version: {}\n", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    let timestamp = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Build Timestamp: "))
        .unwrap();
    chrono::DateTime::parse_from_rfc3339(timestamp).unwrap();
    assert!(stdout.contains("Regorus Version: 0.14."), "{stdout}");
}

#[test]
fn check_reports_errors_as_opa_does() {
    let out = verdict(&["check", "bundles/payment", "policies"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rego");
    std::fs::write(&bad, "package p\n\nallow if {\n  input.x ==\n}\n").unwrap();
    let bad = bad.to_str().unwrap();
    let out = verdict(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    // OPA's words for the token it could not take, then the line and a caret under it.
    assert_eq!(
        stderr,
        format!("1 error occurred: {bad}:5: rego_parse_error: unexpected }} token\n\t}}\n\t^\n")
    );

    let out = verdict(&["check", "--format", "json", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let report: Json = serde_json::from_slice(&out.stderr).unwrap();
    let error = &report["errors"][0];
    assert_eq!(error["code"], "rego_parse_error");
    assert_eq!(error["location"]["file"], bad);
    assert_eq!(error["location"]["row"], 5);
    assert_eq!(error["location"]["col"], 1, "{error}");
    assert_eq!(error["message"], "unexpected } token");
    assert_eq!(error["details"], serde_json::json!({"line": "}", "idx": 0}));

    // A compile error, not only a parse error: an unknown function.
    std::fs::write(
        dir.path().join("bad.rego"),
        "package p\n\nallow if nope(1)\n",
    )
    .unwrap();
    let out = verdict(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{bad}:3: rego_type_error: ")),
        "{stderr}"
    );
}

#[test]
fn inspect_shows_manifest_namespaces_and_signatures() {
    let out = verdict(&["inspect", "bundles/payment"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("MANIFEST:\n+"), "{stdout}");
    assert!(stdout.contains("| Revision "), "{stdout}");
    assert!(stdout.contains("payment-2026.11.24-1"), "{stdout}");
    assert!(
        stdout.contains("| data.payment ") && stdout.contains("/payment/policy.rego"),
        "{stdout}"
    );

    let signed = repo().join("tests/fixtures/sign/signed.tar.gz");
    let out = verdict(&["inspect", "-f", "json", signed.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(info["manifest"]["revision"].is_string(), "{info}");
    assert!(info["manifest"]["roots"].is_array(), "{info}");
    let signature = &info["signatures_config"]["signatures"][0];
    assert_eq!(signature["algorithm"], "RS256", "{info}");
    assert_eq!(signature["scope"], "write", "{info}");
    assert!(signature["files"].as_u64().unwrap() >= 3, "{info}");
    assert!(
        info["namespaces"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("data.")),
        "{info}"
    );
}

#[test]
fn eval_takes_opas_flags() {
    // -I reads the input from stdin; -f pretty prints a lone value as indented JSON.
    let out = verdict_with_stdin(
        &[
            "eval",
            "-d",
            "bundles/payment",
            "-I",
            "-f",
            "pretty",
            "data.payment.decision",
        ],
        PAYMENT.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("{\n  \"allow\": true,"), "{stdout}");

    // --fail: exit 1 on an undefined result, the output printed all the same.
    let undefined = [
        "eval",
        "-d",
        "bundles/payment",
        "-f",
        "pretty",
        "data.payment.nothing",
    ];
    let out = verdict(&undefined);
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(0), "undefined\n")
    );
    let out = verdict(&[&undefined[..], &["--fail"]].concat());
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(1), "undefined\n")
    );
    let out = verdict(&[&undefined[..], &["--fail-defined"]].concat());
    assert_eq!(out.status.code(), Some(0));

    // --fail-defined: exit 1 on a defined result; bindings print as a table.
    let bound = [
        "eval",
        "-d",
        "bundles/payment",
        "-f",
        "pretty",
        "--fail-defined",
        "r := data.payment.config.roles[name].max_amount",
    ];
    let out = verdict(&bound);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("+-"), "{stdout}");
    assert!(stdout.contains("| \"customer\" "), "{stdout}");
    let out = verdict(&[&bound[..], &["--fail"]].concat());
    assert_eq!(
        out.status.code(),
        Some(2),
        "--fail and --fail-defined exclude each other"
    );

    // --strict-builtin-errors: a failing builtin fails the query instead of being undefined.
    let query = ["eval", "-f", "json", "to_number(\"12x\")"];
    let out = verdict(&query);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "{}");
    let out = verdict(&[&query[..], &["--strict-builtin-errors"]].concat());
    assert_eq!(out.status.code(), Some(1));
    let errors: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        errors["errors"][0]["code"], "eval_builtin_error",
        "{errors}"
    );
}

#[test]
fn test_reports_json_and_selects_by_regex() {
    let out = verdict(&[
        "test",
        "bundles/payment",
        "policies",
        "--run",
        "customer.*allowed$",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let results: Json = serde_json::from_slice(&out.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let name = r["name"].as_str().unwrap();
        assert!(
            name.contains("customer") && name.ends_with("allowed"),
            "{r}"
        );
        assert_eq!(r["package"], "data.payment_test", "{r}");
        assert!(r["location"]["file"].as_str().unwrap().ends_with(".rego"));
        assert!(r["location"]["row"].as_u64().unwrap() > 0, "{r}");
        assert!(r["duration"].as_u64().is_some(), "{r}");
        assert!(r.get("fail").is_none(), "{r}");
    }
    let out = verdict(&[
        "test",
        "bundles/payment",
        "policies",
        "--run",
        "^no_such_test$",
    ]);
    assert_eq!(out.status.code(), Some(1), "no test selected is a failure");
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_takes_positional_bundles_and_watches_them_with_w() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("app");
    std::fs::create_dir_all(&bundle).unwrap();
    write(
        &bundle.join(".manifest"),
        r#"{"revision": "r1", "roots": ["app"]}"#,
    );
    let policy = bundle.join("app.rego");
    write(&policy, "package app\n\nallow := true\n");
    let mut verdict = Running::spawn_in(
        dir.path(),
        &["-s", "-w", "--addr", "127.0.0.1:0", "app"],
        &[],
    );
    let started = verdict.wait_for_log("server started").await;
    assert_eq!(started["bundles"], r#"["app@r1"]"#, "{started}");

    // A rejected change, then its fix: the fix has a line of its own.
    write(&policy, "package app\n\nallow if {\n");
    let rejected = verdict.wait_for_log("bundle rejected").await;
    assert_eq!(rejected["bundle"], "app", "{rejected}");
    write(
        &bundle.join(".manifest"),
        r#"{"revision": "r2", "roots": ["app"]}"#,
    );
    write(&policy, "package app\n\nallow := false\n");
    let fixed = verdict.wait_for_log("bundle fixed").await;
    assert_eq!(fixed["revision"], "r2", "{fixed}");
    assert!(
        fixed["rejected"]
            .as_str()
            .unwrap()
            .contains("rego_parse_error"),
        "{fixed}"
    );
    let activated = verdict.wait_for_log("bundle activated").await;
    assert_eq!(activated["revision"], "r2", "{activated}");
    let (_, code) = verdict.stop().await;
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_have_no_colour_codes_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut verdict = Running::spawn_in(
        dir.path(),
        &["--addr", "127.0.0.1:0", "--log-format", "text"],
        &[],
    );
    let line = verdict.wait_for_line("server started").await;
    let (seen, code) = verdict.stop().await;
    assert_eq!(code, Some(0));
    for l in seen.iter().chain([&line]) {
        assert!(!l.contains('\u{1b}'), "colour codes in {l:?}");
    }
    assert!(line.contains(" INFO "), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_verdict_on_the_same_store_names_the_one_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!(
        "persistence_directory={}",
        dir.path().join("state").display()
    );
    let args = ["--addr", "127.0.0.1:0", "--set", store.as_str()];
    let mut first = Running::spawn_in(dir.path(), &args, &[]);
    let addr = first.address().await;
    let pushed = reqwest::Client::new()
        .put(format!("http://{addr}/v1/data/extra"))
        .body(r#"{"x": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 204);

    let first_pid = first.child.id().unwrap();
    let mut second = Running::spawn_in(dir.path(), &args, &[]);
    let warning = second.wait_for_log("pushed data store is locked").await;
    assert_eq!(warning["pid"], first_pid, "{warning}");
    assert_eq!(warning["process"], "verdict", "{warning}");
    let failed = second.wait_for_log("verdict stopped").await;
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("locked by a running verdict (pid {first_pid})")),
        "{error}"
    );
    assert_eq!(second.exit_code().await, Some(1));
    let (_, code) = first.stop().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn set_takes_opas_lists_and_names_the_key_it_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let label = dir.path().join("tier.txt");
    std::fs::write(&label, "gold").unwrap();
    let set_file = format!("labels.tier={}", label.display());
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--set",
        "services[0].name=ctl,services[0].url=http://127.0.0.1:9",
        "--set",
        "decision_logs.request_context.http.headers={X-Request-Id,X-Trace}",
        "--set-file",
        &set_file,
    ];
    let mut server = Running::spawn_in(dir.path(), &args, &[]);
    let addr = server.address().await;
    let config: Json = crate::common::get(format!("http://{addr}/v1/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["result"]["services"],
        serde_json::json!([{"name": "ctl", "url": "http://127.0.0.1:9"}])
    );
    assert_eq!(
        config["result"]["decision_logs"]["request_context"]["http"]["headers"],
        serde_json::json!(["X-Request-Id", "X-Trace"])
    );
    assert_eq!(config["result"]["labels"]["tier"], "gold", "--set-file");
    server.stop().await;

    for (set, key) in [
        ("labels.app.tier=gold", "labels.app:"),
        (
            "services[x].url=http://a",
            "\"services\": index [x] is not a number",
        ),
        (
            "decision_logs.console",
            "key \"decision_logs.console\" has no value",
        ),
    ] {
        let out = verdict(&["run", "--addr", "127.0.0.1:0", "--set", set]);
        assert_eq!(out.status.code(), Some(64), "{set}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(key), "{set}: {stderr}");
    }
}
