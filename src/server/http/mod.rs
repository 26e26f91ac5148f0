//! The HTTP API: OPA's REST paths over the decision core. `router` builds the whole API from
//! the shared state and is separate from serving, so tests can drive it in-process too.

pub mod batch;
pub mod budget;
pub mod compile;
pub mod data;
pub mod error;
pub mod health;
pub mod metrics;
pub mod offload;
pub mod policies;
pub mod query;
pub mod request;
pub mod response;
pub mod status;
pub mod write;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::runtime::AppState;

/// OPA's API, with OPA's routing quirks (redirects, 404 and 405 bodies) in front of it.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/", post(data::post_default))
        .route(
            "/v1/data",
            get(data::get_v1)
                .post(data::post_v1)
                .put(write::put_data)
                .patch(write::patch_data),
        )
        .route(
            "/v1/data/{*path}",
            get(data::get_v1)
                .post(data::post_v1)
                .put(write::put_data)
                .patch(write::patch_data)
                .delete(write::delete_data),
        )
        .route("/v1/batch/data", post(batch::post_batch))
        .route("/v1/batch/data/{*path}", post(batch::post_batch))
        .route("/v0/data", post(data::post_v0))
        .route("/v0/data/{*path}", post(data::post_v0))
        .route("/v1/policies", get(policies::list_policies))
        .route(
            "/v1/policies/{*id}",
            get(policies::get_policy)
                .put(policies::put_policy)
                .delete(policies::delete_policy),
        )
        .route("/v1/query", get(query::get_query).post(query::post_query))
        .route(
            "/v1/compile",
            get(compile::not_supported).post(compile::not_supported),
        )
        .route(
            "/v1/compile/{*path}",
            get(compile::not_supported).post(compile::not_supported),
        )
        .route("/v1/status", get(status::get_status))
        .route("/v1/config", get(status::get_config))
        .merge(health_and_metrics());
    served_the_opa_way(api, state)
}

/// What a diagnostic address serves (OPA's `--diagnostic-addr`): health and metrics, and
/// nothing that reads or writes policy or data.
pub fn diagnostic_router(state: Arc<AppState>) -> Router {
    served_the_opa_way(health_and_metrics(), state)
}

fn health_and_metrics() -> Router<Arc<AppState>> {
    Router::new()
        .route("/health", get(health::get_health))
        .route("/health/{*path}", get(health::get_health_policy))
        .route("/metrics", get(metrics::get_metrics))
        .route("/metrics/alloc_bytes", get(metrics::get_alloc_bytes))
}

/// Go's 404 for unknown paths, OPA's routing quirks, and every request timed.
fn served_the_opa_way(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    let budget = budget::BodyBudget::new(
        state.config.verdict.request_bytes_in_flight(),
        state.config.server.decoding.max_length,
    );
    routes
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(budget, budget::limit))
        .layer(middleware::from_fn(opa_routing))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::record,
        ))
        .with_state(state)
}

/// Go's ServeMux answer for an unknown path.
async fn not_found() -> Response {
    go_text_error(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// Routes OPA registers with a method in the pattern: Go's mux answers other methods with a
/// text body there, where the Data and Query APIs answer an empty 405.
const METHOD_SPECIFIC_ROUTES: &[&str] = &["/v1/config", "/v1/status"];

fn go_text_error(status: StatusCode, text: &'static str) -> Response {
    let mut r = (status, text).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// What OPA's server does before its handlers: HEAD is not allowed, unclean paths redirect
/// (307, like Go's ServeMux), a trailing slash redirects to the path without it (301), and
/// Data API responses vary on Accept-Encoding.
async fn opa_routing(req: Request, next: Next) -> Response {
    if req.method() == Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let path = req.uri().path().to_string();
    if !escapes_are_valid(&path) {
        return unparsable_request();
    }
    let method = req.method().clone();
    let cleaned = clean_path(&path);
    let with_body = req.method() == Method::GET;
    let mut response = if cleaned != path && cleaned != path.trim_end_matches('/') {
        let location = match req.uri().query() {
            Some(q) => format!("{cleaned}?{q}"),
            None => cleaned,
        };
        redirect(StatusCode::TEMPORARY_REDIRECT, &location, with_body)
    } else if path.len() > 1 && path.ends_with('/') {
        let location = path.trim_end_matches('/');
        redirect(StatusCode::MOVED_PERMANENTLY, location, with_body)
    } else {
        next.run(req).await
    };
    let method_not_allowed = response.status() == StatusCode::METHOD_NOT_ALLOWED;
    if method_not_allowed && METHOD_SPECIFIC_ROUTES.contains(&path.as_str()) {
        return go_text_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
    }
    // OPA's gzip handler wraps GET and POST on the Data API and sets Vary on all they answer,
    // redirects included; writes and the mux's own 405 never pass through it.
    let data_api = path.starts_with("/v1/data") || path.starts_with("/v0/data");
    let compressible = method == Method::GET || method == Method::POST;
    if data_api && compressible && !method_not_allowed {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    response
}

/// Go's server refuses a request line whose path does not unescape (`/v1/data/%zz`) before
/// any handler runs: a text 400, and the connection closed.
fn unparsable_request() -> Response {
    let mut r = go_text_error(StatusCode::BAD_REQUEST, "400 Bad Request");
    r.headers_mut().remove("x-content-type-options");
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Every `%` starts two hex digits, as Go's `url.PathUnescape` requires.
fn escapes_are_valid(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

fn redirect(status: StatusCode, location: &str, with_body: bool) -> Response {
    let reason = status.canonical_reason().unwrap_or("Redirect");
    let mut r = if with_body {
        let body = format!("<a href=\"{}\">{reason}</a>.\n\n", html_escape(location));
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r
    } else {
        (status, Body::empty()).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Go's `path.Clean` as ServeMux applies it: no empty, `.` or `..` segments.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::{clean_path, escapes_are_valid};

    #[test]
    fn escapes_are_checked_like_go() {
        assert!(escapes_are_valid("/v1/data/limits/roles/cust%6Fmer"));
        assert!(escapes_are_valid("/v1/data/a%2Fb"));
        assert!(!escapes_are_valid("/v1/data/%zz"));
        assert!(!escapes_are_valid("/v1/data/%4"));
        assert!(!escapes_are_valid("/v1/data/x%"));
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        assert_eq!(clean_path("/v1/data//limits"), "/v1/data/limits");
        assert_eq!(clean_path("/v1/data/./a/../b"), "/v1/data/b");
        assert_eq!(clean_path("/v1/data/limits/"), "/v1/data/limits");
        assert_eq!(clean_path("/"), "/");
    }
}
