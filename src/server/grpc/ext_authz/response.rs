//! The CheckResponse for a decision, with opa-envoy-plugin's rules: a boolean, or an object
//! with `allowed` and optional `headers`, `request_headers_to_remove`,
//! `response_headers_to_add`, `query_parameters_to_set`/`_to_remove`, `body`, `http_status` and
//! `dynamic_metadata`. A decision of another shape is an error worded as opa-envoy-plugin's.

use envoy_types::pb::envoy::r#type::v3::{HttpStatus, StatusCode as HttpStatusCode};
use envoy_types::pb::envoy::service::auth::v3::{
    check_response::HttpResponse, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::Struct;
use envoy_types::pb::google::rpc;
use regorus::Value;

use super::fields::{go_type, header_options, query_parameters, strings};
use super::metadata::{string_value, to_struct};
use super::{DecisionField, ExtAuthzError};

/// gRPC's codes, as CheckResponse.status carries them.
const OK: i32 = 0;
const PERMISSION_DENIED: i32 = 7;

/// The response to a request whose input could not be built: denied with 400, the error in
/// the status and the body (opa-envoy-plugin's `request_parse_error`).
pub fn parse_error(error: &ExtAuthzError) -> CheckResponse {
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

/// The response for a defined decision, or the gRPC error (its message) to answer instead.
pub fn for_decision(decision: &Value) -> Result<CheckResponse, ExtAuthzError> {
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
            let illegal = ExtAuthzError::IllegalResult {
                got: go_type(other),
            };
            return Err(illegal.reading(DecisionField::Status));
        }
    };
    let allowed = match fields.get(&Value::from("allowed")) {
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(wrong_type("allowed", "boolean", other).reading(DecisionField::Status))
        }
        None => return Err(ExtAuthzError::MissingAllowed.reading(DecisionField::Status)),
    };
    let field = |name: &str| fields.get(&Value::from(name));
    let headers =
        header_options(field("headers")).map_err(|e| e.reading(DecisionField::Headers))?;
    let dynamic_metadata = match field("dynamic_metadata") {
        None => None,
        Some(Value::Object(m)) => Some(to_struct(m)),
        Some(other) => {
            let error = wrong_type("dynamic_metadata", "object", other);
            return Err(error.reading(DecisionField::DynamicMetadata));
        }
    };
    let http_response = if allowed {
        let headers_to_remove = strings(
            field("request_headers_to_remove"),
            "request_headers_to_remove",
        )
        .map_err(|e| e.reading(DecisionField::RequestHeadersToRemove))?;
        let response_headers_to_add = header_options(field("response_headers_to_add"))
            .map_err(|e| e.reading(DecisionField::ResponseHeadersToAdd))?;
        let query_parameters_to_remove = strings(
            field("query_parameters_to_remove"),
            "query_parameters_to_remove",
        )
        .map_err(|e| e.reading(DecisionField::QueryParametersToRemove))?;
        let query_parameters_to_set = query_parameters(field("query_parameters_to_set"))
            .map_err(|e| e.reading(DecisionField::QueryParametersToSet))?;
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
                return Err(wrong_type("body", "string", other).reading(DecisionField::Body))
            }
        };
        let code =
            http_status(field("http_status")).map_err(|e| e.reading(DecisionField::HttpStatus))?;
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
fn http_status(value: Option<&Value>) -> Result<i32, ExtAuthzError> {
    let number = match value {
        None => return Ok(HttpStatusCode::Forbidden as i32),
        Some(Value::Number(n)) => n,
        Some(other) => return Err(wrong_type("http_status", "number", other)),
    };
    let Some(code) = number.as_i64() else {
        let why = if number.is_integer() {
            "value out of range"
        } else {
            "invalid syntax"
        };
        return Err(ExtAuthzError::HttpStatusNotInt {
            number: number.format_decimal(),
            why,
        });
    };
    // Envoy's enum holds no code Go lacks a text for; its 0 ("Empty") is not a status.
    match i32::try_from(code).ok().filter(|c| *c != 0) {
        Some(c) if HttpStatusCode::try_from(c).is_ok() => Ok(c),
        _ => Err(ExtAuthzError::HttpStatus(code)),
    }
}

fn wrong_type(name: &'static str, want: &'static str, value: &Value) -> ExtAuthzError {
    ExtAuthzError::WrongType {
        name,
        want,
        got: go_type(value),
    }
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
        let err = |json: &str| {
            for_decision(&decision(json))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
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
