//! Uploads spooled events to the `decision_logs` service as OPA does: a POST of a gzip'd
//! JSON array to the resource (default `/logs`), every `min_delay`..`max_delay` seconds, in
//! chunks under `upload_size_limit_bytes`. Anything but a 2xx is a failure: the events stay
//! in the spool and the upload is retried with backoff and jitter. Events leave the spool only
//! once the collector answered 2xx, so a crash between the two resends them (at least once;
//! `decision_id` lets the collector deduplicate). Spools left by processes that ended (a
//! restart, the old pod of a rollout) are uploaded too, then removed.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::{poller::retry_delay, Client, ClientError};
use crate::decision_log::spool::{Rows, Spool, SpoolError};
use crate::decision_log::{Orphans, Upload, SPOOL_PREFIX};
use crate::telemetry::metrics::SpoolMetrics;

/// Why an upload round failed: the events stay in the spool and the round is retried.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("compressing events: {0}")]
    Compress(std::io::Error),
    /// The collector did not answer within the service's response header timeout.
    #[error("{url}: no response from the collector")]
    NoResponse { url: String },
    #[error("{url}: {error}")]
    Request { url: String, error: reqwest::Error },
    /// Anything but a 2xx.
    #[error("{url}: server replied with HTTP {status}")]
    Rejected { url: String, status: u16 },
}

/// The first read from the spool takes this many times the upload limit (JSON events compress
/// about this well); later reads are sized by the compression the last chunk saw.
const READ_FACTOR: usize = 8;

pub struct Uploader {
    spool: Spool,
    orphans: Orphans,
    client: Client,
    url: String,
    reporting: crate::config::ReportingConfig,
    metrics: Option<SpoolMetrics>,
}

/// The spool directories under `root` other than `own`. Blocking.
fn orphan_dirs(root: &Path, own: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(SPOOL_PREFIX))
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p != own)
        .collect();
    dirs.sort();
    dirs
}

impl Uploader {
    /// The uploader of `upload`, with a client for its service. Blocking: reads TLS files.
    pub fn new(upload: Upload) -> Result<Uploader, ClientError> {
        let client = Client::new(&upload.service)?;
        let url = client.url(&upload.resource);
        Ok(Uploader {
            spool: upload.spool,
            orphans: upload.orphans,
            client,
            url,
            reporting: upload.reporting,
            metrics: upload.metrics,
        })
    }

