//! OPA's ad-hoc Query API: `GET /v1/query?q=...` and `POST /v1/query` with
//! `{"query": ..., "input": ...}`. The result is one object of variable bindings per solution.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use regorus::Value;
use serde::Deserialize;

use super::error::ApiError;
use super::request::{self, Params};
use super::response;
use crate::policy::error::{is_static, EvalError};
use crate::policy::json::{self, ObjectWriter};
use crate::policy::PolicyModule;
use crate::runtime::AppState;

#[derive(Deserialize)]
struct QueryRequest {
    query: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

/// `GET /v1/query?q=`: this form has no input (OPA ignores `?input` here).
pub async fn get_query(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let query = params
        .last("q")
        .ok_or_else(|| ApiError::bad_request("missing parameter 'q'"))?
        .to_string();
    respond(&state, &headers, &params, &query, None)
}

/// `POST /v1/query`.
pub async fn post_query(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let params = Params::parse(uri.query());
    let bytes = request::read_body(&headers, body, &state.config).await?;
    let parsed: QueryRequest = serde_json::from_slice(&bytes).map_err(|e| {
        let e = crate::server::gojson::go_json_error(e, &bytes);
        ApiError::bad_request(format!("error(s) occurred while decoding request: {e}"))
    })?;
    let query = parsed
        .query
        .ok_or_else(|| ApiError::bad_request("missing parameter 'q'"))?;
    let input = parsed.input.filter(|v| *v != Value::Null);
    respond(&state, &headers, &params, &query, input)
}

fn respond(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    query: &str,
    input: Option<Value>,
) -> Result<Response, ApiError> {
    let snapshot = state.snapshot();
    let results = snapshot.policy.query(query, input).map_err(|e| match e {
        // Errors no input could cause are the query's own fault: OPA answers 400.
        EvalError::Policy(errors) if errors.iter().all(is_static) => ApiError {
            errors,
            ..ApiError::bad_request("error(s) occurred while compiling query")
        },
        other => ApiError::from(other),
    });
    let results = results.map_err(|e| module_ids_in_locations(e, snapshot.policy.modules()))?;
    let mut body = Vec::new();
    let mut envelope = ObjectWriter::new(&mut body, params.flag("pretty").then_some(0));
    if !results.result.is_empty() {
        envelope.with("result", |out, indent| {
            json::write_array(out, indent, results.result.len(), |out, indent, i| {
                let bindings = &results.result[i].bindings;
                match bindings.as_object() {
                    Ok(_) => json::write_value(out, &visible(bindings), indent),
                    Err(_) => out.extend_from_slice(b"{}"),
                }
            })
        });
    }
    envelope.finish();
    body.push(b'\n');
    Ok(response::json_negotiated(
        StatusCode::OK,
        body,
        headers,
        &state.config.server.encoding.gzip,
    ))
}

/// The Query API names files in error locations by policy id (`<bundle>/<path>`), where the
/// Data API uses the path inside the bundle: OPA 1.9 does both, and so does verdict.
fn module_ids_in_locations(mut e: ApiError, modules: &[PolicyModule]) -> ApiError {
    for location in e.errors.iter_mut().filter_map(|err| err.location.as_mut()) {
        if let Some(m) = modules.iter().find(|m| m.file == location.file) {
            location.file = m.id.clone();
        }
    }
    e
}

/// Bindings the user named: wildcards and engine-generated variables are not shown.
fn visible(bindings: &Value) -> Value {
    let mut shown = std::collections::BTreeMap::new();
    if let Ok(object) = bindings.as_object() {
        for (k, v) in object.iter() {
            if k.as_string().is_ok_and(|name| !name.starts_with('_')) {
                shown.insert(k.clone(), v.clone());
            }
        }
    }
    Value::from(shown)
}
