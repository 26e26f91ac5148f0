//! OPA's Rego compliance suite, run through verdict's decision core, against a ledger of the
//! known differences (`tests/compliance/ledger.tsv`) that can only shrink.
//!
//! Run it (the suite is reference data beside the repository, never copied into it):
//!
//! ```text
//! VERDICT_COMPLIANCE_DIR=../shared/opa-compliance/v1 cargo test --test compliance
//! ```
//!
//! Without `VERDICT_COMPLIANCE_DIR` the test says it skipped and passes (`.ci/run` sets it).
//! It fails on a regression (a failing case the ledger does not list) and on a ledger line
//! that no longer holds (the case passes, or fails for another reason); it prints the lines.
//! After a change that makes cases pass, rewrite the ledger and review its diff:
//!
//! ```text
//! VERDICT_COMPLIANCE_DIR=../shared/opa-compliance/v1 VERDICT_COMPLIANCE_BLESS=1 cargo test --test compliance
//! ```
//!
//! Each case is judged as OPA's own runner judges it (v1/topdown/exported_test.go) and runs in
//! a child process of this binary (see `worker`), on a thread with a large stack and a time
//! limit: a case that aborts its process is recorded as "aborts", one that hangs as "timeout".
//!
//! With `VERDICT_COMPLIANCE_ENGINES=1` the cases run through both engines instead (see
//! `compliance/engines.rs`): it fails when the bytecode VM, where verification let it serve,
//! answers a case differently from the interpreter.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "compliance/builtins.rs"]
mod builtins;
#[path = "compliance/engines.rs"]
mod engines;
#[path = "compliance/ledger.rs"]
mod ledger;
#[path = "compliance/run.rs"]
mod run;
#[path = "compliance/selfcheck.rs"]
mod selfcheck;
#[path = "compliance/suite.rs"]
mod suite;
#[path = "compliance/worker.rs"]
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

const DIR_ENV: &str = "VERDICT_COMPLIANCE_DIR";
const BLESS_ENV: &str = "VERDICT_COMPLIANCE_BLESS";

fn main() -> ExitCode {
    // `cargo test <filter>` hands the filter to every test binary: run only when it names us.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if std::env::args().any(|a| a == "--list") {
        println!("compliance: test");
        return ExitCode::SUCCESS;
    }
    if !filters.is_empty() && !filters.iter().any(|f| "compliance".contains(f.as_str())) {
        return ExitCode::SUCCESS;
    }
    match main_inner() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("compliance: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner() -> anyhow::Result<ExitCode> {
    let Some(dir) = std::env::var_os(DIR_ENV).filter(|d| !d.is_empty()) else {
        println!(
            "compliance: SKIPPED: {DIR_ENV} is not set, so OPA's compliance suite was not run \
             (.ci/run sets it; run it with {DIR_ENV}=../shared/opa-compliance/v1 cargo test \
             --test compliance)"
        );
        return Ok(ExitCode::SUCCESS);
    };
    let dir = PathBuf::from(dir);
    let entries = suite::load(&dir)?;
    if std::env::var_os(worker::WORKER_ENV).is_some() {
        worker::serve(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(!entries.is_empty(), "no cases under {}", dir.display());

    let started = Instant::now();
    // The self-check judges the ordinary runner; the engines comparison judges no result.
    if !engines::enabled() {
        selfcheck::check()?;
        println!(
            "compliance: self-check ok: a case that aborts or hangs is recorded, the rest still run"
        );
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let results = worker::run_all(&dir, &entries, workers, worker::Limits::default())?;
    let elapsed = started.elapsed();
    if engines::enabled() {
        return Ok(engines_report(&entries, &results, elapsed));
    }

    let ledger_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compliance/ledger.tsv");
    summarize(&entries, &results, &dir, elapsed);
    if std::env::var_os(BLESS_ENV).is_some() {
        std::fs::write(&ledger_path, ledger::render(&entries, &results))
            .with_context(|| format!("writing {}", ledger_path.display()))?;
        println!("compliance: ledger rewritten: {}", ledger_path.display());
        return Ok(ExitCode::SUCCESS);
    }
    let drift = ledger::compare(&ledger::read(&ledger_path)?, &entries, &results);
    if drift.is_empty() {
        println!("compliance: ok, the ledger holds");
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", drift.report());
    println!(
        "compliance: FAILED: the ledger ({}) does not match this run; fix the regressions, or \
         rewrite it with {BLESS_ENV}=1 and review the diff",
        ledger_path.display()
    );
    Ok(ExitCode::FAILURE)
}

/// The engines comparison's verdict: every case where the VM served an entrypoint and
/// answered differently from the interpreter, and the cases it could not judge.
fn engines_report(
    entries: &[suite::Entry],
    results: &[Result<(), run::Failure>],
    elapsed: std::time::Duration,
) -> ExitCode {
    let (mut differ, mut agreeing, mut compared) = (0, 0, 0);
    for (entry, result) in entries.iter().zip(results) {
        if let Err(f) = result {
            if f.category == engines::AGREE {
                agreeing += 1;
                compared += f.detail.parse::<usize>().unwrap_or(0);
                continue;
            }
            if f.category == "engines differ" {
                differ += 1;
            }
            println!(
                "compliance engines: {}: {} ({})",
                f.category,
                entry.id().replace('\t', " "),
                f.detail
            );
        }
    }
    let judged = results.iter().filter(|r| r.is_ok()).count() + differ + agreeing;
    println!(
        "compliance engines: {agreeing} cases had entrypoints on the VM; {compared} evaluations agreed"
    );
    println!(
        "compliance engines: {} cases ({:.1} s): {differ} where the VM answered differently from the interpreter, {} not judged",
        entries.len(),
        elapsed.as_secs_f64(),
        entries.len() - judged,
    );
    match differ {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn summarize(
    entries: &[suite::Entry],
    results: &[Result<(), run::Failure>],
    dir: &Path,
    elapsed: std::time::Duration,
) {
    let total = entries.len();
    let passed = results.iter().filter(|r| r.is_ok()).count();
    let older: Vec<bool> = entries
        .iter()
        .map(|e| suite::newer_than_opa_1_9(&e.case).is_none())
        .collect();
    let older_total = older.iter().filter(|o| **o).count();
    let older_passed = results
        .iter()
        .zip(&older)
        .filter(|(r, o)| **o && r.is_ok())
        .count();
    println!(
        "compliance: {} ({} cases, {:.1} s)",
        dir.display(),
        total,
        elapsed.as_secs_f64()
    );
    println!(
        "compliance: passed {passed} of {total}; {older_passed} of the {older_total} cases not \
         newer than OPA 1.9 ({:.1}%)",
        100.0 * older_passed as f64 / older_total.max(1) as f64,
    );
    let categories: Vec<String> = ledger::by_category(results)
        .into_iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    println!("compliance: not passing: {}", categories.join(", "));
    // Cases that took their process down or hung are few and worth seeing by name.
    for (entry, result) in entries.iter().zip(results) {
        if let Err(f) = result {
            if matches!(f.category.as_str(), "aborts" | "timeout") {
                println!(
                    "compliance: {}: {} ({})",
                    f.category,
                    entry.id().replace('\t', " "),
                    f.detail
                );
            }
        }
    }
}
