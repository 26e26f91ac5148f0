//! `object.union`, `object.filter` and `object.remove` as OPA's `topdown/object.go` has them,
//! in place of regorus's, whose type errors cannot name the operand's type ("must be object"
//! without OPA's "but got array": regorus prints sets and arrays alike).

use std::collections::{BTreeMap, BTreeSet};

use regorus::value::Object;
use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("object.union", 2, union),
    ("object.filter", 2, filter),
    ("object.remove", 2, remove),
];

fn object(args: &[Value], index: usize) -> Result<&Object, BuiltinError> {
    match args::arg(args, index) {
        Value::Object(fields) => Ok(fields),
        other => Err(BuiltinError::Operand {
            position: index + 1,
            expected: "object",
            actual: args::type_name(other),
        }),
    }
}

/// The keys named by an object's keys, a set's or an array's elements.
fn keys(args: &[Value], index: usize) -> Result<Vec<Value>, BuiltinError> {
    match args::arg(args, index) {
        Value::Object(fields) => Ok(fields.keys().cloned().collect()),
        Value::Set(items) => Ok(items.iter().cloned().collect()),
        Value::Array(items) => Ok(items.iter().cloned().collect()),
        other => Err(BuiltinError::Operand {
            position: index + 1,
            expected: "one of {object, set, array}",
            actual: args::type_name(other),
        }),
    }
}

/// The asymmetric union: `b` wins, and where both hold objects they are merged the same way.
fn union(args: &[Value]) -> Result<Value, BuiltinError> {
    let (a, b) = (object(args, 0)?, object(args, 1)?);
    Ok(Value::from(merge(a, b)))
}

fn merge(a: &Object, b: &Object) -> BTreeMap<Value, Value> {
    let mut merged: BTreeMap<Value, Value> =
        a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, vb) in b.iter() {
        let value = match (a.get(k), vb) {
            (Some(Value::Object(va)), Value::Object(vb)) => Value::from(merge(va, vb)),
            _ => vb.clone(),
        };
        merged.insert(k.clone(), value);
    }
    merged
}

fn filter(args: &[Value]) -> Result<Value, BuiltinError> {
    let fields = object(args, 0)?;
    let keep = keys(args, 1)?;
    let kept = keep
        .into_iter()
        .filter_map(|k| fields.get(&k).map(|v| (k, v.clone())))
        .collect::<BTreeMap<_, _>>();
    Ok(Value::from(kept))
}

fn remove(args: &[Value]) -> Result<Value, BuiltinError> {
    let fields = object(args, 0)?;
    let gone: BTreeSet<Value> = keys(args, 1)?.into_iter().collect();
    let kept = fields
        .iter()
        .filter(|(k, _)| !gone.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<BTreeMap<_, _>>();
    Ok(Value::from(kept))
}

#[cfg(test)]
mod tests {
    use crate::policy::builtins::testing::{fails, json, value};

    #[test]
    fn union_merges_nested_objects_and_the_second_wins() {
        assert_eq!(
            value(
                r#"object.union({"a": 1, "b": {"c": 1, "d": 2}, "e": [1]}, {"b": {"c": 3}, "e": {"x": 1}, "f": 4})"#
            ),
            json(r#"{"a": 1, "b": {"c": 3, "d": 2}, "e": {"x": 1}, "f": 4}"#)
        );
    }

    #[test]
    fn filter_and_remove_take_keys_from_objects_sets_and_arrays() {
        let o = r#"{"a": 1, "b": 2, "c": 3}"#;
        assert_eq!(
            value(&format!(r#"object.filter({o}, ["a", "z"])"#)),
            json(r#"{"a": 1}"#)
        );
        assert_eq!(
            value(&format!(r#"object.filter({o}, {{"b", "c"}})"#)),
            json(r#"{"b": 2, "c": 3}"#)
        );
        assert_eq!(
            value(&format!(r#"object.filter({o}, {{"c": 0}})"#)),
            json(r#"{"c": 3}"#)
        );
        assert_eq!(
            value(&format!(r#"object.remove({o}, ["a", "z"])"#)),
            json(r#"{"b": 2, "c": 3}"#)
        );
        assert_eq!(
            value(&format!(r#"object.remove({o}, {{"b": 0}})"#)),
            json(r#"{"a": 1, "c": 3}"#)
        );
    }

    #[test]
    fn type_errors_name_the_operand_and_its_type() {
        fails(
            r#"object.union([1], {})"#,
            "operand 1 must be object but got array",
        );
        fails(
            r#"object.union({}, {1})"#,
            "operand 2 must be object but got set",
        );
        fails(
            r#"object.filter({}, "a")"#,
            "operand 2 must be one of {object, set, array} but got string",
        );
        fails(
            r#"object.remove([], [])"#,
            "operand 1 must be object but got array",
        );
        fails(
            r#"object.remove({}, null)"#,
            "operand 2 must be one of {object, set, array} but got null",
        );
    }
}
