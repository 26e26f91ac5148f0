//! `verdict test`: runs `test_*` rules and reports them as `opa test` does, exiting 1 when any
//! test fails or errors (and when no test is found, so a wrong path cannot pass CI).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::policy::testing::{self, Outcome, TestResult};
use crate::policy::PolicySet;

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Policy, test and data files or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Print every test, not only failures.
    #[arg(short, long)]
    verbose: bool,
    /// Only run tests whose full name (data.pkg.test_x) matches this regular expression.
    #[arg(short = 'r', long = "run", value_name = "REGEX")]
    run: Option<regex::Regex>,
    /// pretty (OPA's report) or json (one object per test, as `opa test --format json`).
    #[arg(short = 'f', long = "format", value_enum, default_value = "pretty")]
    format: Format,
    /// Treat modules without a declared Rego version as v0.
    #[arg(long)]
    v0_compatible: bool,
    /// Print the lines the tests ran and did not run, as `opa test --coverage`'s JSON report,
    /// instead of the test report (which is printed when a test fails).
    #[arg(short = 'c', long)]
    coverage: bool,
    /// With --coverage, fail when the overall coverage is below this percentage.
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    threshold: f64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Pretty,
    Json,
}

pub fn main(args: TestArgs) -> ExitCode {
    let set = match super::load_policy_set(&args.paths, args.v0_compatible) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if args.coverage {
        return coverage(&set, &args);
    }
    let results = testing::run(&set, args.run.as_ref());
    match args.format {
        Format::Pretty => print!("{}", report(&results, args.verbose)),
        Format::Json => print!("{}", json_report(&results, &set)),
    }
    let failed = results
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error(_)));
    if results.is_empty() || failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--coverage`: the report when every test passes and the threshold is met, as `opa test`.
fn coverage(set: &PolicySet, args: &TestArgs) -> ExitCode {
    let (results, coverage) = testing::run_with_coverage(set, args.run.as_ref());
    let failed = results
        .iter()
        .any(|r| matches!(r.outcome, Outcome::Fail | Outcome::Error(_)));
    if results.is_empty() || failed {
        print!("{}", report(&results, args.verbose));
        return ExitCode::FAILURE;
    }
    let report = coverage.report();
    if report.coverage < args.threshold {
        eprintln!(
            "Code coverage threshold not met: got {:.2} instead of {:.2}",
            report.coverage, args.threshold
        );
        if args.verbose {
            eprintln!("Lines not covered:");
            for (file, f) in &report.files {
                for r in &f.not_covered {
                    match r.start.row == r.end.row {
                        true => eprintln!("\t{file}:{}", r.start.row),
                        false => eprintln!("\t{file}:{}-{}", r.start.row, r.end.row),
                    }
                }
            }
        }
        return ExitCode::FAILURE;
    }
    print!(
        "{}",
        String::from_utf8_lossy(&crate::gojson::to_body(&report, true))
    );
    ExitCode::SUCCESS
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

/// One test as `opa test --format json` lists it, fields in OPA's order.
#[derive(Serialize)]
struct JsonResult<'a> {
    location: JsonLocation<'a>,
    package: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fail: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JsonError<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skip: bool,
    duration: u128,
}

#[derive(Serialize)]
struct JsonLocation<'a> {
    file: &'a str,
    row: usize,
    col: usize,
}

#[derive(Serialize)]
struct JsonError<'a> {
    code: &'static str,
    message: &'a str,
}

/// The results as OPA's JSON array; a test's row is where its rule is first defined.
pub fn json_report(results: &[TestResult], set: &PolicySet) -> String {
    let entries: Vec<JsonResult<'_>> = results
        .iter()
        .map(|r| {
            let (package, name) = r.name.rsplit_once('.').unwrap_or(("data", &r.name));
            JsonResult {
                location: JsonLocation {
                    file: &r.file,
                    row: rule_row(set, &r.file, name),
                    col: 1,
                },
                package,
                name,
                fail: r.outcome == Outcome::Fail,
                error: match &r.outcome {
                    Outcome::Error(message) => Some(JsonError {
                        code: "eval_error",
                        message,
                    }),
                    _ => None,
                },
                skip: r.outcome == Outcome::Skip,
                duration: r.duration.as_nanos(),
            }
        })
        .collect();
    String::from_utf8_lossy(&crate::gojson::to_body(&entries, true)).into_owned()
}

/// The first line of `file` that starts the rule `name` (1-based; 0 when not found).
fn rule_row(set: &PolicySet, file: &str, name: &str) -> usize {
    let Some(module) = set.modules().iter().find(|m| m.file == file) else {
        return 0;
    };
    module
        .raw
        .lines()
        .position(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
        .map_or(0, |i| i + 1)
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
