//! The decision log spool's and uploads' metric families.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Why decision log events are lost: the spool was full and dropped its oldest, an event was
/// larger than the whole spool, or the spool could not be written.
pub const DROP_REASONS: [&str; 3] = ["spool_full", "too_large", "spool_error"];

/// The decision log spool and its uploads: how much waits on disk, what reached the
/// collector, what was lost and why, and what the mask policy could not do.
#[derive(Clone)]
pub struct SpoolMetrics {
    events: IntGauge,
    bytes: IntGauge,
    writes: IntCounter,
    uploaded: IntCounter,
    upload_failures: IntCounter,
    dropped: IntCounterVec,
    refused: IntCounter,
    mask_errors: IntCounter,
}

impl std::fmt::Debug for SpoolMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpoolMetrics")
    }
}

impl SpoolMetrics {
    pub(super) fn new() -> Result<SpoolMetrics, prometheus::Error> {
        Ok(SpoolMetrics {
            events: IntGauge::new(
                "verdict_decision_log_spool_events",
                "Decision log events on disk, not yet taken by the collector.",
            )?,
            bytes: IntGauge::new(
                "verdict_decision_log_spool_bytes",
                "Size of the decision log events on disk.",
            )?,
            writes: IntCounter::new(
                "verdict_decision_log_spool_writes_total",
                "Writes to the decision log spool, each committing a group of one or more events.",
            )?,
            uploaded: IntCounter::new(
                "verdict_decision_log_uploaded_events_total",
                "Decision log events the collector acknowledged.",
            )?,
            upload_failures: IntCounter::new(
                "verdict_decision_log_upload_failures_total",
                "Decision log uploads that failed and will be retried.",
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "verdict_decision_log_dropped_events_total",
                    "Decision log events lost, by reason.",
                ),
                &["reason"],
            )?,
            refused: IntCounter::new(
                "verdict_decision_log_refused_decisions_total",
                "Decisions refused because their event could not be spooled.",
            )?,
            mask_errors: IntCounter::new(
                "verdict_decision_log_mask_errors_total",
                "Events whose mask policy failed; their input and result were erased.",
            )?,
        })
    }

    pub(super) fn register(&self, r: &Registry) -> Result<(), prometheus::Error> {
        // Every reason shows, at 0, before anything is lost: an absent series would read as
        // "not measured" on a dashboard.
        for reason in DROP_REASONS {
            self.dropped.with_label_values(&[reason]);
        }
        r.register(Box::new(self.events.clone()))?;
        r.register(Box::new(self.bytes.clone()))?;
        r.register(Box::new(self.writes.clone()))?;
        r.register(Box::new(self.uploaded.clone()))?;
        r.register(Box::new(self.upload_failures.clone()))?;
        r.register(Box::new(self.dropped.clone()))?;
        r.register(Box::new(self.refused.clone()))?;
        r.register(Box::new(self.mask_errors.clone()))
    }

    pub fn depth(&self, events: u64, bytes: u64) {
        self.events.set(i64::try_from(events).unwrap_or(i64::MAX));
        self.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn written(&self) {
        self.writes.inc();
    }

    pub fn uploaded(&self, events: u64) {
        self.uploaded.inc_by(events);
    }

    pub fn upload_failed(&self) {
        self.upload_failures.inc();
    }

    /// `reason` is one of `DROP_REASONS`.
    pub fn dropped(&self, reason: &'static str, events: u64) {
        if events > 0 {
            self.dropped.with_label_values(&[reason]).inc_by(events);
        }
    }

    pub fn refused(&self, decisions: u64) {
        self.refused.inc_by(decisions);
    }

    pub fn mask_error(&self) {
        self.mask_errors.inc();
    }
}
