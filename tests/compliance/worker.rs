//! Cases run in child processes of this binary, so that no case can take the runner down: a
//! stack overflow in regorus aborts the process it happens in (`catch_unwind` cannot catch
//! it), and a builtin stuck past its time limit cannot be stopped, only abandoned.
//!
//! A child reads case numbers on stdin and answers `start <n>` then `done <n>\t<result>` on
//! stdout. A child that ends after `start <n>` without `done <n>` aborted on case n; the
//! parent records that and starts a new child for the cases left.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use anyhow::Context;

use crate::run::{self, Failure};
use crate::suite::Entry;

/// Set in a child's environment: the child serves cases instead of running the suite.
pub const WORKER_ENV: &str = "VERDICT_COMPLIANCE_WORKER";
/// The child's limits, set by the parent (see `Limits`).
const TIMEOUT_ENV: &str = "VERDICT_COMPLIANCE_CASE_TIMEOUT_MS";
const STACK_ENV: &str = "VERDICT_COMPLIANCE_CASE_STACK";

/// The memory ceiling of a child process (regorus's, process-wide).
const CASE_MEMORY: u64 = 1024 * 1024 * 1024;

/// What one case may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock limit, beyond regorus's own evaluation timer (parsing and single builtin
    /// calls are not covered by it).
    pub timeout: Duration,
    /// The case thread's stack: deep recursion in the interpreter needs room, and a case that
    /// overflows even this aborts its process.
    pub stack: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(10),
            stack: 64 * 1024 * 1024,
        }
    }
}

impl Limits {
    fn from_env() -> Limits {
        let read = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let default = Limits::default();
        Limits {
            timeout: read(TIMEOUT_ENV).map_or(default.timeout, Duration::from_millis),
            stack: read(STACK_ENV)
                .and_then(|s| usize::try_from(s).ok())
                .unwrap_or(default.stack),
        }
    }
}

/// The child's side: serve case numbers from stdin until it closes.
pub fn serve(entries: &[Entry]) -> anyhow::Result<()> {
    let limits = Limits::from_env();
    // A case that keeps allocating fails cleanly instead of taking the machine's memory:
    // regorus checks this ceiling as it evaluates (not inside one builtin call, which only
    // the wall-clock limit ends).
    regorus::set_global_memory_limit(Some(CASE_MEMORY));
    // regorus panics are contained per case (`catch_unwind` in the decision core); their
    // messages would only bury the summary.
    std::panic::set_hook(Box::new(|_| {}));
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines() {
        let line = line.context("reading case numbers")?;
        let n: usize = line.trim().parse().context("case number")?;
        let entry = entries.get(n).context("case number out of range")?;
        writeln!(stdout, "start {n}")?;
        stdout.flush()?;
        let case = entry.case.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("case-{n}"))
            .stack_size(limits.stack)
            .spawn(move || {
                // A send to a parent that stopped waiting is of no interest.
                let result = match crate::engines::enabled() {
                    true => crate::engines::compare(&case),
                    false => run::run(&case),
                };
                let _ = tx.send(result);
            })
            .context("starting a case thread")?;
        match rx.recv_timeout(limits.timeout) {
            Ok(result) => writeln!(stdout, "done {n}\t{}", encode(&result))?,
            Err(_) => {
                let timeout = Err(Failure::new(
                    "timeout",
                    format!("no answer in {} ms", limits.timeout.as_millis()),
                ));
                writeln!(stdout, "done {n}\t{}", encode(&timeout))?;
                stdout.flush()?;
                // The case's thread cannot be stopped: leave it behind with this process.
                std::process::exit(0);
            }
        }
        stdout.flush()?;
    }
    Ok(())
}

fn encode(result: &Result<(), Failure>) -> String {
    match result {
        Ok(()) => "pass".into(),
        Err(f) => format!("fail\t{}\t{}", f.category, f.detail),
    }
}

fn decode(text: &str) -> Option<Result<(), Failure>> {
    let mut fields = text.splitn(3, '\t');
    match (fields.next()?, fields.next(), fields.next()) {
        ("pass", None, None) => Some(Ok(())),
        ("fail", Some(category), detail) => Some(Err(Failure {
            category: category.to_string(),
            detail: detail.unwrap_or_default().to_string(),
        })),
        _ => None,
    }
}

