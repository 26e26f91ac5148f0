//! The HTTP edge's one error type, answering in OPA's error format:
//! `{"code": ..., "message": ..., "errors": [...]}`, always indented as OPA indents it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::request::InputError;
use crate::gojson;
use crate::policy::{EvalError, RegoError};
use crate::runtime::pushed::WriteError;
use crate::runtime::DecideError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub errors: Vec<RegoError>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[RegoError]>::is_empty")]
    errors: &'a [RegoError],
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// 400 `invalid_parameter`: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", message)
    }

    /// 404 `undefined_document` (the v0 API and the default decision).
    pub fn undefined(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "undefined_document", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "resource_not_found", message)
    }

    /// 404 `resource_conflict`: OPA's answer to a write through a document that is not an
    /// object (its writer maps storage write conflicts to 404).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "resource_conflict", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }

    /// 408: the client stopped sending its body. OPA has no such limit (Go's server waits
    /// forever); the code is OPA's for a request that cannot be used.
    pub fn body_timeout(after: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_parameter",
            format!("request body not received within {} ms", after.as_millis()),
        )
    }

    /// 503: the server cannot take this request now; the client may try again. OPA has no
    /// such limit; the code is OPA's for a failure that is not the client's.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "internal_error", message)
    }

    /// An input document that was not read: the client's fault (400, `context: reason`, or the
    /// reason alone without a context), or
    /// the process at its memory ceiling (503: the document may be fine, try again).
    pub fn input(context: &str, e: InputError) -> Self {
        match e {
            InputError::Malformed(reason) if context.is_empty() => Self::bad_request(reason),
            InputError::Malformed(reason) => Self::bad_request(format!("{context}: {reason}")),
            InputError::MemoryLimit => Self::busy(format!(
                "input document not decoded: the process memory limit of {} bytes was reached; retry later",
                regorus::global_memory_limit().unwrap_or(0)
            )),
        }
    }

    /// 501 `not_implemented`: an OPA API verdict does not serve (the Compile API). OPA has no
    /// such code; clients read `code` as a string and show `message`.
    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "not_implemented", message)
    }

    pub fn body_too_large() -> Self {
        Self::bad_request("request body too large")
    }

    /// A refused policy API write, in OPA's codes; verdict's own failures say nothing of their
    /// cause (the reloader logged it).
    pub fn from_write(e: WriteError) -> Self {
        match e {
            WriteError::Module(errors) => ApiError {
                errors,
                ..Self::bad_request("error(s) occurred while compiling module(s)")
            },
            WriteError::PolicyNotFound { .. } | WriteError::NotFound { .. } => {
                Self::not_found(e.to_string())
            }
            WriteError::Store(_)
            | WriteError::Unavailable
            | WriteError::Rules(crate::policy::CompileError::EngineFault) => {
                Self::internal("the policy write could not be completed; nothing was changed")
            }
            _ => Self::bad_request(e.to_string()),
        }
    }
}

impl From<DecideError> for ApiError {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::Eval(e) => ApiError::from(e),
            refused @ DecideError::Refused(_) => ApiError::internal(refused.to_string()),
        }
    }
}

impl From<EvalError> for ApiError {
    fn from(e: EvalError) -> Self {
        match &e {
            // OPA answers a bad data path with a 500 wrapping the 400 it meant (captured from
            // OPA 1.9); clients match on it, so verdict answers the same.
            EvalError::InvalidPath(_) => ApiError::internal(format!("invalid_parameter: {e}")),
            EvalError::Policy(errors) => ApiError {
                errors: errors.clone(),
                ..ApiError::internal(e.to_string())
            },
            EvalError::Parse(errors) => ApiError {
                errors: errors.clone(),
                ..ApiError::bad_request(e.to_string())
            },
            EvalError::Timeout(_) | EvalError::MemoryLimit(_) => ApiError {
                errors: vec![RegoError {
                    code: "eval_cancel_error",
                    message: e.to_string(),
                    location: None,
                    details: None,
                }],
                ..ApiError::internal("error(s) occurred while evaluating query")
            },
            EvalError::FunctionPath {
                reference,
                signature,
            } => ApiError::internal(format!(
                "1 error occurred: 1:1: rego_type_error: undefined ref: {reference}\n\t{reference}\n\t{}\n\thave: {signature}",
                "^".repeat(reference.chars().count())
            )),
            EvalError::EngineFault => ApiError::internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A 501 is an answer about verdict, not a failure to report.
        if self.status.is_server_error() && self.status != StatusCode::NOT_IMPLEMENTED {
            tracing::warn!(code = self.code, message = %self.message, errors = ?self.errors, "request failed");
        }
        let body = gojson::to_body(
            &Body {
                code: self.code,
                message: &self.message,
                errors: &self.errors,
            },
            true,
        );
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
