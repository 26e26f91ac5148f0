//! Deciding, per entrypoint, whether the VM may serve it: the static check, compilation to a
//! VM program, then the differential check on every input `inputs` builds. Runs on a thread
//! of its own after activation; the entrypoints stay on the interpreter until it is done.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::Duration;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::Instruction;
use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule};
use regorus::{Engine, Value};

use super::{check, inputs, EngineChoice, Entry, EntryReport, FastPath, Verified, VmOptions};
use crate::policy::rules::rule_key;
use crate::policy::EvalError;

/// Starts verifying `candidates` (rule paths under `data`) of the warmed `engine`. `None` when
/// the VM is not wanted or there is nothing to verify.
pub fn prepare(
    engine: &Engine,
    candidates: Vec<Vec<String>>,
    options: VmOptions,
    eval_timeout: Duration,
) -> Option<Arc<FastPath>> {
    if options.engine != EngineChoice::Auto || candidates.is_empty() {
        return None;
    }
    let fast = Arc::new(FastPath {
        id: crate::policy::next_id(),
        verified: OnceLock::new(),
        done: (Mutex::new(false), Condvar::new()),
        candidates: candidates.iter().map(|p| p.join("/")).collect(),
        data: engine.get_data(),
        budget: eval_timeout / super::VM_TIME_SHARE,
        shadow_every: options.shadow_every,
    });
    let weak = Arc::downgrade(&fast);
    let engine = engine.clone();
    let spawned = std::thread::Builder::new()
        .name("verdict-vm-verify".into())
        .stack_size(VERIFY_STACK)
        .spawn(move || {
            lower_this_thread();
            // One verification at a time in the process: a burst of activations queues here,
            // and those already replaced give up at once (`verify` checks `weak`).
            let _one = VERIFYING.lock().unwrap_or_else(|e| e.into_inner());
            let started = std::time::Instant::now();
            let verified = catch_unwind(AssertUnwindSafe(|| verify(&engine, &candidates, &weak)))
                .unwrap_or_default();
            let on_vm = verified.entries.len();
            if let Some(fast) = weak.upgrade() {
                fast.finish(verified);
                // Logged once published: whoever reads the line finds the entrypoints moved.
                let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::info!(
                    entrypoints = candidates.len(),
                    on_vm,
                    elapsed_ms,
                    "bytecode fast path verified"
                );
            }
        });
    if spawned.is_err() {
        fast.finish(Verified::default());
    }
    Some(fast)
}

/// Verification is background work: the interpreter serves meanwhile, so it must not take CPU
/// from decisions. The lowest priority (nice 19; Linux gives each thread its own): a bundle
/// swapped every second at 5,000 req/s cost the p99 5.8x with verification at normal
/// priority, 3.0x at nice 19 (`SCHED_IDLE` measured the same, 2.75x, so no more is asked).
fn lower_this_thread() {
    let tid = rustix::thread::gettid();
    if let Err(error) = rustix::process::setpriority_process(Some(tid), 19) {
        tracing::debug!(%error, "verification keeps the normal priority");
    }
}

/// Evaluation recurses with the nesting of rules and values, as on the compile thread.
const VERIFY_STACK: usize = crate::policy::guard::stack::COMPILE_STACK;

static VERIFYING: Mutex<()> = Mutex::new(());

/// The most CPU time verifying one revision may use; the entrypoints not verified by then stay
/// on the interpreter. CPU time of the verifying thread, not wall-clock time: at nice 19 on a
/// busy machine the thread may wait for seconds, which says nothing about the policy (a
/// wall-clock budget left the payment bundle on the interpreter while tests built beside it).
const VERIFY_BUDGET: Duration = Duration::from_secs(5);

/// The CPU time this thread has used. Through libc's `clock_gettime`, not rustix's own vDSO
/// reader, which faults under valgrind (`link/hot-code.sh` profiles the binary with it).
fn thread_cpu_time() -> Duration {
    cpu_time::ThreadTime::try_now()
        .map(|t| t.as_duration())
        .unwrap_or_default()
}

/// The longest one interpreter evaluation may take during verification: generated inputs can
/// drive a policy's loops far (`numbers.range(1, input.n)`), and an input that runs out of
/// time decides nothing.
const VERIFY_EVAL_LIMIT: Duration = Duration::from_millis(50);