/// The parent's side: every case of the suite in `dir` run by `workers` children, results in
/// suite order.
pub fn run_all(
    dir: &Path,
    entries: &[Entry],
    workers: usize,
    limits: Limits,
) -> anyhow::Result<Vec<Result<(), Failure>>> {
    let spawn = || Worker::start(dir, limits);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<(), Failure>>>> = Mutex::new(vec![None; entries.len()]);
    std::thread::scope(|scope| {
        let drivers: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| drive(entries.len(), &next, &results, &spawn)))
            .collect();
        drivers
            .into_iter()
            .map(|d| {
                d.join()
                    .map_err(|_| anyhow::anyhow!("a driver thread failed"))?
            })
            .collect::<anyhow::Result<Vec<()>>>()
    })?;
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("results poisoned"))?;
    results
        .into_iter()
        .enumerate()
        .map(|(n, r)| r.with_context(|| format!("case {n} was never run")))
        .collect()
}

/// One child at a time, replaced whenever it dies, until no case is left.
fn drive(
    total: usize,
    next: &AtomicUsize,
    results: &Mutex<Vec<Option<Result<(), Failure>>>>,
    spawn: &dyn Fn() -> anyhow::Result<Worker>,
) -> anyhow::Result<()> {
    let store = |n: usize, r: Result<(), Failure>| {
        if let Ok(mut all) = results.lock() {
            all[n] = Some(r);
        }
    };
    let mut child = spawn()?;
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return child.finish();
        }
        match child.ask(n)? {
            Some(result) => {
                // A child that timed out exits (its case's thread cannot be stopped); one
                // whose evaluation timer fired is replaced too, to keep the rule simple.
                let timed_out = matches!(&result, Err(f) if f.category == "timeout");
                store(n, result);
                if timed_out {
                    child.finish()?;
                    child = spawn()?;
                }
            }
            None => {
                // Gone without an answer: the case took the process down with it.
                let why = child.death()?;
                store(n, Err(Failure::new("aborts", why)));
                child = spawn()?;
            }
        }
    }
}

struct Worker {
    process: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: std::thread::JoinHandle<String>,
}

impl Worker {
    fn start(dir: &Path, limits: Limits) -> anyhow::Result<Worker> {
        let exe = std::env::current_exe().context("locating the test binary")?;
        let mut process = Command::new(exe)
            .env(WORKER_ENV, "1")
            .env(crate::DIR_ENV, dir)
            .env(TIMEOUT_ENV, limits.timeout.as_millis().to_string())
            .env(STACK_ENV, limits.stack.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a worker")?;
        let stdin = process.stdin.take().context("worker stdin")?;
        let stdout = BufReader::new(process.stdout.take().context("worker stdout")?);
        let mut stderr = process.stderr.take().context("worker stderr")?;
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(Worker {
            process,
            stdin,
            stdout,
            stderr,
        })
    }

    /// The result of case `n`, or `None` when the child died on it.
    fn ask(&mut self, n: usize) -> anyhow::Result<Option<Result<(), Failure>>> {
        if writeln!(self.stdin, "{n}")
            .and_then(|_| self.stdin.flush())
            .is_err()
        {
            return Ok(None);
        }
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Ok(None);
            }
            let line = line.trim_end_matches('\n');
            if let Some(rest) = line.strip_prefix(&format!("done {n}\t")) {
                return decode(rest)
                    .map(Some)
                    .with_context(|| format!("worker answered {line:?}"));
            }
        }
    }

    /// How the child died, for the ledger.
    fn death(mut self) -> anyhow::Result<String> {
        drop(self.stdin);
        let status = self.process.wait()?;
        let stderr = self.stderr.join().unwrap_or_default();
        let why = if stderr.contains("overflowed its stack") {
            "stack overflow".to_string()
        } else {
            stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .to_string()
        };
        Ok(format!("{why} ({status})"))
    }

    fn finish(mut self) -> anyhow::Result<()> {
        drop(self.stdin);
        self.process.wait()?;
        Ok(())
    }
}
