//! OPA's `decision_logs` section, plus verdict's spool settings under `verdict.decision_logs`:
//! where decision events go (console, a service), how they are batched, masked and dropped,
//! and what happens when the on-disk spool is full.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::ConfigError;

/// `decision_logs`, as OPA reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct DecisionLogsConfig {
    /// The service (of `services`) events are uploaded to.
    #[serde(default)]
    pub service: Option<String>,
    /// Where on the service events are POSTed (OPA's default `/logs`).
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub partition_name: Option<String>,
    #[serde(default)]
    pub reporting: ReportingConfig,
    /// One JSON line per decision on stderr.
    #[serde(default)]
    pub console: bool,
    #[serde(default = "default_mask")]
    pub mask_decision: String,
    #[serde(default = "default_drop")]
    pub drop_decision: String,
    #[serde(default)]
    pub request_context: RequestContextConfig,
    /// A custom Go plugin: cannot exist in verdict, refused rather than ignored.
    #[serde(default)]
    pub plugin: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestContextConfig {
    #[serde(default)]
    pub http: HttpContextConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct HttpContextConfig {
    /// Request headers copied into each event's `request_context.http.headers`.
    #[serde(default)]
    pub headers: Vec<String>,
}

/// `decision_logs.reporting`. Delays may have fractions in verdict (OPA takes whole seconds).
#[derive(Debug, Clone, Deserialize)]
pub struct ReportingConfig {
    /// The spool's size limit. OPA's in-memory buffer limit; verdict's buffer is on disk.
    #[serde(default)]
    pub buffer_size_limit_bytes: Option<u64>,
    #[serde(default)]
    pub buffer_size_limit_events: Option<u64>,
    /// OPA's `size` or `event`: both name an in-memory buffer; the spool replaces either.
    #[serde(default)]
    pub buffer_type: Option<String>,
    /// Largest gzip'd body of one upload (OPA's default 32 KiB).
    #[serde(default = "default_upload_limit")]
    pub upload_size_limit_bytes: u64,
    #[serde(default = "default_min_delay")]
    pub min_delay_seconds: f64,
    #[serde(default = "default_max_delay")]
    pub max_delay_seconds: f64,
    #[serde(default)]
    pub trigger: Option<String>,
}

impl Default for ReportingConfig {
    fn default() -> Self {
        ReportingConfig {
            buffer_size_limit_bytes: None,
            buffer_size_limit_events: None,
            buffer_type: None,
            upload_size_limit_bytes: default_upload_limit(),
            min_delay_seconds: default_min_delay(),
            max_delay_seconds: default_max_delay(),
            trigger: None,
        }
    }
}

fn default_mask() -> String {
    "/system/log/mask".into()
}

fn default_drop() -> String {
    "/system/log/drop".into()
}

fn default_upload_limit() -> u64 {
    32768
}

fn default_min_delay() -> f64 {
    300.0
}

fn default_max_delay() -> f64 {
    600.0
}

impl ReportingConfig {
    pub fn min_delay(&self) -> Duration {
        Duration::from_secs_f64(self.min_delay_seconds)
    }

    pub fn max_delay(&self) -> Duration {
        Duration::from_secs_f64(self.max_delay_seconds)
    }
}

impl DecisionLogsConfig {
    /// Reads the section; `None` when absent.
    pub fn from_section(section: Option<&Json>) -> Result<Option<Self>, ConfigError> {
        let Some(section) = section else {
            return Ok(None);
        };
        let config: DecisionLogsConfig = super::typed(section.clone(), "decision_logs")?;
        config.validate()?;
        Ok(Some(config))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("decision_logs: {m}")));
        if let Some(plugin) = &self.plugin {
            return invalid(&format!(
                "plugin {plugin:?}: custom decision log plugins are Go code and cannot run in verdict"
            ));
        }
        let r = &self.reporting;
        if !(r.min_delay_seconds.is_finite() && r.max_delay_seconds.is_finite())
            || r.min_delay_seconds < 0.0
            || r.max_delay_seconds < r.min_delay_seconds
        {
            return invalid("reporting: min_delay_seconds must be at most max_delay_seconds");
        }
        if r.buffer_size_limit_bytes.is_some() && r.buffer_size_limit_events.is_some() {
            return invalid(
                "reporting: only one of buffer_size_limit_events and buffer_size_limit_bytes can be set",
            );
        }
        if r.upload_size_limit_bytes == 0 {
            return invalid("reporting: upload_size_limit_bytes must be positive");
        }
        if let Some(trigger) = r.trigger.as_deref() {
            if trigger != "periodic" {
                return invalid(&format!(
                    "reporting: trigger {trigger:?} is not supported (only periodic)"
                ));
            }
        }
        Ok(())
    }

    /// Whether events leave the process at all; responses carry `decision_id` only then.
    pub fn enabled(&self) -> bool {
        self.console || self.service.is_some()
    }
}

/// What to do with a new event when the spool is at its limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// OPA's behaviour: the oldest events make room, counted and logged.
    #[default]
    DropOldest,
    /// The decision is refused with an error: no payment is decided without its audit record.
    Refuse,
}

/// How hard the spool syncs each group commit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Synchronous {
    /// Committed events survive a crash of verdict (written to the OS before the answer).
    #[default]
    Normal,
    /// Also a power loss, for an fdatasync per group commit.
    Full,
}

/// `verdict.decision_logs`: the spool, verdict's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Where the spools live, one directory per process; `<persistence_directory>/decision-logs`
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<PathBuf>,
    #[serde(default)]
    pub when_full: WhenFull,
    #[serde(default)]
    pub synchronous: Synchronous,
    /// The size limit when `reporting.buffer_size_limit_bytes` is not set: a spool without
    /// one would fill the disk that bundles and pushed data persist to.
    #[serde(default = "default_spool_limit")]
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            directory: None,
            when_full: WhenFull::default(),
            synchronous: Synchronous::default(),
            max_bytes: default_spool_limit(),
        }
    }
}

fn default_spool_limit() -> u64 {
    512 << 20
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_opas_section_with_defaults() {
        let c = DecisionLogsConfig::from_section(Some(&json!({"console": true})))
            .unwrap()
            .unwrap();
        assert!(c.console && c.enabled());
        assert_eq!(c.mask_decision, "/system/log/mask");
        assert_eq!(c.reporting.upload_size_limit_bytes, 32768);
        assert_eq!(c.reporting.min_delay(), Duration::from_secs(300));
        assert!(DecisionLogsConfig::from_section(None).unwrap().is_none());
    }

    #[test]
    fn refuses_what_cannot_work() {
        for bad in [
            json!({"plugin": "my_plugin"}),
            json!({"reporting": {"min_delay_seconds": 5, "max_delay_seconds": 1}}),
            json!({"reporting": {"buffer_size_limit_bytes": 5, "buffer_size_limit_events": 1}}),
            json!({"reporting": {"trigger": "manual"}}),
            json!({"console": "yes"}),
        ] {
            assert!(
                DecisionLogsConfig::from_section(Some(&bad)).is_err(),
                "{bad}"
            );
        }
    }
}
