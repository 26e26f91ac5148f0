//! The `test_*` rule runner behind `verdict test`, with `opa test`'s notion of pass and fail:
//! a test passes when its rule is defined and not `false`; `todo_test_*` rules are skipped.

use std::time::Duration;

use regorus::Value;

use super::coverage::Coverage;
use super::path::{DataPath, Segment};
use super::{PolicySet, Query};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
    Error(String),
}

#[derive(Debug, Clone)]
pub struct TestResult {
    /// `data.payment.test_allow`
    pub name: String,
    pub file: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

/// Runs every test whose full name (`data.pkg.test_x`) `filter` matches (all when `None`), in
/// definition order, as `opa test --run` selects them.
pub fn run(set: &PolicySet, filter: Option<&regex::Regex>) -> Vec<TestResult> {
    run_tests(set, filter, None)
}

/// `run`, also gathering which lines of the modules the tests ran (`opa test --coverage`).
pub fn run_with_coverage(
    set: &PolicySet,
    filter: Option<&regex::Regex>,
) -> (Vec<TestResult>, Coverage) {
    let mut coverage = Coverage::default();
    let results = run_tests(set, filter, Some(&mut coverage));
    coverage.add_unreached(&set.parsed_modules());
    (results, coverage)
}

fn run_tests(
    set: &PolicySet,
    filter: Option<&regex::Regex>,
    mut coverage: Option<&mut Coverage>,
) -> Vec<TestResult> {
    let mut results = Vec::new();
    for case in set.tests() {
        let path = DataPath::new(case.path.iter().cloned().map(Segment::Key).collect());
        let name = path.display_ref();
        if filter.is_some_and(|f| !f.is_match(&name)) {
            continue;
        }
        let skip = case.path.last().is_some_and(|n| n.starts_with("todo_"));
        let (outcome, duration) = if skip {
            (Outcome::Skip, Duration::ZERO)
        } else {
            let query = Query {
                path: &path,
                input: None,
                strict_builtin_errors: false,
            };
            let decision = match coverage.as_deref_mut() {
                Some(coverage) => {
                    let (decision, report) = set.evaluate_with_coverage(query);
                    if let Some(report) = report {
                        coverage.add(&report);
                    }
                    decision
                }
                None => set.evaluate(query),
            };
            match decision {
                Ok(d) => {
                    let passed = d.result.as_ref().is_some_and(|v| *v != Value::Bool(false));
                    let outcome = if passed { Outcome::Pass } else { Outcome::Fail };
                    (outcome, d.eval_time)
                }
                Err(e) => (Outcome::Error(e.detail()), Duration::ZERO),
            }
        };
        results.push(TestResult {
            name,
            file: case.file.clone(),
            outcome,
            duration,
        });
    }
    results
}
