//! The `mask_decision` and `drop_decision` policies: rules of the active bundle that see the
//! event as `input`, and say which parts of `input` and `result` are erased or replaced
//! (`/system/log/mask`), and whether the event is logged at all (`/system/log/drop`).
//!
//! Unlike OPA, which panics on an upsert into an absent input, nothing here can fail the
//! decision: an upsert without a place to go is skipped, and a mask policy that errors or
//! answers nonsense erases the whole input and result, so that an unmasked secret never
//! reaches the log because a policy was broken.

use regorus::Value;

use crate::policy::{DataPath, PolicySet, Query};

/// The paths a mask touched, for the event's `erased` and `masked`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub erased: Vec<String>,
    pub masked: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("mask policy failed: {0}")]
    Eval(String),
    /// The drop policy failed; its text is the evaluation's.
    #[error("{0}")]
    DropEval(String),
    #[error("mask policy answered an invalid entry {0}: want a JSON pointer under /input or /result, or {{\"op\": \"remove\"|\"upsert\", \"path\": ..., \"value\": ...}}")]
    Invalid(String),
}

/// Whether the drop policy asks to leave this event out. An error keeps the event.
pub fn dropped(policy: &PolicySet, path: &DataPath, event: &Value) -> Result<bool, MaskError> {
    if !policy.has_rules_at(path) {
        return Ok(false);
    }
    policy
        .evaluate(Query {
            path,
            input: Some(event.clone()),
            strict_builtin_errors: false,
        })
        .map(|d| d.result == Some(Value::Bool(true)))
        .map_err(|e| MaskError::DropEval(e.detail()))
}

/// Applies the mask policy to `event` in place.
pub fn mask(policy: &PolicySet, path: &DataPath, event: &mut Value) -> Result<Applied, MaskError> {
    if !policy.has_rules_at(path) {
        return Ok(Applied::default());
    }
    let decision = policy
        .evaluate(Query {
            path,
            input: Some(event.clone()),
            strict_builtin_errors: false,
        })
        .map_err(|e| MaskError::Eval(e.detail()))?;
    let entries: Vec<Value> = match decision.result {
        None => return Ok(Applied::default()),
        Some(Value::Set(set)) => set.iter().cloned().collect(),
        Some(Value::Array(items)) => items.iter().cloned().collect(),
        Some(other) => {
            return Err(MaskError::Invalid(crate::gojson::value_to_string(
                &other, false,
            )))
        }
    };
    let ops: Vec<Op> = entries.iter().map(Op::parse).collect::<Result<_, _>>()?;
    let mut applied = Applied::default();
    for op in ops {
        match op {
            Op::Remove(pointer) => {
                if remove(event, &segments(&pointer)) {
                    applied.erased.push(pointer);
                }
            }
            Op::Upsert(pointer, value) => {
                if upsert(event, &segments(&pointer), value) {
                    applied.masked.push(pointer);
                }
            }
        }
    }
    Ok(applied)
}

/// Replaces `input` and `result` wholesale: what a failed mask leaves of the event.
pub fn erase_all(event: &mut Value) -> Applied {
    let mut applied = Applied::default();
    for field in ["input", "result"] {
        if remove(event, &[field.to_string()]) {
            applied.erased.push(format!("/{field}"));
        }
    }
    applied
}

enum Op {
    Remove(String),
    Upsert(String, Value),
}

impl Op {
    fn parse(entry: &Value) -> Result<Op, MaskError> {
        let invalid = || MaskError::Invalid(crate::gojson::value_to_string(entry, false));
        let (op, pointer, value) = match entry {
            Value::String(p) => ("remove", p.to_string(), None),
            Value::Object(o) => {
                let text = |k: &str| match o.get(&Value::from(k)) {
                    Some(Value::String(s)) => Some(s.to_string()),
                    _ => None,
                };
                let op = text("op").ok_or_else(invalid)?;
                let pointer = text("path").ok_or_else(invalid)?;
                let value = o.get(&Value::from("value")).cloned();
                match op.as_str() {
                    "remove" => ("remove", pointer, None),
                    "upsert" => ("upsert", pointer, Some(value.ok_or_else(invalid)?)),
                    _ => return Err(invalid()),
                }
            }
            _ => return Err(invalid()),
        };
        let under = |root: &str| pointer == root || pointer.starts_with(&format!("{root}/"));
        if !(under("/input") || under("/result")) {
            return Err(invalid());
        }
        Ok(match (op, value) {
            ("upsert", Some(v)) => Op::Upsert(pointer, v),
            _ => Op::Remove(pointer),
        })
    }
}

