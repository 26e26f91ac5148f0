//! `GET /metrics` in Prometheus' text format, and the timing of every API request under
//! OPA's handler names.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::runtime::status::plugin_states;
use crate::runtime::AppState;

/// `GET /metrics`.
pub async fn get_metrics(State(state): State<Arc<AppState>>) -> Response {
    let Some(metrics) = &state.metrics else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics are unavailable\n",
        )
            .into_response();
    };
    let plugins: Vec<(&str, &str)> = plugin_states(&state).into_iter().collect();
    let mut body = metrics.render(&plugins);
    crate::policy::vm::metrics::write(state.snapshot().policy.fast_path(), &mut body);
    let mut r = (StatusCode::OK, body).into_response();
    // OPA's media type: its client library states how metric names were escaped, and
    // verdict's names need none beyond underscores either.
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8; escaping=underscores"),
    );
    r
}

/// `GET /metrics/alloc_bytes`: the bytes held by live allocations, as counted by the allocator
/// regorus installs (OPA gives Go's heap `Alloc` here), as plain text.
pub async fn get_alloc_bytes() -> Response {
    let live = regorus_mimalloc::global_allocation_stats_snapshot().allocated;
    let mut r = (StatusCode::OK, format!("{live}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// OPA's `handler` label for a request path; `None` for paths OPA does not instrument.
fn handler(path: &str) -> Option<&'static str> {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    Some(match path {
        "/" => "index",
        _ if under("/v1/data") => "v1/data",
        _ if under("/v0/data") => "v0/data",
        _ if under("/v1/policies") => "v1/policies",
        _ if under("/v1/query") => "v1/query",
        _ if under("/health") => "health",
        "/v1/status" => "v1/status",
        "/v1/config" => "v1/config",
        "/metrics" => "metrics",
        _ => return None,
    })
}

/// What the API knows of a request before its handler runs: OPA's `req_id` and the peer.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub req_id: u64,
    /// None over a Unix socket.
    pub requested_by: Option<SocketAddr>,
}

/// Numbers each request, times it to the end of its handler as OPA's instrumentation does,
/// and logs it at debug: method, path and status, never the body.
pub async fn record(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let req_id = state.next_req_id();
    let requested_by = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    req.extensions_mut().insert(RequestMeta {
        req_id,
        requested_by,
    });
    let method = req.method().as_str().to_ascii_lowercase();
    // A clone of the URI shares its bytes: no copy of the path per request.
    let uri = req.uri().clone();
    let path = uri.path();
    let started = Instant::now();
    let response = next.run(req).await;
    let took = started.elapsed();
    let code = response.status().as_u16();
    tracing::debug!(req_id, %method, %path, code, duration_us = took.as_micros() as u64, "request");
    if let (Some(metrics), Some(handler)) = (&state.metrics, handler(path)) {
        metrics.http_request(handler, &method, code, took);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::handler;

    #[test]
    fn handler_names_are_opas() {
        assert_eq!(handler("/"), Some("index"));
        assert_eq!(handler("/v1/data/payment/allow"), Some("v1/data"));
        assert_eq!(handler("/v1/data"), Some("v1/data"));
        assert_eq!(handler("/v1/dataset"), None);
        assert_eq!(handler("/health/live"), Some("health"));
        assert_eq!(handler("/nope"), None);
    }
}
