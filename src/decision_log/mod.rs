//! Decision logs: one event per decision, in OPA's format, masked and dropped by the bundle's
//! own policies, written to the console and/or committed to the durable spool before the
//! decision is answered, and uploaded from there to the `decision_logs` service.
//!
//! Every transport decides through `runtime::AppState::decide`, which calls `record` here: so
//! no transport can answer a decision that was not logged.

pub mod event;
pub mod mask;
pub mod spool;
mod throttle;

use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use regorus::Value;

use crate::config::{
    Config, DecisionLogsConfig, ReportingConfig, ServiceConfig, SpoolConfig, WhenFull,
};
use crate::policy::{DataPath, PolicySet};
use crate::telemetry::metrics::SpoolMetrics;
pub use event::{EventParts, RequestInfo};
use spool::{Limits, Spool, SpoolError};

#[derive(Debug, thiserror::Error)]
pub enum DecisionLogError {
    #[error("decision_logs.{field}: {message}")]
    Config {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// What the uploader of the spooled events needs: the spool, the spools other processes
/// left, and where to send them.
pub struct Upload {
    pub spool: Spool,
    pub orphans: Orphans,
    pub service: ServiceConfig,
    /// The path under the service's URL (OPA's `resource`, default `/logs`).
    pub resource: String,
    pub reporting: ReportingConfig,
    pub metrics: Option<SpoolMetrics>,
}

/// Where other processes' spools may be left, and how to open one.
pub struct Orphans {
    pub root: PathBuf,
    /// This process's own spool directory, never taken over.
    pub own: PathBuf,
    pub config: SpoolConfig,
    pub limits: Limits,
}

/// The decision logger of a running verdict, built once at start.
pub struct DecisionLog {
    labels: Value,
    mask: Option<DataPath>,
    drop: Option<DataPath>,
    console: bool,
    spool: Option<Spool>,
    when_full: WhenFull,
    headers: Vec<String>,
    metrics: Option<SpoolMetrics>,
}

impl std::fmt::Debug for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionLog")
            .field("console", &self.console)
            .field("spool", &self.spool.is_some())
            .finish_non_exhaustive()
    }
}

