//! The ledger: every case verdict does not pass, with why. It may only shrink: a failure it
//! does not list is a regression, a listed case that passes (or fails for another reason)
//! must be taken out or changed, and the check says exactly which lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::run::Failure;
use crate::suite::Entry;

const HEADER: &str = "\
# OPA compliance cases verdict does not pass: the known differences, checked by
# tests/compliance.rs. One case a line: file, note, category, detail (tab-separated).
# A regression fails the test, and so does a line that no longer holds.
# Categories: missing builtin (regorus lacks it; named), parse (keyword in ref, long line, ...),
# newer than OPA 1.9 (OPA 1.9 fails it too; left out of the 1.9 figure), different result,
# error code differs / error text differs (want_error_code / want_error), refused at load
# (verdict refuses modules OPA runs), panics (contained), aborts (the case killed its process),
# timeout, skipped.
# Rewrite after a change that makes cases pass:
#   VERDICT_COMPLIANCE_DIR=../shared/opa-compliance/v1 VERDICT_COMPLIANCE_BLESS=1 cargo test --test compliance
";

/// A ledger line: the case id (`file\tnote`) and why it fails.
pub type Ledger = BTreeMap<String, Failure>;

pub fn read(path: &Path) -> anyhow::Result<Ledger> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut ledger = Ledger::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.splitn(4, '\t').collect();
        let [file, note, category, detail] = fields[..] else {
            anyhow::bail!(
                "{}:{}: expected 4 tab-separated fields",
                path.display(),
                n + 1
            );
        };
        ledger.insert(
            format!("{file}\t{note}"),
            Failure {
                category: category.to_string(),
                detail: detail.to_string(),
            },
        );
    }
    Ok(ledger)
}

/// The ledger for these results, in suite order.
pub fn render(entries: &[Entry], results: &[Result<(), Failure>]) -> String {
    let mut out = HEADER.to_string();
    for (entry, result) in entries.iter().zip(results) {
        if let Err(f) = result {
            out.push_str(&line(&entry.id(), f));
        }
    }
    out
}

fn line(id: &str, f: &Failure) -> String {
    format!("{id}\t{}\t{}\n", f.category, f.detail)
}

/// What disagrees between the ledger and this run; empty when it holds.
#[derive(Debug, Default)]
pub struct Drift {
    /// Failures the ledger does not list: regressions.
    pub regressions: Vec<String>,
    /// Listed cases that pass now: lines to remove.
    pub now_passing: Vec<String>,
    /// Listed cases failing for another reason: (line to remove, line to add).
    pub changed: Vec<(String, String)>,
    /// Listed ids that are no case of the suite.
    pub unknown: Vec<String>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.regressions.is_empty()
            && self.now_passing.is_empty()
            && self.changed.is_empty()
            && self.unknown.is_empty()
    }

    pub fn report(&self) -> String {
        let mut out = String::new();
        let mut section = |title: &str, lines: Vec<String>| {
            if !lines.is_empty() {
                let _ = writeln!(out, "{title} ({}):", lines.len());
                for l in lines {
                    let _ = write!(out, "  {l}");
                }
            }
        };
        section(
            "REGRESSIONS: cases that fail and are not in the ledger",
            self.regressions.clone(),
        );
        section(
            "NOW PASSING: remove these lines from the ledger",
            self.now_passing.clone(),
        );
        section(
            "CHANGED: these ledger lines fail for another reason now (old line, then new)",
            self.changed
                .iter()
                .map(|(old, new)| format!("- {old}  + {new}"))
                .collect(),
        );
        section(
            "UNKNOWN: ledger lines naming no case of the suite",
            self.unknown.clone(),
        );
        out
    }
}

pub fn compare(ledger: &Ledger, entries: &[Entry], results: &[Result<(), Failure>]) -> Drift {
    let mut drift = Drift::default();
    let mut seen = std::collections::HashSet::new();
    for (entry, result) in entries.iter().zip(results) {
        let id = entry.id();
        let listed = ledger.get(&id);
        match (result, listed) {
            (Ok(()), None) => {}
            (Ok(()), Some(old)) => drift.now_passing.push(line(&id, old)),
            (Err(f), None) => drift.regressions.push(line(&id, f)),
            (Err(f), Some(old)) if f.category != old.category => {
                drift.changed.push((line(&id, old), line(&id, f)));
            }
            (Err(_), Some(_)) => {}
        }
        seen.insert(id);
    }
    for (id, f) in ledger {
        if !seen.contains(id) {
            drift.unknown.push(line(id, f));
        }
    }
    drift
}

/// Failures per category, largest first, for the summary.
pub fn by_category(results: &[Result<(), Failure>]) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in results.iter().filter_map(|r| r.as_ref().err()) {
        *counts.entry(f.category.as_str()).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(c, n)| (c.to_string(), n))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
}
