//! Reading builtin arguments as OPA's topdown does, and the one error type every builtin of
//! this module returns (its text is OPA's, without the `name: ` prefix the wrapper adds).

use regorus::Value;

/// A builtin call that OPA answers with an error (undefined unless strict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuiltinError {
    /// An argument of the wrong type, in OPA's words.
    #[error("operand {position} must be {expected} but got {actual}")]
    Operand {
        position: usize,
        expected: &'static str,
        actual: &'static str,
    },
    /// Anything else the builtin refused, in OPA's words where OPA has them.
    #[error("{0}")]
    Invalid(String),
    /// A resource ceiling (memory) reached: an error even when builtin errors are not strict.
    #[error("{0}")]
    Limit(String),
}

impl BuiltinError {
    pub fn invalid(message: impl Into<String>) -> BuiltinError {
        BuiltinError::Invalid(message.into())
    }

    /// A panic inside a dependency, caught at the call.
    pub fn fault() -> BuiltinError {
        BuiltinError::invalid("internal error while evaluating the builtin")
    }
}

/// OPA's name for the type of `value`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Set(_) => "set",
        Value::Object(_) => "object",
        Value::Undefined => "undefined",
    }
}

fn operand(position: usize, expected: &'static str, value: &Value) -> BuiltinError {
    BuiltinError::Operand {
        position,
        expected,
        actual: type_name(value),
    }
}

/// Argument `index` (0-based), which regorus guarantees is present; `Undefined` otherwise so
/// that a mismatch is a type error, never a panic.
pub fn arg(args: &[Value], index: usize) -> &Value {
    args.get(index).unwrap_or(&Value::Undefined)
}

pub fn string(args: &[Value], index: usize) -> Result<&str, BuiltinError> {
    match arg(args, index) {
        Value::String(s) => Ok(s),
        other => Err(operand(index + 1, "string", other)),
    }
}

pub fn object(args: &[Value], index: usize) -> Result<&regorus::value::Object, BuiltinError> {
    let value = arg(args, index);
    value
        .as_object()
        .map_err(|_| operand(index + 1, "object", value))
}

/// `value` as compact JSON text, byte for byte as Go's `json.Marshal` writes it.
pub fn to_json(value: &Value) -> String {
    crate::gojson::value_to_string(value, false)
}

/// A number as f64, integers beyond 2^53 rounded as Go's `Float64()` rounds them.
/// `None` for a value that is not a number.
pub fn number_f64(value: &Value) -> Option<f64> {
    let Value::Number(n) = value else {
        return None;
    };
    n.as_f64()
        .or_else(|| n.as_i128().map(|i| i as f64))
        .or_else(|| n.as_u128().map(|u| u as f64))
}

pub fn array(items: Vec<Value>) -> Value {
    Value::from(items)
}

/// An object from string keys.
pub fn object_of<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    let map: std::collections::BTreeMap<Value, Value> = entries
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    Value::from(map)
}

/// Go's `base64.StdEncoding.DecodeString`, with its error text.
pub fn base64_std(text: &str) -> Result<Vec<u8>, BuiltinError> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    // Go skips line breaks and ignores the unused bits of the last symbol.
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    GO_STD.decode(&cleaned).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => at,
            // Go reports a truncated input at the start of its last, incomplete quantum.
            _ => cleaned.len() / 4 * 4,
        };
        BuiltinError::invalid(format!("illegal base64 data at input byte {at}"))
    })
}
