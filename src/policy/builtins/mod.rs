//! The OPA builtins regorus lacks, registered on every engine verdict creates through
//! regorus's extension API: one file per OPA namespace, each with OPA's documented semantics.
//!
//! regorus reports an extension's error as an evaluation error whatever its strict mode, while
//! OPA makes a failing builtin undefined unless `strict-builtin-errors` is asked for. So each
//! builtin here returns a typed `BuiltinError`, and the wrapper turns it into undefined or into
//! an error according to the strictness of the evaluation running on this thread.

mod args;
mod array;
mod conversions;
mod crypto;
mod deprecated;
mod graph;
mod graphql;
mod http;
mod io_jwt;
mod json;
mod jwk;
mod net;
mod numbers;
mod object;
mod providers_aws;
mod regex;
mod strings;
mod x509;
mod yaml;

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use regorus::{Engine, Value};

pub(crate) use args::BuiltinError;

/// A builtin: its arguments, already checked for count, to its value or OPA's error.
type Builtin = fn(&[Value]) -> Result<Value, BuiltinError>;

/// Why the builtins could not be added to an engine.
#[derive(Debug, thiserror::Error)]
#[error("cannot register builtin {name}: {message}")]
pub struct RegisterError {
    pub name: &'static str,
    pub message: String,
}

/// Every builtin of this module, by OPA name, with its number of arguments.
fn table() -> impl Iterator<Item = (&'static str, u8, Builtin)> {
    io_jwt::BUILTINS
        .iter()
        .chain(crypto::BUILTINS)
        .chain(x509::BUILTINS)
        .chain(net::BUILTINS)
        .chain(numbers::BUILTINS)
        .chain(object::BUILTINS)
        .chain(providers_aws::BUILTINS)
        .chain(strings::BUILTINS)
        .chain(array::BUILTINS)
        .chain(conversions::BUILTINS)
        .chain(json::BUILTINS)
        .chain(yaml::BUILTINS)
        .chain(regex::BUILTINS)
        .chain(deprecated::BUILTINS)
        .chain(graph::BUILTINS)
        .chain(graphql::BUILTINS)
        .chain(http::BUILTINS)
        .copied()
}

/// The names and arities of the builtins `register` adds: regorus cannot bind an extension's
/// result through an extra output argument (`f(x, out)`), so whoever rewrites such calls needs
/// to know which functions are extensions.
pub fn arities() -> impl Iterator<Item = (&'static str, u8)> {
    table().map(|(name, nargs, _)| (name, nargs))
}

/// Calls the builtin `name` of this module exactly as the interpreter's extension does (the
/// same wrapper: panics contained, errors under this thread's strictness). The bytecode VM
/// reaches these through its host-await suspension. `None`: no such builtin here.
pub(crate) fn call(name: &str, args: Vec<Value>) -> Option<anyhow::Result<Value>> {
    let (name, _, builtin) = table().find(|(n, _, _)| *n == name)?;
    Some(extension(name, builtin)(args))
}

/// Adds every builtin of this module to `engine`. Call it before the first evaluation; an
/// engine cloned afterwards carries them.
pub fn register(engine: &mut Engine) -> Result<(), RegisterError> {
    for (name, nargs, builtin) in table() {
        engine
            .add_extension(name.to_string(), nargs, Box::new(extension(name, builtin)))
            .map_err(|e| RegisterError {
                name,
                message: format!("{e:#}"),
            })?;
    }
    Ok(())
}

fn extension(
    name: &'static str,
    builtin: Builtin,
) -> impl FnMut(Vec<Value>) -> anyhow::Result<Value> + Clone + Send + Sync {
    move |params: Vec<Value>| {
        // A parser deep in a crypto crate must cost this call, not the decision's engine.
        let outcome = catch_unwind(AssertUnwindSafe(|| builtin(&params)))
            .unwrap_or_else(|_| Err(BuiltinError::fault()));
        match outcome {
            Ok(value) => Ok(value),
            // A resource ceiling stops the evaluation whatever its strictness, as regorus's
            // own builtins do.
            Err(e @ BuiltinError::Limit(_)) => Err(anyhow::anyhow!("{name}: {e}")),
            Err(e) if STRICT.with(Cell::get) => Err(anyhow::anyhow!("{name}: {e}")),
            Err(_) => Ok(Value::Undefined),
        }
    }
}

thread_local! {
    /// Whether the evaluation running on this thread asked for strict builtin errors. An
    /// extension cannot see its engine's setting, and an evaluation never leaves its thread.
    static STRICT: Cell<bool> = const { Cell::new(false) };
}

/// Sets the strictness of this module's builtins for the evaluations run on this thread until
/// the guard drops (which restores the previous setting). Set it beside
/// `Engine::set_strict_builtin_errors`.
#[must_use = "strictness lasts only while the guard lives"]
pub fn strict_scope(strict: bool) -> StrictScope {
    StrictScope {
        previous: STRICT.with(|s| s.replace(strict)),
    }
}

