//! The verified bytecode fast path: entrypoints served by regorus's register VM (`rvm`) where,
//! and only where, it is shown to agree with the interpreter.
//!
//! At activation `verify::prepare` compiles each candidate entrypoint to the VM, refuses it on
//! any construct the static check knows to diverge (`check`), and runs both engines on the
//! bundle's test inputs and on inputs built from what the policy reads (`inputs`): one
//! difference keeps it on the interpreter. At request time a VM error, limit or panic answers
//! from the interpreter instead; a sampled share of VM answers is re-run on the interpreter
//! off the request path (`shadow`), and one mismatch turns the VM off for that entrypoint.

pub mod check;
mod conflicts;
mod inline;
mod inputs;
pub mod metrics;
mod run;
pub mod shadow;
mod verify;

pub(super) use inline::decision;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use regorus::rvm::program::Program;
use regorus::Value;
use serde::{Deserialize, Serialize};

pub use verify::prepare;

/// Which engine may serve decisions (`verdict.engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// The VM where it is proven to agree, the interpreter everywhere else. The default: CI
    /// runs OPA's compliance suite through both engines and finds no difference on what the VM
    /// serves, and verification is bounded (one revision at a time, 5 s, 50 ms per
    /// interpreter run, verdict's own builtins included).
    #[default]
    Auto,
    /// The interpreter only.
    Interpreter,
}

/// The VM settings a compilation runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmOptions {
    pub engine: EngineChoice,
    /// One VM decision in this many is re-run on the interpreter; 0 turns shadowing off.
    pub shadow_every: u64,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            engine: EngineChoice::Auto,
            shadow_every: 1000,
        }
    }
}

/// Instructions one VM decision may execute before it is given up and the interpreter
/// answers. Real policies run in thousands (the payment decision: ~2,000); the time limit
/// bounds the rest.
pub const MAX_INSTRUCTIONS: usize = 5_000_000;

/// The VM's share of the evaluation time limit: it is ~4× faster than the interpreter, so a VM
/// run that needs more than a quarter of the limit is given up and the interpreter, which
/// then gets the whole limit, answers. A decision never takes more than 1.25 limits.
const VM_TIME_SHARE: u32 = 4;

/// The longest a VM decision may run on the thread that asked for it (an async worker, which
/// every listener and health probe shares): verified programs answer in tens of microseconds,
/// and one that has not answered by then gives way to the full evaluation on a blocking
/// thread, where the VM has its whole share of the limit and the interpreter the rest.
pub const INLINE_BUDGET: Duration = Duration::from_millis(1);

/// Inline runs of one entrypoint that may give up at `INLINE_BUDGET` before it is no longer
/// tried inline in this revision: inputs that drive a program past the limit (large arrays in
/// a loop, say) would otherwise hold the async workers 1 ms each, where health probes and
/// every listener wait, before going to a blocking thread anyway.
pub const MAX_INLINE_GIVE_UPS: u64 = 16;

/// Where a VM decision runs, which sets its time limit and whether giving up counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// On the asking thread, within `INLINE_BUDGET`; giving up there is not a fallback, since
    /// the full evaluation follows.
    Inline,
    /// On a blocking thread, with the VM's share of the evaluation limit.
    Blocking,
}

/// The entrypoints one compiled policy set serves from the VM. Verification runs on a thread
/// of its own after activation (a bundle starts serving at once, on the interpreter); each
/// entrypoint moves to the VM when its verification is done.
#[derive(Debug)]
pub struct FastPath {
    /// Names this fast path in each thread's VM cache.
    id: u64,
    verified: OnceLock<Verified>,
    /// Signalled once `verified` is set, for whoever waits on it (tests, benches).
    done: (Mutex<bool>, Condvar),
    candidates: Vec<String>,
    data: Value,
    budget: Duration,
    shadow_every: u64,
}

/// What verification concluded.
#[derive(Debug, Default)]
struct Verified {
    entries: HashMap<String, Arc<Entry>>,
    report: Vec<EntryReport>,
}

/// One entrypoint the VM serves, with its counters.
#[derive(Debug)]
pub struct Entry {
    index: usize,
    pub key: String,
    program: Arc<Program>,
    /// The program calls verdict's own builtins: it runs in the VM's suspendable mode, which
    /// hands each call to `FastPath::run`.
    suspendable: bool,
    /// Cleared by a shadow mismatch: the interpreter serves the entrypoint from then on.
    enabled: AtomicBool,
    served: AtomicU64,
    fallbacks: AtomicU64,
    mismatches: AtomicU64,
    /// Inline runs given up at their limit; past `MAX_INLINE_GIVE_UPS` the entrypoint is
    /// decided on blocking threads only.
    inline_give_ups: AtomicU64,
}

/// How a candidate entrypoint was decided, for status and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    pub path: String,
    pub engine: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub inputs_checked: usize,
}

/// An entrypoint's state now: the engine serving it and its counters.
#[derive(Debug, Clone, Serialize)]
pub struct EntryStatus {
    pub path: String,
    pub engine: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub vm_decisions: u64,
    pub fallbacks: u64,
    pub shadow_mismatches: u64,
}

/// The VM's answer for the rule `key`, when the VM serves it and answers; queues a sampled
/// share for the shadow check against the interpreter (`template`, the warmed engine).
pub fn serve(
    fast: &FastPath,
    template: &regorus::Engine,
    key: &str,
    input: &Value,
    place: Place,
) -> Option<Value> {
    match fast.evaluate(key, input, place) {
        Ok(Some((value, entry))) => {
            if fast.sampled(entry) {
                #[cfg(test)]
                let shadowed = match run::tests::TAMPER.with(|t| t.get()) {
                    true => Value::from("tampered"),
                    false => value.clone(),
                };
                #[cfg(not(test))]
                let shadowed = value.clone();
                shadow::submit(
                    template.clone(),
                    key,
                    input.clone(),
                    shadowed,
                    entry.clone(),
                );
            }
            Some(value)
        }
        Ok(None) | Err(_) => None,
    }
}

