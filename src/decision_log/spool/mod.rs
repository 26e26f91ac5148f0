//! The durable spool: every event is appended to a log of segment files before its decision
//! is answered, and leaves only once a collector has taken it (or the spool, full, drops it).
//!
//! One writer thread owns the files. Requests hand it their event and wait; it appends
//! whatever has queued up meanwhile with one write (group commit), so that a write per event
//! is never paid under load and an idle spool answers at once. A write to the page cache
//! survives a crash of verdict, which is what `synchronous: normal` promises; `full` adds an
//! fdatasync per group for power loss. Unlike the SQLite layout this replaces, nothing is
//! written twice (no WAL then checkpoint) and nothing ever makes the writer wait for a
//! checkpoint: a logged decision costs its bytes once.
//!
//! Events leave from the front only: a cursor (see `segment`) marks the oldest live event;
//! segments wholly behind it are deleted. The cursor is written on ack, not per append, so a
//! crash resends what was acknowledged since (at least once; `decision_id` deduplicates).

mod migrate;
mod segment;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::Path;

use tokio::sync::{mpsc, oneshot};

use crate::config::{SpoolConfig, Synchronous, WhenFull};
use crate::telemetry::metrics::SpoolMetrics;
use segment::{Log, Pos};

const LOCK_NAME: &str = "spool.lock";

/// The most events committed in one write; bounds the wait of the last one in it.
const MAX_GROUP: usize = 4096;
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
}

/// Events as the uploader takes them: their ids and JSON.
pub type Rows = Vec<(i64, Vec<u8>)>;

