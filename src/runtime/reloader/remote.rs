//! Remote bundles in the reloader: what the pollers report, folded into statuses and
//! reload batches, and the persistence of activated downloads.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Batch, Reloader};
use crate::bundle::{persist, LoadError, Location, Source};

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

impl Reloader {
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
                status.downloaded(at, request_time);
                batch.which.insert(i);
                batch.downloads.insert(i, bytes);
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

    /// Writes activated downloads to their persistence directories, in activation order. A
    /// failure (a full disk) is logged and the bundle keeps serving from memory.
    pub(super) async fn persist(
        &self,
        accepted: &BTreeSet<usize>,
        downloads: BTreeMap<usize, Bytes>,
    ) {
        for (i, bytes) in downloads {
            let Some(source) = self.sources.get(i) else {
                continue;
            };
            let Location::Remote {
                persist_dir: Some(dir),
            } = &source.location
            else {
                continue;
            };
            if !accepted.contains(&i) {
                continue;
            }
            let dir = dir.clone();
            let name = source.name.clone();
            let written = tokio::task::spawn_blocking(move || persist::write(&dir, &bytes)).await;
            match written {
                Ok(Ok(())) => tracing::debug!(bundle = %name, "bundle persisted"),
                Ok(Err(e)) => {
                    tracing::error!(bundle = %name, error = %e, "cannot persist the bundle; it serves from memory and the previous persisted copy stays")
                }
                Err(e) => tracing::error!(bundle = %name, error = %e, "bundle persistence stopped"),
            }
        }
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
