//! One decision, whatever the transport asking: the snapshot it is made on, its id, its
//! outcome, and its decision log event. The HTTP Data API, Envoy's ext_authz and the native
//! gRPC API all decide here, so they cannot drift apart in what they evaluate, report or log;
//! ad-hoc queries (`/v1/query`) are decided and logged here too.

mod admission;
pub mod batch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use regorus::Value;

use super::{AppState, Snapshot};
use crate::decision_log::{event, EventParts, RequestInfo};
use crate::policy::{DataPath, Decision, EvalError, PolicyModule, Query};
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

/// Runs one evaluation on a blocking thread. A policy that runs to its time limit, or a
/// builtin that cannot be interrupted, then holds a thread of its own, never one of the async
/// workers that every listener, health probe and metrics scrape share. Each blocking thread
/// keeps its own warm engine (see `PolicySet::evaluate`), so the hand-off is the whole cost.
async fn off_async<T: Send + 'static>(
    evaluate: impl FnOnce() -> Result<T, EvalError> + Send + 'static,
) -> Result<T, EvalError> {
    tokio::task::spawn_blocking(evaluate)
        .await
        .unwrap_or(Err(EvalError::EngineFault))
}

/// Why a decision has no answer for its client: the policy failed, or the decision was made
/// but its audit record could not be kept (the decision log spool is full and configured to
/// refuse), so it must not be answered.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("decision refused: {0}")]
    Refused(#[from] crate::decision_log::spool::SpoolError),
}

impl DecideError {
    /// The policy's error, when it was the policy that failed.
    pub fn eval(&self) -> Option<&EvalError> {
        match self {
            DecideError::Eval(e) => Some(e),
            DecideError::Refused(_) => None,
        }
    }

    /// The message with every underlying error spelled out, for logs.
    pub fn detail(&self) -> String {
        match self {
            DecideError::Eval(e) => e.detail(),
            refused => refused.to_string(),
        }
    }
}

/// A decision made: which snapshot made it (for its revisions), under which id, with what
/// outcome.
#[derive(Debug)]
pub struct Decided {
    /// OPA's `decision_id`: unique per decision, for correlating a response with its log.
    pub decision_id: String,
    pub snapshot: Arc<Snapshot>,
    pub outcome: Result<Decision, DecideError>,
}

/// An ad-hoc query decided, on which snapshot, under which id.
#[derive(Debug)]
pub struct Queried {
    pub decision_id: String,
    pub snapshot: Arc<Snapshot>,
    pub outcome: Result<regorus::QueryResults, DecideError>,
}

/// Ad-hoc queries name files in error locations by policy id (`<bundle>/<path>`), where the
/// Data API uses the path inside the bundle: OPA 1.9 does both, in responses and in logs.
fn module_ids_in_locations(mut e: EvalError, modules: &[PolicyModule]) -> EvalError {
    if let EvalError::Policy(errors) | EvalError::Parse(errors) = &mut e {
        for location in errors.iter_mut().filter_map(|err| err.location.as_mut()) {
            if let Some(m) = modules.iter().find(|m| m.file == location.file) {
                location.file = m.id.clone();
            }
        }
    }
    e
}

/// Bindings the user named: wildcards and engine-generated variables are not shown.
pub fn visible_bindings(bindings: &Value) -> Value {
    let mut shown = BTreeMap::new();
    if let Ok(object) = bindings.as_object() {
        for (k, v) in object.iter() {
            if k.as_string().is_ok_and(|name| !name.starts_with('_')) {
                shown.insert(k.clone(), v.clone());
            }
        }
    }
    Value::from(shown)
}

/// One decision asked for, with what its log event needs to know of the request.
pub struct Ask<'a> {
    pub path: &'a DataPath,
    pub input: Option<Value>,
    pub strict_builtin_errors: bool,
    pub request: &'a RequestInfo,
    /// When the transport started on the request, for `timer_server_handler_ns`.
    pub started: Instant,
    /// Time spent parsing the input, when the transport parsed one.
    pub input_parse_ns: Option<u128>,
    /// An undefined result is an error for this transport (the v0 API, the default decision),
    /// and its log event says so, as OPA's do.
    pub undefined_is_error: bool,
}

