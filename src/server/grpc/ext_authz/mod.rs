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

/// The Authorization service over the shared state.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    state: Arc<AppState>,
    path: Arc<DataPath>,
    dry_run: bool,
    skip_body: bool,
}

impl ExtAuthz {
    pub fn new(state: Arc<AppState>, path: DataPath, dry_run: bool, skip_body: bool) -> Self {
        ExtAuthz {
            state,
            path: Arc::new(path),
            dry_run,
            skip_body,
        }
    }

    async fn decide(
        &self,
        request: &CheckRequest,
        info: &RequestInfo,
    ) -> Result<CheckResponse, Status> {
        let started = Instant::now();
        let input = match input::from_check_request(request, self.skip_body).await {
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
            dry_run = self.dry_run,
            "ext_authz decision"
        );
        if self.dry_run {
            response::dry_run(&mut answer);
        }
        response::add_decision_id(&mut answer, &decided.decision_id);
        Ok(answer)
    }
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
