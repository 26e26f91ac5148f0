//! The CheckResponse for a decision, with opa-envoy-plugin's rules: a boolean, or an object
//! with `allowed` and optional `headers`, `request_headers_to_remove`,
//! `response_headers_to_add`, `query_parameters_to_set`/`_to_remove`, `body`, `http_status` and
//! `dynamic_metadata`. A decision of another shape is an error worded as opa-envoy-plugin's.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption, QueryParameter};
use envoy_types::pb::envoy::r#type::v3::{HttpStatus, StatusCode as HttpStatusCode};
use envoy_types::pb::envoy::service::auth::v3::{
    check_response::HttpResponse, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{value::Kind, ListValue, Struct, Value as PbValue};
use envoy_types::pb::google::rpc;
use regorus::Value;

/// gRPC's codes, as CheckResponse.status carries them.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;

/// The response to a request whose input could not be built: denied with 400, the error in
/// the status and the body (opa-envoy-plugin's `request_parse_error`).
pub fn parse_error(error: &str) -> CheckResponse {
    let message = format!("request_parse_error: {error}");
    CheckResponse {
        status: Some(rpc::Status {
            code: PERMISSION_DENIED,
            message: message.clone(),
            details: Vec::new(),
        }),
        dynamic_metadata: None,
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: HttpStatusCode::BadRequest as i32,
            }),
            headers: Vec::new(),
            body: message,
        })),
    }
}

/// The response for a defined decision, or the message of the gRPC error to answer instead.
pub fn for_decision(decision: &Value) -> Result<CheckResponse, String> {
    let fields = match decision {
        Value::Bool(allowed) => {
            return Ok(CheckResponse {
                status: Some(status(*allowed)),
                dynamic_metadata: None,
                http_response: None,
            })
        }
        Value::Object(fields) => fields,
        other => {
            return Err(format!(
                "failed to get response status: illegal value for policy evaluation result: {}",
                go_type(other)
            ))
        }
    };
    let allowed = match fields.get(&Value::from("allowed")) {
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "failed to get response status: type assertion error, expected allowed to be \
                 of type 'boolean' but got '{}'",
                go_type(other)
            ))
        }
        None => {
            return Err(
                "failed to get response status: unable to determine evaluation result \
                 due to missing \"allowed\" key"
                    .into(),
            )
        }
    };
    let field = |name: &str| fields.get(&Value::from(name));
    let headers = header_options(field("headers"))
        .map_err(|e| format!("failed to get response headers: {e}"))?;
    let dynamic_metadata = match field("dynamic_metadata") {
        None => None,
        Some(Value::Object(m)) => Some(to_struct(m)),
        Some(other) => {
            return Err(format!(
                "failed to get dynamic metadata: type assertion error, expected \
                 dynamic_metadata to be of type 'object' but got '{}'",
                go_type(other)
            ))
        }
    };
    let http_response = if allowed {
        let headers_to_remove = strings(
            field("request_headers_to_remove"),
            "request_headers_to_remove",
        )
        .map_err(|e| format!("failed to get request headers to remove: {e}"))?;
        let response_headers_to_add = header_options(field("response_headers_to_add"))
            .map_err(|e| format!("failed to get response headers to send to client: {e}"))?;
        let query_parameters_to_remove = strings(
            field("query_parameters_to_remove"),
            "query_parameters_to_remove",
        )
        .map_err(|e| format!("failed to get request query parameters to remove: {e}"))?;
        let query_parameters_to_set = query_parameters(field("query_parameters_to_set"))
            .map_err(|e| format!("failed to get request query parameters to set: {e}"))?;
        HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            response_headers_to_add,
            query_parameters_to_set,
            query_parameters_to_remove,
            ..OkHttpResponse::default()
        })
    } else {
        let body = match field("body") {
            None => String::new(),
            Some(Value::String(s)) => s.to_string(),
            Some(other) => {
                return Err(format!(
                    "failed to get response body: type assertion error, expected body to be of \
                     type 'string' but got '{}'",
                    go_type(other)
                ))
            }
        };
        let code = http_status(field("http_status"))
            .map_err(|e| format!("failed to get response http status: {e}"))?;
        HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code }),
            headers,
            body,
        })
    };
    Ok(CheckResponse {
        status: Some(status(allowed)),
        dynamic_metadata,
        http_response: Some(http_response),
    })
}

/// What dry-run answers in place of a denial: OK with an empty ok_response, keeping the
/// decision's dynamic metadata.
pub fn dry_run(response: &mut CheckResponse) {
    if response.status.as_ref().map_or(OK, |s| s.code) != OK {
        response.status = Some(status(true));
        response.http_response = Some(HttpResponse::OkResponse(OkHttpResponse::default()));
    }
}

/// Adds `decision_id` to the dynamic metadata, as opa-envoy-plugin does for every decision.
pub fn add_decision_id(response: &mut CheckResponse, decision_id: &str) {
    response
        .dynamic_metadata
        .get_or_insert_with(Struct::default)
        .fields
        .insert("decision_id".into(), string_value(decision_id.to_string()));
}

fn status(allowed: bool) -> rpc::Status {
    rpc::Status {
        code: if allowed { OK } else { PERMISSION_DENIED },
        message: String::new(),
        details: Vec::new(),
    }
}

