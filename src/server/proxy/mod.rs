//! verdict as an authorizing reverse proxy in front of the payment gateway: each request is
//! refused if ambiguous, decided by the ext_authz adapter on the input Envoy would have
//! produced (`check`), and only if allowed forwarded upstream with the policy's changes
//! (`apply`), its body streamed through (`body`); the upstream's response streams back.
//!
//! Served by `server::conn` like every HTTP listener: the same connection limits, TLS with
//! rotated certificates, and one graceful drain.

mod apply;
mod body;
mod check;
mod forward;
pub mod tls;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::Router;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;

use crate::config::{ConfigError, ProxyConfig};
use crate::decision_log::RequestInfo;
use crate::policy::DataPath;
use crate::runtime::AppState;
use crate::server::conn::TlsPeer;
use crate::server::grpc::ext_authz::{CheckOptions, ExtAuthz};
use crate::telemetry::metrics::ProxyOutcome;

pub use upstream::UpstreamError;

/// The response header that carries the decision's id, to find its decision log event.
pub const DECISION_ID_HEADER: &str = "x-verdict-decision-id";

/// One proxy listener's shared parts.
struct Proxy {
    state: Arc<AppState>,
    authz: ExtAuthz,
    upstream: upstream::Upstream,
    config: ProxyConfig,
    /// The listener's address as configured: the metrics' `listener` label.
    name: String,
}

/// The routes of one proxy listener: every path, every method.
pub fn router(state: Arc<AppState>, config: &ProxyConfig) -> Result<Router, ConfigError> {
    let path = decision_path(&state, config)?;
    let authz = ExtAuthz::new(
        state.clone(),
        path,
        CheckOptions {
            dry_run: config.dry_run,
            skip_body: false,
            // The proxy normalises (and refuses) before it asks; the adapter sees a clean path.
            normalize_path: false,
        },
    );
    let proxy = Proxy {
        upstream: upstream::Upstream::new(config)?,
        authz,
        name: config.addr.clone(),
        config: config.clone(),
        state,
    };
    Ok(Router::new().fallback(handle).with_state(Arc::new(proxy)))
}

/// The configured path, else the ext_authz plugin's, else `envoy/authz/allow`.
fn decision_path(state: &AppState, config: &ProxyConfig) -> Result<DataPath, ConfigError> {
    match &config.path {
        Some(text) => DataPath::parse(text).map_err(|e| {
            ConfigError::Invalid(format!(
                "verdict.proxy {:?}: {text:?} is not a data path: {e}",
                config.addr
            ))
        }),
        None => state
            .config
            .plugins
            .envoy_ext_authz_grpc
            .clone()
            .unwrap_or_default()
            .decision_path(),
    }
}

async fn handle(State(proxy): State<Arc<Proxy>>, request: Request) -> Response<Body> {
    let (response, outcome) = proxy.serve(request).await;
    if let Some(metrics) = &proxy.state.metrics {
        metrics.proxy().request(&proxy.name, outcome);
    }
    response
}

impl Proxy {
    async fn serve(&self, mut request: Request) -> (Response<Body>, ProxyOutcome) {
        if let Err(why) = forward::check_framing(request.headers()) {
            return (
                refusal(StatusCode::BAD_REQUEST, &why),
                ProxyOutcome::Refused,
            );
        }
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let path = match crate::server::grpc::ext_authz::normalize::normalize_target(&target) {
            Ok(p) => p,
            Err(e) => {
                let why =
                    format!("{e}; refused rather than read one way here and another upstream");
                return (
                    refusal(StatusCode::BAD_REQUEST, &why),
                    ProxyOutcome::Refused,
                );
            }
        };
        let upgrade =
            forward::upgrade_requested(request.headers()).then(|| hyper::upgrade::on(&mut request));
        let (parts, body) = request.into_parts();
        let limit = self.config.max_body_bytes;
        let idle = self.config.idle_timeout();
        let prefix =
            match body::read_prefix(body, limit, idle, self.config.reject_partial_body).await {
                Ok(p) => p,
                Err(e) => {
                    let code = match e {
                        body::BodyError::Stalled(_) => StatusCode::REQUEST_TIMEOUT,
                        body::BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                        body::BodyError::Read(_) => StatusCode::BAD_REQUEST,
                    };
                    return (refusal(code, &e.to_string()), ProxyOutcome::Refused);
                }
            };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let tls = parts.extensions.get::<TlsPeer>().cloned();
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
        let facts = check::Facts {
            path: &path,
            body: prefix.seen(limit),
            truncated: prefix.truncated(limit),
            peer,
            tls: tls.as_ref(),
            request_id: &request_id,
        };
        let check_request = check::check_request(&parts, &facts);
        let info = RequestInfo {
            requested_by: peer,
            req_id: self.state.next_req_id(),
            http_headers: self
                .state
                .decision_log()
                .map_or_else(Vec::new, |log| log.http_headers(&parts.headers)),
        };
        let answer = match self.authz.decide(&check_request, &info).await {
            Ok(answer) => answer,
            Err(status) => {
                // Envoy's ext_authz filter answers 403 when the authorization service fails
                // (`status_on_error`), unless told to fail open: verdict never fails open.
                let why = format!("authorization failed: {}", status.message());
                return (
                    refusal(StatusCode::FORBIDDEN, &why),
                    ProxyOutcome::DecisionError,
                );
            }
        };
        let decision_id = forward::decision_id(&answer);
        let allowed = answer.status.as_ref().is_none_or(|s| s.code == 0);
        let ok = match answer.http_response {
            Some(HttpResponse::OkResponse(ok)) if allowed => Some(ok),
            None if allowed => None,
            other => {
                let denied = match &other {
                    Some(HttpResponse::DeniedResponse(d)) => Some(d),
                    _ => None,
                };
                let mut response = apply::denied(denied);
                with_decision_id(&mut response, decision_id.as_deref());
                return (response, ProxyOutcome::Denied);
            }
        };
        let forwarded = forward::Forward {
            parts,
            path,
            body: prefix,
            ok,
            peer,
            scheme: if tls.is_some() { "https" } else { "http" },
            request_id,
            decision_id: decision_id.clone(),
            upgrade,
        };
        let started = Instant::now();
        match forwarded.send(&self.upstream, idle).await {
            Ok(mut response) => {
                if let Some(metrics) = &self.state.metrics {
                    let took = started.elapsed();
                    metrics
                        .proxy()
                        .upstream_response(&self.name, response.status().as_u16(), took);
                }
                with_decision_id(&mut response, decision_id.as_deref());
                (response, ProxyOutcome::Forwarded)
            }
            Err(error) => {
                tracing::warn!(listener = %self.name, %error, "upstream failed");
                if let Some(metrics) = &self.state.metrics {
                    metrics.proxy().upstream_failure(&self.name, error.code());
                }
                let mut response = error_body(error.status(), error.code(), &error.to_string());
                with_decision_id(&mut response, decision_id.as_deref());
                (response, ProxyOutcome::UpstreamFailed)
            }
        }
    }
}

fn with_decision_id(response: &mut Response<Body>, decision_id: Option<&str>) {
    if let Some(value) = decision_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(DECISION_ID_HEADER, value);
    }
}

/// A request refused before or instead of deciding, in OPA's error shape.
fn refusal(code: StatusCode, message: &str) -> Response<Body> {
    let kind = match code {
        StatusCode::FORBIDDEN => "unauthorized",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
        _ => "invalid_parameter",
    };
    error_body(code, kind, message)
}

/// `{"code": ..., "message": ...}` with `status`.
fn error_body(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({"code": code, "message": message});
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
