//! Test coverage in `opa test --coverage`'s report: for each file the line ranges the tests
//! ran and did not run, the counts and the percentage, and the same totals overall. The lines
//! are regorus's: those of the expressions it evaluated (rule bodies, rule values, defaults,
//! comprehensions), gathered over every test's evaluation.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Literal, Module, Query, Ref, Rule, RuleHead};
use serde::Serialize;

use super::rewrite::walk;
use super::{Decision, EvalError, Query as Asked};
use std::time::Instant;

/// Lines seen so far, by file.
#[derive(Debug, Default)]
pub struct Coverage {
    files: BTreeMap<String, Lines>,
}

#[derive(Debug, Default)]
struct Lines {
    covered: BTreeSet<u32>,
    not_covered: BTreeSet<u32>,
}

impl Coverage {
    /// Adds one evaluation's report: a line any evaluation ran is covered.
    pub fn add(&mut self, report: &regorus::coverage::Report) {
        for file in &report.files {
            let lines = self.files.entry(file.path.clone()).or_default();
            lines.covered.extend(&file.covered);
            lines.not_covered.extend(&file.not_covered);
        }
    }

    /// Modules no evaluation entered are missing from regorus's reports; OPA lists them with
    /// nothing covered, so every line an evaluation could cover is added as not covered. Call
    /// it after the evaluations.
    pub fn add_unreached(&mut self, modules: &[Ref<Module>]) {
        for module in modules {
            let file = module.package.span.source.file().clone();
            if self.files.contains_key(&file) {
                continue;
            }
            let lines = self.files.entry(file).or_default();
            for rule in &module.policy {
                rule_lines(rule, &mut lines.not_covered);
            }
        }
    }

    /// OPA's report.
    pub fn report(&self) -> Report {
        let mut report = Report::default();
        for (path, lines) in &self.files {
            let not_covered: BTreeSet<u32> = lines
                .not_covered
                .difference(&lines.covered)
                .copied()
                .collect();
            let file = FileReport {
                covered: ranges(&lines.covered),
                not_covered: ranges(&not_covered),
                covered_lines: lines.covered.len(),
                not_covered_lines: not_covered.len(),
                coverage: percent(lines.covered.len(), not_covered.len()),
            };
            report.covered_lines += file.covered_lines;
            report.not_covered_lines += file.not_covered_lines;
            report.files.insert(path.clone(), file);
        }
        report.coverage = percent(report.covered_lines, report.not_covered_lines);
        report
    }
}

/// `opa test --coverage`'s JSON.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub files: BTreeMap<String, FileReport>,
    pub covered_lines: usize,
    pub not_covered_lines: usize,
    pub coverage: f64,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub covered: Vec<Range>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_covered: Vec<Range>,
    #[serde(skip_serializing_if = "is_zero")]
    pub covered_lines: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub not_covered_lines: usize,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub coverage: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_f64(n: &f64) -> bool {
    *n == 0.0
}

/// Consecutive lines, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub row: u32,
}

fn ranges(lines: &BTreeSet<u32>) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    for &row in lines {
        match out.last_mut() {
            Some(last) if last.end.row + 1 == row => last.end.row = row,
            _ => out.push(Range {
                start: Position { row },
                end: Position { row },
            }),
        }
    }
    out
}

fn percent(covered: usize, not_covered: usize) -> f64 {
    match covered + not_covered {
        0 => 0.0,
        total => 100.0 * covered as f64 / total as f64,
    }
}

/// The lines of `rule` an evaluation can cover: its value, key or default, and its bodies.
fn rule_lines(rule: &Rule, lines: &mut BTreeSet<u32>) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                    if let Some(a) = assign {
                        expr_lines(&a.value, lines);
                    }
                }
                RuleHead::Set { key, .. } => {
                    if let Some(k) = key {
                        expr_lines(k, lines);
                    }
                }
            }
            for body in bodies {
                query_lines(&body.query, lines);
            }
        }
        Rule::Default { value, .. } => expr_lines(value, lines),
    }
}

fn query_lines(query: &Query, lines: &mut BTreeSet<u32>) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { .. } => {}
            Literal::Every { domain, query, .. } => {
                expr_lines(domain, lines);
                query_lines(query, lines);
            }
            literal => walk::literal_exprs(literal, &mut |e| expr_lines(e, lines)),
        }
    }
}

fn expr_lines(e: &regorus::unstable::Expr, lines: &mut BTreeSet<u32>) {
    use regorus::unstable::Expr;
    walk::exprs(e, &mut |e| match e {
        Expr::ArrayCompr { query, .. }
        | Expr::SetCompr { query, .. }
        | Expr::ObjectCompr { query, .. } => query_lines(query, lines),
        other => {
            lines.insert(other.span().line);
        }
    });
}

impl super::PolicySet {
    /// `evaluate` on an engine of its own that records which lines of the policy ran
    /// (`verdict test --coverage`), with regorus's report of them.
    pub fn evaluate_with_coverage(
        &self,
        query: Asked<'_>,
    ) -> (
        Result<Decision, EvalError>,
        Option<regorus::coverage::Report>,
    ) {
        let started = Instant::now();
        // Coverage runs are one-offs (`verdict test --coverage`): prepared for each.
        let prepared = Instant::now();
        let plan = self.plan(query.path);
        let prepare_time = Some(prepared.elapsed());
        let mut engine = self.template.clone();
        engine.set_enable_coverage(true);
        let outcome = self.run(&mut engine, plan, query);
        let report = engine.get_coverage_report().ok();
        (
            self.decision(outcome, started.elapsed(), prepare_time),
            report,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_consecutive_lines() {
        let lines: BTreeSet<u32> = [3, 4, 5, 9, 11, 12].into_iter().collect();
        let rows: Vec<(u32, u32)> = ranges(&lines)
            .iter()
            .map(|r| (r.start.row, r.end.row))
            .collect();
        assert_eq!(rows, [(3, 5), (9, 9), (11, 12)]);
        assert_eq!(percent(3, 1), 75.0);
        assert_eq!(percent(0, 0), 0.0);
    }
}
