//! Batch decisions (EOPA's `POST /v1/batch/data/{path}`): many inputs for one path, decided
//! on one snapshot in one hand-off to a blocking thread, each item its own decision with its
//! own `decision_id`, logged and counted like a single one.
//!
//! What a batch saves over single calls is the transport's share (one request, one body, one
//! hop off the async workers, one warm engine reused for every item); each item's evaluation
//! costs what a single decision's does.

use std::sync::Arc;
use std::time::Instant;

use regorus::Value;

use super::{off_async, DecideError, Settle, Snapshot};
use crate::decision_log::RequestInfo;
use crate::policy::{DataPath, Decision, Query};
use crate::runtime::AppState;

/// A batch as the transport read it: each item's key and its input (the common input already
/// merged in).
pub struct BatchAsk<'a> {
    pub path: &'a DataPath,
    pub items: Vec<(String, Value)>,
    pub strict_builtin_errors: bool,
    pub request: &'a RequestInfo,
    pub started: Instant,
    /// Time spent parsing the whole body, reported with every item.
    pub input_parse_ns: Option<u128>,
}

/// One item decided.
#[derive(Debug)]
pub struct BatchItem {
    pub key: String,
    pub decision_id: String,
    pub outcome: Result<Decision, DecideError>,
}

/// A batch decided, every item on the same snapshot.
#[derive(Debug)]
pub struct BatchDecided {
    /// Names the batch in its response, beside each item's own `decision_id`.
    pub batch_decision_id: String,
    pub snapshot: Arc<Snapshot>,
    pub items: Vec<BatchItem>,
}

impl AppState {
    /// Decides every item of `ask` on the snapshot active now, then logs each (when decisions
    /// are logged) before any is answered.
    pub async fn decide_batch(&self, ask: BatchAsk<'_>) -> BatchDecided {
        let snapshot = self.snapshot();
        let log = self.decision_log();
        let (keys, inputs): (Vec<String>, Vec<Value>) = ask.items.into_iter().unzip();
        let logged_inputs: Vec<Option<Value>> = match log {
            Some(_) => inputs.iter().cloned().map(Some).collect(),
            None => vec![None; inputs.len()],
        };
        let (on, path, strict) = (
            snapshot.clone(),
            ask.path.clone(),
            ask.strict_builtin_errors,
        );
        let count = inputs.len();
        let evaluated = off_async(move || {
            Ok(inputs
                .into_iter()
                .map(|input| {
                    on.policy.evaluate(Query {
                        path: &path,
                        input: Some(input),
                        strict_builtin_errors: strict,
                    })
                })
                .collect::<Vec<_>>())
        })
        .await;
        // A lost blocking thread costs every item of the batch, each answered as an error.
        let outcomes = evaluated.unwrap_or_else(|e| vec![Err(e); count]);
        let mut items = Vec::with_capacity(count);
        let settle = Settle {
            path: ask.path,
            request: ask.request,
            started: ask.started,
            input_parse_ns: ask.input_parse_ns,
            undefined_is_error: false,
        };
        for ((key, outcome), logged_input) in keys.into_iter().zip(outcomes).zip(logged_inputs) {
            let outcome = outcome.map_err(DecideError::from);
            let (decision_id, outcome) =
                self.settle(&snapshot, &settle, logged_input, outcome).await;
            items.push(BatchItem {
                key,
                decision_id,
                outcome,
            });
        }
        BatchDecided {
            batch_decision_id: uuid::Uuid::new_v4().to_string(),
            snapshot,
            items,
        }
    }
}

/// EOPA's `common_input`: deep-merged under an item's input, the item's values winning. An
/// item that is not an object replaces the common input whole.
pub fn merge_common(common: &Value, item: Value) -> Value {
    let (Ok(_), Ok(over)) = (common.as_object(), item.as_object()) else {
        return item;
    };
    let mut merged = common.clone();
    if let Ok(target) = merged.as_object_mut() {
        for (k, v) in over.iter() {
            let value = match target.get(k) {
                Some(existing) => merge_common(existing, v.clone()),
                None => v.clone(),
            };
            target.insert(k.clone(), value);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_common_input_is_merged_under_each_item() {
        let common = json(r#"{"action": "read", "user": {"role": "viewer", "org": "o"}}"#);
        assert_eq!(
            merge_common(
                &common,
                json(r#"{"user": {"name": "bob", "role": "admin"}}"#)
            ),
            json(r#"{"action": "read", "user": {"name": "bob", "org": "o", "role": "admin"}}"#)
        );
        assert_eq!(merge_common(&common, json("3")), json("3"));
        assert_eq!(
            merge_common(&json("null"), json(r#"{"a": 1}"#)),
            json(r#"{"a": 1}"#)
        );
    }
}
