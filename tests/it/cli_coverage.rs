//! `verdict test --coverage`: the lines the tests ran and did not run, in `opa test
//! --coverage`'s JSON report, and `--threshold`. The binary runs for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value as Json};

use crate::common::running::BIN;

const POLICY: &str = r#"package payment

default allow := false

allow if {
	input.role == "admin"
}

allow if {
	input.role == "customer"
	input.amount <= 1000
}

limit := x if {
	x := 1000 * 2
}
"#;

const TESTS: &str = r#"package payment

test_admin if {
	allow with input as {"role": "admin"}
}
"#;

/// Never reached by a test.
const OTHER: &str = "package other\n\np if {\n\tinput.x == 1\n}\n";

fn write(dir: &Path, tests: &str) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/policy.rego"), POLICY).unwrap();
    std::fs::write(dir.join("policies/policy_test.rego"), tests).unwrap();
    std::fs::write(dir.join("policies/other.rego"), OTHER).unwrap();
}

fn verdict_test(dir: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["test", "policies", "--coverage"])
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn rows(ranges: &Json) -> Vec<(u64, u64)> {
    ranges
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["start"]["row"].as_u64().unwrap(),
                        r["end"]["row"].as_u64().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn coverage_reports_ran_and_unran_lines_as_opa_does() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), TESTS);
    let out = verdict_test(dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Json = serde_json::from_str(&stdout).unwrap();
    let policy = &report["files"]["policies/policy.rego"];
    // The default, the admin rule's body and the customer rule's first expression ran; the
    // second expression (the first failed) and `limit` did not.
    assert_eq!(rows(&policy["covered"]), [(3, 3), (6, 6), (10, 10)]);
    assert_eq!(rows(&policy["not_covered"]), [(11, 11), (14, 15)]);
    assert_eq!(policy["covered_lines"], json!(3));
    assert_eq!(policy["not_covered_lines"], json!(3));
    assert_eq!(policy["coverage"], json!(50));
    // A module no test reached is listed, nothing covered (OPA leaves empty fields out).
    let other = &report["files"]["policies/other.rego"];
    assert_eq!(
        other,
        &json!({"not_covered": [{"start": {"row": 4}, "end": {"row": 4}}],
                "not_covered_lines": 1})
    );
    assert_eq!(
        rows(&report["files"]["policies/policy_test.rego"]["covered"]),
        [(4, 4)]
    );
    assert_eq!(report["covered_lines"], json!(4));
    assert_eq!(report["not_covered_lines"], json!(4));
    assert_eq!(report["coverage"], json!(50));
    // Go's layout: two-space indentation, a final newline.
    assert!(stdout.starts_with("{\n  \"files\": {\n"), "{stdout}");
    assert!(stdout.ends_with("}\n"));

    // A second test that reaches the rest covers it all.
    let more = format!(
        "{TESTS}\ntest_customer if {{\n\tnot allow with input as {{\"role\": \"customer\", \"amount\": 5000}}\n\tlimit == 2000\n}}\n"
    );
    write(dir.path(), &more);
    let report: Json = serde_json::from_slice(&verdict_test(dir.path(), &[]).stdout).unwrap();
    let policy = &report["files"]["policies/policy.rego"];
    assert_eq!(policy["not_covered"], Json::Null, "{policy}");
    assert_eq!(policy["coverage"], json!(100));
}

#[test]
fn the_threshold_and_failing_tests_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), TESTS);
    let out = verdict_test(dir.path(), &["--threshold", "80", "-v"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Code coverage threshold not met: got 50.00 instead of 80.00"),
        "{stderr}"
    );
    assert!(stderr.contains("\tpolicies/policy.rego:14-15"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(verdict_test(dir.path(), &["--threshold", "50"])
        .status
        .success());

    // A failing test: its report, not the coverage.
    write(
        dir.path(),
        "package payment\n\ntest_wrong if {\n\tallow\n}\n",
    );
    let out = verdict_test(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("data.payment.test_wrong: FAIL"), "{stdout}");
    assert!(!stdout.contains("\"files\""), "{stdout}");
}