/// The entrypoints worth verifying: every rule path but tests and generic heads (whose
/// documents are only whole when queried), as the Data API and ext_authz ask for them.
pub fn candidates(
    rule_paths: &std::collections::BTreeSet<Vec<String>>,
    generic_keys: &std::collections::HashSet<String>,
) -> Vec<Vec<String>> {
    rule_paths
        .iter()
        .filter(|p| {
            let test = p
                .last()
                .is_some_and(|n| n.starts_with("test_") || n.starts_with("todo_test_"));
            !test && !generic_keys.contains(&crate::policy::rules::rule_key(p))
        })
        .take(MAX_CANDIDATES)
        .cloned()
        .collect()
}

/// Entrypoints verified per revision at most: verification time stays bounded.
const MAX_CANDIDATES: usize = 64;

/// Why the VM did not answer a request (the interpreter then did).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Instruction, time or memory limit.
    Limit,
    Error,
    Panic,
}

impl FastPath {
    /// The VM's answer for the rule `key`, or why it has none. `Ok(None)`: the VM does not
    /// serve this entrypoint.
    pub fn evaluate(
        &self,
        key: &str,
        input: &Value,
        place: Place,
    ) -> Result<Option<(Value, &Arc<Entry>)>, Fallback> {
        let Some(entry) = self.verified.get().and_then(|v| v.entries.get(key)) else {
            return Ok(None);
        };
        if !entry.enabled.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let budget = match place {
            Place::Inline
                if entry.inline_give_ups.load(Ordering::Relaxed) >= MAX_INLINE_GIVE_UPS =>
            {
                return Ok(None);
            }
            Place::Inline => INLINE_BUDGET.min(self.budget),
            Place::Blocking => self.budget,
        };
        let started = std::time::Instant::now();
        match self.run(entry, input.clone(), budget) {
            Ok(value) => {
                entry.served.fetch_add(1, Ordering::Relaxed);
                Ok(Some((value, entry)))
            }
            Err(reason) if place == Place::Inline => {
                // verdict's own builtins stop at the same limit with an error, not a limit.
                let at_limit = reason == Fallback::Limit || started.elapsed() >= budget;
                if at_limit
                    && entry.inline_give_ups.fetch_add(1, Ordering::Relaxed) + 1
                        == MAX_INLINE_GIVE_UPS
                {
                    tracing::info!(path = %entry.key, "VM decisions of this entrypoint keep running past the inline limit; they are made on blocking threads from now on");
                }
                Err(reason)
            }
            Err(reason) => {
                entry.fallbacks.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %entry.key, ?reason, "VM gave no answer; the interpreter answers");
                Err(reason)
            }
        }
    }

    /// True when this VM decision should also be re-run on the interpreter.
    pub fn sampled(&self, entry: &Entry) -> bool {
        self.shadow_every > 0
            && entry.served.load(Ordering::Relaxed) % self.shadow_every == 1 % self.shadow_every
    }

    /// Every candidate entrypoint and the engine serving it now.
    pub fn status(&self) -> Vec<EntryStatus> {
        let Some(verified) = self.verified.get() else {
            return self
                .candidates
                .iter()
                .map(|path| EntryStatus {
                    path: path.clone(),
                    engine: "interpreter",
                    reason: Some("being verified".into()),
                    vm_decisions: 0,
                    fallbacks: 0,
                    shadow_mismatches: 0,
                })
                .collect();
        };
        verified
            .report
            .iter()
            .map(|r| {
                let entry = verified.entries.values().find(|e| e.key == r.path);
                let counter =
                    |f: fn(&Entry) -> &AtomicU64| entry.map_or(0, |e| f(e).load(Ordering::Relaxed));
                let disabled = entry.is_some_and(|e| !e.enabled.load(Ordering::Relaxed));
                EntryStatus {
                    path: r.path.clone(),
                    engine: if disabled { "interpreter" } else { r.engine },
                    reason: if disabled {
                        Some("a shadow check found the VM disagreeing".into())
                    } else {
                        r.reason.clone()
                    },
                    vm_decisions: counter(|e| &e.served),
                    fallbacks: counter(|e| &e.fallbacks),
                    shadow_mismatches: counter(|e| &e.mismatches),
                }
            })
            .collect()
    }

    /// The engine that serves the rule `key` now: `vm` or `interpreter`.
    pub fn engine_of(&self, key: &str) -> &'static str {
        match self.verified.get().and_then(|v| v.entries.get(key)) {
            Some(e) if e.enabled.load(Ordering::Relaxed) => "vm",
            _ => "interpreter",
        }
    }
}

impl FastPath {
    /// Waits at most `timeout` for verification to finish; true when it has.
    pub fn wait_verified(&self, timeout: Duration) -> bool {
        let (lock, signal) = &self.done;
        let Ok(guard) = lock.lock() else {
            return false;
        };
        signal
            .wait_timeout_while(guard, timeout, |done| !*done)
            .is_ok_and(|(done, _)| *done)
    }

    fn finish(&self, verified: Verified) {
        let _ = self.verified.set(verified);
        let (lock, signal) = &self.done;
        if let Ok(mut done) = lock.lock() {
            *done = true;
        }
        signal.notify_all();
    }
}

impl Entry {
    /// A shadow check found the VM disagreeing: the interpreter serves this entrypoint from now.
    pub fn disable(&self) {
        self.mismatches.fetch_add(1, Ordering::Relaxed);
        self.enabled.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;
