//! Before the suite, the runner proves on cases of its own that it cannot be taken down: a
//! case whose process dies of a real stack overflow is recorded as "aborts", one that hangs
//! as "timeout", and the cases after them still run; and that it judges as OPA's runner does
//! (bindings as a set, `sort_bindings`, error codes under `strict_error`).

use std::time::Duration;

use anyhow::Context;

use crate::run::Failure;
use crate::{suite, worker};

/// A plain case, a hang (billions of iterations, far past the short limit below), cases after
/// it, and two that must fail: OPA's judging rules on answers whose verdict is known.
const CASES: &str = r#"{"cases": [
  {"note": "passes", "query": "data.t.p = x", "modules": ["package t\n\np := 1 + 1\n"],
   "want_result": [{"x": 2}]},
  {"note": "hangs", "query": "data.t.n = x",
   "modules": ["package t\n\nn := count({1 | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000)})\n"],
   "want_result": [{"x": 1}]},
  {"note": "passes after", "query": "x := 3", "want_result": [{"x": 3}]},
  {"note": "a set of bindings", "query": "x := [1, 2, 1][_]",
   "want_result": [{"x": 2}, {"x": 1}]},
  {"note": "sorted bindings", "query": "x := [3, 1, 2]", "sort_bindings": true,
   "want_result": [{"x": [1, 2, 3]}]},
  {"note": "strict error code", "query": "x := to_number(\"a\")", "strict_error": true,
   "want_error_code": "eval_builtin_error"},
  {"note": "wrong answer", "query": "x := 1 + 1", "want_result": [{"x": 4}]},
  {"note": "wrong code", "query": "x := to_number(\"a\")", "strict_error": true,
   "want_error_code": "eval_type_error"}
]}"#;

pub fn check() -> anyhow::Result<()> {
    check_classifiers()?;
    let dir = tempfile::tempdir().context("a directory for the self-check cases")?;
    std::fs::create_dir(dir.path().join("self")).context("self-check topic")?;
    std::fs::write(dir.path().join("self/cases.json"), CASES).context("self-check cases")?;
    let entries = suite::load(dir.path())?;

    let normal = worker::Limits {
        timeout: Duration::from_millis(1500),
        ..worker::Limits::default()
    };
    let results = worker::run_all(dir.path(), &entries, 1, normal)?;
    let categories: Vec<Option<&str>> = results
        .iter()
        .map(|r| r.as_ref().err().map(|f: &Failure| f.category.as_str()))
        .collect();
    let expected = [
        None,
        Some("timeout"),
        None,
        None,
        None,
        None,
        Some("different result"),
        Some("error code differs"),
    ];
    anyhow::ensure!(
        categories == expected,
        "self-check: expected {expected:?}; got {results:?}"
    );

    // A stack far too small for any evaluation: every case overflows it and aborts its
    // process, and each next case runs in a new one.
    let tiny = worker::Limits {
        stack: 16 * 1024,
        ..normal
    };
    let results = worker::run_all(dir.path(), &entries, 1, tiny)?;
    let aborted = results.iter().all(|r| {
        r.as_ref()
            .is_err_and(|f| f.category == "aborts" && f.detail.contains("stack overflow"))
    });
    anyhow::ensure!(
        aborted,
        "self-check: expected every case to abort on a stack overflow; got {results:?}"
    );
    Ok(())
}

/// The text checks that name a failure's cause, on constructs whose answer is known.
fn check_classifiers() -> anyhow::Result<()> {
    let case = |module: &str, query: &str| -> anyhow::Result<suite::Case> {
        let json = serde_json::json!({"note": "n", "query": query, "modules": [module]});
        Ok(serde_json::from_value(json)?)
    };
    let template = case("package t\n\np := $\"{1}\"\n", "x = 1")?;
    let anchored = case("package t\n\np if regex.match(\"a$\", \"ba\")\n", "x = 1")?;
    anyhow::ensure!(
        suite::newer_than_opa_1_9(&template).is_some(),
        "template string"
    );
    anyhow::ensure!(
        suite::newer_than_opa_1_9(&anchored).is_none(),
        "regex anchor"
    );

    let calls = case(
        "package t\n\nf(x) := x\n\np if io.jwt.decode(\"a.b(\", [h, p, s])\nq := f(count([]))\n",
        "data.t.p = x; not set()",
    )?;
    let missing = crate::builtins::missing(&calls);
    anyhow::ensure!(
        missing == ["io.jwt.decode"],
        "missing builtins: {missing:?}"
    );

    let keyword = case("package t\n\np.if := 1\n", "x := input.in")?;
    anyhow::ensure!(crate::builtins::keyword_in_ref(&keyword), "keyword in ref");
    anyhow::ensure!(
        !crate::builtins::keyword_in_ref(&calls),
        "no keyword in ref"
    );
    Ok(())
}