/// JSON pointer segments, with `~1` and `~0` unescaped.
fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn remove(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let Some(parent) = walk(v, parents, false) else {
        return false;
    };
    match parent.as_object_mut() {
        Ok(map) => map.remove(&Value::from(last.as_str())).is_some(),
        Err(_) => false,
    }
}

/// Sets the value at `path`, creating missing objects below the first segment (`input` or
/// `result` itself must be there: there is nothing to mask in an absent input).
fn upsert(v: &mut Value, path: &[String], new: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    if parents.is_empty() {
        return false;
    }
    let Some(parent) = walk(v, parents, true) else {
        return false;
    };
    match parent.as_object_mut() {
        Ok(map) => {
            map.insert(Value::from(last.as_str()), new);
            true
        }
        Err(_) => false,
    }
}

/// The object at `path`; with `create`, missing keys below the root become empty objects.
fn walk<'v>(v: &'v mut Value, path: &[String], create: bool) -> Option<&'v mut Value> {
    let mut at = v;
    for (depth, key) in path.iter().enumerate() {
        let map = at.as_object_mut().ok()?;
        let key = Value::from(key.as_str());
        if !map.contains_key(&key) {
            if !create || depth == 0 {
                return None;
            }
            map.insert(key.clone(), Value::new_object());
        }
        at = map.get_mut(&key)?;
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    #[test]
    fn removes_and_upserts_like_opa() {
        let mut e = event(
            r#"{"input": {"card": "4111", "merchant": "m-1", "a": {"b": 1}}, "result": true}"#,
        );
        assert!(remove(&mut e, &segments("/input/card")));
        assert!(!remove(&mut e, &segments("/input/card")));
        assert!(upsert(
            &mut e,
            &segments("/input/merchant"),
            Value::from("**")
        ));
        assert!(upsert(&mut e, &segments("/input/x/y"), Value::from(1)));
        assert_eq!(
            e,
            event(r#"{"input": {"merchant": "**", "a": {"b": 1}, "x": {"y": 1}}, "result": true}"#)
        );
    }

    #[test]
    fn an_upsert_into_an_absent_or_scalar_input_is_skipped() {
        let mut absent = event(r#"{"result": true}"#);
        assert!(!upsert(
            &mut absent,
            &segments("/input/merchant"),
            Value::from("**")
        ));
        assert_eq!(absent, event(r#"{"result": true}"#));
        let mut scalar = event(r#"{"input": 42}"#);
        assert!(!upsert(
            &mut scalar,
            &segments("/input/merchant"),
            Value::from("**")
        ));
        assert_eq!(scalar, event(r#"{"input": 42}"#));
    }

    #[test]
    fn entries_outside_input_and_result_are_invalid() {
        for bad in [
            r#""/labels/id""#,
            r#"{"op": "upsert", "path": "/input/x"}"#,
            r#"{"op": "move", "path": "/input/x"}"#,
            "3",
        ] {
            assert!(Op::parse(&event(bad)).is_err(), "{bad}");
        }
        assert!(Op::parse(&event(r#""/input/card""#)).is_ok());
    }

    #[test]
    fn erasing_all_reports_what_was_there() {
        let mut e = event(r#"{"input": {"a": 1}, "path": "p"}"#);
        assert_eq!(erase_all(&mut e).erased, vec!["/input".to_string()]);
        assert_eq!(e, event(r#"{"path": "p"}"#));
    }
}
