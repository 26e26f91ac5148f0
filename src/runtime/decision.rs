//! One decision, whatever the transport asking: the snapshot it is made on, its id and its
//! outcome. The HTTP Data API, Envoy's ext_authz and the native gRPC API all decide here, so
//! they cannot drift apart in what they evaluate or report.

use std::sync::Arc;

use regorus::Value;

use super::{AppState, Snapshot};
use crate::policy::{DataPath, Decision, EvalError, Query};

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
        Decided {
            decision_id: uuid::Uuid::new_v4().to_string(),
            snapshot,
            outcome,
        }
    }
}
