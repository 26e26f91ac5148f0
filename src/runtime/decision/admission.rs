//! Admission reviews as decisions: logged with the AdmissionReview as input and the response
//! as result, under the path `admission` (every constraint) or `admission/<Kind>`, and counted,
//! so that an auditor finds admission decisions beside the payment decisions, masked, spooled
//! and uploaded the same way.

use std::time::{Instant, SystemTime};

use regorus::Value;

use crate::admission::AdmissionResponse;
use crate::decision_log::spool::SpoolError;
use crate::decision_log::{event, EventParts, RequestInfo};
use crate::runtime::AppState;
use crate::telemetry::metrics::Outcome;

/// The label of admission decisions in `verdict_decisions_total`: one value whatever the
/// kind asked for, since a client chooses the kind in the URL.
const METRIC_PATH: &str = "admission";

/// What a review ended as. Gatekeeper denies with 403; any other rejection is a review that
/// could not be read or decided.
fn outcome(response: &AdmissionResponse) -> Outcome {
    match (response.allowed, response.status.code) {
        (true, _) => Outcome::Allow,
        (false, 403) => Outcome::Deny,
        (false, _) => Outcome::Error,
    }
}

/// OPA's error code for a rejection that is not a denial.
fn error_code(code: u16) -> &'static str {
    match code {
        400 | 413 => "invalid_parameter",
        _ => "internal_error",
    }
}

impl AppState {
    /// Logs the review when decisions are logged, then counts it as answered (an error when its
    /// event was refused). `Ok(Some(id))` is the event's `decision_id`; `Err` means the event
    /// could not be kept and the spool refuses decisions.
    pub async fn admitted(
        &self,
        kind: Option<&str>,
        input: Option<Value>,
        response: &AdmissionResponse,
        request: &RequestInfo,
        started: Instant,
    ) -> Result<Option<String>, SpoolError> {
        let app = self;
        let logged = match app.decision_log() {
            Some(log) => {
                let decision_id = uuid::Uuid::new_v4().to_string();
                let path = match kind {
                    Some(kind) => format!("admission/{kind}"),
                    None => METRIC_PATH.to_string(),
                };
                let result = serde_json::to_value(response).map(Value::from).ok();
                let error = match outcome(response) {
                    Outcome::Error => Some(event::coded_error(
                        error_code(response.status.code),
                        &response.status.message,
                    )),
                    _ => None,
                };
                let elapsed = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let metrics = [("timer_server_handler_ns", elapsed)].into_iter().collect();
                let parts = EventParts {
                    labels: log.labels(),
                    decision_id: &decision_id,
                    bundles: Vec::new(),
                    path: &path,
                    query: None,
                    input,
                    result,
                    error,
                    request,
                    timestamp: SystemTime::now(),
                    metrics: &metrics,
                };
                let snapshot = app.snapshot();
                log.record(&snapshot.policy, parts)
                    .await
                    .map(|()| Some(decision_id))
            }
            None => Ok(None),
        };
        if let Some(metrics) = &app.metrics {
            let outcome = match logged {
                Ok(_) => outcome(response),
                Err(_) => Outcome::Error,
            };
            metrics.decision(METRIC_PATH, outcome, Some(started.elapsed()));
        }
        logged
    }
}