/// `http_status`: 403 when absent; otherwise an integer that is an HTTP status Envoy knows.
fn http_status(value: Option<&Value>) -> Result<i32, String> {
    let number = match value {
        None => return Ok(HttpStatusCode::Forbidden as i32),
        Some(Value::Number(n)) => n,
        Some(other) => {
            return Err(format!(
                "type assertion error, expected http_status to be of type 'number' but got '{}'",
                go_type(other)
            ))
        }
    };
    let Some(code) = number.as_i64() else {
        let why = if number.is_integer() {
            "value out of range"
        } else {
            "invalid syntax"
        };
        return Err(format!(
            "error converting JSON number to int: strconv.ParseInt: parsing \"{}\": {why}",
            number.format_decimal()
        ));
    };
    // Envoy's enum holds no code Go lacks a text for; its 0 ("Empty") is not a status.
    match i32::try_from(code).ok().filter(|c| *c != 0) {
        Some(c) if HttpStatusCode::try_from(c).is_ok() => Ok(c),
        _ => Err(format!("invalid HTTP status code {code}")),
    }
}

/// Headers as an object of string or string-array values, or an array of such objects;
/// emitted in key order (opa-envoy-plugin's order is Go's random map order).
/// Errors say "headers" whichever field it was, as opa-envoy-plugin's do.
fn header_options(value: Option<&Value>) -> Result<Vec<HeaderValueOption>, String> {
    let mut out = Vec::new();
    let objects: Vec<&regorus::value::Object> = match value {
        None => return Ok(out),
        Some(Value::Object(o)) => vec![o.as_ref()],
        Some(Value::Array(_) | Value::Set(_)) => elements(value)
            .map(|item| match item {
                Value::Object(o) => Ok(o.as_ref()),
                other => Err(format!(
                    "type assertion error, expected headers to be of type 'object' but got '{}'",
                    go_type(other)
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(format!(
                "type assertion error, expected headers to be of type 'object' but got '{}'",
                go_type(other)
            ))
        }
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
                                return Err(format!(
                                    "invalid value type {} for header '{key}'",
                                    go_type(other)
                                ))
                            }
                        }
                    }
                }
                _ => return Err(format!("type assertion error for header '{key}'")),
            }
        }
    }
    Ok(out)
}

/// A list of strings (`request_headers_to_remove`, `query_parameters_to_remove`).
fn strings(value: Option<&Value>, name: &str) -> Result<Vec<String>, String> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(_) | Value::Set(_)) => elements(value)
            .map(|v| match v {
                Value::String(s) => Ok(s.to_string()),
                other => Err(format!(
                    "type assertion error, expected {name} value to be of type 'string' but got \
                     '{}'",
                    go_type(other)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "type assertion error, expected {name} to be of type '[]string' but got '{}'",
            go_type(other)
        )),
    }
}

fn query_parameters(value: Option<&Value>) -> Result<Vec<QueryParameter>, String> {
    let params = match value {
        None => return Ok(Vec::new()),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(format!(
                "type assertion error, expected query_parameters_to_set to be a map but got '{}'",
                go_type(other)
            ))
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
                            return Err(format!(
                                "type assertion error: expected array element to be string but \
                                 got '{}'",
                                go_type(other)
                            ))
                        }
                    }
                }
            }
            other => {
                return Err(format!(
                    "type assertion error, expected value to be string or array but got '{}'",
                    go_type(other)
                ))
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
fn key_string(key: &Value) -> String {
    match key {
        Value::String(s) => s.to_string(),
        other => crate::gojson::key_text(other),
    }
}

/// The Go type opa-envoy-plugin names in its errors, for a value decoded from JSON.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null | Value::Undefined => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "json.Number",
        Value::String(_) => "string",
        Value::Array(_) | Value::Set(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn to_struct(fields: &regorus::value::Object) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(k, v)| (key_string(k), to_pb_value(v)))
            .collect::<HashMap<_, _>>(),
    }
}

fn string_value(s: String) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(s)),
    }
}

fn to_pb_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null | Value::Undefined => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.to_string()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_pb_value).collect(),
        }),
        Value::Set(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_pb_value).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(to_struct(fields)),
    };
    PbValue { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(json: &str) -> Value {
        serde_json::from_str(json).unwrap_or(Value::Undefined)
    }

    #[test]
    fn sets_are_read_as_arrays_as_opa_hands_them_over() {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert(Value::from("allowed"), Value::Bool(true));
        let remove: std::collections::BTreeSet<Value> = [Value::from("x-a"), Value::from("x-b")]
            .into_iter()
            .collect();
        fields.insert(
            Value::from("request_headers_to_remove"),
            Value::from(remove),
        );
        let response = for_decision(&Value::from(fields)).unwrap_or_default();
        let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
            panic!("allowed");
        };
        assert_eq!(
            ok.headers_to_remove,
            vec!["x-a".to_string(), "x-b".to_string()]
        );
    }

    #[test]
    fn ill_typed_fields_are_errors_in_opa_envoy_plugins_words() {
        let err = |json: &str| for_decision(&decision(json)).err().unwrap_or_default();
        assert_eq!(
            err(r#"{"allowed": true, "response_headers_to_add": 5}"#),
            "failed to get response headers to send to client: type assertion error, expected \
             headers to be of type 'object' but got 'json.Number'"
        );
        assert_eq!(
            err(r#"{"allowed": false, "http_status": 9999999999999999999}"#),
            "failed to get response http status: error converting JSON number to int: \
             strconv.ParseInt: parsing \"9999999999999999999\": value out of range"
        );
        assert_eq!(
            err(r#"{"allowed": false, "http_status": 418}"#),
            "failed to get response http status: invalid HTTP status code 418"
        );
        assert_eq!(
            err(r#"{"allowed": "yes"}"#),
            "failed to get response status: type assertion error, expected allowed to be of \
             type 'boolean' but got 'string'"
        );
    }
}
