//! `numbers.range_step` as OPA's `topdown/numbers.go` computes it: integers of any size, a step
//! that must be a positive integer (an error otherwise, never a panic: regorus 0.14 divides by
//! a zero step), ascending or descending from the first bound, bounded by the evaluation's
//! memory ceiling as regorus bounds its own ranges.

use std::cmp::Ordering;

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("numbers.range_step", 3, range_step)];

/// How many elements are added between two checks of the memory ceiling.
const CHECK_EVERY: usize = 4096;

/// OPA's `BigIntOperand`: a number without a fractional part.
fn integer(args: &[Value], index: usize) -> Result<&Value, BuiltinError> {
    match args::arg(args, index) {
        v @ Value::Number(n) if n.is_integer() => Ok(v),
        Value::Number(_) => Err(BuiltinError::invalid(format!(
            "operand {} must be integer number but got floating-point number",
            index + 1
        ))),
        other => Err(BuiltinError::Operand {
            position: index + 1,
            expected: "integer",
            actual: args::type_name(other),
        }),
    }
}

fn range_step(args: &[Value]) -> Result<Value, BuiltinError> {
    let from = integer(args, 0)?;
    let to = integer(args, 1)?;
    let step = integer(args, 2)?;
    let (Value::Number(start), Value::Number(step_n)) = (from, step) else {
        return Err(BuiltinError::fault());
    };
    if step <= &Value::from(0u64) {
        return Err(BuiltinError::invalid(
            "numbers.range_step: step must be a positive integer",
        ));
    }
    let descending = from > to;
    let mut items = Vec::new();
    let mut current = Value::Number(start.clone());
    loop {
        let past = match current.cmp(to) {
            Ordering::Greater => !descending,
            Ordering::Less => descending,
            Ordering::Equal => false,
        };
        if past {
            break;
        }
        let Value::Number(n) = &current else {
            return Err(BuiltinError::fault());
        };
        let next = if descending {
            n.sub(step_n)
        } else {
            n.add(step_n)
        }
        .map_err(|_| BuiltinError::fault())?;
        items.push(std::mem::replace(&mut current, Value::from(next)));
        if items.len() % CHECK_EVERY == 0 {
            regorus::enforce_memory_limit().map_err(|e| BuiltinError::Limit(e.to_string()))?;
        }
    }
    Ok(args::array(items))
}

#[cfg(test)]
mod tests {
    use crate::policy::builtins::testing::{fails, value};

    #[test]
    fn steps_up_or_down_from_the_first_bound() {
        let cases = [
            ("numbers.range_step(0, 10, 2)", "[0, 2, 4, 6, 8, 10]"),
            ("numbers.range_step(0, -10, 2)", "[0, -2, -4, -6, -8, -10]"),
            ("numbers.range_step(10, 3, 2)", "[10, 8, 6, 4]"),
            ("numbers.range_step(2, 5, 2)", "[2, 4]"),
            ("numbers.range_step(2, 2, 2)", "[2]"),
            ("numbers.range_step(1, 2, 2.0)", "[1]"),
            ("numbers.range_step(0, 10, 99999999999999999999)", "[0]"),
            (
                "numbers.range_step(100000000000000000000, 100000000000000000004, 2)",
                "[100000000000000000000, 100000000000000000002, 100000000000000000004]",
            ),
        ];
        for (call, want) in cases {
            // Rego's literal, not JSON's: regorus keeps big integers exact only there.
            assert_eq!(value(call), value(want), "{call}");
        }
    }

    #[test]
    fn a_step_that_is_not_a_positive_integer_is_an_error_not_a_panic() {
        for step in ["0", "-2", "-99999999999999999999"] {
            fails(
                &format!("numbers.range_step(1, 10, {step})"),
                "numbers.range_step: step must be a positive integer",
            );
        }
        fails(
            "numbers.range_step(1, 10, 1.5)",
            "numbers.range_step: operand 3 must be integer number but got floating-point number",
        );
        fails(
            "numbers.range_step(0.5, 10, 1)",
            "operand 1 must be integer number but got floating-point number",
        );
        fails(
            r#"numbers.range_step(1, "10", 1)"#,
            "numbers.range_step: operand 2 must be integer but got string",
        );
    }
}