impl DecisionLog {
    /// The logger `config` asks for, and what its uploader needs when events go to a
    /// service; `None` when decisions are not logged. Blocking: opens the spool.
    pub fn open(
        config: &Config,
        labels: &std::collections::BTreeMap<String, String>,
        metrics: Option<SpoolMetrics>,
    ) -> Result<Option<(DecisionLog, Option<Upload>)>, DecisionLogError> {
        let Some(dl) = config.decision_logs.as_ref().filter(|d| d.enabled()) else {
            return Ok(None);
        };
        let path = |field: &'static str, text: &str| {
            if text.is_empty() {
                return Ok(None);
            }
            DataPath::parse(text)
                .map(Some)
                .map_err(|e| DecisionLogError::Config {
                    field,
                    message: e.to_string(),
                })
        };
        let spool_config = &config.verdict.decision_logs;
        let (spool, uploader) = match &dl.service {
            Some(service) => {
                let root = spool_root(config);
                let own = root.join(format!("{SPOOL_PREFIX}{}", uuid::Uuid::new_v4()));
                let limits = limits(dl, spool_config);
                let spool = Spool::open(&own, spool_config, limits, metrics.clone())?;
                let orphans = Orphans {
                    root,
                    own,
                    config: spool_config.clone(),
                    limits,
                };
                let upload = upload(config, dl, service, spool.clone(), orphans, metrics.clone())?;
                (Some(spool), Some(upload))
            }
            None => (None, None),
        };
        let log = DecisionLog {
            labels: event::labels(labels),
            mask: path("mask_decision", &dl.mask_decision)?,
            drop: path("drop_decision", &dl.drop_decision)?,
            console: dl.console,
            spool,
            when_full: spool_config.when_full,
            headers: dl.request_context.http.headers.clone(),
            metrics,
        };
        Ok(Some((log, uploader)))
    }

    pub fn labels(&self) -> &Value {
        &self.labels
    }

    /// The configured request headers (`request_context.http.headers`) that `headers` holds,
    /// as events carry them.
    pub fn http_headers(&self, headers: &axum::http::HeaderMap) -> Vec<(String, Vec<String>)> {
        self.headers
            .iter()
            .filter_map(|name| {
                let values: Vec<String> = headers
                    .get_all(name.as_str())
                    .iter()
                    .filter_map(|v| v.to_str().ok().map(str::to_string))
                    .collect();
                (!values.is_empty()).then(|| (name.clone(), values))
            })
            .collect()
    }

    /// Masks, drops, writes and spools one event. `Err` means the decision must not be
    /// answered: its event could not be kept and the spool is configured to refuse.
    pub async fn record(
        &self,
        policy: &PolicySet,
        parts: EventParts<'_>,
    ) -> Result<(), SpoolError> {
        let defined =
            |path: &Option<DataPath>| path.as_ref().is_some_and(|p| policy.has_rules_at(p));
        if !self.console && !defined(&self.mask) && !defined(&self.drop) {
            // Nothing reads the event as a Rego value: its JSON is written straight away.
            return match &self.spool {
                Some(spool) => self.spool(spool, parts.to_json()).await,
                None => Ok(()),
            };
        }
        let mut event = parts.build();
        if let Some(drop) = &self.drop {
            match mask::dropped(policy, drop, &event) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "drop_decision policy failed; event kept"),
            }
        }
        if let Some(path) = &self.mask {
            let applied = match mask::mask(policy, path, &mut event) {
                Ok(applied) => applied,
                Err(error) => {
                    tracing::warn!(%error, "mask_decision policy failed; input and result erased from the event");
                    if let Some(m) = &self.metrics {
                        m.mask_error();
                    }
                    mask::erase_all(&mut event)
                }
            };
            if let Ok(map) = event.as_object_mut() {
                for (field, paths) in [("erased", applied.erased), ("masked", applied.masked)] {
                    if !paths.is_empty() {
                        let list: Vec<Value> = paths.into_iter().map(Value::from).collect();
                        map.insert(Value::from(field), Value::from(list));
                    }
                }
            }
        }
        let kept = match &self.spool {
            Some(spool) => self.spool(spool, event::to_json(&event)).await,
            None => Ok(()),
        };
        // After the spool: a decision refused for want of room was never answered, and its
        // console line would say otherwise.
        if self.console && kept.is_ok() {
            let line = event::console_line(&event, SystemTime::now());
            // One write per line: lines of concurrent decisions never interleave.
            let _ = std::io::stderr().lock().write_all(&line);
        }
        kept
    }

    /// Commits one event. When it cannot be kept, `refuse` refuses its decision and anything
    /// else drops the event; either is counted exactly (the spool counts what a full spool
    /// refused or dropped itself) and logged at most once a minute, with the count since.
    async fn spool(&self, spool: &Spool, event: Vec<u8>) -> Result<(), SpoolError> {
        let Err(e) = spool.append(event).await else {
            return Ok(());
        };
        let refuse = self.when_full == WhenFull::Refuse;
        let reason = match e {
            SpoolError::Full(_) => "too_large",
            _ => "spool_error",
        };
        if let Some(m) = &self.metrics {
            match (refuse, &e) {
                (true, SpoolError::Full(_)) => {}
                (true, _) => m.refused(1),
                (false, _) => m.dropped(reason, 1),
            }
        }
        if let Some(held_back) = LOST.admit() {
            match refuse {
                true => {
                    tracing::error!(error = %e, since_last_line = held_back, "decision log event not kept: decisions refused")
                }
                false => {
                    tracing::error!(error = %e, reason, since_last_line = held_back, "decision log event not kept: events dropped")
                }
            }
        }
        if refuse {
            Err(e)
        } else {
            Ok(())
        }
    }
}

/// The decision log's failure line: once a minute, whatever the rate of decisions.
static LOST: throttle::Throttle = throttle::Throttle::new(std::time::Duration::from_secs(60));

fn limits(dl: &DecisionLogsConfig, spool: &crate::config::SpoolConfig) -> Limits {
    Limits {
        max_bytes: dl
            .reporting
            .buffer_size_limit_bytes
            .unwrap_or(spool.max_bytes),
        max_events: dl.reporting.buffer_size_limit_events,
        when_full: spool.when_full,
    }
}

fn upload(
    config: &Config,
    dl: &DecisionLogsConfig,
    service: &str,
    spool: Spool,
    orphans: Orphans,
    metrics: Option<SpoolMetrics>,
) -> Result<Upload, DecisionLogError> {
    let Some(service) = config.remote.service(service) else {
        return Err(DecisionLogError::Config {
            field: "service",
            message: format!("unknown service {service:?}"),
        });
    };
    let resource = match (&dl.resource, &dl.partition_name) {
        (Some(resource), _) => resource.clone(),
        (None, Some(partition)) => format!("/logs/{partition}"),
        (None, None) => "/logs".into(),
    };
    Ok(Upload {
        spool,
        orphans,
        service: service.clone(),
        resource,
        reporting: dl.reporting.clone(),
        metrics,
    })
}

/// Each process spools into a directory of its own under the root, named with this prefix:
/// during a rolling update the new pod starts while the old one still holds its spool on the
/// same volume, and neither may wait for the other.
pub const SPOOL_PREFIX: &str = "spool-";

/// Where the spools of `config` live: `<persistence_directory>/decision-logs` unless set.
pub fn spool_root(config: &Config) -> PathBuf {
    config
        .verdict
        .decision_logs
        .directory
        .clone()
        .unwrap_or_else(|| config.remote.persistence_directory.join("decision-logs"))
}
