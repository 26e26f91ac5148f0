//! `verdict.v1.Decisions/Evaluate`: the Data API's decision as one unary gRPC call, on the
//! same decision core as every other transport (see `proto/verdict/v1/decisions.proto`).

use std::sync::Arc;
use std::time::Instant;

use tonic::{Code, Request, Response, Status};

use super::pb::decisions_server::Decisions;
use super::pb::{EvaluateRequest, EvaluateResponse};
use crate::gojson;
use crate::policy::{DataPath, EvalError};
use crate::runtime::DecideError;
use crate::runtime::{AppState, Ask};

#[derive(Debug, Clone)]
pub struct DecisionService {
    state: Arc<AppState>,
}

impl DecisionService {
    pub fn new(state: Arc<AppState>) -> Self {
        DecisionService { state }
    }
}

#[tonic::async_trait]
impl Decisions for DecisionService {
    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let started = Instant::now();
        let info = super::ext_authz::request_info(&request);
        let request = request.into_inner();
        let path = DataPath::parse(&request.path)
            .map_err(|e| Status::invalid_argument(format!("path: {e}")))?;
        let input = if request.input.trim().is_empty() {
            None
        } else {
            let bytes = request.input.as_bytes();
            let value = serde_json::from_slice(bytes).map_err(|e| {
                if gojson::is_memory_limit(&e) {
                    return Status::resource_exhausted(
                        "input document not decoded: the process memory limit was reached",
                    );
                }
                Status::invalid_argument(format!(
                    "input is not a JSON document: {}",
                    gojson::go_json_error(e, bytes)
                ))
            })?;
            Some(value)
        };
        let decided = self
            .state
            .decide(Ask {
                path: &path,
                input,
                strict_builtin_errors: request.strict_builtin_errors,
                request: &info,
                started,
                input_parse_ns: None,
                undefined_is_error: false,
            })
            .await;
        let decision = decided.outcome.map_err(|e| error_status(&e))?;
        Ok(Response::new(EvaluateResponse {
            defined: decision.result.is_some(),
            result: decision
                .result
                .as_ref()
                .map(|v| gojson::value_to_string(v, false))
                .unwrap_or_default(),
            decision_id: decided.decision_id,
            revisions: decided
                .snapshot
                .bundles
                .iter()
                .map(|b| (b.name.clone(), b.revision.clone()))
                .collect(),
        }))
    }
}

/// The gRPC code for an evaluation failure; the message leads with OPA's error code where
/// the policy raised one.
fn error_status(error: &DecideError) -> Status {
    let code = match error.eval() {
        Some(EvalError::InvalidPath(_)) => Code::InvalidArgument,
        Some(EvalError::Timeout(_)) => Code::DeadlineExceeded,
        Some(EvalError::MemoryLimit(_)) => Code::ResourceExhausted,
        None => Code::Unavailable,
        Some(
            EvalError::Policy(_)
            | EvalError::Parse(_)
            | EvalError::EngineFault
            | EvalError::FunctionPath { .. },
        ) => Code::Internal,
    };
    Status::new(code, error.detail())
}
