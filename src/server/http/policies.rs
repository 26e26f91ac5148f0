//! `GET /v1/policies` and `GET /v1/policies/{id}`: the Rego modules of the active bundles.
//!
//! OPA also returns each module's compiled AST; verdict's engine has a different AST, so `ast`
//! is `null` rather than a look-alike (listed in tests/golden/KNOWN-GAPS.md).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use super::error::ApiError;
use super::request::Params;
use super::response;
use crate::gojson;
use crate::policy::path::percent_decode;
use crate::policy::PolicyModule;
use crate::runtime::AppState;

#[derive(Serialize)]
struct Policy<'a> {
    id: &'a str,
    raw: &'a str,
    ast: Option<()>,
}

impl<'a> From<&'a PolicyModule> for Policy<'a> {
    fn from(m: &'a PolicyModule) -> Self {
        Policy {
            id: &m.id,
            raw: &m.raw,
            ast: None,
        }
    }
}

#[derive(Serialize)]
struct Envelope<T> {
    result: T,
}

/// `GET /v1/policies`.
pub async fn list_policies(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let pretty = Params::parse(uri.query()).flag("pretty");
    let snapshot = state.snapshot();
    let result: Vec<Policy<'_>> = snapshot.policy.modules().iter().map(Policy::from).collect();
    response::json(
        StatusCode::OK,
        gojson::to_body(&Envelope { result }, pretty),
    )
}

/// `GET /v1/policies/{id}`; ids contain slashes (`<bundle>/<path in bundle>`).
pub async fn get_policy(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let pretty = Params::parse(uri.query()).flag("pretty");
    let raw_id = uri.path().strip_prefix("/v1/policies/").unwrap_or("");
    let id = percent_decode(raw_id).unwrap_or_else(|| raw_id.to_string());
    let snapshot = state.snapshot();
    let module = snapshot
        .policy
        .modules()
        .iter()
        .find(|m| m.id == id)
        .ok_or_else(|| {
            let quoted = serde_json::Value::String(id.clone()).to_string();
            ApiError::not_found(format!("storage_not_found_error: policy id {quoted}"))
        })?;
    let result = Policy::from(module);
    Ok(response::json(
        StatusCode::OK,
        gojson::to_body(&Envelope { result }, pretty),
    ))
}
