//! `json.*` where regorus differs from OPA (`topdown/json.go`, `topdown/jsonschema.go`):
//! `json.is_valid` is Go's `json.Valid` and false for a non-string (regorus fails);
//! `json.verify_schema` and `json.match_schema` read a schema as a draft-7 one unless it names
//! its draft (OPA's gojsonschema is draft 4 to 7) and report errors in gojsonschema's shape,
//! `[]` when there are none (regorus: `null` and one message).

use regorus::Value;
use serde_json::Value as Json;

use super::args::{self, array, BuiltinError};
use super::Builtin;

mod schema;
mod syntax;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("json.is_valid", 1, is_valid),
    ("json.verify_schema", 1, verify_schema),
    ("json.match_schema", 2, match_schema),
];

fn is_valid(args: &[Value]) -> Result<Value, BuiltinError> {
    Ok(Value::from(match args::arg(args, 0) {
        Value::String(s) => syntax::valid(s),
        // OPA answers false for anything that is not a string, strict or not.
        _ => false,
    }))
}

/// OPA's `astValueToJSONSchemaLoader`: JSON text, or an object or array as a document.
fn load(value: &Value) -> Result<Json, String> {
    let text = match value {
        Value::String(s) if syntax::valid(s) => s.to_string(),
        Value::String(_) => return Err("invalid JSON string".into()),
        Value::Object(_) | Value::Array(_) => args::to_json(value),
        _ => return Err("wrong type, expected string or object".into()),
    };
    // What Go reads and serde does not (nesting past 128 levels) is refused, never misread.
    serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))
}

fn verify_schema(args: &[Value]) -> Result<Value, BuiltinError> {
    let checked = load(args::arg(args, 0)).and_then(|s| schema::compile(&s).map(|_| ()));
    Ok(array(match checked {
        Ok(()) => vec![Value::from(true), Value::Null],
        Err(e) => vec![Value::from(false), Value::from(format!("jsonschema: {e}"))],
    }))
}

fn match_schema(args: &[Value]) -> Result<Value, BuiltinError> {
    let document = load(args::arg(args, 0)).map_err(BuiltinError::invalid)?;
    let schema = load(args::arg(args, 1)).map_err(BuiltinError::invalid)?;
    let validator = schema::compile(&schema).map_err(BuiltinError::invalid)?;
    let errors = schema::errors(&validator, &document);
    Ok(array(vec![Value::from(errors.is_empty()), array(errors)]))
}

#[cfg(test)]
mod tests;
