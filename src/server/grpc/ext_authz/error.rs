//! Why an ext_authz Check cannot be answered from its request or its decision, worded as
//! opa-envoy-plugin words it: Envoy shows these texts (in a 400 deny body for a request, in a
//! gRPC UNKNOWN error for a decision), so they must stay OPA's.

use std::fmt;

/// A request whose input cannot be built (`request_parse_error`), or a decision of a shape
/// no CheckResponse can be made from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtAuthzError {
    /// A `%` escape in the path, query or form body that is not two hex digits.
    #[error("invalid URL escape {escape:?}")]
    UrlEscape { escape: String },
    #[error("invalid semicolon separator in query")]
    QuerySemicolon,
    /// A Content-Length that is not an integer.
    #[error("strconv.ParseInt: parsing {text:?}: {why}")]
    ContentLength { text: String, why: &'static str },
    #[error("mime: invalid media type: {0}")]
    MediaType(String),
    #[error("multipart: {0}")]
    Multipart(String),
    /// A path refused by `normalize-path` (verdict's; opa-envoy-plugin has no such option).
    #[error(transparent)]
    Path(#[from] super::normalize::PathError),
    /// A JSON body (or JSON form part) that Go's decoder refuses, in its words.
    #[error("{0}")]
    Json(String),

    /// One field of the decision could not be read; `error` says why.
    #[error("failed to get {field}: {error}")]
    Decision {
        field: DecisionField,
        error: Box<ExtAuthzError>,
    },
    /// The decision is neither a boolean nor an object.
    #[error("illegal value for policy evaluation result: {got}")]
    IllegalResult { got: &'static str },
    #[error("unable to determine evaluation result due to missing \"allowed\" key")]
    MissingAllowed,
    /// A field (or, for `headers`, any header field) of the wrong type.
    #[error("type assertion error, expected {name} to be of type '{want}' but got '{got}'")]
    WrongType {
        name: &'static str,
        want: &'static str,
        got: &'static str,
    },
    /// A member of a list of strings that is not a string.
    #[error("type assertion error, expected {name} value to be of type 'string' but got '{got}'")]
    NotAString {
        name: &'static str,
        got: &'static str,
    },
    #[error("invalid value type {got} for header '{key}'")]
    HeaderValue { key: String, got: &'static str },
    #[error("type assertion error for header '{key}'")]
    Header { key: String },
    #[error("type assertion error, expected query_parameters_to_set to be a map but got '{got}'")]
    QueryParametersNotAMap { got: &'static str },
    #[error("type assertion error: expected array element to be string but got '{got}'")]
    QueryParameterElement { got: &'static str },
    #[error("type assertion error, expected value to be string or array but got '{got}'")]
    QueryParameterValue { got: &'static str },
    /// An `http_status` number that is not an integer Go's ParseInt reads.
    #[error("error converting JSON number to int: strconv.ParseInt: parsing \"{number}\": {why}")]
    HttpStatusNotInt { number: String, why: &'static str },
    #[error("invalid HTTP status code {0}")]
    HttpStatus(i64),
}

impl ExtAuthzError {
    /// This error as the reason `field` of the decision could not be read.
    pub fn reading(self, field: DecisionField) -> ExtAuthzError {
        ExtAuthzError::Decision {
            field,
            error: Box::new(self),
        }
    }
}

/// The parts of a decision a CheckResponse is made from, named as opa-envoy-plugin's errors
/// name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionField {
    Status,
    Headers,
    DynamicMetadata,
    RequestHeadersToRemove,
    ResponseHeadersToAdd,
    QueryParametersToRemove,
    QueryParametersToSet,
    Body,
    HttpStatus,
}

impl fmt::Display for DecisionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecisionField::Status => "response status",
            DecisionField::Headers => "response headers",
            DecisionField::DynamicMetadata => "dynamic metadata",
            DecisionField::RequestHeadersToRemove => "request headers to remove",
            DecisionField::ResponseHeadersToAdd => "response headers to send to client",
            DecisionField::QueryParametersToRemove => "request query parameters to remove",
            DecisionField::QueryParametersToSet => "request query parameters to set",
            DecisionField::Body => "response body",
            DecisionField::HttpStatus => "response http status",
        })
    }
}
