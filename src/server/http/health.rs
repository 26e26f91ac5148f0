//! Health: `GET /health` (with `?bundles`, `?plugins`, `?exclude-plugin=`) and
//! `GET /health/{path}`, which evaluates `data.system.health.<path>` as OPA does.
//!
//! Two additions over OPA: when no policy defines `system.health.live` or `.ready`, verdict
//! answers them itself (alive; ready once every bundle has activated), so Kubernetes probes
//! work with any bundle; a policy that defines them decides, exactly as in OPA. And when a
//! later update of an activated bundle was rejected, `/health?bundles` keeps OPA's 200 and its
//! `{}` (the last good bundle serves, so a readiness probe must not take the node out of
//! service); `/health?bundles&warnings`, verdict's own parameter, names the rejection.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use regorus::Value;
use serde::Serialize;

use super::error::ApiError;
use super::request::Params;
use super::response;
use crate::gojson;
use crate::policy::path::{DataPath, Segment};
use crate::policy::Query;
use crate::runtime::status::plugin_states;
use crate::runtime::AppState;

#[derive(Serialize)]
struct Failure<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct Warnings {
    warnings: Vec<String>,
}

fn ok() -> Response {
    response::json(StatusCode::OK, b"{}\n".to_vec())
}

fn failed(message: &str) -> Response {
    response::json(
        StatusCode::INTERNAL_SERVER_ERROR,
        gojson::to_body(&Failure { error: message }, false),
    )
}

/// `GET /health`.
pub async fn get_health(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let params = Params::parse(uri.query());
    let mut warnings = Vec::new();
    if params.flag("bundles") || params.flag("bundle") {
        if !state.bundles_ready() {
            return failed("one or more bundles are not activated");
        }
        if params.flag("warnings") {
            warnings = rejected_updates(&state);
        }
    }
    if params.flag("plugins") {
        let excluded: Vec<&str> = params.values("exclude-plugin").collect();
        let down = plugin_states(&state)
            .iter()
            .any(|(name, s)| *s != "OK" && !excluded.contains(name));
        if down {
            return failed("one or more plugins are not up");
        }
    }
    if warnings.is_empty() {
        return ok();
    }
    response::json(
        StatusCode::OK,
        gojson::to_body(&Warnings { warnings }, false),
    )
}

/// Activated bundles whose latest update was rejected: what still serves, and why.
fn rejected_updates(state: &AppState) -> Vec<String> {
    state
        .bundle_status()
        .iter()
        .filter(|b| !b.code.is_empty())
        .map(|b| {
            let mut why = b.message.clone();
            if let Some(first) = b.errors.first() {
                why = format!("{why}: {first}");
            }
            format!(
                "bundle {}: update rejected, revision {:?} still serving: {why}",
                b.name, b.active_revision
            )
        })
        .collect()
}

/// `GET /health/{path}`: `true` from `data.system.health.<path>` is healthy.
pub async fn get_health_policy(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let rest = uri.path().strip_prefix("/health").unwrap_or("");
    let sub = DataPath::from_url(rest).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let base = DataPath::new(vec![
        Segment::Key("system".into()),
        Segment::Key("health".into()),
    ]);
    let path = base.join(&sub);
    let snapshot = state.snapshot();
    let plugins = plugin_states(&state);
    let ready = plugins.values().all(|s| *s == "OK");
    let input = health_input(&plugins, ready);
    let decision = snapshot.policy.evaluate(Query {
        path: &path,
        input: Some(input),
        strict_builtin_errors: false,
    });
    let reference = path.display_ref();
    Ok(match decision {
        Ok(d) => match d.result {
            Some(Value::Bool(true)) => ok(),
            Some(_) => failed(&format!(
                "health check ({reference}) returned unexpected value"
            )),
            None if !snapshot.policy.has_rules_at(&path) && sub.slashed() == "live" => ok(),
            None if !snapshot.policy.has_rules_at(&path) && sub.slashed() == "ready" => {
                if ready {
                    ok()
                } else {
                    failed("one or more bundles are not activated")
                }
            }
            None => failed(&format!("health check ({reference}) was undefined")),
        },
        Err(e) => failed(&e.detail()),
    })
}

/// OPA's input to health policies: each plugin's state and whether all are ready.
fn health_input(plugins: &BTreeMap<&'static str, &'static str>, ready: bool) -> Value {
    let states: BTreeMap<Value, Value> = plugins
        .iter()
        .map(|(k, v)| (Value::from(*k), Value::from(*v)))
        .collect();
    let mut input = BTreeMap::new();
    input.insert(Value::from("plugin_state"), Value::from(states));
    input.insert(Value::from("plugins_ready"), Value::from(ready));
    Value::from(input)
}
