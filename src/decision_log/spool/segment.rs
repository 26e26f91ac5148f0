//! The spool's files: an append-only log of segment files `NNNNNNNNNNNNNNNNNNNN.log` and the
//! read cursor (`cursor`) that says where the oldest live event starts.
//!
//! A frame is a u32 LE payload length, a u32 LE crc32 of that length and the payload, then the
//! payload. The crc covers the length too: a tail of zeros (what a file extended but never
//! written holds after a power loss) would otherwise read as valid empty frames.
//!
//! An event's id is `segment << OFFSET_BITS | end of its frame`: acknowledging an id sets the
//! cursor to exactly that id, and ids grow with the log, so ordering them is ordering events.

mod recover;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cursor::Checkpoint;
use super::read::{Frames, Reader, View};
use super::SpoolError;

const SUFFIX: &str = ".log";
pub(super) const HEADER: u64 = 8;
/// Offsets in a segment fit in 40 bits (1 TiB); segment numbers keep the 23 bits left, so ids
/// stay positive i64s (what the uploader's API and SQLite-era ids were).
const OFFSET_BITS: u32 = 40;
/// What one read-ahead takes: peeks and drops walk the oldest frames in order, so a single
/// pread serves many of them.
pub(super) const READ_AHEAD: usize = 256 << 10;
/// A cursor moved by dropped events (not by acks) is written at most this often: under a
/// spool that stays full every group drops some, and a rename per group would cost more than
/// the group's own write. Losing it in a crash only resends events that were dropped.
const CURSOR_PACE: Duration = Duration::from_millis(200);

/// A place in the log: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Pos {
    pub seg: u64,
    pub off: u64,
}

impl Pos {
    pub fn id(self) -> i64 {
        ((self.seg << OFFSET_BITS) | self.off) as i64
    }

    pub fn of_id(id: i64) -> Pos {
        let id = id.max(0) as u64;
        Pos {
            seg: id >> OFFSET_BITS,
            off: id & ((1 << OFFSET_BITS) - 1),
        }
    }
}

/// One frame in the log: where its payload starts, its length, and where it ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    pub payload: Pos,
    pub len: u32,
    pub end: Pos,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub seq: u64,
    /// The end of its last valid frame; for the last segment, where the next group goes.
    pub end: u64,
}

/// What the log held at open.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Found {
    pub events: u64,
    pub bytes: u64,
}

pub(super) struct Log {
    dir: PathBuf,
    /// fdatasync each group, fsync the cursor and the directory (`synchronous: full`).
    full: bool,
    /// A group that would take the last segment past this starts a new one.
    segment_bytes: u64,
    /// The segments of the log, oldest first; never empty. Consumed ones leave it before their
    /// files are deleted.
    segments: Vec<Segment>,
    /// The last segment, where groups are appended.
    head: File,
    cursor: Pos,
    /// Whether `cursor` moved since it was last written, and when it last was.
    dirty: bool,
    written: Instant,
    reader: Reader,
    /// The frames of one group, reused.
    buf: Vec<u8>,
}

pub(super) fn segment_name(seq: u64) -> String {
    format!("{seq:020}{SUFFIX}")
}

