//! The status plugin: uploads OPA's status report to a service on start and whenever a
//! bundle's status changes, and logs it when `console` is on.
//!
//! Only the latest report matters, so changes that arrive during an upload or a backoff are
//! folded into the next one; a failed upload is retried with backoff and jitter. Each report
//! that does not reach the service on its own is counted under OPA's name for it,
//! `counter_status_dropped_buffer_limit_exceeded`: a failed upload's (its news goes in the
//! next one), and every change but the first that arrives while an upload or a retry is under
//! way (one waits for the next report, as in OPA's one-report buffer; the others are
//! replaced before they are sent).

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use tokio::sync::watch;

use super::poller::retry_delay;
use super::{Client, ClientError};
use crate::runtime::{status, AppState, ReloadProgress};

/// Why a status report could not be delivered; the next change or retry sends a newer one.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{0}")]
    Encode(#[from] serde_json::Error),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("no response from the status service")]
    NoResponse,
    #[error("{0}")]
    Request(#[from] reqwest::Error),
    #[error("status service replied with {0}")]
    Rejected(reqwest::StatusCode),
}

/// The longest wait between retries of a failed upload.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

pub struct StatusUploader {
    /// Absent when only `console` is on.
    upload: Option<(Client, String)>,
    console: bool,
    state: Arc<AppState>,
    changes: watch::Receiver<ReloadProgress>,
    /// The report taken when the plugin started, with the changes seen until then.
    first: Option<(u64, status::Report)>,
}

impl StatusUploader {
    /// The plugin, with its first report taken now: the start-up creates it before the bundle
    /// pollers and the decision-log uploader start, as OPA's status plugin starts before its
    /// bundle and discovery plugins have news, so news that comes while the first report is
    /// under way is folded and counted by the same rule as later.
    pub fn new(upload: Option<(Client, String)>, console: bool, state: Arc<AppState>) -> Self {
        let mut changes = state.subscribe();
        let before = changes.borrow_and_update().status_updates;
        let first = Some((before, status::report(&state)));
        StatusUploader {
            upload,
            console,
            state,
            changes,
            first,
        }
    }

    pub async fn run(mut self) {
        let mut failures = 0u32;
        loop {
            let (before, report) = match self.first.take() {
                Some(first) => first,
                None => (
                    self.changes.borrow_and_update().status_updates,
                    status::report(&self.state),
                ),
            };
            if self.console {
                match serde_json::to_string(&report) {
                    Ok(text) => tracing::info!(report = %text, "status report"),
                    Err(e) => tracing::warn!(error = %e, "cannot encode the status report"),
                }
            }
            let sent = match &self.upload {
                Some((client, url)) => self.send(client, url, &report).await,
                None => Ok(()),
            };
            match sent {
                Ok(()) => {
                    failures = 0;
                    self.dropped(self.changes.borrow().status_updates - before, 0);
                    if self.changes.changed().await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, "status upload failed; retrying");
                    self.dropped(0, 1);
                    tokio::time::sleep(retry_delay(failures, MAX_RETRY_DELAY)).await;
                    self.dropped(self.changes.borrow().status_updates - before, 0);
                }
            }
        }
    }

    /// Counts the reports lost: `failed` that were not delivered, and all but the first of
    /// `changes` that came while one was under way.
    fn dropped(&self, changes: u64, failed: u64) {
        if let Some(metrics) = &self.state.metrics {
            let dropped = failed + changes.saturating_sub(1);
            if dropped > 0 {
                metrics.status_reports_dropped_add(dropped);
            }
        }
    }

    async fn send(
        &self,
        client: &Client,
        url: &str,
        report: &status::Report,
    ) -> Result<(), StatusError> {
        let body = serde_json::to_vec(report)?;
        let request = client
            .post(url)
            .await?
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let response = tokio::time::timeout(client.response_header_timeout, request.send())
            .await
            .map_err(|_| StatusError::NoResponse)??;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(StatusError::Rejected(response.status()))
        }
    }
}
