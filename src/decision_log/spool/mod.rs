//! The durable spool: every event is appended to a log of segment files before its decision
//! is answered, and leaves only once a collector has taken it (or the spool, full, drops it).
//!
//! Whoever holds the `Writer` owns the files. A decision that finds it free appends its own
//! event, in its own task, and gives it back: no thread or task hand-off, which measured
//! ~20 µs of CPU and a futex wake per decision at 5,000/s, more than the write. Decisions that
//! find it taken queue their event and wait; whoever gives the writer back with events queued
//! hands it to the drainer task, which appends them all with one write (group commit) and
//! answers each. Such an append goes only to the open segment's page cache and waits for no
//! device; it survives a crash of verdict, which is what `synchronous: normal` promises.
//! Everything that can wait for a device (`full`'s fdatasync per group, a new segment,
//! reading old events to drop them) runs on a blocking thread, and decisions queue up for the
//! next group meanwhile. Nothing is written twice (no WAL then checkpoint): a logged decision
//! costs its bytes once.
//!
//! The uploader never holds the writer while it waits for a file: it reads the oldest events
//! through a view of the segments (`read`), its acks are counted in memory, and the cursor
//! that records them is written beside the log (`cursor`). Events leave from the front only;
//! segments wholly behind the written cursor are deleted. A crash resends what was
//! acknowledged since the last cursor write (at least once; `decision_id` deduplicates).

mod cursor;
mod handoff;
mod migrate;
mod read;
mod segment;
#[cfg(test)]
mod tests;
mod writer;

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{SpoolConfig, Synchronous, WhenFull};
use crate::telemetry::metrics::SpoolMetrics;
use cursor::Persister;
use handoff::{drain, lock, stop, Queue, Shared, Upload};
use segment::{Log, Pos};
use writer::{Counts, Writer};

const LOCK_NAME: &str = "spool.lock";
/// A group that would take a segment past this size starts the next one: deleting whole
/// consumed segments is what gives space back, so they must not grow without bound.
const SEGMENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    #[error("the decision log spool is full ({0} bytes)")]
    Full(u64),
    #[error("decision log spool {path}: {message}")]
    Storage { path: String, message: String },
    #[error("the decision log spool has stopped")]
    Stopped,
    #[error("decision log spool segment consumed while it was read")]
    Consumed,
}

/// Events as the uploader takes them: their ids and JSON.
pub type Rows = Vec<(i64, Vec<u8>)>;

/// The oldest events, and whether they are all the spool held when it was read.
#[derive(Debug)]
pub struct Peeked {
    pub rows: Rows,
    pub all: bool,
    /// The cursor they were read from.
    from: Pos,
}

impl Peeked {
    /// What a collector took: these events up to and including the one with id `last`.
    pub fn through(&self, last: i64) -> Taken {
        let taken = self.rows.iter().take_while(|(id, _)| *id <= last);
        let (events, bytes, last) = taken.fold((0, 0, None), |(n, b, _), (id, e)| {
            (n + 1, b + e.len() as u64, Some(*id))
        });
        Taken {
            from: self.from,
            last: last.unwrap_or(i64::MIN),
            events,
            bytes,
        }
    }
}

/// Events a collector took, to acknowledge (see `Peeked::through`): always whole rows of one
/// read, so that an ack moves the cursor to the end of a frame it read.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    from: Pos,
    last: i64,
    events: u64,
    bytes: u64,
}