thread_local! {
    /// When the evaluation running on this thread must stop. regorus checks its time limit
    /// between its own steps only: a builtin that loops (`numbers.range`) checks this itself.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Sets the time limit of this module's builtins for the evaluation run on this thread until
/// the guard drops. Set it beside `Engine::set_execution_timer_config`.
#[must_use = "the deadline lasts only while the guard lives"]
pub fn deadline_scope(limit: Duration) -> DeadlineScope {
    let deadline = Instant::now().checked_add(limit);
    DeadlineScope {
        previous: DEADLINE.with(|d| d.replace(deadline)),
    }
}

/// Restores the previous deadline when dropped.
#[derive(Debug)]
pub struct DeadlineScope {
    previous: Option<Instant>,
}

impl Drop for DeadlineScope {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(self.previous));
    }
}

/// For a builtin's own loop: the evaluation's time limit (in regorus's words, so that it is
/// reported as the evaluation's timeout) and the memory ceiling.
fn check_limits() -> Result<(), BuiltinError> {
    if DEADLINE
        .with(Cell::get)
        .is_some_and(|d| Instant::now() >= d)
    {
        return Err(BuiltinError::Limit("execution exceeded time limit".into()));
    }
    regorus::enforce_memory_limit().map_err(|e| BuiltinError::Limit(e.to_string()))
}

/// Restores the previous strictness when dropped.
#[derive(Debug)]
pub struct StrictScope {
    previous: bool,
}

impl Drop for StrictScope {
    fn drop(&mut self) {
        STRICT.with(|s| s.set(self.previous));
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Evaluating small policies with the builtins registered, for the per-namespace tests.

    use std::num::{NonZeroU32, NonZeroUsize};

    use regorus::{Engine, PolicyLengthConfig, Value};

    /// The value of `expr` (a Rego expression) with the builtins registered, `None` when
    /// undefined; `Err` carries the error text of a strict evaluation.
    pub fn eval(expr: &str, strict: bool) -> Result<Option<Value>, String> {
        eval_with_input(expr, Value::Undefined, strict)
    }

    /// `eval` with `input` set, for arguments too large to write in a policy.
    pub fn eval_with_input(
        expr: &str,
        input: Value,
        strict: bool,
    ) -> Result<Option<Value>, String> {
        let mut engine = Engine::new();
        // Keys and tokens written inline make long lines.
        engine.set_policy_length_config(PolicyLengthConfig {
            max_col: NonZeroU32::MAX,
            max_file_bytes: NonZeroUsize::MAX,
            max_lines: NonZeroUsize::MAX,
        });
        engine.set_input(input);
        engine.set_strict_builtin_errors(strict);
        super::register(&mut engine).map_err(|e| e.to_string())?;
        engine
            .add_policy("t.rego".into(), format!("package t\n\nx := {expr}\n"))
            .map_err(|e| e.to_string())?;
        let _scope = super::strict_scope(strict);
        let value = engine
            .eval_rule("data.t.x".into())
            .map_err(|e| format!("{e:#}"))?;
        Ok((value != Value::Undefined).then_some(value))
    }

    /// `eval` in both modes, for a call OPA answers: the answer must not depend on strictness.
    pub fn value(expr: &str) -> Value {
        let lax = eval(expr, false);
        assert_eq!(lax, eval(expr, true), "{expr}: strict and lax differ");
        match lax {
            Ok(Some(v)) => v,
            other => panic!("{expr}: expected a value, got {other:?}"),
        }
    }

    /// For a call OPA fails: undefined by default, an error containing `message` when strict.
    pub fn fails(expr: &str, message: &str) {
        assert_eq!(eval(expr, false), Ok(None), "{expr}: lax");
        match eval(expr, true) {
            Err(e) => assert!(e.contains(message), "{expr}: {e}"),
            other => panic!("{expr}: expected an error, got {other:?}"),
        }
    }

    /// A set of the elements of a JSON array.
    pub fn set(text: &str) -> Value {
        match json(text) {
            Value::Array(items) => Value::from(
                items
                    .iter()
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>(),
            ),
            other => panic!("{text} is not an array: {other:?}"),
        }
    }

    pub fn json(text: &str) -> Value {
        match Value::from_json_str(text) {
            Ok(v) => v,
            Err(e) => panic!("{text}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::eval;

    #[test]
    fn registering_twice_on_one_engine_is_an_error_not_a_panic() {
        let mut engine = regorus::Engine::new();
        assert!(super::register(&mut engine).is_ok());
        let second = super::register(&mut engine);
        assert!(second.is_err_and(|e| e.message.contains("already")));
    }

    #[test]
    fn the_strict_scope_ends_with_its_guard() {
        let call = r#"io.jwt.decode("not a token")"#;
        {
            let _strict = super::strict_scope(true);
            assert!(super::STRICT.with(std::cell::Cell::get));
        }
        assert!(!super::STRICT.with(std::cell::Cell::get));
        assert_eq!(eval(call, false), Ok(None));
    }
}