    /// Uploads forever: after each full flush a random delay, after a failure a backoff.
    pub async fn run(self) {
        let mut failures = 0u32;
        let mut delay = std::time::Duration::ZERO;
        loop {
            tokio::time::sleep(delay).await;
            let flushed = match self.flush().await {
                Ok(events) => self.adopt_orphans().await.map(|orphaned| events + orphaned),
                Err(error) => Err(error),
            };
            match flushed {
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
            delay = if failures == 0 {
                let (min, max) = (self.reporting.min_delay(), self.reporting.max_delay());
                min + (max - min).mul_f64(fastrand::f64())
            } else {
                retry_delay(failures, self.reporting.max_delay())
            };
        }
    }

    /// Uploads everything spooled when it starts, chunk by chunk; returns how many events left
    /// the spool.
    pub async fn flush(&self) -> Result<u64, UploadError> {
        self.flush_spool(&self.spool).await
    }

    /// Takes over the spools that ended processes left, uploads them and removes them;
    /// returns how many events they held. One still in use is left for a later round.
    async fn adopt_orphans(&self) -> Result<u64, UploadError> {
        let (root, own) = (self.orphans.root.clone(), self.orphans.own.clone());
        let dirs = tokio::task::spawn_blocking(move || orphan_dirs(&root, &own))
            .await
            .unwrap_or_default();
        let mut sent = 0;
        for dir in dirs {
            let (config, limits) = (self.orphans.config.clone(), self.orphans.limits);
            let opening = dir.clone();
            let opened =
                tokio::task::spawn_blocking(move || Spool::open(&opening, &config, limits, None))
                    .await;
            let Ok(Ok(orphan)) = opened else {
                continue;
            };
            let events = self.flush_spool(&orphan).await?;
            // Its cursor is written as it closes: only then can the directory go.
            orphan.close().await;
            sent += events;
            let removing = dir.clone();
            let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&removing))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match removed {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), events, "decision log spool of an ended process uploaded and removed")
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), events, %error, "decision log spool of an ended process uploaded; cannot remove it")
                }
            }
        }
        Ok(sent)
    }

    async fn flush_spool(&self, spool: &Spool) -> Result<u64, UploadError> {
        let limit = usize::try_from(self.reporting.upload_size_limit_bytes).unwrap_or(usize::MAX);
        let mut read = limit.saturating_mul(READ_FACTOR);
        let mut sent = 0;
        loop {
            let peeked = spool.peek(read).await?;
            let Some(&(last_read, _)) = peeked.rows.last() else {
                return Ok(sent);
            };
            // Compressing is CPU work of milliseconds: a request must not wait behind it.
            let (peeked, chunked) = tokio::task::spawn_blocking(move || {
                let chunked = chunk(&peeked.rows, limit);
                (peeked, chunked)
            })
            .await
            .map_err(|e| UploadError::Compress(std::io::Error::other(e)))?;
            let (body, taken, raw) = chunked?;
            // The next read is sized by how well these events compressed, so that it fills
            // one chunk without being compressed twice.
            let ratio = raw as f64 / body.len().max(1) as f64;
            read = ((limit as f64 * ratio * 0.9) as usize).max(1);
            self.post(body).await?;
            let acked = spool
                .ack(peeked.through(taken.unwrap_or(last_read)))
                .await?;
            if let Some(m) = &self.metrics {
                m.uploaded(acked);
            }
            sent += acked;
            // That was all the spool held: events logged meanwhile wait for the next round.
            // Otherwise a steady stream of decisions would keep this loop posting a handful of
            // events at a time, forever, and spools of ended processes would never be reached.
            if peeked.all && taken.is_none() {
                return Ok(sent);
            }
        }
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), UploadError> {
        let request = self.client.post(&self.url).await?;
        let request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::CONTENT_ENCODING, "gzip")
            .body(body);
        // A collector that hangs must not hold the spool's events forever: give up, retry.
        let response = tokio::time::timeout(self.client.response_header_timeout, request.send())
            .await
            .map_err(|_| UploadError::NoResponse {
                url: self.url.clone(),
            })?
            .map_err(|error| UploadError::Request {
                url: self.url.clone(),
                error,
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(UploadError::Rejected {
                url: self.url.clone(),
                status: status.as_u16(),
            })
        }
    }
}

/// The gzip'd array of the first events of `rows` that fits in `limit` (at least one event,
/// whatever its size: an event is never left behind for being large), the id of its last event
/// when it is not the last of `rows`, and its size before compression.
fn chunk(rows: &Rows, limit: usize) -> Result<(Vec<u8>, Option<i64>, usize), UploadError> {
    let mut take = rows.len();
    loop {
        let body = gzip_array(&rows[..take]).map_err(UploadError::Compress)?;
        if body.len() <= limit || take == 1 {
            let raw = rows[..take].iter().map(|(_, e)| e.len() + 1).sum();
            let last = (take < rows.len()).then(|| rows[take - 1].0);
            return Ok((body, last, raw));
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
        let (body, last, raw) = chunk(&rows, 1024).unwrap();
        let taken = rows.iter().position(|r| Some(r.0) == last).unwrap() + 1;
        assert!(body.len() <= 1024 && taken < 200 && taken > 1);
        let events: Vec<serde_json::Value> = serde_json::from_str(&gunzip(&body)).unwrap();
        assert_eq!(events.len(), taken);
        assert_eq!(
            raw,
            gunzip(&body).len() - 1,
            "each event and its comma or bracket"
        );
        let (all, last, _) = chunk(&rows, 1 << 20).unwrap();
        assert_eq!(last, None, "all of them");
        assert!(gunzip(&all).starts_with("[{\"decision_id\":\"0-"));
    }

    #[test]
    fn a_single_large_event_still_goes() {
        let rows: Rows = vec![(1, vec![b'1'; 10_000])];
        let (body, last, _) = chunk(&rows, 10).unwrap();
        assert!(body.len() > 10 && last.is_none());
    }
}
