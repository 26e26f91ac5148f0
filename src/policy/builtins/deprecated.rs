//! Builtins OPA deprecated but still accepts in Rego v0 policies (`re_match`, the `cast_*`
//! family, `set_diff`, `net.cidr_overlap`, `all`, `any`), with their documented meaning, so that
//! older policies load. OPA refuses them in v1 modules at compile time; verdict accepts them
//! there too, which changes no answer a v1 policy could otherwise get.

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("re_match", 2, re_match),
    ("cast_array", 1, cast_array),
    ("cast_set", 1, cast_set),
    ("cast_string", 1, |a| cast_same(a, "string")),
    ("cast_boolean", 1, |a| cast_same(a, "boolean")),
    ("cast_null", 1, |a| cast_same(a, "null")),
    ("cast_object", 1, |a| cast_same(a, "object")),
    ("set_diff", 2, set_diff),
    ("net.cidr_overlap", 2, |a| super::net::cidr_contains(a)),
    ("all", 1, |a| all_any(a, true)),
    ("any", 1, |a| all_any(a, false)),
];

/// Patterns are compiled per call: bound their size as regorus bounds `regex.match`'s.
const MAX_PATTERN: usize = 64 << 10;

fn re_match(args: &[Value]) -> Result<Value, BuiltinError> {
    let pattern = args::string(args, 0)?;
    let text = args::string(args, 1)?;
    if pattern.len() > MAX_PATTERN {
        return Err(BuiltinError::invalid("regular expression is too large"));
    }
    let re = ::regex::Regex::new(pattern)
        .map_err(|e| BuiltinError::invalid(format!("error parsing regexp: {e}")))?;
    Ok(Value::from(re.is_match(text)))
}

fn operand(value: &Value, expected: &'static str) -> BuiltinError {
    BuiltinError::Operand {
        position: 1,
        expected,
        actual: args::type_name(value),
    }
}

fn cast_array(args: &[Value]) -> Result<Value, BuiltinError> {
    match args::arg(args, 0) {
        v @ Value::Array(_) => Ok(v.clone()),
        Value::Set(s) => Ok(Value::from(s.iter().cloned().collect::<Vec<_>>())),
        other => Err(operand(other, "any<array, set>")),
    }
}

fn cast_set(args: &[Value]) -> Result<Value, BuiltinError> {
    match args::arg(args, 0) {
        v @ Value::Set(_) => Ok(v.clone()),
        Value::Array(a) => Ok(Value::from(
            a.iter().cloned().collect::<std::collections::BTreeSet<_>>(),
        )),
        other => Err(operand(other, "any<array, set>")),
    }
}

fn cast_same(args: &[Value], expected: &'static str) -> Result<Value, BuiltinError> {
    let value = args::arg(args, 0);
    if args::type_name(value) == expected {
        Ok(value.clone())
    } else {
        Err(operand(value, expected))
    }
}

fn set_diff(args: &[Value]) -> Result<Value, BuiltinError> {
    let (Value::Set(a), Value::Set(b)) = (args::arg(args, 0), args::arg(args, 1)) else {
        let bad = [args::arg(args, 0), args::arg(args, 1)]
            .into_iter()
            .enumerate()
            .find(|(_, v)| !matches!(v, Value::Set(_)));
        let (i, v) = bad.unwrap_or((0, &Value::Undefined));
        return Err(BuiltinError::Operand {
            position: i + 1,
            expected: "set",
            actual: args::type_name(v),
        });
    };
    Ok(Value::from(
        a.iter()
            .filter(|v| !b.contains(v))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
    ))
}

fn all_any(args: &[Value], all: bool) -> Result<Value, BuiltinError> {
    let items: Vec<&Value> = match args::arg(args, 0) {
        Value::Array(a) => a.iter().collect(),
        Value::Set(s) => s.iter().collect(),
        other => return Err(operand(other, "any<array, set>")),
    };
    let truth = Value::from(true);
    Ok(Value::from(if all {
        items.iter().all(|v| **v == truth)
    } else {
        items.iter().any(|v| **v == truth)
    }))
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use crate::policy::builtins::testing::{fails, json, set, value};

    #[test]
    fn deprecated_builtins_keep_their_meaning() {
        assert_eq!(value(r#"re_match("^a+$", "aaa")"#), Value::from(true));
        assert_eq!(value(r#"re_match("^a+$", "aba")"#), Value::from(false));
        fails(r#"re_match("(", "a")"#, "error parsing regexp");
        assert_eq!(value("cast_array({2, 1})"), json("[1, 2]"));
        assert_eq!(value("cast_set([1, 1, 2])"), set("[1, 2]"));
        assert_eq!(value(r#"cast_string("s")"#), Value::from("s"));
        fails("cast_string(1)", "operand 1 must be string but got number");
        fails(
            "cast_array(1)",
            "operand 1 must be any<array, set> but got number",
        );
        assert_eq!(value("set_diff({1, 2, 3}, {2})"), set("[1, 3]"));
        fails("set_diff({1}, [1])", "operand 2 must be set but got array");
        assert_eq!(
            value(r#"net.cidr_overlap("10.0.0.0/8", "10.2.3.4")"#),
            Value::from(true)
        );
        assert_eq!(value("all([true, true])"), Value::from(true));
        assert_eq!(value("all([true, 1])"), Value::from(false));
        assert_eq!(value("any({false, true})"), Value::from(true));
        assert_eq!(value("any([])"), Value::from(false));
    }
}