/// What `settle` needs of a decision's request.
pub(super) struct Settle<'a> {
    pub path: &'a DataPath,
    pub request: &'a RequestInfo,
    pub started: Instant,
    pub input_parse_ns: Option<u128>,
    pub undefined_is_error: bool,
}

/// OPA's performance metrics of one decision, under OPA's names: `?metrics` responses and
/// decision log events report them.
pub fn opa_metrics(
    decision: Option<&Decision>,
    input_parse_ns: Option<u128>,
    started: Instant,
) -> BTreeMap<&'static str, u64> {
    let ns = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
    let mut metrics = BTreeMap::new();
    if let Some(d) = decision {
        metrics.insert(
            "counter_server_query_cache_hit",
            u64::from(d.prepare_time.is_none()),
        );
        if let Some(prepared) = d.prepare_time {
            metrics.insert("timer_rego_query_compile_ns", ns(prepared.as_nanos()));
        }
        // regorus resolves no external data (OPA's external resolvers): no time goes there.
        metrics.insert("timer_rego_external_resolve_ns", 0);
        metrics.insert("timer_rego_query_eval_ns", ns(d.eval_time.as_nanos()));
    }
    if let Some(parse) = input_parse_ns {
        metrics.insert("timer_rego_input_parse_ns", ns(parse));
    }
    metrics.insert("timer_server_handler_ns", ns(started.elapsed().as_nanos()));
    metrics
}

/// OPA's message for an undefined decision: "missing" when no rule could define it.
pub fn undefined_message(snapshot: &Snapshot, path: &DataPath) -> String {
    let why = if snapshot.policy.has_rules_at(path) {
        "document undefined"
    } else {
        "document missing"
    };
    format!("{why}: {}", path.display_ref())
}

impl AppState {
    /// Evaluates `ask.path` with its input on the snapshot active now, which the decision
    /// keeps however many swaps happen meanwhile; then logs it, when decisions are logged,
    /// before anyone can answer it.
    pub async fn decide(&self, ask: Ask<'_>) -> Decided {
        let snapshot = self.snapshot();
        let log = self.decision_log();
        let logged_input = log.and_then(|_| ask.input.clone());
        let strict_builtin_errors = ask.strict_builtin_errors;
        let query = Query {
            path: ask.path,
            input: ask.input,
            strict_builtin_errors,
        };
        // The VM answers a verified entrypoint here, within its short inline limit; anything
        // else is evaluated on a blocking thread.
        let outcome = match snapshot.policy.evaluate_inline(&query) {
            Some(decision) => Ok(decision),
            None => {
                let (on, path, input) = (snapshot.clone(), ask.path.clone(), query.input);
                off_async(move || {
                    on.policy.evaluate(Query {
                        path: &path,
                        input,
                        strict_builtin_errors,
                    })
                })
                .await
                .map_err(DecideError::from)
            }
        };
        let settled = Settle {
            path: ask.path,
            request: ask.request,
            started: ask.started,
            input_parse_ns: ask.input_parse_ns,
            undefined_is_error: ask.undefined_is_error,
        };
        let (decision_id, outcome) = self
            .settle(&snapshot, &settled, logged_input, outcome)
            .await;
        Decided {
            decision_id,
            snapshot,
            outcome,
        }
    }

