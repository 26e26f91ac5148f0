//! The bundle poller: downloads one remote bundle the way OPA's bundle plugin does.
//!
//! Conditional GETs with `If-None-Match`; long polling with `Prefer: wait=N` while the server
//! answers with OPA's bundle media type; a random delay between `min_delay_seconds` and
//! `max_delay_seconds` after a success, and after a failure OPA's retries: at once, then an
//! exponential backoff with jitter. The ETag moves forward only once the reloader has
//! activated what was downloaded, so a bundle that fails to activate is fetched again rather
//! than skipped.

use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::StatusCode;
use tokio::sync::{mpsc, oneshot};

use super::{Client, ClientError};
use crate::config::PollingConfig;
use crate::runtime::{RemoteEvent, Trigger};

/// The media type with which a server tells OPA it supports long polling.
const LONG_POLL_MEDIA_TYPE: &str = "application/vnd.openpolicyagent.bundles";

/// First retry delay after a failure (OPA's minimum retry delay).
const RETRY_BASE: Duration = Duration::from_millis(100);

pub struct Poller {
    /// Index of the bundle among the reloader's sources.
    pub index: usize,
    pub name: String,
    pub url: String,
    pub client: Client,
    pub polling: PollingConfig,
    /// Largest download accepted, before decompression.
    pub size_limit: u64,
    pub triggers: mpsc::UnboundedSender<Trigger>,
}

/// What one request brought back.
enum Fetched {
    Bundle {
        bytes: Bytes,
        etag: Option<String>,
        long_poll: bool,
    },
    NotModified,
}

/// Why a download failed, in OPA's words: the status report carries them, and dashboards
/// are keyed on them.
#[derive(Debug, thiserror::Error)]
enum DownloadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("no response from the server within {}s", .0.as_secs())]
    NoResponse(Duration),
    #[error("{}", request_error(.0))]
    Request(reqwest::Error),
    #[error("server replied with {}", .0.canonical_reason().unwrap_or("an error"))]
    Status(StatusCode),
    #[error("bundle exceeds the size limit of {0} bytes")]
    TooLarge(u64),
    #[error("the server stopped sending the bundle")]
    Stalled,
    #[error("bundle download interrupted: {}", request_error(.0))]
    Interrupted(reqwest::Error),
}

impl DownloadError {
    /// The HTTP status of a server that answered with an error.
    fn http_code(&self) -> Option<u16> {
        match self {
            DownloadError::Status(status) => Some(status.as_u16()),
            _ => None,
        }
    }
}

impl Poller {
    /// Polls until the reloader goes away.
    pub async fn run(self) {
        let long_poll_wait = self.polling.long_polling_timeout_seconds;
        // OPA asks for a long poll from the first request when it is configured, and keeps
        // doing so only while the server answers with its bundle media type.
        let mut long_poll = long_poll_wait.is_some();
        let mut etag: Option<String> = None;
        let mut failures: u32 = 0;
        loop {
            let started = Instant::now();
            let wait = long_poll_wait.filter(|_| long_poll);
            let result = self.fetch(etag.as_deref(), wait).await;
            let at = SystemTime::now();
            let request_time = started.elapsed();
            // Straight back to the server only while it holds long polls: after a new bundle
            // (the next request, with its ETag, will be held) or after a 304 that was held.
            // A 304 that comes at once (a proxy ignoring `wait`) or a bundle without an ETag
            // would otherwise turn the loop into a busy one.
            let mut again_at_once = false;
            let ok = match result {
                Ok(Fetched::NotModified) => {
                    tracing::debug!(bundle = %self.name, "bundle not modified");
                    again_at_once =
                        wait.is_some_and(|w| request_time * 2 >= Duration::from_secs(w));
                    self.send(RemoteEvent::NotModified { at, request_time })
                        .then_some(true)
                }
                Ok(Fetched::Bundle {
                    bytes,
                    etag: new_etag,
                    long_poll: server_long_polls,
                }) => {
                    long_poll = long_poll_wait.is_some() && server_long_polls;
                    let (done, activated) = oneshot::channel();
                    let event = RemoteEvent::Downloaded {
                        bytes,
                        at,
                        request_time,
                        done,
                    };
                    if !self.send(event) {
                        return;
                    }
                    match activated.await {
                        Ok(true) => {
                            again_at_once = new_etag.is_some();
                            etag = new_etag;
                            Some(true)
                        }
                        Ok(false) => Some(false),
                        Err(_) => return,
                    }
                }
                Err(failure) => {
                    tracing::warn!(bundle = %self.name, error = %failure, "bundle download failed; retrying with backoff (an active revision, if any, keeps serving)");
                    self.send(RemoteEvent::Failed {
                        at,
                        request_time,
                        http_code: failure.http_code(),
                        message: failure.to_string(),
                    })
                    .then_some(false)
                }
            };
            let Some(ok) = ok else { return };
            let delay = if ok {
                failures = 0;
                if long_poll && again_at_once {
                    Duration::ZERO
                } else {
                    between(
                        self.polling.min_delay_seconds,
                        self.polling.max_delay_seconds,
                    )
                }
            } else {
                failures = failures.saturating_add(1);
                retry_delay(
                    failures,
                    Duration::from_secs(self.polling.max_delay_seconds),
                )
            };
            tokio::time::sleep(delay).await;
        }
    }