fn crc(len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
impl Log {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn cursor(&self) -> Pos {
        self.cursor
    }

    /// Appends `events` as frames with one write (and, when `full`, one fdatasync). On an
    /// error nothing of the group counts: the segment is cut back to where it was.
    pub fn append<'a>(&mut self, events: impl Iterator<Item = &'a [u8]>) -> Result<(), SpoolError> {
        self.buf.clear();
        for event in events {
            let len = u32::try_from(event.len()).map_err(|_| {
                super::storage_error(&self.dir, &"an event larger than 4 GiB cannot be spooled")
            })?;
            self.buf.extend_from_slice(&len.to_le_bytes());
            self.buf.extend_from_slice(&crc(len, event).to_le_bytes());
            self.buf.extend_from_slice(event);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.head_end();
        if end > 0 && end + self.buf.len() as u64 > self.segment_bytes {
            self.roll()?;
        }
        self.write_buf()
    }

    /// Whether each append syncs (`synchronous: full`).
    pub fn syncs(&self) -> bool {
        self.full
    }

    /// Whether `events` events of `bytes` payload bytes in all go into the open segment
    /// without starting the next one.
    pub fn fits(&self, events: usize, bytes: u64) -> bool {
        let end = self.head_end();
        end == 0 || end + bytes + HEADER * events as u64 <= self.segment_bytes
    }

    /// Makes everything appended so far durable against a power loss, whatever `full` says.
    pub fn sync(&self) -> Result<(), SpoolError> {
        self.head.sync_data().map_err(|e| self.head_error(&e))
    }

    fn write_buf(&mut self) -> Result<(), SpoolError> {
        let end = self.head_end();
        let written = self
            .head
            .write_all_at(&self.buf, end)
            .and_then(|()| match self.full {
                true => self.head.sync_data(),
                false => Ok(()),
            });
        if let Err(e) = written {
            // A partial group left in the file would stop the scan at open and hide every
            // group after it; if the file cannot be cut back, the next group starts a segment.
            if self.head.set_len(end).is_err() {
                let _ = self.roll();
            }
            return Err(self.head_error(&e));
        }
        if let Some(last) = self.segments.last_mut() {
            last.end += self.buf.len() as u64;
        }
        Ok(())
    }

    fn head_end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.end)
    }

    fn head_error(&self, e: &dyn std::fmt::Display) -> SpoolError {
        let seq = self.segments.last().map_or(0, |s| s.seq);
        super::storage_error(&self.dir.join(segment_name(seq)), e)
    }

    /// Starts the next segment.
    fn roll(&mut self) -> Result<(), SpoolError> {
        let seq = self.segments.last().map_or(0, |s| s.seq) + 1;
        let path = self.dir.join(segment_name(seq));
        let file = File::options()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| super::storage_error(&path, &e))?;
        if self.full {
            // The new file's name must survive a power loss with the events synced into it.
            sync_dir(&self.dir).map_err(|e| super::storage_error(&self.dir, &e))?;
        }
        self.head = file;
        self.segments.push(Segment { seq, end: 0 });
        Ok(())
    }

    /// The oldest frames, read as `read::Frames` reads them.
    fn frames(&mut self) -> Frames<'_> {
        Frames {
            dir: &self.dir,
            segments: &self.segments,
            reader: &mut self.reader,
        }
    }

    /// The frame at `pos` (or, at the end of a segment, the first of the next one); `None` at
    /// the end of the log.
    pub fn frame(&mut self, pos: Pos) -> Result<Option<Frame>, SpoolError> {
        self.frames().frame(pos)
    }

    /// Where the segments are and how far they are committed, for reading the oldest events
    /// without the writer: bytes once written never change.
    pub fn view(&self) -> View {
        View {
            dir: self.dir.clone(),
            segments: self.segments.clone(),
            cursor: self.cursor,
        }
    }

    /// Moves the cursor (the oldest live event) to `pos`; written by a `checkpoint`.
    pub fn set_cursor(&mut self, pos: Pos) {
        let pos = self.normalize(pos);
        if pos != self.cursor {
            self.cursor = pos;
            self.dirty = true;
        }
    }

    /// The cursor to write if it moved (`now`, or once CURSOR_PACE has passed since the last
    /// one), and the segments wholly behind it. They leave the log now; their files go once a
    /// cursor past them is written (`cursor::Persister`), which takes no part of the log: the
    /// writer need not wait for it.
    pub fn checkpoint(&mut self, now: bool) -> Option<Checkpoint> {
        if !self.dirty || !(now || self.written.elapsed() >= CURSOR_PACE) {
            return None;
        }
        self.dirty = false;
        self.written = Instant::now();
        let mut consumed = Vec::new();
        while self.segments.len() > 1 && self.segments[0].seq < self.cursor.seg {
            let gone = self.segments.remove(0);
            self.reader.forget(gone.seq);
            consumed.push(gone.seq);
        }
        Some(Checkpoint {
            cursor: self.cursor,
            consumed,
        })
    }

    /// `pos` as the log names it: the end of a segment that is not the last is the beginning
    /// of the next one.
    pub fn normalize(&self, pos: Pos) -> Pos {
        Frames::normalize_in(&self.segments, pos)
    }

    #[cfg(test)]
    pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }
}
