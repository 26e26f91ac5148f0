//! Gatekeeper's model: ConstraintTemplates and Constraints read from files (`files`), compiled
//! into an immutable `AdmissionSet`, and a transport-free `evaluate` from an AdmissionReview to
//! an AdmissionResponse; `suite` runs gator test suites on the same core. The webhook's
//! listener is `server::admission`, its live state and reloads are the runtime's.
//!
//! Facts carried over from Gatekeeper (its code does not): `input.review` is the
//! AdmissionRequest (with `object` set to `oldObject` on DELETE), `input.parameters` the
//! Constraint's `spec.parameters` with schema defaults; `spec.match` as Gatekeeper's matcher;
//! deny messages `[constraint] msg` joined by newlines with code 403, warnings as `warnings`.

pub mod evaluate;
pub mod files;
pub mod inventory;
pub mod matching;
pub mod resources;
pub mod review;
pub mod schema;
pub mod set;
pub mod suite;
pub mod template;

use std::path::PathBuf;

pub use crate::config::{AdmissionConfig, FailurePolicy};
pub use evaluate::{AdmissionDecision, Violation};
pub use files::{load_set, policy_trees};
pub use review::{AdmissionResponse, Review, ReviewError};
pub use set::AdmissionSet;

/// Why a template, constraint or inventory file was not loaded. Each is reported on its own:
/// the rest of the set keeps working.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum LoadError {
    #[error("{}: cannot read: {message}", file.display())]
    Read { file: PathBuf, message: String },
    #[error("{}: not a Kubernetes object: {message}", file.display())]
    Parse { file: PathBuf, message: String },
    #[error("ConstraintTemplate {name}: {message}")]
    Template { name: String, message: String },
    #[error("ConstraintTemplate {name}: Rego error: {message}")]
    Rego { name: String, message: String },
    #[error("{kind} {name}: no ConstraintTemplate defines kind {kind}")]
    NoTemplate { kind: String, name: String },
    #[error("{kind} {name}: {message}")]
    Constraint {
        kind: String,
        name: String,
        message: String,
    },
}
