//! The decision core of admission: one review against the matching constraints of a set,
//! within a deadline, answered as Gatekeeper answers. Transport-free: the HTTPS adapter,
//! `verdict verify` and decision logging all go through `AdmissionSet::evaluate`.

use std::time::Instant;

use regorus::Value;
use serde_json::Value as Json;

use super::matching::{labels_of, Target};
use super::resources::Action;
use super::review::{text, AdmissionResponse, Review};
use super::set::AdmissionSet;
use super::template::{input_value, RunError};
use super::FailurePolicy;

/// One violation of one constraint.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Violation {
    pub constraint_kind: String,
    pub constraint_name: String,
    pub action: Action,
    pub msg: String,
    #[serde(skip_serializing_if = "Json::is_null")]
    pub details: Json,
}

/// A constraint that could not be evaluated for this review.
#[derive(Debug, Clone)]
pub struct Failure {
    pub constraint_kind: String,
    pub constraint_name: String,
    pub error: RunError,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.constraint_name, self.error)
    }
}

/// Everything one review produced: the answer, plus what decision logs and `verify` need.
#[derive(Debug, Clone)]
pub struct AdmissionDecision {
    pub response: AdmissionResponse,
    /// Every violation, dry-run ones included.
    pub violations: Vec<Violation>,
    pub failures: Vec<Failure>,
}

/// Which constraints a review runs against: all, or those of one kind (`/v1/admit/{kind}`).
#[derive(Debug, Clone, Copy, Default)]
pub enum Scope<'a> {
    #[default]
    All,
    Kind(&'a str),
}

impl AdmissionSet {
    /// Runs every matching constraint and answers. Blocking and CPU-bound.
    pub fn evaluate(
        &self,
        review: &Review,
        scope: Scope<'_>,
        policy: FailurePolicy,
        deadline: Instant,
    ) -> AdmissionDecision {
        let (violations, failures) = self.violations(review, scope, deadline);
        let response = respond(review.uid(), &violations, &failures, policy);
        for v in violations.iter().filter(|v| v.action == Action::Dryrun) {
            tracing::info!(constraint = %v.constraint_name, kind = %v.constraint_kind, msg = %v.msg, "dryrun violation");
        }
        AdmissionDecision {
            response,
            violations,
            failures,
        }
    }

