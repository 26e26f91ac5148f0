//! OPA's policy API: `GET /v1/policies`, `GET`, `PUT` and `DELETE /v1/policies/{id}`.
//!
//! Reads list the modules of the active snapshot, bundles' and the API's alike, each with its
//! AST in OPA's JSON shape (`policy::ast`: what regorus parsed, not OPA's compiled AST). Writes
//! go to the single writer, which checks, compiles, stores and publishes them before they are
//! answered (`runtime/reloader/policies.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;

use super::error::ApiError;
use super::request::{self, Params};
use super::response;
use crate::gojson;
use crate::policy::path::percent_decode;
use crate::policy::{ast, PolicyModule};
use crate::runtime::policies::{PolicyOp, PolicyTimings};
use crate::runtime::pushed::{WriteError, WriteOp, Written};
use crate::runtime::AppState;

#[derive(Serialize)]
struct Policy {
    id: String,
    raw: String,
    ast: serde_json::Value,
}

impl Policy {
    /// Parses the module again for its AST: blocking, run off the async threads.
    fn of(m: &PolicyModule) -> Policy {
        Policy {
            id: m.id.clone(),
            raw: m.raw.clone(),
            ast: ast::module_json(&m.file, &m.raw),
        }
    }
}

#[derive(Serialize)]
struct Envelope<T> {
    result: T,
}

/// Parsing runs where a large module cannot hold an async worker.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::internal("the policies could not be read"))
}

/// `GET /v1/policies`.
pub async fn list_policies(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let pretty = Params::parse(uri.query()).flag("pretty");
    let snapshot = state.snapshot();
    let result = blocking(move || {
        let modules = snapshot.policy.modules();
        modules.iter().map(Policy::of).collect::<Vec<_>>()
    })
    .await?;
    Ok(response::json(
        StatusCode::OK,
        gojson::to_body(&Envelope { result }, pretty),
    ))
}

/// The policy id: the rest of the path, unescaped (ids contain slashes: `<bundle>/<path>`).
fn policy_id(uri: &Uri) -> String {
    let raw_id = uri.path().strip_prefix("/v1/policies/").unwrap_or("");
    percent_decode(raw_id).unwrap_or_else(|| raw_id.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::from_write(WriteError::PolicyNotFound { id: id.into() })
}

/// `GET /v1/policies/{id}`.
pub async fn get_policy(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let pretty = Params::parse(uri.query()).flag("pretty");
    let id = policy_id(&uri);
    let snapshot = state.snapshot();
    let module = snapshot
        .policy
        .modules()
        .iter()
        .find(|m| m.id == id)
        .cloned()
        .ok_or_else(|| not_found(&id))?;
    let result = blocking(move || Policy::of(&module)).await?;
    Ok(response::json(
        StatusCode::OK,
        gojson::to_body(&Envelope { result }, pretty),
    ))
}

/// `PUT /v1/policies/{id}`: the body is the module's text. 200 `{}` once it is live.
pub async fn put_policy(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let bytes = request::read_body(&headers, body, &state.config).await?;
    let read_ns = started.elapsed().as_nanos();
    let raw = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request("policy is not valid UTF-8"))?;
    let op = PolicyOp::Put {
        id: policy_id(&uri),
        raw,
    };
    let written = state
        .write(WriteOp::Policy(op))
        .await
        .map_err(ApiError::from_write)?;
    Ok(answer(&uri, written, Some(read_ns)))
}

/// `DELETE /v1/policies/{id}`: 200 `{}` once the module is gone; a bundle's is refused.
pub async fn delete_policy(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let op = PolicyOp::Delete {
        id: policy_id(&uri),
    };
    let written = state
        .write(WriteOp::Policy(op))
        .await
        .map_err(ApiError::from_write)?;
    Ok(answer(&uri, written, None))
}

/// OPA's `{}`, with its timers under `?metrics`.
fn answer(uri: &Uri, written: Written, read_ns: Option<u128>) -> Response {
    let params = Params::parse(uri.query());
    let mut metrics = BTreeMap::new();
    let ns = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
    if let Some(read) = read_ns {
        metrics.insert("timer_server_read_bytes_ns", ns(read));
    }
    if let Written::Policy(Some(PolicyTimings {
        parse_ns,
        compile_ns,
    })) = written
    {
        if read_ns.is_some() {
            metrics.insert("timer_rego_module_parse_ns", ns(parse_ns));
        }
        metrics.insert("timer_rego_module_compile_ns", ns(compile_ns));
    }
    let body = if params.flag("metrics") {
        BTreeMap::from([("metrics", metrics)])
    } else {
        BTreeMap::new()
    };
    response::json(
        StatusCode::OK,
        gojson::to_body(&body, params.flag("pretty")),
    )
}
