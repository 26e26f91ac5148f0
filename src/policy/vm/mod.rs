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
mod inputs;
pub mod shadow;
mod verify;

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use regorus::rvm::program::Program;
use regorus::rvm::vm::{ExecutionMode, ExecutionState, RegoVM, SuspendReason, VmError};
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::Value;
use serde::{Deserialize, Serialize};

pub use verify::prepare;

/// Which engine may serve decisions (`verdict.engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// The VM where it is proven to agree, the interpreter everywhere else.
    Auto,
    /// The interpreter only.
    #[default]
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
            engine: EngineChoice::Interpreter,
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
) -> Option<Value> {
    match fast.evaluate(key, input) {
        Ok(Some((value, entry))) => {
            if fast.sampled(entry) {
                shadow::submit(
                    template.clone(),
                    key,
                    input.clone(),
                    value.clone(),
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
    ) -> Result<Option<(Value, &Arc<Entry>)>, Fallback> {
        let Some(entry) = self.verified.get().and_then(|v| v.entries.get(key)) else {
            return Ok(None);
        };
        if !entry.enabled.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match self.run(entry, input.clone()) {
            Ok(value) => {
                entry.served.fetch_add(1, Ordering::Relaxed);
                Ok(Some((value, entry)))
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

    /// Runs `entry` on this thread's VM for it, loading one only when the thread has none.
    fn run(&self, entry: &Entry, input: Value) -> Result<Value, Fallback> {
        let cached = VMS.with(|slot| {
            let mut vms = slot.borrow_mut();
            let at = vms
                .iter()
                .position(|(id, index, _)| *id == self.id && *index == entry.index)?;
            Some(vms.swap_remove(at).2)
        });
        let mut vm = match cached {
            Some(vm) => vm,
            None => self.load(entry)?,
        };
        vm.set_input(input);
        let _deadline = crate::policy::builtins::deadline_scope(self.budget);
        let _strict = crate::policy::builtins::strict_scope(false);
        let outcome = catch_unwind(AssertUnwindSafe(|| run_to_end(&mut vm)));
        let result = match outcome {
            Ok(result) => result,
            // A VM that panicked is dropped, never reused.
            Err(_) => return Err(Fallback::Panic),
        };
        // The input is not kept alive between decisions.
        vm.set_input(Value::Undefined);
        VMS.with(|slot| {
            let mut vms = slot.borrow_mut();
            if vms.len() >= VMS_PER_THREAD {
                vms.remove(0);
            }
            vms.push((self.id, entry.index, vm));
        });
        result
    }

    fn load(&self, entry: &Entry) -> Result<RegoVM, Fallback> {
        let mut vm = RegoVM::new();
        if entry.suspendable {
            vm.set_execution_mode(ExecutionMode::Suspendable);
        }
        vm.load_program(entry.program.clone());
        vm.set_data(self.data.clone())
            .map_err(|_| Fallback::Error)?;
        vm.set_strict_builtin_errors(false);
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        vm.set_execution_timer_config(Some(ExecutionTimerConfig {
            limit: self.budget,
            check_interval: crate::policy::compile::CHECK_INTERVAL,
        }));
        Ok(vm)
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

/// Runs the program's entrypoint to its end, answering each call of one of verdict's own
/// builtins (a host-await suspension) with what the interpreter's extension would answer.
fn run_to_end(vm: &mut RegoVM) -> Result<Value, Fallback> {
    let mut result = vm.execute_entry_point_by_index(0);
    loop {
        let value = result.map_err(|e| classify(&e))?;
        let (name, args) = match vm.execution_state() {
            ExecutionState::Suspended {
                reason:
                    SuspendReason::HostAwait {
                        argument,
                        identifier,
                        ..
                    },
                ..
            } => (identifier.clone(), argument.clone()),
            ExecutionState::Suspended { .. } => return Err(Fallback::Error),
            _ => return Ok(value),
        };
        let name = name.as_string().map_err(|_| Fallback::Error)?.to_string();
        let args: Vec<Value> = args
            .as_array()
            .map_err(|_| Fallback::Error)?
            .iter()
            .cloned()
            .collect();
        let answer = match crate::policy::builtins::call(&name, args) {
            Some(Ok(answer)) => answer,
            // An error under non-strict evaluation is a resource limit: the interpreter,
            // answering next, reports it as it would have.
            Some(Err(_)) | None => return Err(Fallback::Error),
        };
        result = vm.resume(Some(answer));
    }
}

fn classify(e: &VmError) -> Fallback {
    match e {
        VmError::InstructionLimitExceeded { .. }
        | VmError::TimeLimitExceeded { .. }
        | VmError::MemoryLimitExceeded { .. }
        | VmError::RegexSizeLimitExceeded { .. } => Fallback::Limit,
        _ => Fallback::Error,
    }
}

/// VMs kept per thread: one per entrypoint served lately.
const VMS_PER_THREAD: usize = 8;

thread_local! {
    /// The VMs this thread last ran, by fast path and entrypoint, loaded with program and data.
    static VMS: RefCell<Vec<(u64, usize, RegoVM)>> = const { RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests;
