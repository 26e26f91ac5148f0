//! OPA's ad-hoc Query API: `GET /v1/query?q=...` and `POST /v1/query` with
//! `{"query": ..., "input": ...}`. The result is one object of variable bindings per solution.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use regorus::Value;
use serde::Deserialize;

use super::data::request_info;
use super::error::ApiError;
use super::metrics::RequestMeta;
use super::request::{self, Params};
use super::response;
use crate::gojson::{self, ObjectWriter};
use crate::policy::error::{is_static, EvalError};
use crate::runtime::decision::visible_bindings;
use crate::runtime::AppState;
use crate::runtime::DecideError;

#[derive(Deserialize)]
struct QueryRequest {
    query: Option<String>,
    #[serde(default)]
    input: Option<Value>,
}

/// `GET /v1/query?q=`: this form has no input (OPA ignores `?input` here).
pub async fn get_query(
    State(state): State<Arc<AppState>>,
    meta: Option<Extension<RequestMeta>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let params = Params::parse(uri.query());
    let query = params
        .last("q")
        .ok_or_else(|| ApiError::bad_request("missing parameter 'q'"))?
        .to_string();
    let asked = Asked {
        query: &query,
        input: None,
        meta,
        started,
    };
    respond(&state, &headers, &params, asked).await
}

/// `POST /v1/query`.
pub async fn post_query(
    State(state): State<Arc<AppState>>,
    meta: Option<Extension<RequestMeta>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let params = Params::parse(uri.query());
    let bytes = request::read_body(&headers, body, &state.config).await?;
    let parsed = super::offload::cpu(bytes.len(), move || {
        serde_json::from_slice::<QueryRequest>(&bytes)
            .map_err(|e| request::InputError::json(e, &bytes))
    })
    .await?
    .map_err(|e| ApiError::input("error(s) occurred while decoding request", e))?;
    let query = parsed
        .query
        .ok_or_else(|| ApiError::bad_request("missing parameter 'q'"))?;
    let asked = Asked {
        query: &query,
        input: parsed.input.filter(|v| *v != Value::Null),
        meta,
        started,
    };
    respond(&state, &headers, &params, asked).await
}

/// A query as the request asked it.
struct Asked<'a> {
    query: &'a str,
    input: Option<Value>,
    meta: Option<Extension<RequestMeta>>,
    started: Instant,
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    asked: Asked<'_>,
) -> Result<Response, ApiError> {
    let request = request_info(state, asked.meta, headers);
    let queried = state
        .query(asked.query, asked.input, &request, asked.started)
        .await;
    let results = queried.outcome.map_err(|e| match e {
        // Errors no input could cause are the query's own fault: OPA answers 400.
        DecideError::Eval(EvalError::Policy(errors)) if errors.iter().all(is_static) => ApiError {
            errors,
            ..ApiError::bad_request("error(s) occurred while compiling query")
        },
        other => ApiError::from(other),
    });
    let results = results?;
    let mut body = Vec::new();
    let mut envelope = ObjectWriter::new(&mut body, params.flag("pretty").then_some(0));
    if !results.result.is_empty() {
        envelope.with("result", |out, indent| {
            gojson::write_array(out, indent, results.result.len(), |out, indent, i| {
                let bindings = &results.result[i].bindings;
                match bindings.as_object() {
                    Ok(_) => gojson::write_value(out, &visible_bindings(bindings), indent),
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