fn verify(engine: &Engine, candidates: &[Vec<String>], fast: &Weak<FastPath>) -> Verified {
    let cpu_started = thread_cpu_time();
    let modules = engine.clone().get_modules().clone();
    let tests = test_inputs(engine, &modules);
    let data = engine.get_data();
    let mut verified = Verified::default();
    for (index, path) in candidates.iter().enumerate() {
        // A newer revision replaced this one: nobody will read the result.
        let Some(fast) = fast.upgrade() else {
            return verified;
        };
        let key = rule_key(path);
        let mut report = EntryReport {
            path: path.join("/"),
            engine: "interpreter",
            reason: None,
            inputs_checked: 0,
        };
        match admit(
            engine,
            &modules,
            path,
            &key,
            &tests,
            &data,
            &fast,
            index,
            cpu_started,
        ) {
            Ok((entry, checked)) => {
                report.engine = "vm";
                report.inputs_checked = checked;
                verified.entries.insert(key, Arc::new(entry));
            }
            Err(reason) => {
                tracing::debug!(path = %report.path, %reason, "entrypoint stays on the interpreter");
                report.reason = Some(reason);
            }
        }
        verified.report.push(report);
    }
    verified
}

#[allow(clippy::too_many_arguments)]
fn admit(
    engine: &Engine,
    modules: &[Ref<Module>],
    path: &[String],
    key: &str,
    tests: &[Value],
    data: &Value,
    fast: &FastPath,
    index: usize,
    cpu_started: Duration,
) -> Result<(Entry, usize), String> {
    let refs = check::check(modules, path).map_err(|r| r.to_string())?;
    let program = compile(engine, key).map_err(|e| format!("does not compile to the VM: {e}"))?;
    let suspendable = program
        .instructions
        .iter()
        .any(|i| matches!(i, Instruction::HostAwait { .. }));
    let entry = Entry {
        index,
        suspendable,
        key: path.join("/"),
        program,
        enabled: AtomicBool::new(true),
        served: AtomicU64::new(0),
        fallbacks: AtomicU64::new(0),
        mismatches: AtomicU64::new(0),
        inline_give_ups: AtomicU64::new(0),
    };
    let mut interpreter = engine.clone();
    interpreter.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit: VERIFY_EVAL_LIMIT,
        check_interval: crate::policy::compile::CHECK_INTERVAL,
    });
    let candidates = inputs::build(&refs, data, tests);
    let tried = candidates.len();
    let mut checked = 0;
    for input in candidates {
        if thread_cpu_time().saturating_sub(cpu_started) > VERIFY_BUDGET {
            return Err("verification ran out of its time budget".into());
        }
        let Ok(expected) = interpret(&mut interpreter, key, input.clone()) else {
            continue;
        };
        checked += 1;
        let actual = fast.run(&entry, input.clone(), fast.budget);
        let agrees = match (&expected, &actual) {
            (Some(e), Ok(a)) => e == a,
            // The interpreter fails: so must the VM (its error falls back to the interpreter).
            (None, Err(_)) => true,
            (None, Ok(_)) => false,
            // A VM error answers from the interpreter at request time: never wrong, only slow.
            (Some(_), Err(_)) => true,
        };
        if !agrees {
            let mut shown = crate::gojson::value_to_string(&input, false);
            if shown.len() > 200 {
                let cut = (0..=200)
                    .rev()
                    .find(|&i| shown.is_char_boundary(i))
                    .unwrap_or(0);
                shown.truncate(cut);
                shown.push_str("...");
            }
            return Err(format!("the engines disagree on input {shown}"));
        }
    }
    // Inputs the interpreter ran out of time on decide nothing; when every one did, nothing
    // was compared and nothing is proven.
    if checked == 0 && tried > 0 {
        return Err(format!(
            "none of the {tried} inputs could be compared: the interpreter ran out of time on each"
        ));
    }
    Ok((entry, checked))
}

fn compile(engine: &Engine, key: &str) -> Result<Arc<Program>, String> {
    let mut engine = engine.clone();
    let compiled = catch_unwind(AssertUnwindSafe(|| {
        let policy = engine
            .compile_with_entrypoint(&key.into())
            .map_err(|e| format!("{e:#}"))?;
        // verdict's own builtins (OPA's semantics, in place of regorus's of the same name)
        // suspend the VM, which `FastPath::run` resumes with their result.
        let host: Vec<(&str, usize)> = crate::policy::builtins::arities()
            .map(|(name, nargs)| (name, usize::from(nargs)))
            .collect();
        Compiler::compile_from_policy_with_host_await(&policy, &[key], &host)
            .map_err(|e| format!("{e:#}"))
    }));
    compiled.unwrap_or_else(|_| Err("the VM compiler panicked".into()))
}

