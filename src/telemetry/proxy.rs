//! The authorizing proxy's metric families, by listener: requests by how they ended, the
//! upstream's response codes and its latency (kept apart from decision latency, which
//! `verdict_evaluation_duration_seconds` already has), and failures to reach the upstream.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The upstream answers in around a millisecond on a node; the tail matters up to seconds.
const UPSTREAM_BUCKETS: &[f64] = &[1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.25, 1.0, 5.0];

#[derive(Clone)]
pub struct ProxyMetrics {
    requests: IntCounterVec,
    upstream_responses: IntCounterVec,
    upstream_failures: IntCounterVec,
    upstream_duration: HistogramVec,
}

/// How a proxied request ended, for the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyOutcome {
    /// Allowed and forwarded (whatever the upstream then answered).
    Forwarded,
    /// Denied by the policy.
    Denied,
    /// The decision failed (evaluation error, undefined, wrong shape): denied, fail closed.
    DecisionError,
    /// Refused before deciding: an ambiguous path, a smuggling shape, a bad or stalled body.
    Refused,
    /// Allowed, but the upstream could not be reached or did not answer.
    UpstreamFailed,
}

impl ProxyOutcome {
    pub fn label(self) -> &'static str {
        match self {
            ProxyOutcome::Forwarded => "forwarded",
            ProxyOutcome::Denied => "denied",
            ProxyOutcome::DecisionError => "decision_error",
            ProxyOutcome::Refused => "refused",
            ProxyOutcome::UpstreamFailed => "upstream_failed",
        }
    }
}

impl ProxyMetrics {
    pub(super) fn new() -> Result<ProxyMetrics, prometheus::Error> {
        Ok(ProxyMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "verdict_proxy_requests_total",
                    "Requests at a proxy listener by outcome: forwarded, denied, decision_error, refused, upstream_failed.",
                ),
                &["listener", "outcome"],
            )?,
            upstream_responses: IntCounterVec::new(
                Opts::new(
                    "verdict_proxy_upstream_responses_total",
                    "Responses from the upstream by status code.",
                ),
                &["listener", "code"],
            )?,
            upstream_failures: IntCounterVec::new(
                Opts::new(
                    "verdict_proxy_upstream_failures_total",
                    "Forwarded requests the upstream did not answer: connect, timeout or error (reset, bad response).",
                ),
                &["listener", "reason"],
            )?,
            upstream_duration: HistogramVec::new(
                HistogramOpts::new(
                    "verdict_proxy_upstream_duration_seconds",
                    "Time from forwarding a request to the upstream's response head.",
                )
                .buckets(UPSTREAM_BUCKETS.to_vec()),
                &["listener"],
            )?,
        })
    }

    pub(super) fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.requests.clone()))?;
        registry.register(Box::new(self.upstream_responses.clone()))?;
        registry.register(Box::new(self.upstream_failures.clone()))?;
        registry.register(Box::new(self.upstream_duration.clone()))
    }

    pub fn request(&self, listener: &str, outcome: ProxyOutcome) {
        self.requests
            .with_label_values(&[listener, outcome.label()])
            .inc();
    }

    pub fn upstream_response(&self, listener: &str, code: u16, took: Duration) {
        self.upstream_responses
            .with_label_values(&[listener, &code.to_string()])
            .inc();
        self.upstream_duration
            .with_label_values(&[listener])
            .observe(took.as_secs_f64());
    }

    pub fn upstream_failure(&self, listener: &str, reason: &str) {
        self.upstream_failures
            .with_label_values(&[listener, reason])
            .inc();
    }
}
