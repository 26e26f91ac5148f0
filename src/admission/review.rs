//! AdmissionReview in, AdmissionReview out: decoding what the API server sends (refusing what
//! it would never send, with a clear message) and the response in its JSON shape.

use std::collections::BTreeMap;

use regorus::Value;
use serde::Serialize;
use serde_json::{json, Value as Json};

/// A decoded AdmissionReview: its `request` (Gatekeeper's `input.review`) and what the answer
/// must echo. The request is the engine's value, decoded once: matching reads it, the
/// templates take it as their input, and the decision log records it, all without a copy.
#[derive(Debug, Clone)]
pub struct Review {
    /// `admission.k8s.io/v1` or `v1beta1`: the answer uses the version it was asked in.
    pub api_version: String,
    pub request: Value,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    Malformed(String),
    #[error("apiVersion {0:?} is not supported (admission.k8s.io/v1 or admission.k8s.io/v1beta1)")]
    ApiVersion(String),
    #[error("kind {0:?} is not AdmissionReview")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    MissingRequest,
    #[error("the request is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

impl ReviewError {
    /// The status code of the rejection: 413 for size, 400 for the rest.
    pub fn code(&self) -> u16 {
        match self {
            ReviewError::TooLarge { .. } => 413,
            _ => 400,
        }
    }
}

impl Review {
    /// Decodes a review from the bytes the API server sent.
    pub fn from_slice(body: &[u8]) -> Result<Review, ReviewError> {
        Review::from_value(decode(body)?)
    }

    /// A review from a JSON document (gator suites, tests).
    pub fn from_json(value: Json) -> Result<Review, ReviewError> {
        Review::from_value(Value::from(value))
    }

    pub fn from_value(value: Value) -> Result<Review, ReviewError> {
        if value.as_object().is_err() {
            return Err(ReviewError::Malformed("not a JSON object".into()));
        }
        let api_version = text(&value["apiVersion"]).to_string();
        if !matches!(
            api_version.as_str(),
            "admission.k8s.io/v1" | "admission.k8s.io/v1beta1"
        ) {
            return Err(ReviewError::ApiVersion(api_version));
        }
        let kind = text(&value["kind"]);
        if kind != "AdmissionReview" {
            return Err(ReviewError::Kind(kind.to_string()));
        }
        let mut request = value["request"].clone();
        let deleted = text(&request["operation"]) == "DELETE"
            && matches!(request["object"], Value::Null | Value::Undefined);
        let old = request["oldObject"].clone();
        let Ok(fields) = request.as_object_mut() else {
            return Err(ReviewError::MissingRequest);
        };
        // Gatekeeper reviews the old object of a DELETE as if it were the object, so that
        // templates written for input.review.object see what is being deleted.
        if deleted && old != Value::Undefined {
            fields.insert(Value::from("object"), old);
        }
        Ok(Review {
            api_version,
            request,
        })
    }

    pub fn uid(&self) -> &str {
        text(&self.request["uid"])
    }
}

/// Decodes one JSON document into the engine's value, with serde_json's error wording.
pub fn decode(body: &[u8]) -> Result<Value, ReviewError> {
    serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))
}

/// A string field's text, "" when it is absent or not a string.
pub fn text(value: &Value) -> &str {
    value.as_string().map(|s| s.as_ref()).unwrap_or("")
}

/// The `response` of an AdmissionReview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Kept in the API server's audit log under the webhook's name: `decision_id` ties an
    /// audited request to its decision log event.
    #[serde(
        rename = "auditAnnotations",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub audit_annotations: BTreeMap<String, String>,
}

/// `metav1.Status` as the API server reads it from a webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub code: u16,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub message: String,
}

impl AdmissionResponse {
    pub fn allowed(uid: &str, warnings: Vec<String>) -> AdmissionResponse {
        // Gatekeeper answers 299 when it allows with warnings.
        let code = if warnings.is_empty() { 200 } else { 299 };
        AdmissionResponse {
            uid: uid.to_string(),
            allowed: true,
            status: Status {
                code,
                reason: String::new(),
                message: String::new(),
            },
            warnings,
            audit_annotations: BTreeMap::new(),
        }
    }

    pub fn rejected(uid: &str, code: u16, reason: &str, message: String) -> AdmissionResponse {
        AdmissionResponse {
            uid: uid.to_string(),
            allowed: false,
            status: Status {
                code,
                reason: reason.to_string(),
                message,
            },
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
        }
    }

    /// A request that could not be read: rejected with the reason, as controller-runtime's
    /// webhook answers it (HTTP 200, the error in the response's status).
    pub fn bad_request(error: &ReviewError) -> AdmissionResponse {
        let reason = if error.code() == 413 {
            "RequestEntityTooLarge"
        } else {
            "BadRequest"
        };
        AdmissionResponse::rejected("", error.code(), reason, error.to_string())
    }

    /// The whole AdmissionReview carrying this response.
    pub fn to_review(&self, api_version: &str) -> Json {
        json!({
            "apiVersion": api_version,
            "kind": "AdmissionReview",
            "response": self,
        })
    }
}
