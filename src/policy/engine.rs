//! Running one rule on a prepared regorus engine under a time limit, with panics contained and
//! regorus's errors turned into typed `EvalError`s: the engine runner of evaluations outside a
//! `PolicySet` (admission templates), so that no caller reads regorus's error text itself.

use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use super::compile::CHECK_INTERVAL;
use super::error::{from_engine, EvalError};

/// Evaluates `rule` (`data.<package>.<name>`) on `engine` with `input`, stopping at `budget`.
/// `EvalError::Timeout` when the budget runs out, `EngineFault` when regorus panicked.
pub fn run_rule(
    engine: &mut Engine,
    rule: &str,
    input: Value,
    budget: Duration,
) -> Result<Value, EvalError> {
    if budget.is_zero() {
        return Err(EvalError::Timeout(budget));
    }
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: budget,
        check_interval: CHECK_INTERVAL,
    });
    engine.set_input(input);
    let _deadline = super::builtins::deadline_scope(budget);
    match super::guard::stack::contained(|| engine.eval_rule(rule.to_string())) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(from_engine(&e, budget)),
        Err(_) => Err(EvalError::EngineFault),
    }
}
