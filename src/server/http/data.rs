//! OPA's Data API: `GET`/`POST /v1/data/{path}`, `POST /v0/data/{path}` and the default
//! decision `POST /`. Thin adapters: read the request, ask the decision core, write OPA's
//! response shape.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use regorus::Value;
use serde::Serialize;

use super::error::ApiError;
use super::metrics::RequestMeta;
use super::offload;
use super::request::{self, Params};
use super::response;
use crate::decision_log::RequestInfo;
use crate::gojson::{self, ObjectWriter};
use crate::policy::DataPath;
use crate::provenance;
use crate::runtime::decision::{opa_metrics, undefined_message};
use crate::runtime::{AppState, Ask, Snapshot};

/// The request as its decision log event describes it.
pub(super) fn request_info(
    state: &AppState,
    meta: Option<Extension<RequestMeta>>,
    headers: &HeaderMap,
) -> RequestInfo {
    let meta = meta.map(|Extension(m)| m).unwrap_or_default();
    let http_headers = state
        .decision_log()
        .map_or_else(Vec::new, |log| log.http_headers(headers));
    RequestInfo {
        requested_by: meta.requested_by,
        req_id: meta.req_id,
        http_headers,
    }
}

/// The path after a Data API prefix, still percent-escaped (OPA unescapes segment by segment).
fn data_path(uri: &Uri, prefix: &str) -> Result<DataPath, ApiError> {
    let rest = uri.path().strip_prefix(prefix).unwrap_or("");
    DataPath::from_url(rest).map_err(ApiError::from)
}

#[derive(Serialize)]
pub(super) struct Provenance<'a> {
    version: &'static str,
    build_commit: &'static str,
    build_timestamp: &'static str,
    build_hostname: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    bundles: BTreeMap<&'a str, Revision<'a>>,
}

#[derive(Serialize)]
struct Revision<'a> {
    revision: &'a str,
}

