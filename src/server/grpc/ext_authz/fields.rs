//! Reading the decision's optional fields as opa-envoy-plugin reads them: headers, lists of
//! strings and query parameters, with the Go type names its errors use.

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, QueryParameter};
use regorus::Value;

use super::ExtAuthzError;

/// Headers as an object of string or string-array values, or an array of such objects;
/// emitted in key order (opa-envoy-plugin's order is Go's random map order).
/// Errors say "headers" whichever field it was, as opa-envoy-plugin's do.
pub(super) fn header_options(
    value: Option<&Value>,
) -> Result<Vec<HeaderValueOption>, ExtAuthzError> {
    let mut out = Vec::new();
    let objects: Vec<&regorus::value::Object> = match value {
        None => return Ok(out),
        Some(Value::Object(o)) => vec![o.as_ref()],
        Some(Value::Array(_) | Value::Set(_)) => elements(value)
            .map(|item| match item {
                Value::Object(o) => Ok(o.as_ref()),
                other => Err(not_headers(other)),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(not_headers(other)),
    };
    for object in objects {
        for (key, value) in object {
            let key = key_string(key);
            let mut add = |v: &str| {
                out.push(HeaderValueOption {
                    header: Some(HeaderValue {
                        key: key.clone(),
                        value: v.to_string(),
                        raw_value: Vec::new(),
                    }),
                    ..HeaderValueOption::default()
                })
            };
            match value {
                Value::String(s) => add(s),
                Value::Array(_) | Value::Set(_) => {
                    for v in elements(Some(value)) {
                        match v {
                            Value::String(s) => add(s),
                            other => {
                                return Err(ExtAuthzError::HeaderValue {
                                    key,
                                    got: go_type(other),
                                })
                            }
                        }
                    }
                }
                _ => return Err(ExtAuthzError::Header { key }),
            }
        }
    }
    Ok(out)
}

/// Headers of a shape other than an object (or an array of objects).
fn not_headers(other: &Value) -> ExtAuthzError {
    ExtAuthzError::WrongType {
        name: "headers",
        want: "object",
        got: go_type(other),
    }
}

/// A list of strings (`request_headers_to_remove`, `query_parameters_to_remove`).
pub(super) fn strings(
    value: Option<&Value>,
    name: &'static str,
) -> Result<Vec<String>, ExtAuthzError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(_) | Value::Set(_)) => elements(value)
            .map(|v| match v {
                Value::String(s) => Ok(s.to_string()),
                other => Err(ExtAuthzError::NotAString {
                    name,
                    got: go_type(other),
                }),
            })
            .collect(),
        Some(other) => Err(ExtAuthzError::WrongType {
            name,
            want: "[]string",
            got: go_type(other),
        }),
    }
}

pub(super) fn query_parameters(
    value: Option<&Value>,
) -> Result<Vec<QueryParameter>, ExtAuthzError> {
    let params = match value {
        None => return Ok(Vec::new()),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(ExtAuthzError::QueryParametersNotAMap {
                got: go_type(other),
            })
        }
    };
    let mut out = Vec::new();
    for (key, value) in params.iter() {
        let key = key_string(key);
        let param = |v: &str| QueryParameter {
            key: key.clone(),
            value: v.to_string(),
        };
        match value {
            Value::String(s) => out.push(param(s)),
            Value::Array(_) | Value::Set(_) => {
                for item in elements(Some(value)) {
                    match item {
                        Value::String(s) => out.push(param(s)),
                        other => {
                            return Err(ExtAuthzError::QueryParameterElement {
                                got: go_type(other),
                            })
                        }
                    }
                }
            }
            other => {
                return Err(ExtAuthzError::QueryParameterValue {
                    got: go_type(other),
                })
            }
        }
    }
    Ok(out)
}

/// The members of an array, or of a set (which OPA hands over as an array).
fn elements(value: Option<&Value>) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Some(Value::Array(items)) => Box::new(items.iter()),
        Some(Value::Set(items)) => Box::new(items.iter()),
        _ => Box::new(std::iter::empty()),
    }
}

/// An object key as text: Rego object keys may be any value, JSON's only strings.
pub(super) fn key_string(key: &Value) -> String {
    match key {
        Value::String(s) => s.to_string(),
        other => crate::gojson::key_text(other),
    }
}

/// The Go type opa-envoy-plugin names in its errors, for a value decoded from JSON.
pub(super) fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null | Value::Undefined => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "json.Number",
        Value::String(_) => "string",
        Value::Array(_) | Value::Set(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}
