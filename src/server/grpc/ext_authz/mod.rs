//! Envoy's `envoy.service.auth.v3.Authorization/Check`, answered as opa-envoy-plugin answers
//! it: a thin adapter that builds the input, asks the decision core, and writes the
//! CheckResponse.
//!
//! Failure modes, all opa-envoy-plugin's: an input that cannot be built (bad body, path or
//! query) is a denial with HTTP 400; an evaluation error, an undefined decision or a decision
//! of the wrong shape is a gRPC UNKNOWN error, which Envoy turns into a denial unless its
//! filter sets `failure_mode_allow`. No request fails open by verdict's choice.

pub mod body;
mod error;
mod fields;
pub mod input;
mod metadata;
pub mod normalize;
pub mod response;
pub mod url;

use std::sync::Arc;
use std::time::Instant;

use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
use tonic::{Request, Response, Status};

pub use error::{DecisionField, ExtAuthzError};

use crate::decision_log::RequestInfo;
use crate::policy::DataPath;
use crate::runtime::{AppState, Ask};

/// The caller of a gRPC request, as decision log events name it.
pub fn request_info<T>(request: &Request<T>) -> RequestInfo {
    RequestInfo {
        requested_by: request.remote_addr(),
        ..RequestInfo::default()
    }
}

/// How Checks are answered, beyond the decision path.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Answer OK whatever the decision (it is still evaluated and logged).
    pub dry_run: bool,
    /// Leave `parsed_body` and `truncated_body` out of the input.
    pub skip_body: bool,
    /// Normalise the path first (`normalize`), denying ambiguous ones with 400.
    pub normalize_path: bool,
}

/// The Authorization service over the shared state; the authorizing proxy asks it too.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    state: Arc<AppState>,
    path: Arc<DataPath>,
    options: CheckOptions,
}

impl ExtAuthz {
    pub fn new(state: Arc<AppState>, path: DataPath, options: CheckOptions) -> Self {
        ExtAuthz {
            state,
            path: Arc::new(path),
            options,
        }
    }

    /// The CheckResponse for `request`, or the gRPC error to answer instead: an evaluation
    /// error, an undefined decision or one of the wrong shape.
    pub async fn decide(
        &self,
        request: &CheckRequest,
        info: &RequestInfo,
    ) -> Result<CheckResponse, Status> {
        let started = Instant::now();
        let normalized;
        let request = match self.options.normalize_path {
            false => request,
            true => match with_normalized_path(request) {
                Ok(r) => {
                    normalized = r;
                    &normalized
                }
                Err(error) => {
                    tracing::debug!(%error, "ext_authz request path refused; denied");
                    return Ok(response::parse_error(&error));
                }
            },
        };
        let input = match input::from_check_request(request, self.options.skip_body).await {
            Ok(input) => input,
            Err(error) => {
                tracing::debug!(%error, "ext_authz request could not be parsed; denied");
                return Ok(response::parse_error(&error));
            }
        };
        let decided = self
            .state
            .decide(Ask {
                path: &self.path,
                input: Some(input),
                strict_builtin_errors: false,
                request: info,
                started,
                input_parse_ns: None,
                undefined_is_error: false,
            })
            .await;
        let decision = decided.outcome.map_err(|e| {
            tracing::debug!(decision_id = %decided.decision_id, error = %e.detail(), "ext_authz evaluation failed");
            Status::unknown(e.detail())
        })?;
        let Some(result) = decision.result else {
            return Err(Status::unknown("undefined decision"));
        };
        let mut answer =
            response::for_decision(&result).map_err(|e| Status::unknown(e.to_string()))?;
        let allowed = answer.status.as_ref().is_none_or(|s| s.code == 0);
        tracing::debug!(
            decision_id = %decided.decision_id,
            path = %self.path.slashed(),
            allowed,
            dry_run = self.options.dry_run,
            "ext_authz decision"
        );
        if self.options.dry_run {
            response::dry_run(&mut answer);
        }
        response::add_decision_id(&mut answer, &decided.decision_id);
        Ok(answer)
    }
}

/// `request` with its HTTP path in normal form.
fn with_normalized_path(request: &CheckRequest) -> Result<CheckRequest, ExtAuthzError> {
    let mut request = request.clone();
    let http = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut());
    if let Some(http) = http {
        if !http.path.is_empty() {
            http.path = normalize::normalize_target(&http.path)?;
        }
    }
    Ok(request)
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let info = request_info(&request);
        self.decide(request.get_ref(), &info)
            .await
            .map(Response::new)
    }
}