pub(super) fn provenance(snapshot: &Snapshot) -> Provenance<'_> {
    Provenance {
        version: provenance::VERSION,
        build_commit: provenance::BUILD_COMMIT,
        build_timestamp: provenance::BUILD_TIMESTAMP,
        build_hostname: provenance::BUILD_HOSTNAME,
        bundles: snapshot
            .bundles
            .iter()
            .map(|b| {
                (
                    b.name.as_str(),
                    Revision {
                        revision: &b.revision,
                    },
                )
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct Warning {
    code: &'static str,
    message: &'static str,
}

const MISSING_INPUT: Warning = Warning {
    code: "api_usage_warning",
    message: "'input' key missing from the request",
};

/// A parsed v1 request, ready for the decision core.
struct V1Request {
    request: RequestInfo,
    params: Params,
    path: DataPath,
    input: Option<Value>,
    warn_missing_input: bool,
    parse_ns: u128,
    started: Instant,
}

/// Evaluates and writes the v1 envelope, fields in OPA's order.
async fn respond_v1(
    state: &AppState,
    headers: &HeaderMap,
    req: V1Request,
) -> Result<Response, ApiError> {
    let V1Request {
        request,
        params,
        path,
        input,
        warn_missing_input,
        parse_ns,
        started,
    } = req;
    let decided = state
        .decide(Ask {
            path: &path,
            input,
            strict_builtin_errors: params.flag("strict-builtin-errors"),
            request: &request,
            started,
            input_parse_ns: Some(parse_ns),
            undefined_is_error: false,
        })
        .await;
    let snapshot = decided.snapshot;
    let decision = decided.outcome?;
    let result = decision.result.as_ref();
    let pretty = params.flag("pretty");
    let mut body = Vec::with_capacity(256);
    let mut envelope = ObjectWriter::new(&mut body, pretty.then_some(0));
    // OPA's responses name their decision log event, when there is one.
    if state.decision_log().is_some() {
        envelope.serde("decision_id", &decided.decision_id);
    }
    if params.flag("provenance") {
        envelope.serde("provenance", &provenance(&snapshot));
    }
    if params.flag("metrics") || params.flag("instrument") {
        envelope.serde(
            "metrics",
            &opa_metrics(Some(&decision), Some(parse_ns), started),
        );
    }
    if let Some(result) = &result {
        envelope.value("result", result);
    }
    if warn_missing_input {
        envelope.serde("warning", &MISSING_INPUT);
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

/// `POST /v1/data/{path}` with `{"input": ...}`.
pub async fn post_v1(
    State(state): State<Arc<AppState>>,
    meta: Option<Extension<RequestMeta>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let request = request_info(&state, meta, &headers);
    let params = Params::parse(uri.query());
    let path = data_path(&uri, "/v1/data")?;
    let bytes = request::read_body(&headers, body, &state.config).await?;
    let parse_started = Instant::now();
    let yaml = request::is_yaml(&headers);
    let input = offload::cpu(bytes.len(), move || request::parse_envelope(&bytes, yaml))
        .await?
        .map_err(|e| ApiError::input("body contains malformed input document", e))?;
    let parse_ns = parse_started.elapsed().as_nanos();
    let warn_missing_input = input.is_none();
    let req = V1Request {
        request,
        params,
        path,
        input,
        warn_missing_input,
        parse_ns,
        started,
    };
    respond_v1(&state, &headers, req).await
}

/// `GET /v1/data/{path}`, with the input (if any) in `?input=`; GET never warns.
pub async fn get_v1(
    State(state): State<Arc<AppState>>,
    meta: Option<Extension<RequestMeta>>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let request = request_info(&state, meta, &headers);
    let params = Params::parse(uri.query());
    let path = data_path(&uri, "/v1/data")?;
    let parse_started = Instant::now();
    let input = match params.last("input") {
        Some(text) => Some(
            request::parse_json_param(text)
                .map_err(|e| ApiError::input("parameter contains malformed input document", e))?,
        ),
        None => None,
    };
    let parse_ns = parse_started.elapsed().as_nanos();
    let req = V1Request {
        request,
        params,
        path,
        input,
        warn_missing_input: false,
        parse_ns,
        started,
    };
    respond_v1(&state, &headers, req).await
}

/// Evaluates a bare-input decision (v0 and default decision): the value itself, or a 404.
async fn respond_bare(
    state: &AppState,
    headers: &HeaderMap,
    bare: Bare,
    path: &DataPath,
    input: Value,
) -> Result<Response, ApiError> {
    let Bare {
        params,
        request,
        started,
    } = bare;
    let decided = state
        .decide(Ask {
            path,
            input: Some(input),
            strict_builtin_errors: false,
            request: &request,
            started,
            input_parse_ns: None,
            undefined_is_error: true,
        })
        .await;
    let snapshot = decided.snapshot;
    let decision = decided.outcome?;
    let Some(result) = decision.result else {
        return Err(ApiError::undefined(undefined_message(&snapshot, path)));
    };
    let mut body = Vec::with_capacity(128);
    gojson::write_value(&mut body, &result, params.flag("pretty").then_some(0));
    body.push(b'\n');
    Ok(response::json_negotiated(
        StatusCode::OK,
        body,
        headers,
        &state.config.server.encoding.gzip,
    ))
}

/// What a bare-input request carries besides its path and input.
struct Bare {
    params: Params,
    request: RequestInfo,
    started: Instant,
}

async fn bare_input(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    let bytes = request::read_body(headers, body, &state.config).await?;
    let yaml = request::is_yaml(headers);
    let parsed = offload::cpu(bytes.len(), move || request::parse_input(&bytes, yaml)).await?;
    parsed.map_err(|e| {
        ApiError::input(
            "unexpected parse error for input: body contains malformed input document",
            e,
        )
    })
}

/// `POST /v0/data/{path}`: the body is the input and the response is the bare value.
pub async fn post_v0(
    State(state): State<Arc<AppState>>,
    meta: Option<Extension<RequestMeta>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bare = Bare {
        params: Params::parse(uri.query()),
        request: request_info(&state, meta, &headers),
        started: Instant::now(),
    };
    let path = data_path(&uri, "/v0/data")?;
    let input = bare_input(&state, &headers, body).await?;
    respond_bare(&state, &headers, bare, &path, input).await
}

/// `POST /`: the default decision (`default_decision`, OPA's `/system/main`).
pub async fn post_default(
    State(state): State<Arc<AppState>>,
    meta: Option<Extension<RequestMeta>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bare = Bare {
        params: Params::parse(uri.query()),
        request: request_info(&state, meta, &headers),
        started: Instant::now(),
    };
    let parsed;
    let path = match state.default_decision() {
        Some(path) => path,
        None => {
            parsed = DataPath::parse(&state.config.default_decision)?;
            &parsed
        }
    };
    let input = bare_input(&state, &headers, body).await?;
    respond_bare(&state, &headers, bare, path, input).await
}
