//! Uploads spooled events to the `decision_logs` service as OPA does: a POST of a gzip'd
//! JSON array to the resource (default `/logs`), every `min_delay`..`max_delay` seconds, in
//! chunks under `upload_size_limit_bytes`. Anything but a 2xx is a failure: the events stay
//! in the spool and the upload is retried with backoff and jitter. Events leave the spool only
//! once the collector answered 2xx, so a crash between the two resends them (at least once;
//! `decision_id` lets the collector deduplicate).

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::spool::{Rows, Spool};
use crate::config::ReportingConfig;
use crate::remote::{poller::backoff, Client};
use crate::telemetry::metrics::SpoolMetrics;

/// Events are read from the spool in slices of this many times the upload limit: JSON events
/// compress about this well, so a slice usually fills one chunk.
const READ_FACTOR: usize = 8;

pub struct Uploader {
    pub spool: Spool,
    pub client: Client,
    pub url: String,
    pub reporting: ReportingConfig,
    pub metrics: Option<SpoolMetrics>,
}

impl Uploader {
    /// Uploads forever: after each full flush a random delay, after a failure a backoff.
    pub async fn run(self) {
        let mut failures = 0u32;
        loop {
            let delay = if failures == 0 {
                let (min, max) = (self.reporting.min_delay(), self.reporting.max_delay());
                min + (max - min).mul_f64(fastrand::f64())
            } else {
                backoff(failures, self.reporting.max_delay())
            };
            tokio::time::sleep(delay).await;
            match self.flush().await {
                Ok(0) => failures = 0,
                Ok(events) => {
                    failures = 0;
                    tracing::debug!(events, "decision logs uploaded");
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if let Some(m) = &self.metrics {
                        m.upload_failed();
                    }
                    tracing::warn!(%error, failures, "decision log upload failed; events kept for retry");
                }
            }
        }
    }

    /// Uploads everything spooled, chunk by chunk; returns how many events left the spool.
    pub async fn flush(&self) -> Result<u64, String> {
        let limit = usize::try_from(self.reporting.upload_size_limit_bytes).unwrap_or(usize::MAX);
        let mut sent = 0;
        loop {
            let rows = self
                .spool
                .peek(limit.saturating_mul(READ_FACTOR))
                .await
                .map_err(|e| e.to_string())?;
            if rows.is_empty() {
                return Ok(sent);
            }
            let (body, taken) = chunk(&rows, limit)?;
            self.post(body).await?;
            let acked = self
                .spool
                .ack(rows[taken - 1].0)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(m) = &self.metrics {
                m.uploaded(acked);
            }
            sent += acked;
        }
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let request = self.client.post(&self.url).await?;
        let request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body);
        // A collector that hangs must not hold the spool's events forever: give up, retry.
        let response = tokio::time::timeout(self.client.response_header_timeout, request.send())
            .await
            .map_err(|_| format!("{}: no response from the collector", self.url))?
            .map_err(|e| format!("{}: {e}", self.url))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "{}: server replied with HTTP {}",
                self.url,
                status.as_u16()
            ))
        }
    }
}

/// The first events of `rows` whose gzip'd array fits in `limit` (at least one, whatever its
/// size: an event is never left behind for being large), and how many they are.
fn chunk(rows: &Rows, limit: usize) -> Result<(Vec<u8>, usize), String> {
    let mut take = rows.len();
    loop {
        let body = gzip_array(&rows[..take]).map_err(|e| format!("compressing events: {e}"))?;
        if body.len() <= limit || take == 1 {
            return Ok((body, take));
        }
        take = (take / 2).max(1);
    }
}

fn gzip_array(rows: &[(i64, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(b"[")?;
    for (i, (_, event)) in rows.iter().enumerate() {
        if i > 0 {
            gz.write_all(b",")?;
        }
        gz.write_all(event)?;
    }
    gz.write_all(b"]")?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(b)
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn chunks_are_json_arrays_under_the_limit() {
        let rows: Rows = (0..200)
            .map(|i| {
                (
                    i,
                    format!("{{\"decision_id\":\"{i}-{}\"}}", fastrand::u64(..)).into_bytes(),
                )
            })
            .collect();
        let (body, taken) = chunk(&rows, 1024).unwrap();
        assert!(body.len() <= 1024 && taken < 200 && taken > 1);
        let events: Vec<serde_json::Value> = serde_json::from_str(&gunzip(&body)).unwrap();
        assert_eq!(events.len(), taken);
        let (all, taken) = chunk(&rows, 1 << 20).unwrap();
        assert_eq!(taken, 200);
        assert!(gunzip(&all).starts_with("[{\"decision_id\":\"0-"));
    }

    #[test]
    fn a_single_large_event_still_goes() {
        let rows: Rows = vec![(1, vec![b'1'; 10_000])];
        assert_eq!(chunk(&rows, 10).unwrap().1, 1);
    }
}
