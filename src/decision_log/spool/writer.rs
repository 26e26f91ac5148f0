//! The spool's writer: what committing a group of events, reading the oldest ones and
//! acknowledging them do to the segment log and to the counts the limits apply to. Whoever
//! holds the `Writer` owns the files; `mod.rs` decides who that is at any moment.

use std::fs::File;
use std::sync::Arc;

use super::cursor::Persister;
use super::segment::{Log, Pos};
use super::{Limits, SpoolError, Taken};
use crate::config::WhenFull;
use crate::telemetry::metrics::SpoolMetrics;

/// Live events (payload bytes: what the limits count).
#[derive(Debug, Clone, Copy)]
pub(super) struct Counts {
    pub events: u64,
    pub bytes: u64,
}

impl Counts {
    fn room(&self, limits: &Limits, size: u64) -> bool {
        let events_ok = limits.max_events.is_none_or(|max| self.events < max);
        events_ok && self.bytes + size <= limits.max_bytes
    }
}

pub(super) struct Writer {
    pub log: Log,
    pub limits: Limits,
    pub counts: Counts,
    pub metrics: Option<SpoolMetrics>,
    pub persister: Arc<Persister>,
    /// The spool directory's lock: held as long as the writer lives.
    pub _lock: File,
}

/// A group larger than this is written from a blocking thread even when it only goes to the
/// page cache: copying megabytes is not what an async worker should be busy with.
const IN_PLACE_BYTES: u64 = 1 << 20;

impl Writer {
    /// True when committing `events` only writes a little to the open segment's page cache:
    /// no sync, no new segment, no old event to read and drop. Such a commit waits for no
    /// device, so it may run on an async worker; any other goes to a blocking thread.
    pub fn in_page_cache(&self, events: &[Vec<u8>]) -> bool {
        let bytes: u64 = events.iter().map(|e| e.len() as u64).sum();
        if bytes > IN_PLACE_BYTES {
            return false;
        }
        let room = Counts {
            events: self.counts.events + (events.len() as u64).saturating_sub(1),
            bytes: self.counts.bytes + bytes,
        }
        .room(&self.limits, 0);
        !self.log.syncs() && room && self.log.fits(events.len(), bytes)
    }

    /// Commits `events` with one write; the outcome of each, in order.
    pub fn commit(&mut self, events: &[Vec<u8>]) -> Vec<Result<(), SpoolError>> {
        // Each event's decision reports the failure (counted, and logged at most once a
        // minute): a line here too would be one more per commit on a full disk.
        let failed = |error: SpoolError| vec![Err(error); events.len()];
        let plan = match self.plan(events) {
            Ok(plan) => plan,
            Err(error) => return failed(error),
        };
        let kept = plan.kept.iter().map(|&i| events[i].as_slice());
        if let Err(error) = self.log.append(kept) {
            return failed(error);
        }
        self.log.set_cursor(plan.front);
        self.counts = plan.counts;
        let dropped = plan.dropped;
        // With drop_oldest, an event the whole spool could not hold is a drop, counted by the
        // decision log as `too_large`; only `refuse` refuses.
        let refused = match self.limits.when_full {
            WhenFull::Refuse => plan.outcomes.iter().filter(|o| o.is_err()).count() as u64,
            WhenFull::DropOldest => 0,
        };
        if let Some(m) = &self.metrics {
            if !plan.kept.is_empty() {
                m.written();
            }
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
        plan.outcomes
    }

    /// What committing `events` does, decided before anything is written: which of them are
    /// kept or refused, and how many of the oldest events make room for them.
    fn plan(&mut self, events: &[Vec<u8>]) -> Result<Plan, SpoolError> {
        let mut counts = self.counts;
        let mut front = self.log.cursor();
        // Kept events of this group not yet dropped again start at `kept_from`.
        let (mut kept, mut kept_from): (Vec<usize>, usize) = (Vec::new(), 0);
        let mut outcomes = Vec::with_capacity(events.len());
        let mut dropped = 0;
        for (i, event) in events.iter().enumerate() {
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
                            events[first].len() as u64
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

    /// Acknowledges what an upload took, in memory: the events from `taken.from` through its
    /// last one. `None` when the cursor moved since they were read (a full spool dropped some):
    /// then only a walk over the frames can tell how many are left (`ack_walk`).
    pub fn ack(&mut self, taken: &Taken) -> Option<u64> {
        // A view taken just before a new segment started names the same place differently.
        if self.log.normalize(taken.from) != self.log.cursor() {
            return None;
        }
        self.counts.events = self.counts.events.saturating_sub(taken.events);
        self.counts.bytes = self.counts.bytes.saturating_sub(taken.bytes);
        self.log.set_cursor(Pos::of_id(taken.last));
        Some(taken.events)
    }

    /// Acknowledges every event up to and including `last`, counting them frame by frame.
    /// Blocking: reads the frames' headers.
    pub fn ack_walk(&mut self, last: i64) -> Result<u64, SpoolError> {
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
        Ok(acked)
    }

    /// Notes the cursor if drops or acks moved it (`now`, or at the log's pace).
    pub fn note_cursor(&mut self, now: bool) {
        if let Some(checkpoint) = self.log.checkpoint(now) {
            self.persister.note(checkpoint);
        }
    }

    /// Notes the cursor, then writes what is noted. Blocking.
    pub fn save_cursor(&mut self, now: bool) {
        self.note_cursor(now);
        flush(&self.persister);
    }

    pub fn publish(&self) {
        if let Some(m) = &self.metrics {
            m.depth(self.counts.events, self.counts.bytes);
        }
    }
}

struct Plan {
    /// Indexes in the group of the events it writes.
    kept: Vec<usize>,
    /// Where the oldest live event will be once the group is written.
    front: Pos,
    counts: Counts,
    outcomes: Vec<Result<(), SpoolError>>,
    dropped: u64,
}

/// Writes the cursors noted so far; an error is logged, and the next flush tries again.
/// Blocking.
pub(super) fn flush(persister: &Persister) {
    if let Err(error) = persister.flush() {
        tracing::warn!(%error, "decision log spool cursor not written; tried again at the next ack");
    }
}