    fn send(&self, event: RemoteEvent) -> bool {
        self.triggers
            .send(Trigger::Remote(self.index, event))
            .is_ok()
    }

    async fn fetch(&self, etag: Option<&str>, wait: Option<u64>) -> Result<Fetched, DownloadError> {
        // Delta bundles are applied to the bundle serving (`bundle::delta`), as OPA does.
        let prefer = match wait {
            Some(w) => format!("modes=snapshot,delta;wait={w}"),
            None => "modes=snapshot,delta".to_string(),
        };
        let mut request = self.client.get(&self.url).await?.header("Prefer", prefer);
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        // The server may hold a long poll for `wait` seconds before it answers.
        let header_timeout = self
            .client
            .response_header_timeout
            .saturating_add(Duration::from_secs(wait.unwrap_or(0)));
        let response = match tokio::time::timeout(header_timeout, request.send()).await {
            Err(_) => return Err(DownloadError::NoResponse(header_timeout)),
            Ok(Err(e)) => return Err(DownloadError::Request(e)),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_MODIFIED => return Ok(Fetched::NotModified),
            other => return Err(DownloadError::Status(other)),
        }
        let long_poll = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(LONG_POLL_MEDIA_TYPE));
        let new_etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = self.read_body(response).await?;
        Ok(Fetched::Bundle {
            bytes,
            etag: new_etag,
            long_poll,
        })
    }

    /// Reads the body under the size limit; a peer that stops sending for the header timeout
    /// fails the download instead of holding it forever.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, DownloadError> {
        if response
            .content_length()
            .is_some_and(|n| n > self.size_limit)
        {
            return Err(DownloadError::TooLarge(self.size_limit));
        }
        let mut body = BytesMut::new();
        loop {
            let chunk = tokio::time::timeout(self.client.response_header_timeout, response.chunk())
                .await
                .map_err(|_| DownloadError::Stalled)?
                .map_err(DownloadError::Interrupted)?;
            let Some(chunk) = chunk else { break };
            if body.len() as u64 + chunk.len() as u64 > self.size_limit {
                return Err(DownloadError::TooLarge(self.size_limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// The whole cause chain of a request error: reqwest's top line alone says only "error
/// sending request".
fn request_error(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A random delay between the two bounds, so 50 nodes do not poll in step.
fn between(min_seconds: u64, max_seconds: u64) -> Duration {
    let min = Duration::from_secs(min_seconds);
    let span = Duration::from_secs(max_seconds.saturating_sub(min_seconds));
    min + span.mul_f64(fastrand::f64())
}

/// How long to wait after `failures` failed attempts in a row, as OPA's downloader and
/// decision-log plugin wait (its `DefaultBackoff`): the first retry at once (a blip costs one
/// round trip), then 100 ms × 1.6ⁿ with ±20% jitter, so that nodes that lost the server
/// together do not come back together, capped at `max` but never below 100 ms, so that
/// `max_delay_seconds: 0` is no busy loop. Bundle downloads, decision-log and status uploads
/// all retry by it.
pub fn retry_delay(failures: u32, max: Duration) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let grown = RETRY_BASE.as_secs_f64() * 1.6f64.powi(failures.saturating_sub(1).min(64) as i32);
    let capped = grown.min(max.max(RETRY_BASE).as_secs_f64());
    Duration::from_secs_f64(capped).mul_f64(0.8 + 0.4 * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_come_at_once_then_as_opa_backs_off_under_the_cap() {
        let max = Duration::from_secs(3);
        assert_eq!(retry_delay(1, max), Duration::ZERO);
        let second = retry_delay(2, max);
        assert!(second >= Duration::from_millis(128) && second <= Duration::from_millis(192));
        let fourth = retry_delay(4, max);
        assert!(fourth >= Duration::from_millis(327) && fourth <= Duration::from_millis(492));
        assert!(retry_delay(10, max) >= Duration::from_millis(2400));
        for failures in 2..80 {
            let d = retry_delay(failures, max);
            assert!(d <= max.mul_f64(1.2), "{failures}: {d:?}");
            assert!(retry_delay(failures, Duration::ZERO) >= Duration::from_millis(80));
        }
        let d = between(2, 3);
        assert!(d >= Duration::from_secs(2) && d <= Duration::from_secs(3));
    }
}
