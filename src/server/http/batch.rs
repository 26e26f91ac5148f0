//! EOPA's batch decisions: `POST /v1/batch/data/{path}` with `{"inputs": {id: input, ...},
//! "common_input": {...}}`, as @styra/opa's `evaluateBatch` calls it. Each item is a decision
//! of its own (its `decision_id`, its log event); the answer is 200 when every item succeeded,
//! 500 when every one failed, and 207 with a per-item `http_status_code` when they differ.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use regorus::Value;

use super::data::{provenance, request_info};
use super::error::ApiError;
use super::metrics::RequestMeta;
use super::offload;
use super::request::{self, Params};
use super::response;
use crate::gojson::ObjectWriter;
use crate::policy::DataPath;
use crate::runtime::decision::batch::{merge_common, BatchAsk, BatchDecided, BatchItem};
use crate::runtime::decision::opa_metrics;
use crate::runtime::AppState;

/// `POST /v1/batch/data/{path}` (and `/v1/batch/data`, the whole document).
pub async fn post_batch(
    State(state): State<Arc<AppState>>,
    meta: Option<Extension<RequestMeta>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let request = request_info(&state, meta, &headers);
    let params = Params::parse(uri.query());
    let rest = uri.path().strip_prefix("/v1/batch/data").unwrap_or("");
    let path = DataPath::from_url(rest).map_err(ApiError::from)?;
    let bytes = request::read_body(&headers, body, &state.config).await?;
    let parse_started = Instant::now();
    let yaml = request::is_yaml(&headers);
    let document = offload::cpu(bytes.len(), move || request::parse_input(&bytes, yaml))
        .await?
        .map_err(|e| ApiError::input("body contains malformed input document", e))?;
    let items = batch_items(&document)?;
    let parse_ns = parse_started.elapsed().as_nanos();
    let decided = state
        .decide_batch(BatchAsk {
            path: &path,
            items,
            strict_builtin_errors: params.flag("strict-builtin-errors"),
            request: &request,
            started,
            input_parse_ns: Some(parse_ns),
        })
        .await;
    let (status, body) = write_batch(&state, &params, &decided, parse_ns, started);
    Ok(response::json_negotiated(
        status,
        body,
        &headers,
        &state.config.server.encoding.gzip,
    ))
}

/// The items to decide: each input of `inputs` under its key, `common_input` merged in.
fn batch_items(document: &Value) -> Result<Vec<(String, Value)>, ApiError> {
    let Value::Object(inputs) = &document["inputs"] else {
        return Err(ApiError::bad_request(
            "body must hold an 'inputs' object of input documents by id",
        ));
    };
    let common = &document["common_input"];
    let with_common = matches!(common, Value::Object(_));
    inputs
        .iter()
        .map(|(key, input)| {
            let key = key
                .as_string()
                .map(|k| k.to_string())
                .map_err(|_| ApiError::bad_request("'inputs' keys must be strings"))?;
            let input = match with_common {
                true => merge_common(common, input.clone()),
                false => input.clone(),
            };
            Ok((key, input))
        })
        .collect()
}

/// The status and body: 200 all decided, 500 none, 207 (each item with its own status) when
/// mixed.
fn write_batch(
    state: &AppState,
    params: &Params,
    decided: &BatchDecided,
    parse_ns: u128,
    started: Instant,
) -> (StatusCode, Vec<u8>) {
    let failed = decided.items.iter().filter(|i| i.outcome.is_err()).count();
    let status = match failed {
        0 => StatusCode::OK,
        n if n == decided.items.len() => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::MULTI_STATUS,
    };
    let mixed = status == StatusCode::MULTI_STATUS;
    let logged = state.decision_log().is_some();
    let pretty = params.flag("pretty");
    let with_metrics = params.flag("metrics") || params.flag("instrument");
    let mut body = Vec::with_capacity(128 * (decided.items.len() + 1));
    let mut envelope = ObjectWriter::new(&mut body, pretty.then_some(0));
    if logged {
        envelope.serde("batch_decision_id", &decided.batch_decision_id);
    }
    if with_metrics {
        envelope.serde("metrics", &opa_metrics(None, Some(parse_ns), started));
    }
    envelope.with("responses", |out, indent| {
        let mut responses = ObjectWriter::new(out, indent);
        for item in &decided.items {
            responses.with(&item.key, |out, indent| {
                let item_fields = ItemFields {
                    logged,
                    mixed,
                    with_metrics,
                    provenance: params.flag("provenance"),
                    started,
                };
                write_item(out, indent, item, &item_fields, decided);
            });
        }
        responses.finish();
    });
    envelope.finish();
    body.push(b'\n');
    (status, body)
}

struct ItemFields {
    logged: bool,
    mixed: bool,
    with_metrics: bool,
    provenance: bool,
    started: Instant,
}

/// One item: a decision's envelope, or OPA's error body, each with its `decision_id`.
fn write_item(
    out: &mut Vec<u8>,
    indent: Option<usize>,
    item: &BatchItem,
    fields: &ItemFields,
    decided: &BatchDecided,
) {
    let mut w = ObjectWriter::new(out, indent);
    match &item.outcome {
        Ok(decision) => {
            if fields.logged {
                w.serde("decision_id", &item.decision_id);
            }
            if fields.mixed {
                w.serde("http_status_code", "200");
            }
            if fields.with_metrics {
                w.serde(
                    "metrics",
                    &opa_metrics(Some(decision), None, fields.started),
                );
            }
            if fields.provenance {
                w.serde("provenance", &provenance(&decided.snapshot));
            }
            if let Some(result) = &decision.result {
                w.value("result", result);
            }
        }
        Err(e) => {
            // As the single-decision API would answer it.
            let error = match e.eval() {
                Some(eval) => ApiError::from(eval.clone()),
                None => ApiError::internal(e.to_string()),
            };
            w.serde("code", error.code);
            w.serde("message", &error.message);
            if !error.errors.is_empty() {
                w.serde("errors", &error.errors);
            }
            if fields.logged {
                w.serde("decision_id", &item.decision_id);
            }
            if fields.mixed {
                w.serde("http_status_code", "500");
            }
        }
    }
    w.finish();
}
