//! Remote bundles in the reloader: what the pollers report, folded into statuses and
//! reload batches, and the persistence of activated downloads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Batch, Reloader};
use crate::bundle::{persist, Bundle, BundleError, LoadError, Location, Source};
use crate::policy::{self, CompileError};
use crate::runtime::BundleStatus;

/// A downloaded bundle waiting in a batch.
pub(super) struct Download {
    pub bytes: Bytes,
    pub at: SystemTime,
    pub request_time: Duration,
}

impl Download {
    /// OPA reports a download's size as it came over the wire.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Records the request in the status, with how long reading it took (`read`). As in OPA,
    /// a download that cannot be read (not gzip, torn, unverified, bad manifest) is a failed
    /// request, while one that reads but does not activate (data outside its roots, a compile
    /// error) was still downloaded.
    pub fn record(
        &self,
        status: &mut BundleStatus,
        loaded: &Result<Bundle, LoadError>,
        read: Duration,
    ) {
        let downloaded = match loaded {
            Ok(_) => true,
            Err(e) => matches!(e.error, BundleError::DataOutsideRoots { .. }),
        };
        if downloaded {
            status.downloaded(self.at, self.request_time);
        } else {
            status.requested(self.at, self.request_time);
        }
        status.read_in(read);
    }
}

/// What a bundle poller reports.
#[derive(Debug)]
pub enum RemoteEvent {
    /// A new bundle arrived; `done` learns whether it is now the active one.
    Downloaded {
        bytes: Bytes,
        at: SystemTime,
        request_time: Duration,
        done: oneshot::Sender<bool>,
    },
    /// The server answered 304.
    NotModified {
        at: SystemTime,
        request_time: Duration,
    },
    /// The request failed or the server answered an error.
    Failed {
        at: SystemTime,
        request_time: Duration,
        message: String,
        http_code: Option<u16>,
    },
}

impl RemoteEvent {
    /// How long the request behind this news took.
    pub fn request_time(&self) -> Duration {
        match self {
            RemoteEvent::Downloaded { request_time, .. }
            | RemoteEvent::NotModified { request_time, .. }
            | RemoteEvent::Failed { request_time, .. } => *request_time,
        }
    }
}

impl Reloader {
    /// Reads a download as OPA's bundle reader does: its files and signature, then every
    /// module parsed (timed as `timer_rego_module_parse_ns`), then its roots, so that a module
    /// that does not parse is the download's error even where the roots are wrong too. `None`
    /// when a module does not parse: the download is refused and its status says why.
    pub(super) fn read_download(
        &mut self,
        i: usize,
        d: &Download,
    ) -> Option<Result<Bundle, LoadError>> {
        let source = self.sources.get(i)?;
        let serving = self.active.get(i)?.as_deref();
        let reading = Instant::now();
        let (loaded, parse) = match Bundle::read_download(source, &d.bytes, self.load) {
            Ok(bundle) if !bundle.modules.is_empty() => {
                match policy::parse_timed(bundle, self.compile) {
                    (Ok(bundle), parse) => (bundle.finish_download(source, serving), parse),
                    (Err(e), parse) => {
                        self.unparsed(i, d, &e, reading.elapsed(), parse);
                        return None;
                    }
                }
            }
            Ok(bundle) => (bundle.finish_download(source, serving), None),
            Err(e) => (Err(e), None),
        };
        let status = self.statuses.get_mut(i)?;
        d.record(status, &loaded, reading.elapsed());
        status.parsed_in(parse);
        Some(loaded)
    }

    /// A download refused because a module does not parse: as in OPA, a failed request (the
    /// last successful download stays the earlier one) whose errors are the parser's.
    fn unparsed(
        &mut self,
        i: usize,
        d: &Download,
        error: &CompileError,
        read: Duration,
        parse: Option<Duration>,
    ) {
        let (Some(source), Some(status)) = (self.sources.get(i), self.statuses.get_mut(i)) else {
            return;
        };
        status.requested(d.at, d.request_time);
        status.read_in(read);
        status.parsed_in(parse);
        let rejected = status.rejection_message();
        tracing::error!(bundle = %source.name, error = %error, "{rejected}");
        status.failed_compile(error, SystemTime::now());
    }

    /// Records a poller's news: a download joins the batch, anything else only changes the
    /// bundle's status.
    pub(super) fn remote_event(&mut self, batch: &mut Batch, i: usize, event: RemoteEvent) {
        let Some(status) = self.statuses.get_mut(i) else {
            return;
        };
        match event {
            RemoteEvent::Downloaded {
                bytes,
                at,
                request_time,
                done,
            } => {
                batch.which.insert(i);
                batch.downloads.insert(
                    i,
                    Download {
                        bytes,
                        at,
                        request_time,
                    },
                );
                batch.replies.push((i, done));
            }
            RemoteEvent::NotModified { at, request_time } => {
                status.not_modified(at, request_time);
                batch.status_changed = true;
            }
            RemoteEvent::Failed {
                at,
                request_time,
                message,
                http_code,
            } => {
                status.failed_request(message, http_code, at, request_time);
                batch.status_changed = true;
            }
        }
    }

    /// Writes activated downloads whose content is not persisted yet to their persistence
    /// directories, in activation order, and returns the bundles whose write failed. A
    /// failure (a full disk) shows in the status; the bundle serves from memory meanwhile.
    pub(super) async fn persist(
        &mut self,
        accepted: &BTreeSet<usize>,
        downloads: BTreeMap<usize, Download>,
    ) -> BTreeSet<usize> {
        let mut failed = BTreeSet::new();
        for (i, download) in downloads {
            let Some(source) = self.sources.get(i) else {
                continue;
            };
            let Location::Remote {
                persist_dir: Some(dir),
            } = &source.location
            else {
                continue;
            };
            let fingerprint = self.active[i].as_ref().map(|b| b.fingerprint);
            if !accepted.contains(&i) || self.persisted[i] == fingerprint {
                continue;
            }
            // A delta's bytes are patches, not a bundle to start from; as OPA, the snapshot
            // they patched stays the persisted one.
            if self.active[i].as_ref().is_some_and(|b| b.from_delta) {
                continue;
            }
            let dir = dir.clone();
            let name = source.name.clone();
            let bytes = download.bytes;
            let written = tokio::task::spawn_blocking(move || persist::write(&dir, &bytes)).await;
            let error = match written {
                Ok(Ok(())) => {
                    tracing::debug!(bundle = %name, "bundle persisted");
                    self.persisted[i] = fingerprint;
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::error!(bundle = %name, error = %error, "cannot persist the bundle; it serves from memory, and the download is retried");
            self.statuses[i].failed_load(format!("failed to persist bundle: {error}"), download.at);
            failed.insert(i);
        }
        failed
    }
}

pub(super) fn note_unusable_persisted(source: &Source, error: &LoadError) {
    match &source.location {
        Location::Remote {
            persist_dir: Some(dir),
        } if persist::path(dir).exists() => {
            tracing::error!(bundle = %source.name, error = %error, "persisted bundle ignored: it is not a whole, valid bundle; waiting for the bundle server")
        }
        Location::Remote {
            persist_dir: Some(_),
        } => {
            tracing::info!(bundle = %source.name, "no persisted bundle yet; waiting for the bundle server")
        }
        _ => tracing::info!(bundle = %source.name, "waiting for the bundle server"),
    }
}
