//! The inputs the differential check tries on both engines: the bundle's own test inputs, and
//! for every `input` path the policy reads, that path set to each kind of JSON value (missing,
//! null, strings, numbers, booleans, objects, arrays) and to values taken from the data.

use std::collections::BTreeSet;

use regorus::Value;

use super::check::InputRefs;

/// Past this many inputs per entrypoint the rest are not tried: activation time stays bounded
/// whatever the size of the policy. What is not tried is still guarded by shadow checking.
pub const MAX_INPUTS: usize = 4000;

/// How many scalar values are taken from the data.
const MAX_DATA_VALUES: usize = 24;

/// Builds the inputs to try. A decision without input is not among them: those are always
/// answered by the interpreter.
pub fn build(refs: &InputRefs, data: &Value, tests: &[Value]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    scalars(data, &mut seen);
    let from_data: Vec<Value> = seen.into_iter().take(MAX_DATA_VALUES).collect();
    let mut variants = kinds();
    variants.extend(from_data.iter().cloned());

    let mut bases: Vec<Value> = vec![Value::new_object()];
    bases.extend(tests.iter().filter(|t| t.as_object().is_ok()).cloned());
    // One input where every path holds a value from the data: reaches the rules that need
    // several fields right at once (a payment with a known role, currency and merchant).
    let mut all_set = Value::new_object();
    for (i, path) in refs.iter().enumerate() {
        if let Some(v) = from_data.get(i % from_data.len().max(1)) {
            set(&mut all_set, path, v.clone());
        }
    }
    bases.push(all_set);

    let mut out: Vec<Value> = tests.to_vec();
    for base in &bases {
        out.push(base.clone());
        for path in refs {
            for v in &variants {
                if out.len() >= MAX_INPUTS {
                    return out;
                }
                let mut input = base.clone();
                if set(&mut input, path, v.clone()) {
                    out.push(input);
                }
            }
        }
    }
    out
}

/// One value of each kind a field may hold, the edges included.
fn kinds() -> Vec<Value> {
    let json = [
        "null",
        "true",
        "false",
        "0",
        "1",
        "-1",
        "2.5",
        "1e12",
        "\"\"",
        "\"x\"",
        "{}",
        "[]",
        "[\"x\"]",
        "{\"x\": 1}",
    ];
    json.iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect()
}

/// Strings and numbers found in the data, in order.
fn scalars(value: &Value, out: &mut BTreeSet<Value>) {
    if out.len() >= MAX_DATA_VALUES {
        return;
    }
    match value {
        Value::String(_) | Value::Number(_) => {
            out.insert(value.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| scalars(v, out)),
        Value::Set(items) => items.iter().for_each(|v| scalars(v, out)),
        Value::Object(fields) => fields.iter().for_each(|(k, v)| {
            // Keys are values a policy looks up too (`roles[input.role]`).
            if out.len() < MAX_DATA_VALUES {
                out.insert(k.clone());
            }
            scalars(v, out)
        }),
        _ => {}
    }
}

/// Sets `path` in `input` to `value`, making objects on the way. False when a value on the
/// way is not an object (the path cannot be set in this base).
fn set(input: &mut Value, path: &[String], value: Value) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Ok(object) = input.as_object_mut() else {
        return false;
    };
    let key = Value::from(first.as_str());
    if rest.is_empty() {
        object.insert(key, value);
        return true;
    }
    if object.get(&key).is_none_or(|v| v.as_object().is_err()) {
        object.insert(key.clone(), Value::new_object());
    }
    match object.get_mut(&key) {
        Some(child) => set(child, rest, value),
        None => false,
    }
}