/// The interpreter's answer: `Ok(None)` when it fails, `Err(())` when it ran out of time or
/// memory (a loaded machine, not the policy): such an input decides nothing.
fn interpret(engine: &mut Engine, key: &str, input: Value) -> Result<Option<Value>, ()> {
    engine.set_input(input);
    // verdict's own builtins loop outside regorus's timer (`numbers.range(1, input.n)` with a
    // generated `n`): they read the limit from their thread, as in a decision.
    let _deadline = crate::policy::builtins::deadline_scope(VERIFY_EVAL_LIMIT);
    let _strict = crate::policy::builtins::strict_scope(false);
    match catch_unwind(AssertUnwindSafe(|| engine.eval_rule(key.to_string()))) {
        Ok(Ok(value)) => Ok(Some(value)),
        Ok(Err(e)) => match crate::policy::error::from_engine(&e, INTERPRETER_LIMIT) {
            EvalError::Timeout(_) | EvalError::MemoryLimit(_) => Err(()),
            _ => Ok(None),
        },
        Err(_) => Ok(None),
    }
}

/// Only names the limit in a timeout error, which `interpret` does not show.
const INTERPRETER_LIMIT: Duration = Duration::from_secs(1);

/// The inputs the bundle's `test_` rules give with `with input as <value>`, where the value
/// can be evaluated alone (a literal, or a reference to data).
fn test_inputs(engine: &Engine, modules: &[Ref<Module>]) -> Vec<Value> {
    let mut texts = Vec::new();
    for module in modules {
        for rule in &module.policy {
            let name = super::check::rule_name(rule);
            if !name.is_some_and(|n| n.starts_with("test_")) {
                continue;
            }
            if let Rule::Spec { bodies, .. } = rule.as_ref() {
                for body in bodies {
                    with_inputs(&body.query, &mut texts);
                }
            }
        }
    }
    let mut engine = engine.clone();
    let mut out: Vec<Value> = Vec::new();
    let mut seen = HashMap::new();
    for text in texts {
        if seen.insert(text.clone(), ()).is_some() || out.len() >= inputs::MAX_INPUTS / 4 {
            continue;
        }
        let value = catch_unwind(AssertUnwindSafe(|| engine.eval_query(text, false)))
            .ok()
            .and_then(Result::ok)
            .and_then(|r| r.result.into_iter().next())
            .and_then(|r| r.expressions.into_iter().next())
            .map(|e| e.value);
        if let Some(v) = value.filter(|v| *v != Value::Undefined) {
            out.push(v);
        }
    }
    out
}

fn with_inputs(query: &Query, out: &mut Vec<String>) {
    for stmt in &query.stmts {
        for w in &stmt.with_mods {
            if matches!(w.refr.as_ref(), Expr::Var { value, .. } if value.as_string().is_ok_and(|s| s.as_ref() == "input"))
            {
                out.push(w.r#as.span().text().to_string());
            }
        }
        if let Literal::Every { query, .. } = &stmt.literal {
            with_inputs(query, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use regorus::{Engine, Value};

    #[test]
    fn the_budget_counts_work_not_waiting() {
        // A verification thread kept waiting by a busy machine has spent none of its budget.
        let before = super::thread_cpu_time();
        let (_keep, idle) = mpsc::channel::<()>();
        let _ = idle.recv_timeout(Duration::from_millis(300));
        let waited = super::thread_cpu_time().saturating_sub(before);
        assert!(waited < Duration::from_millis(100), "{waited:?}");
        // Work counts.
        let (before, wall) = (super::thread_cpu_time(), std::time::Instant::now());
        let mut x = 0u64;
        while wall.elapsed() < Duration::from_millis(200) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let worked = super::thread_cpu_time().saturating_sub(before);
        assert!(worked > Duration::from_millis(10) && x > 0, "{worked:?}");
    }

    #[test]
    fn verdicts_own_builtins_stop_at_the_verification_limit() {
        // A generated input can ask a builtin of verdict's own for far more than a decision
        // would: it must stop at the verification's limit, not fill the memory.
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let mut engine = Engine::new();
            crate::policy::builtins::register(&mut engine).unwrap();
            engine
                .add_policy(
                    "p.rego".into(),
                    "package p\n\nx := count(numbers.range(1, input.n))\n".into(),
                )
                .unwrap();
            engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
                limit: super::VERIFY_EVAL_LIMIT,
                check_interval: crate::policy::compile::CHECK_INTERVAL,
            });
            let input = Value::from_json_str(r#"{"n": 1000000000000}"#).unwrap();
            let _ = done.send(super::interpret(&mut engine, "data.p.x", input));
        });
        let outcome = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("the evaluation stops");
        assert_eq!(outcome, Err(()), "out of time: the input decides nothing");
    }
}
