//! `GET /v1/status` and `GET /v1/config`: what is loaded, how the last reloads went, and the
//! configuration in effect (secrets removed), in OPA's shapes.
//!
//! OPA answers `/v1/status` only with its status plugin configured; verdict always answers it,
//! since a rejected bundle must be visible without extra configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value as Json;

use super::request::Params;
use super::response;
use crate::gojson;
use crate::runtime::{status, AppState};

#[derive(Serialize)]
struct Envelope<T> {
    result: T,
}

/// `GET /v1/status`.
pub async fn get_status(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let pretty = Params::parse(uri.query()).flag("pretty");
    let result = status::report(&state);
    response::json(
        StatusCode::OK,
        gojson::to_body(&Envelope { result }, pretty),
    )
}

/// `GET /v1/config`.
pub async fn get_config(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let pretty = Params::parse(uri.query()).flag("pretty");
    let config = &state.config;
    let mut result: BTreeMap<String, Json> = config
        .not_implemented
        .iter()
        .map(|(k, v)| (k.clone(), redact(k, v.clone())))
        .collect();
    result.insert(
        "default_decision".into(),
        config.default_decision.clone().into(),
    );
    result.insert(
        "default_authorization_decision".into(),
        config.default_authorization_decision.clone().into(),
    );
    result.insert(
        "labels".into(),
        serde_json::to_value(status::labels(&state)).unwrap_or(Json::Null),
    );
    response::json(
        StatusCode::OK,
        gojson::to_body(&Envelope { result }, pretty),
    )
}

/// Removes what OPA removes before showing a config: service credentials and key material.
fn redact(section: &str, mut value: Json) -> Json {
    let field_sets: &[&str] = match section {
        "services" => &["credentials"],
        "keys" => &["key", "private_key"],
        _ => return value,
    };
    // `services` may be a mapping by name or a list of named services.
    let entries: Vec<&mut Json> = match &mut value {
        Json::Object(entries) => entries.values_mut().collect(),
        Json::Array(entries) => entries.iter_mut().collect(),
        _ => Vec::new(),
    };
    for entry in entries {
        if let Json::Object(fields) = entry {
            for f in field_sets {
                fields.remove(*f);
            }
        }
    }
    value
}