fn storage_error(path: &Path, e: &dyn std::fmt::Display) -> SpoolError {
    SpoolError::Storage {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Where the writer thread answers one command.
type Reply<T> = oneshot::Sender<Result<T, SpoolError>>;

/// An event waiting for its commit, and who to tell.
type Pending = (Vec<u8>, Reply<()>);

enum Command {
    Append(Pending),
    Upload(Upload),
}

/// The uploader's side: read the oldest events, delete the ones a collector took.
enum Upload {
    Peek(usize, Reply<Rows>),
    Ack(i64, Reply<u64>),
}

/// The limits and the policy when they are reached.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_events: Option<u64>,
    pub when_full: WhenFull,
}

/// A handle on the spool's writer thread; cheap to clone.
#[derive(Debug, Clone)]
pub struct Spool {
    tx: mpsc::UnboundedSender<Command>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir` and starts its writer. Blocking.
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
        // it fails at start instead. The lock goes with the writer thread.
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
        let writer = Writer {
            log,
            limits,
            counts,
            metrics,
            _lock: lock,
        };
        if counts.events > 0 {
            let Counts { events, bytes } = counts;
            tracing::info!(path = %dir.display(), events, bytes, "decision log spool has events to upload");
        }
        writer.publish();
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("decision-log-spool".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| storage(&e))?;
        Ok(Spool { tx })
    }

    /// Commits one event; returns once it is durable (or refused).
    pub async fn append(&self, event: Vec<u8>) -> Result<(), SpoolError> {
        self.call(|done| Command::Append((event, done))).await
    }

    /// The oldest events, at most `max_bytes` of them (at least one).
    pub async fn peek(&self, max_bytes: usize) -> Result<Rows, SpoolError> {
        self.call(|done| Command::Upload(Upload::Peek(max_bytes, done)))
            .await
    }

    /// Deletes every event up to and including `last` (an id from `peek`), which a collector
    /// has taken; returns how many events that removed.
    pub async fn ack(&self, last: i64) -> Result<u64, SpoolError> {
        self.call(|done| Command::Upload(Upload::Ack(last, done)))
            .await
    }

    /// Hands one command to the writer thread and waits for its answer.
    async fn call<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, SpoolError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(command(done))
            .map_err(|_| SpoolError::Stopped)?;
        wait.await.map_err(|_| SpoolError::Stopped)?
    }
}

/// Live events (payload bytes: what the limits count).
#[derive(Debug, Clone, Copy)]
struct Counts {
    events: u64,
    bytes: u64,
}

impl Counts {
    fn room(&self, limits: &Limits, size: u64) -> bool {
        let events_ok = limits.max_events.is_none_or(|max| self.events < max);
        events_ok && self.bytes + size <= limits.max_bytes
    }
}

struct Writer {
    log: Log,
    limits: Limits,
    counts: Counts,
    metrics: Option<SpoolMetrics>,
    _lock: File,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut appends = Vec::new();
            let mut uploads = Vec::new();
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(pending) => appends.push(pending),
                    Command::Upload(upload) => uploads.push(upload),
                }
                if appends.len() < MAX_GROUP {
                    next = rx.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.commit(appends);
            }
            for upload in uploads {
                match upload {
                    Upload::Peek(max, done) => {
                        let _ = done.send(self.peek(max));
                    }
                    Upload::Ack(last, done) => {
                        let _ = done.send(self.ack(last));
                    }
                }
            }
            // A cursor moved by drops is written here, after the waiters were answered.
            self.save_cursor(false);
            self.publish();
        }
        self.save_cursor(true);
    }

    fn save_cursor(&mut self, now: bool) {
        if let Err(error) = self.log.save_cursor(now) {
            tracing::warn!(%error, "decision log spool cursor not written; retried later");
        }
    }

    /// One write for the whole group; every waiter learns the outcome of its own event.
    fn commit(&mut self, appends: Vec<Pending>) {
        let plan = match self.plan(&appends) {
            Ok(plan) => plan,
            Err(error) => return fail(appends, &error),
        };
        let kept = plan.kept.iter().map(|&i| appends[i].0.as_slice());
        if let Err(error) = self.log.append(kept) {
            return fail(appends, &error);
        }
        self.log.set_cursor(plan.front);
        self.counts = plan.counts;
        let dropped = plan.dropped;
        let refused = plan.outcomes.iter().filter(|o| o.is_err()).count() as u64;
        if let Some(m) = &self.metrics {
            m.dropped("spool_full", dropped);
            m.refused(refused);
        }
        let limit = self.limits.max_bytes;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                limit,
                "decision log spool full: oldest events dropped"
            );
        }
        if refused > 0 {
            tracing::warn!(refused, limit, "decision log spool full: decisions refused");
        }
        for ((_, done), outcome) in appends.into_iter().zip(plan.outcomes) {
            let _ = done.send(outcome);
        }
    }

    /// What committing `appends` does, decided before anything is written: which of them are
    /// kept or refused, and how many of the oldest events make room for them.
    fn plan(&mut self, appends: &[Pending]) -> Result<Plan, SpoolError> {
        let mut counts = self.counts;
        let mut front = self.log.cursor();
        // Kept events of this group not yet dropped again start at `kept_from`.
        let (mut kept, mut kept_from): (Vec<usize>, usize) = (Vec::new(), 0);
        let mut outcomes = Vec::with_capacity(appends.len());
        let mut dropped = 0;
        for (i, (event, _)) in appends.iter().enumerate() {
            let size = event.len() as u64;
            if self.limits.when_full == WhenFull::DropOldest {
                while counts.events > 0 && !counts.room(&self.limits, size) {
                    let freed = match self.log.frame(front)? {
                        Some(frame) => {
                            front = frame.end;
                            u64::from(frame.len)
                        }
                        None => {
                            // Older events are all gone: the group's own first ones go.
                            let Some(&first) = kept.get(kept_from) else {
                                break;
                            };
                            kept_from += 1;
                            appends[first].0.len() as u64
                        }
                    };
                    counts.events -= 1;
                    counts.bytes = counts.bytes.saturating_sub(freed);
                    dropped += 1;
                }
            }
            // Refused, or larger than the whole spool: nothing can make room for it.
            if !counts.room(&self.limits, size) {
                outcomes.push(Err(SpoolError::Full(self.limits.max_bytes)));
                continue;
            }
            kept.push(i);
            counts.events += 1;
            counts.bytes += size;
            outcomes.push(Ok(()));
        }
        // A kept event dropped again within its own group was answered as kept: it was
        // committed, then dropped, as it would have been a moment later. It is not written.
        kept.drain(..kept_from);
        Ok(Plan {
            kept,
            front,
            counts,
            outcomes,
            dropped,
        })
    }

    fn peek(&mut self, max_bytes: usize) -> Result<Rows, SpoolError> {
        let mut out = Vec::new();
        let mut total = 0usize;
        let mut pos = self.log.cursor();
        while let Some(frame) = self.log.frame(pos)? {
            total += frame.len as usize;
            if !out.is_empty() && total > max_bytes {
                break;
            }
            out.push((frame.end.id(), self.log.payload(&frame)?));
            pos = frame.end;
        }
        Ok(out)
    }

    fn ack(&mut self, last: i64) -> Result<u64, SpoolError> {
        let target = Pos::of_id(last);
        let mut pos = self.log.cursor();
        let mut counts = self.counts;
        while let Some(frame) = self.log.frame(pos)? {
            if frame.end > target {
                break;
            }
            counts.events = counts.events.saturating_sub(1);
            counts.bytes = counts.bytes.saturating_sub(u64::from(frame.len));
            pos = frame.end;
        }
        let acked = self.counts.events - counts.events;
        self.counts = counts;
        self.log.set_cursor(pos);
        // Written at once: a crash resends only what the collector took since the last ack.
        // Not written, the ack still holds in memory (and the write is retried); a crash
        // would resend the events, which at least once allows.
        self.save_cursor(true);
        Ok(acked)
    }

    fn publish(&self) {
        if let Some(m) = &self.metrics {
            m.depth(self.counts.events, self.counts.bytes);
        }
    }
}

/// Every waiter of a group that could not be written learns why.
fn fail(appends: Vec<Pending>, error: &SpoolError) {
    tracing::error!(%error, events = appends.len(), "decision log events not committed");
    for (_, done) in appends {
        let _ = done.send(Err(error.clone()));
    }
}

struct Plan {
    /// Indexes in the appends of the events the group writes.
    kept: Vec<usize>,
    /// Where the oldest live event will be once the group is written.
    front: Pos,
    counts: Counts,
    outcomes: Vec<Result<(), SpoolError>>,
    dropped: u64,
}
