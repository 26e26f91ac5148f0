//! A bound on the request bytes one listener holds at once. Each request with a body takes
//! its declared length (or the largest body allowed, when it does not declare one) from the
//! budget before its body is read, and gives it back once answered: many clients sending
//! large bodies at once get OPA's error shape with 503 and `Retry-After`, and the process
//! never holds more than the budget in request bodies and their decoded inputs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::error::ApiError;

/// Budget units are KiB: a semaphore counts in u32 permits per acquisition.
const UNIT: u64 = 1024;

#[derive(Clone)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    /// The largest body a request may send (`server.decoding.max_length`).
    max_body: u64,
}

impl BodyBudget {
    pub fn new(bytes: u64, max_body: u64) -> BodyBudget {
        let units = usize::try_from(bytes.div_ceil(UNIT)).unwrap_or(Semaphore::MAX_PERMITS);
        BodyBudget {
            units: Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS))),
            max_body,
        }
    }
}

/// Holds the request's share of the budget until its response is ready.
pub async fn limit(State(budget): State<BodyBudget>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes = match declared {
        Some(n) => n.min(budget.max_body),
        None if headers.contains_key(header::TRANSFER_ENCODING) => budget.max_body,
        None => 0,
    };
    if bytes == 0 {
        return next.run(request).await;
    }
    let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
    match budget.units.try_acquire_many(units) {
        Ok(_held) => next.run(request).await,
        Err(_) => {
            let mut response =
                ApiError::busy("too many request bytes in flight; try again").into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            debug_assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            response
        }
    }
}
