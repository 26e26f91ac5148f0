//! One decision, whatever the transport asking: the snapshot it is made on, its id and its
//! outcome. The HTTP Data API, Envoy's ext_authz and the native gRPC API all decide here, so
//! they cannot drift apart in what they evaluate or report.

use std::sync::Arc;

use regorus::Value;

use super::{AppState, Snapshot};
use crate::policy::{DataPath, Decision, EvalError, Query};
use crate::telemetry::metrics::Outcome;

/// allow or deny for a boolean, or for an object with a boolean `allow` (the payment
/// decision's shape); any other value is just defined.
fn outcome_of(result: Option<&Value>) -> Outcome {
    let allow = match result {
        None => return Outcome::Undefined,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => match &v["allow"] {
            Value::Bool(b) => Some(*b),
            _ => None,
        },
    };
    match allow {
        Some(true) => Outcome::Allow,
        Some(false) => Outcome::Deny,
        None => Outcome::Defined,
    }
}

/// A decision made: which snapshot made it (for its revisions), under which id, with what
/// outcome.
#[derive(Debug)]
pub struct Decided {
    /// OPA's `decision_id`: unique per decision, for correlating a response with its log.
    pub decision_id: String,
    pub snapshot: Arc<Snapshot>,
    pub outcome: Result<Decision, EvalError>,
}

impl AppState {
    /// Evaluates `path` with `input` on the snapshot active now, which the decision keeps
    /// however many swaps happen meanwhile.
    pub fn decide(
        &self,
        path: &DataPath,
        input: Option<Value>,
        strict_builtin_errors: bool,
    ) -> Decided {
        let snapshot = self.snapshot();
        let outcome = snapshot.policy.evaluate(Query {
            path,
            input,
            strict_builtin_errors,
        });
        if let Some(metrics) = &self.metrics {
            // The path labels the metric only when the policy defines it: a client must not
            // be able to grow the label set with made-up paths.
            let label = if snapshot.policy.has_rules_at(path) {
                path.slashed()
            } else {
                "other".to_string()
            };
            let (kind, eval) = match &outcome {
                Ok(d) => (outcome_of(d.result.as_ref()), Some(d.eval_time)),
                Err(_) => (Outcome::Error, None),
            };
            metrics.decision(&label, kind, eval);
        }
        Decided {
            decision_id: uuid::Uuid::new_v4().to_string(),
            snapshot,
            outcome,
        }
    }
}
