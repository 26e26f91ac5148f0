//! Errors as the OPA CLI presents them, run as the real binary in a directory of bad policies:
//! `eval`'s `{"errors": [...]}` on stdout for JSON output and OPA's text on stderr otherwise,
//! a file that does not parse as the loader's text, and files named as given.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use serde_json::{json, Value as Json};

use crate::common::running::BIN;

fn verdict_in(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bad_policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("unknown.rego", "package p\n\nallow if nope(1)\n"),
        (
            "conflict.rego",
            "package c\n\nx := 1 if input.a\n\nx := 2\n",
        ),
        ("unparsable.rego", "package q\n\nallow if {\n"),
    ];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

#[test]
fn eval_presents_compile_and_evaluation_errors_as_opa_does() {
    let dir = bad_policies();
    let query = ["eval", "-d", "unknown.rego", "data.p.allow"];
    let out = verdict_in(&dir, &query);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    let errors: Json = serde_json::from_slice(&out.stdout).unwrap();
    let location = json!({"file": "unknown.rego", "row": 3, "col": 14});
    let want = json!({"errors": [{
        "message": "undefined function nope",
        "code": "rego_type_error",
        "location": location,
    }]});
    assert_eq!(errors, want);
    assert!(text(&out.stdout).starts_with("{\n  \"errors\": [\n    {\n      \"message\""));

    let out = verdict_in(&dir, &[&query[..], &["-f", "pretty"]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stderr),
        "1 error occurred: unknown.rego:3: rego_type_error: undefined function nope\n"
    );

    // An error of the evaluation itself, with the input that causes it.
    let dir_input = dir.path().join("input.json");
    std::fs::write(&dir_input, r#"{"a": true}"#).unwrap();
    let out = verdict_in(
        &dir,
        &[
            "eval",
            "-d",
            "conflict.rego",
            "-i",
            "input.json",
            "data.c.x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let errors: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        errors["errors"][0]["code"], "eval_conflict_error",
        "{errors}"
    );
    assert_eq!(errors["errors"][0]["location"]["file"], "conflict.rego");
}

/// OPA's loader parses the files before the evaluation starts: a file that does not parse is
/// printed as text on stderr, whatever the output format.
#[test]
fn a_file_that_does_not_parse_is_the_loaders_text() {
    let dir = bad_policies();
    for format in ["json", "pretty"] {
        let out = verdict_in(
            &dir,
            &[
                "eval",
                "-f",
                format,
                "-d",
                "unparsable.rego",
                "data.q.allow",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{format}");
        assert!(out.stdout.is_empty(), "{format}: {}", text(&out.stdout));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with("1 error occurred: unparsable.rego:4: rego_parse_error: "),
            "{format}: {stderr}"
        );
    }
}

/// OPA names a policy file by the path as given, a bare relative one too.
#[test]
fn errors_name_a_relative_policy_file_as_given() {
    let dir = bad_policies();
    for args in [&["check", "unknown.rego"][..], &["test", "unknown.rego"]] {
        let out = verdict_in(&dir, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(" unknown.rego:3: rego_type_error"),
            "{args:?}: {stderr}"
        );
    }
}
