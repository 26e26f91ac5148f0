//! `verdict test`: runs `test_*` rules and reports them as `opa test` does, exiting 1 when any
//! test fails or errors (and when no test is found, so a wrong path cannot pass CI).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::policy::testing::{self, Outcome, TestResult};

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Policy, test and data files or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print every test, not only failures.
    #[arg(short, long)]
    verbose: bool,
    /// Only run tests whose name (data.pkg.test_x) contains this text.
    #[arg(long = "run", value_name = "TEXT")]
    run: Option<String>,
    /// Treat modules without a declared Rego version as v0.
    #[arg(long)]
    v0_compatible: bool,
}

pub fn main(args: TestArgs) -> ExitCode {
    let set = match super::load_policy_set(&args.paths, args.v0_compatible) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let results = testing::run(&set, args.run.as_deref());
    print!("{}", report(&results, args.verbose));
    let failed = results
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error(_)));
    if results.is_empty() || failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// OPA's layout: results grouped by file, a rule, then the counts.
pub fn report(results: &[TestResult], verbose: bool) -> String {
    if results.is_empty() {
        return "no test cases found\n".into();
    }
    let mut out = String::new();
    let mut current_file = None;
    for r in results {
        let shown = verbose || matches!(r.outcome, Outcome::Fail | Outcome::Error(_));
        if !shown {
            continue;
        }
        if current_file != Some(&r.file) {
            if current_file.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("{}:\n", r.file));
            current_file = Some(&r.file);
        }
        let line = match &r.outcome {
            Outcome::Pass => format!("{}: PASS ({})", r.name, duration(r.duration)),
            Outcome::Fail => format!("{}: FAIL ({})", r.name, duration(r.duration)),
            Outcome::Skip => format!("{}: SKIPPED", r.name),
            Outcome::Error(e) => format!("{}: ERROR\n  {e}", r.name),
        };
        out.push_str(&line);
        out.push('\n');
    }
    if current_file.is_some() {
        out.push_str(&"-".repeat(80));
        out.push('\n');
    }
    let total = results.len();
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let pass = count(|o| *o == Outcome::Pass);
    let fail = count(|o| *o == Outcome::Fail);
    let skip = count(|o| *o == Outcome::Skip);
    let error = count(|o| matches!(o, Outcome::Error(_)));
    out.push_str(&format!("PASS: {pass}/{total}\n"));
    for (label, n) in [("FAIL", fail), ("SKIPPED", skip), ("ERROR", error)] {
        if n > 0 {
            out.push_str(&format!("{label}: {n}/{total}\n"));
        }
    }
    out
}

/// Durations as Go prints them: 1.234567ms, 512µs, 2.5s.
fn duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{}µs", trim(ns as f64 / 1e3))
    } else if ns < 1_000_000_000 {
        format!("{}ms", trim(ns as f64 / 1e6))
    } else {
        format!("{}s", trim(ns as f64 / 1e9))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, outcome: Outcome) -> TestResult {
        TestResult {
            name: name.into(),
            file: "p_test.rego".into(),
            outcome,
            duration: Duration::from_micros(1500),
        }
    }

    #[test]
    fn report_lists_failures_and_counts() {
        let results = vec![
            result("data.p.test_a", Outcome::Pass),
            result("data.p.test_b", Outcome::Fail),
        ];
        let text = report(&results, false);
        assert!(
            text.contains("p_test.rego:\ndata.p.test_b: FAIL (1.5ms)\n"),
            "{text}"
        );
        assert!(
            !text.contains("test_a"),
            "passing tests are hidden without -v"
        );
        assert!(text.ends_with("PASS: 1/2\nFAIL: 1/2\n"), "{text}");
        assert!(report(&results, true).contains("data.p.test_a: PASS (1.5ms)"));
    }
}
