//! The Gatekeeper-style admission webhook: ConstraintTemplates and Constraints read from files,
//! compiled into an immutable `AdmissionSet`, and a transport-free `evaluate` from an
//! AdmissionReview to an AdmissionResponse. The HTTPS listener (`https`, `http`) and the
//! reloader (`reload`) sit beside that core; `suite` runs gator test suites on the same core.
//!
//! Facts carried over from Gatekeeper (its code does not): `input.review` is the
//! AdmissionRequest (with `object` set to `oldObject` on DELETE), `input.parameters` the
//! Constraint's `spec.parameters` with schema defaults; `spec.match` as Gatekeeper's matcher;
//! deny messages `[constraint] msg` joined by newlines with code 403, warnings as `warnings`.

pub mod config;
pub mod evaluate;
pub mod http;
pub mod https;
pub mod inventory;
pub mod log;
pub mod matching;
pub mod reload;
pub mod resources;
pub mod review;
pub mod schema;
pub mod set;
pub mod suite;
pub mod template;

use std::path::PathBuf;

pub use config::{AdmissionConfig, FailurePolicy};
pub use evaluate::{AdmissionDecision, Violation};
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

/// Errors that stop the admission webhook from starting.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("admission TLS: {0}")]
    Tls(String),
    #[error("admission listener {addr}: {error}")]
    Bind { addr: String, error: std::io::Error },
    #[error("admission: {0}")]
    Start(String),
}