    /// The violations of every matching constraint (and the constraints that failed).
    pub fn violations(
        &self,
        review: &Review,
        scope: Scope<'_>,
        deadline: Instant,
    ) -> (Vec<Violation>, Vec<Failure>) {
        let request = &review.request;
        let namespace = match text(&request["namespace"]) {
            "" => text(&request["object"]["metadata"]["namespace"]),
            namespace => namespace,
        };
        // Gatekeeper matches the object and the old object, and applies a constraint when
        // either matches (an UPDATE that removes a selected label is still reviewed).
        let targets: Vec<Target<'_>> = [&request["object"], &request["oldObject"]]
            .into_iter()
            .filter(|o| o.as_object().is_ok())
            .map(|o| self.target(request, o, namespace))
            .collect();
        let mut input_review = None;
        let mut violations = Vec::new();
        let mut failures = Vec::new();
        for constraint in &self.constraints {
            if let Scope::Kind(kind) = scope {
                if constraint.kind() != kind {
                    continue;
                }
            }
            let fail = |error| Failure {
                constraint_kind: constraint.kind().to_string(),
                constraint_name: constraint.name().to_string(),
                error,
            };
            match matches_any(&constraint.matcher, &targets) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    failures.push(fail(RunError::Rego(e)));
                    continue;
                }
            }
            // Built once, for the first constraint that matches: most reviews match few.
            let review_value =
                input_review.get_or_insert_with(|| self.input_review(request, namespace));
            let input = input_value(review_value.clone(), constraint.parameters.clone());
            let budget = deadline.saturating_duration_since(Instant::now());
            match constraint.template.violations(input, budget) {
                Ok(found) => violations.extend(found.into_iter().map(|v| Violation {
                    constraint_kind: constraint.kind().to_string(),
                    constraint_name: constraint.name().to_string(),
                    action: constraint.action(),
                    msg: v.msg,
                    details: v.details,
                })),
                Err(error) => failures.push(fail(error)),
            }
        }
        (violations, failures)
    }

    /// What matching sees of `object`: its own group, kind and name (as Gatekeeper reads
    /// them from the object), the request's namespace, the namespace's labels when known.
    fn target<'a>(&self, request: &'a Value, object: &'a Value, namespace: &'a str) -> Target<'a> {
        let group = match object["apiVersion"].as_string() {
            Ok(v) => v.rsplit_once('/').map_or("", |(g, _)| g),
            Err(_) => text(&request["kind"]["group"]),
        };
        let kind = match text(&object["kind"]) {
            "" => text(&request["kind"]["kind"]),
            kind => kind,
        };
        let name = match text(&object["metadata"]["name"]) {
            "" => text(&request["name"]),
            name => name,
        };
        Target {
            group,
            kind,
            name,
            // Gatekeeper clears the namespace of Namespace objects (server-side apply sets it).
            namespace: if kind == "Namespace" && group.is_empty() {
                ""
            } else {
                namespace
            },
            labels: labels_of(object),
            namespace_labels: self.inventory.namespace_labels(namespace),
        }
    }

    /// `input.review`: the request, with `namespaceObject` when the inventory has it. The
    /// request is shared, not copied: only its top level is written.
    fn input_review(&self, request: &Value, namespace: &str) -> Value {
        let mut request = request.clone();
        if let (Ok(fields), Some(ns)) = (
            request.as_object_mut(),
            self.inventory.namespaces.get(namespace),
        ) {
            let key = Value::from("namespaceObject");
            if !fields.contains_key(&key) {
                fields.insert(key, ns.clone());
            }
        }
        request
    }
}

/// True when the constraint applies to the object or the old object; an error when there is
/// neither, or when a namespace selector cannot be decided.
fn matches_any(matcher: &super::matching::Match, targets: &[Target<'_>]) -> Result<bool, String> {
    if targets.is_empty() {
        return Err("the request has neither object nor oldObject".into());
    }
    for target in targets {
        if matcher.matches(target).map_err(|e| e.to_string())? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Gatekeeper's answer: any deny violation rejects with 403 and `[name] msg` lines; warn
/// violations become warnings; dryrun ones are only recorded. A constraint that could not be
/// evaluated rejects (500) or warns, by the failure policy, unless a deny already rejects.
pub fn respond(
    uid: &str,
    violations: &[Violation],
    failures: &[Failure],
    policy: FailurePolicy,
) -> AdmissionResponse {
    let lines = |action: Action| {
        let mut lines: Vec<String> = violations
            .iter()
            .filter(|v| v.action == action)
            .map(|v| format!("[{}] {}", v.constraint_name, v.msg))
            .collect();
        lines.sort();
        lines
    };
    let deny = lines(Action::Deny);
    let mut warnings = lines(Action::Warn);
    for f in failures {
        tracing::warn!(constraint = %f.constraint_name, kind = %f.constraint_kind, error = %f.error, "admission evaluation failed");
    }
    if !deny.is_empty() {
        let mut response = AdmissionResponse::rejected(uid, 403, "Forbidden", deny.join("\n"));
        response.warnings = warnings;
        return response;
    }
    if failures.is_empty() {
        return AdmissionResponse::allowed(uid, warnings);
    }
    let mut errors: Vec<String> = failures.iter().map(ToString::to_string).collect();
    errors.sort();
    match policy {
        FailurePolicy::Fail => {
            let mut response = AdmissionResponse::rejected(
                uid,
                500,
                "InternalError",
                format!("admission review failed: {}", errors.join("\n")),
            );
            response.warnings = warnings;
            response
        }
        FailurePolicy::Ignore => {
            warnings.extend(
                errors
                    .into_iter()
                    .map(|e| format!("admission review failed, ignored: {e}")),
            );
            AdmissionResponse::allowed(uid, warnings)
        }
    }
}