fn storage_error(path: &Path, e: &dyn std::fmt::Display) -> SpoolError {
    SpoolError::Storage {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
/// The limits and the policy when they are reached.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_events: Option<u64>,
    pub when_full: WhenFull,
}
/// A handle on the spool; cheap to clone. The files are let go once every handle is gone.
#[derive(Clone)]
pub struct Spool {
    queue: Shared,
    drainer: mpsc::UnboundedSender<Writer>,
    persister: Arc<Persister>,
    /// Closed when the drainer has ended and the files are let go.
    ended: watch::Receiver<()>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spool")
    }
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and starts its drainer task on the runtime this
    /// is called from (a blocking thread of it will do). Blocking.
    pub fn open(
        dir: &Path,
        config: &SpoolConfig,
        limits: Limits,
        metrics: Option<SpoolMetrics>,
    ) -> Result<Spool, SpoolError> {
        Spool::open_with(dir, config, limits, metrics, SEGMENT_BYTES)
    }

    /// `open` with the segment size as a parameter, so that tests can roll segments.
    fn open_with(
        dir: &Path,
        config: &SpoolConfig,
        limits: Limits,
        metrics: Option<SpoolMetrics>,
        segment_bytes: u64,
    ) -> Result<Spool, SpoolError> {
        let storage = |e: &dyn std::fmt::Display| storage_error(dir, e);
        std::fs::create_dir_all(dir).map_err(|e| storage(&e))?;
        // A second verdict on the same spool would upload and delete the first one's events;
        // it fails at start instead. The lock goes with the writer.
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_NAME))
            .map_err(|e| storage(&e))?;
        lock.try_lock()
            .map_err(|e| storage(&format!("in use by another process ({e})")))?;
        let full = config.synchronous == Synchronous::Full;
        let (mut log, found) = Log::open(dir, full, segment_bytes)?;
        let mut counts = Counts {
            events: found.events,
            bytes: found.bytes,
        };
        let taken = migrate::take_over(&mut log)?;
        counts.events += taken.events;
        counts.bytes += taken.bytes;
        let persister = Arc::new(Persister::new(dir, full));
        let writer = Writer {
            log,
            limits,
            counts,
            metrics,
            persister: persister.clone(),
            _lock: lock,
        };
        if counts.events > 0 {
            let Counts { events, bytes } = counts;
            tracing::info!(path = %dir.display(), events, bytes, "decision log spool has events to upload");
        }
        writer.publish();
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| storage(&e))?;
        let queue: Shared = Arc::new(Mutex::new(Queue {
            writer: Some(writer),
            ..Queue::default()
        }));
        let (drainer, writers) = mpsc::unbounded_channel();
        let (end, ended) = watch::channel(());
        let draining = runtime.spawn(drain(queue.clone(), writers, end));
        let watched = queue.clone();
        runtime.spawn(async move {
            // A drainer that panicked took the writer with it: say so to everyone waiting.
            if draining.await.is_err() {
                stop(&watched);
            }
        });
        Ok(Spool {
            queue,
            drainer,
            persister,
            ended,
        })
    }

    /// Commits one event; returns once it is durable (or refused).
    pub async fn append(&self, event: Vec<u8>) -> Result<(), SpoolError> {
        let mut events = [event];
        let taken = {
            let mut queue = lock(&self.queue);
            if queue.stopped {
                return Err(SpoolError::Stopped);
            }
            match queue.writer.take() {
                Some(writer) if writer.in_page_cache(&events) => Ok(writer),
                taken => {
                    let (done, wait) = oneshot::channel();
                    queue.appends.push((std::mem::take(&mut events[0]), done));
                    Err((taken, wait))
                }
            }
        };
        match taken {
            Ok(mut writer) => {
                let committed = catch_unwind(AssertUnwindSafe(move || {
                    let outcome = writer.commit(&events).pop();
                    writer.publish();
                    (writer, outcome)
                }));
                let Ok((writer, outcome)) = committed else {
                    stop(&self.queue);
                    return Err(SpoolError::Stopped);
                };
                self.give_back(writer);
                outcome.unwrap_or(Err(SpoolError::Stopped))
            }
            Err((taken, wait)) => {
                // Taken but not writable here (full, a new segment, `full` sync): the drainer
                // commits it on a blocking thread.
                if let Some(writer) = taken {
                    self.to_drainer(writer);
                }
                wait.await.map_err(|_| SpoolError::Stopped)?
            }
        }
    }

    /// The oldest events, at most `max_bytes` of them (at least one), read on a blocking
    /// thread while decisions go on being committed.
    pub async fn peek(&self, max_bytes: usize) -> Result<Peeked, SpoolError> {
        let view = self.upload(Upload::View).await?;
        tokio::task::spawn_blocking(move || view.peek(max_bytes))
            .await
            .map_err(|_| SpoolError::Stopped)?
    }

    /// Deletes the events a collector took; returns how many that removed. Returns once the
    /// cursor that says so is written (or could not be: then the next ack writes it, and a
    /// crash before resends them).
    pub async fn ack(&self, taken: Taken) -> Result<u64, SpoolError> {
        if taken.events == 0 {
            return Ok(0);
        }
        let acked = self.upload(|done| Upload::Ack(taken, done)).await?;
        let persister = self.persister.clone();
        let _ = tokio::task::spawn_blocking(move || writer::flush(&persister)).await;
        Ok(acked)
    }

    /// Lets go of this handle and waits until the files are let go too (once every handle
    /// is gone), so that the directory can be removed.
    pub async fn close(self) {
        let mut ended = self.ended.clone();
        drop(self);
        while ended.changed().await.is_ok() {}
    }
}
