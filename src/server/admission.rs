//! The admission webhook's HTTP adapter, served over TLS (`server::tls`): `POST /v1/admit`
//! (every constraint) and `POST /v1/admit/{kind}` (one constraint kind, for one
//! ValidatingWebhook per policy), plus `/v1/admission/status` and `/health`. It reads the body
//! within the size limit, hands it to the admission set on a blocking thread, has the runtime
//! log and count the decision, and writes the AdmissionReview back.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::admission::evaluate::Scope;
use crate::admission::review;
use crate::admission::{AdmissionResponse, FailurePolicy, Review, ReviewError};
use crate::config::AdmissionConfig;
use crate::decision_log::RequestInfo;
use crate::runtime::admission::Admission;
use crate::runtime::AppState;

/// The answer when evaluation overruns the deadline by this much: the engine's own timer
/// should have stopped it, but one long builtin call cannot be interrupted.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);

/// What the handlers share: the service, whose admission state, decision log and metrics
/// every review uses, and the webhook's configuration.
#[derive(Clone)]
struct Shared {
    app: Arc<AppState>,
    config: Arc<AdmissionConfig>,
}

/// The webhook's routes on `app`, configured by `config`.
pub fn router(app: Arc<AppState>, config: AdmissionConfig) -> Router {
    let config = Arc::new(config);
    Router::new()
        .route("/v1/admit", post(admit_all))
        .route("/v1/admit/{kind}", post(admit_kind))
        .route("/v1/admission/status", get(status))
        .route("/health", get(|| async { "ok" }))
        .with_state(Shared { app, config })
}

async fn admit_all(State(shared): State<Shared>, request: Request) -> Response {
    admit(shared, None, request).await
}

async fn admit_kind(
    State(shared): State<Shared>,
    Path(kind): Path<String>,
    request: Request,
) -> Response {
    admit(shared, Some(kind), request).await
}

async fn status(State(shared): State<Shared>) -> Response {
    match shared.app.admission() {
        Some(admission) => axum::Json(admission.set.status()).into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn admit(shared: Shared, kind: Option<String>, request: Request) -> Response {
    let started = Instant::now();
    let app = &shared.app;
    let info = RequestInfo {
        requested_by: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
        req_id: app.next_req_id(),
        http_headers: app
            .decision_log()
            .map_or_else(Vec::new, |log| log.http_headers(request.headers())),
    };
    let logged = app.decision_log().is_some();
    let (api_version, mut response, input) = match app.admission() {
        Some(admission) => {
            review(
                &shared.config,
                admission,
                kind.clone(),
                request,
                logged,
                started,
            )
            .await
        }
        None => (
            None,
            failed(&shared.config, "", "admission is not configured"),
            None,
        ),
    };
    match app
        .admitted(kind.as_deref(), input, &response, &info, started)
        .await
    {
        Ok(Some(decision_id)) => {
            response
                .audit_annotations
                .insert("decision_id".into(), decision_id);
        }
        Ok(None) => {}
        Err(why) => response = failed(&shared.config, &response.uid, &why.to_string()),
    }
    tracing::debug!(
        allowed = response.allowed,
        code = response.status.code,
        elapsed_us = started.elapsed().as_micros() as u64,
        "admission review"
    );
    reply(api_version.as_deref(), response)
}

/// Reads and decides one review: its apiVersion when it had one, the response, and the
/// review as received when `keep_input` (for its log event).
async fn review(
    config: &AdmissionConfig,
    admission: Arc<Admission>,
    kind: Option<String>,
    request: Request,
    keep_input: bool,
    started: Instant,
) -> (Option<String>, AdmissionResponse, Option<regorus::Value>) {
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let deadline = started + config.deadline();
    let limit = config.max_request_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || AdmissionResponse::bad_request(&ReviewError::TooLarge { limit });
    if declared.is_some_and(|n| n > limit) {
        return (None, too_large(), None);
    }
    // The review's deadline covers its body too: a client that stalls mid-body gets its
    // answer (the failure policy's) when the deadline passes, and its buffer is freed.
    let reading = axum::body::to_bytes(body, limit);
    let bytes = match tokio::time::timeout_at(deadline.into(), reading).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return (None, too_large(), None),
        Err(_) => {
            let why = "the review's body did not arrive before the admission deadline";
            return (None, failed(config, "", why), None);
        }
    };
    let set = admission.set.clone();
    let policy = config.failure_policy;
    // What the answer must echo, known once the body is decoded: a review that overruns its
    // deadline is answered from here while its evaluation is still running.
    let echo: Arc<OnceLock<(String, String)>> = Arc::default();
    let decoded = echo.clone();
    // Decoding a multi-megabyte review is CPU work too: both run off the async threads.
    let work = tokio::task::spawn_blocking(move || {
        let value = match review::decode(&bytes) {
            Ok(v) => v,
            Err(error) => return (None, AdmissionResponse::bad_request(&error), None),
        };
        let uid = review::text(&value["request"]["uid"]).to_string();
        // The log records the review as received: the same value, shared, not copied.
        let input = keep_input.then(|| value.clone());
        let review = match Review::from_value(value) {
            Ok(r) => r,
            Err(error) => {
                let mut response = AdmissionResponse::bad_request(&error);
                response.uid = uid;
                return (None, response, input);
            }
        };
        let _ = decoded.set((review.uid().to_string(), review.api_version.clone()));
        let scope = kind.as_deref().map_or(Scope::All, Scope::Kind);
        let decision = set.evaluate(&review, scope, policy, deadline);
        (Some(review.api_version), decision.response, input)
    });
    let timeout = deadline.saturating_duration_since(Instant::now()) + DEADLINE_SLACK;
    let outcome = tokio::time::timeout(timeout, work).await;
    let (uid, api_version) = echo.get().cloned().unzip();
    let uid = uid.as_deref().unwrap_or("");
    match outcome {
        Ok(Ok(done)) => done,
        Ok(Err(_)) => (
            api_version,
            failed(config, uid, "the evaluation stopped unexpectedly"),
            None,
        ),
        Err(_) => (
            api_version,
            failed(config, uid, "the admission deadline was exceeded"),
            None,
        ),
    }
}

fn failed(config: &AdmissionConfig, uid: &str, why: &str) -> AdmissionResponse {
    tracing::error!(why, "admission review failed");
    match config.failure_policy {
        FailurePolicy::Fail => AdmissionResponse::rejected(
            uid,
            500,
            "InternalError",
            format!("admission review failed: {why}"),
        ),
        FailurePolicy::Ignore => AdmissionResponse::allowed(
            uid,
            vec![format!("admission review failed, ignored: {why}")],
        ),
    }
}

fn reply(api_version: Option<&str>, response: AdmissionResponse) -> Response {
    let body = response.to_review(api_version.unwrap_or("admission.k8s.io/v1"));
    (StatusCode::OK, axum::Json(body)).into_response()
}