    /// What follows every decision's evaluation, single or in a batch: the `system` namespace
    /// left out of the whole data document, the decision id, the log event (written before
    /// anyone can answer it: a decision its log refused becomes an error), and the count.
    pub(super) async fn settle(
        &self,
        snapshot: &Snapshot,
        ask: &Settle<'_>,
        logged_input: Option<Value>,
        mut outcome: Result<Decision, DecideError>,
    ) -> (String, Result<Decision, DecideError>) {
        if ask.path.is_root() {
            // OPA leaves the reserved `system` namespace out of the whole data document.
            if let Ok(Decision {
                result: Some(root), ..
            }) = &mut outcome
            {
                if let Ok(map) = root.as_object_mut() {
                    map.remove(&Value::from("system"));
                }
            }
        }
        let decision_id = uuid::Uuid::new_v4().to_string();
        if let Some(log) = self.decision_log() {
            let metrics = opa_metrics(outcome.as_ref().ok(), ask.input_parse_ns, ask.started);
            let parts = EventParts {
                labels: log.labels(),
                decision_id: &decision_id,
                bundles: snapshot.revisions(),
                path: &ask.path.slashed(),
                query: None,
                input: logged_input,
                result: outcome.as_ref().ok().and_then(|d| d.result.clone()),
                error: match &outcome {
                    Err(e) => e.eval().map(event::error_value),
                    Ok(d) if d.result.is_none() && ask.undefined_is_error => {
                        Some(event::undefined(&undefined_message(snapshot, ask.path)))
                    }
                    Ok(_) => None,
                },
                request: ask.request,
                timestamp: SystemTime::now(),
                metrics: &metrics,
            };
            if let Err(why) = log.record(&snapshot.policy, parts).await {
                outcome = Err(DecideError::Refused(why));
            }
        }
        // Counted as answered: a decision its log refused is an error to its client.
        self.count(snapshot, ask.path, &outcome);
        (decision_id, outcome)
    }

    /// Evaluates an ad-hoc query on the snapshot active now and logs it, when decisions are
    /// logged, before anyone can answer it: OPA logs the query's text instead of a path, and
    /// the solutions' visible bindings (null when there are none) as the result.
    pub async fn query(
        &self,
        text: &str,
        input: Option<Value>,
        request: &RequestInfo,
        started: Instant,
    ) -> Queried {
        let snapshot = self.snapshot();
        let log = self.decision_log();
        let logged_input = log.and_then(|_| input.clone());
        let (on, owned) = (snapshot.clone(), text.to_string());
        // A query is the client's own Rego: it runs at a lowered priority, a few at a time.
        let mut outcome = super::priority::ad_hoc(move || on.policy.query(&owned, input))
            .await
            .unwrap_or(Err(EvalError::EngineFault))
            .map_err(|e| DecideError::Eval(module_ids_in_locations(e, snapshot.policy.modules())));
        let decision_id = uuid::Uuid::new_v4().to_string();
        // A query that does not parse is a bad request, not a decision: OPA logs none.
        let parsed = !matches!(outcome, Err(DecideError::Eval(EvalError::Parse(_))));
        if let Some(log) = log.filter(|_| parsed) {
            let result = outcome.as_ref().ok().map(|r| match r.result.is_empty() {
                true => Value::Null,
                false => Value::from(
                    r.result
                        .iter()
                        .map(|s| visible_bindings(&s.bindings))
                        .collect::<Vec<_>>(),
                ),
            });
            let parts = EventParts {
                labels: log.labels(),
                decision_id: &decision_id,
                bundles: snapshot.revisions(),
                path: "",
                query: Some(text),
                input: logged_input,
                result,
                error: outcome
                    .as_ref()
                    .err()
                    .and_then(DecideError::eval)
                    .map(event::error_value),
                request,
                timestamp: SystemTime::now(),
                metrics: &opa_metrics(None, None, started),
            };
            if let Err(why) = log.record(&snapshot.policy, parts).await {
                outcome = Err(DecideError::Refused(why));
            }
        }
        Queried {
            decision_id,
            snapshot,
            outcome,
        }
    }

    fn count(&self, snapshot: &Snapshot, path: &DataPath, outcome: &Result<Decision, DecideError>) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        // A client must not be able to grow the label set with made-up paths.
        let label = snapshot
            .policy
            .rule_document(path)
            .unwrap_or_else(|| "other".to_string());
        let (kind, eval) = match outcome {
            Ok(d) => (outcome_of(d.result.as_ref()), Some(d.eval_time)),
            Err(_) => (Outcome::Error, None),
        };
        metrics.decision(&label, kind, eval);
    }
}
