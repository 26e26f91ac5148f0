//! The listeners' metric families: connections refused over the cap, and accepts that failed
//! (out of file descriptors), by listener.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Clone)]
pub struct ConnMetrics {
    refused: IntCounterVec,
    accept_failures: IntCounterVec,
}

impl ConnMetrics {
    pub(super) fn new() -> Result<ConnMetrics, prometheus::Error> {
        Ok(ConnMetrics {
            refused: IntCounterVec::new(
                Opts::new(
                    "verdict_connections_refused_total",
                    "Connections answered 503 and closed because the listener had max_connections open.",
                ),
                &["listener"],
            )?,
            accept_failures: IntCounterVec::new(
                Opts::new(
                    "verdict_accept_failures_total",
                    "Connections that could not be accepted (such as out of file descriptors).",
                ),
                &["listener"],
            )?,
        })
    }

    pub(super) fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.refused.clone()))?;
        registry.register(Box::new(self.accept_failures.clone()))
    }

    pub fn refused(&self, listener: &str) {
        self.refused.with_label_values(&[listener]).inc();
    }

    pub fn accept_failed(&self, listener: &str) {
        self.accept_failures.with_label_values(&[listener]).inc();
    }
}
