//! The stack every evaluation runs on. `recursion::MAX_DEPTH` bounds how deep a bundle's
//! evaluation may go; this makes sure that much stack is there: the service's threads are
//! created with `EVAL_STACK`, and an evaluation called on a thread with less (an embedding
//! runtime, the CLI's main thread, a test) moves to a stack of that size for its duration.

/// The stack size of every thread that evaluates. Only the pages an evaluation touches are
/// resident; the rest is address space. Debug builds' frames are several times larger.
pub const EVAL_STACK: usize = if cfg!(debug_assertions) {
    256 << 20
} else {
    32 << 20
};

/// The stack of the threads that compile (and validate by evaluating) and verify: regorus's
/// parser and analysis recurse with the nesting of the policy text too, and a deep policy
/// must fail as an error, not overflow the thread.
pub const COMPILE_STACK: usize = if EVAL_STACK > 64 << 20 {
    EVAL_STACK
} else {
    64 << 20
};

/// The stack an evaluation must find left to run where it is: the deepest evaluation the
/// depth limit admits touched at most 4.8 MiB on a release build (see `MAX_DEPTH`), so more
/// than three times that.
const NEEDED: usize = EVAL_STACK / 2;

/// Runs `evaluate` where it has the stack the depth limit needs: in place on the service's
/// threads, on a new stack of `EVAL_STACK` otherwise. Moving costs ~10 µs (mapping and
/// unmapping the stack), so threads that evaluate often are created with `EVAL_STACK`.
pub fn deep<R>(evaluate: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(NEEDED, EVAL_STACK, evaluate)
}

/// `deep` with a panic contained: regorus can panic on some inputs, and a panic must cost one
/// evaluation, never the process or a worker thread.
pub fn contained<R>(evaluate: impl FnOnce() -> R) -> std::thread::Result<R> {
    deep(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(evaluate)))
}

/// Runs `work` on a thread of `EVAL_STACK` and waits for it: for a program's main thread
/// (the CLI's evaluations, benchmarks), whose stack is the 8 MiB the system gives it. If no
/// thread can be started, `work` runs here, and each evaluation moves on its own.
pub fn on_eval_stack<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    let mut work = Some(work);
    let outcome = std::thread::scope(|scope| {
        let taken = &mut work;
        std::thread::Builder::new()
            .name("verdict-main".into())
            .stack_size(EVAL_STACK)
            .spawn_scoped(scope, move || taken.take().map(|w| w()))
            .map(|thread| thread.join())
    });
    match (outcome, work) {
        (Ok(Ok(Some(result))), _) => result,
        (Ok(Err(panic)), _) => std::panic::resume_unwind(panic),
        (_, Some(work)) => work(),
        (_, None) => std::panic::resume_unwind(Box::new("the work ended without a result")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::guard::recursion::{self, MAX_DEPTH};

    /// The deepest policy the guard admits, its rules reading each other through `link`.
    fn deepest_admitted(link: &str) -> regorus::Engine {
        let policy = |n: usize| {
            let mut text = String::from("package c\n\nallow := r0\n");
            for i in 0..n {
                let next = format!("r{}", i + 1);
                text.push_str(&format!("r{i} := {}\n", link.replace("{next}", &next)));
            }
            text.push_str(&format!("r{n} := input.x\n"));
            let mut engine = regorus::Engine::new();
            engine.add_policy("c.rego".into(), text).unwrap();
            engine
        };
        // `allow` and the last rule are one level each.
        let n =
            (MAX_DEPTH - 2) / recursion::weight(&format!("r0 := {}", link.replace("{next}", "r1")));
        let mut engine = policy(n as usize);
        assert!(recursion::check(engine.get_modules()).is_ok(), "{link}");
        let mut deeper = policy(n as usize + 1);
        assert!(recursion::check(deeper.get_modules()).is_err(), "{link}");
        engine.set_input(regorus::Value::from_json_str(r#"{"x": 5}"#).unwrap());
        engine
    }

    #[test]
    fn the_deepest_admitted_evaluation_runs_on_a_thread_with_little_stack() {
        // 1,000 plain rules took ~4 MiB on a release build and overflowed a 2 MiB thread
        // (the default of tokio's threads), aborting the process; nested terms cost more.
        for link in [
            "{next}",
            "[y | some y in [[{next}]]][0][0]",
            "{\"a\": {next}}.a",
        ] {
            let mut engine = deepest_admitted(link);
            let result = std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || deep(|| engine.eval_rule("data.c.allow".into()).unwrap()))
                .unwrap()
                .join()
                .unwrap();
            assert!(result != regorus::Value::Undefined, "{link}");
        }
    }
}
