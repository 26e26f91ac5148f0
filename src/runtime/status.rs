//! Per-bundle status in OPA's status-API shape: active revision, last activation, and the
//! error of the last failed load, so a rejected bundle is visible while the old one serves.

use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::policy::{CompileError, RegoError};

#[derive(Debug, Clone, Serialize)]
pub struct BundleStatus {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub active_revision: String,
    #[serde(
        serialize_with = "rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_successful_activation: Option<SystemTime>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u64,
    /// When verdict last read the bundle's files, successfully or not.
    #[serde(
        serialize_with = "rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_request: Option<SystemTime>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub code: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RegoError>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BundleStatus {
    pub fn new(name: &str) -> Self {
        BundleStatus {
            name: name.to_string(),
            active_revision: String::new(),
            last_successful_activation: None,
            kind: "snapshot",
            size: 0,
            last_request: None,
            code: String::new(),
            message: String::new(),
            errors: Vec::new(),
        }
    }

    pub fn activated(&mut self, revision: &str, size: u64, at: SystemTime) {
        self.active_revision = revision.to_string();
        self.size = size;
        self.last_successful_activation = Some(at);
        self.last_request = Some(at);
        self.clear_error();
    }

    pub fn clear_error(&mut self) {
        self.code.clear();
        self.message.clear();
        self.errors.clear();
    }

    /// Records a failed load or activation the way OPA's bundle plugin does.
    pub fn failed_load(&mut self, message: String, at: SystemTime) {
        self.last_request = Some(at);
        self.code = "bundle_error".into();
        self.message = message;
        self.errors.clear();
    }

    pub fn failed_compile(&mut self, error: &CompileError, at: SystemTime) {
        self.failed_load(error.status_message(), at);
        self.errors = error.errors().to_vec();
    }
}

/// OPA's timestamps: RFC 3339 with nanoseconds, in UTC.
pub fn rfc3339(t: SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = t.into();
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

fn rfc3339_opt<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}
