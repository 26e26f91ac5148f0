//! The spool's files: an append-only log of segment files `NNNNNNNNNNNNNNNNNNNN.log` and the
//! read cursor (`cursor`) that says where the oldest live event starts.
//!
//! A frame is a u32 LE payload length, a u32 LE crc32 of that length and the payload, then the
//! payload. The crc covers the length too: a tail of zeros (what a file extended but never
//! written holds after a power loss) would otherwise read as valid empty frames.
//!
//! An event's id is `segment << OFFSET_BITS | end of its frame`: acknowledging an id sets the
//! cursor to exactly that id, and ids grow with the log, so ordering them is ordering events.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::cursor::{read_cursor, Checkpoint};
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
    /// Opens the log in `dir` (creating it if empty), checks every live frame, truncates a torn
    /// tail, and counts the live events.
    pub fn open(dir: &Path, full: bool, segment_bytes: u64) -> Result<(Log, Found), SpoolError> {
        let err = |e: io::Error| super::storage_error(dir, &e);
        let mut seqs = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(err)? {
            let name = entry.map_err(err)?.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(SUFFIX)
                .and_then(|s| s.parse::<u64>().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let saved = read_cursor(dir);
        let mut cursor = saved.unwrap_or(Pos {
            seg: seqs.first().copied().unwrap_or(0),
            off: 0,
        });
        // Segments before the cursor were consumed; a crash came between writing the cursor
        // and deleting them.
        for &seq in seqs.iter().filter(|&&s| s < cursor.seg) {
            let _ = std::fs::remove_file(dir.join(segment_name(seq)));
        }
        seqs.retain(|&s| s >= cursor.seg);
        if seqs.first() != Some(&cursor.seg) {
            // The cursor's segment is gone: the next one starts at its beginning, or, when no
            // segment is left, a new one.
            let seg = seqs
                .first()
                .copied()
                .unwrap_or(cursor.seg + u64::from(saved.is_some()));
            cursor = Pos { seg, off: 0 };
        }
        if seqs.is_empty() {
            seqs.push(cursor.seg);
            let path = dir.join(segment_name(cursor.seg));
            File::create(&path).map_err(|e| super::storage_error(&path, &e))?;
            if full {
                sync_dir(dir).map_err(err)?;
            }
        }
        let mut found = Found::default();
        let mut segments = Vec::with_capacity(seqs.len());
        let last = seqs.len() - 1;
        for (i, &seq) in seqs.iter().enumerate() {
            let path = dir.join(segment_name(seq));
            let from = if seq == cursor.seg { cursor.off } else { 0 };
            let scan =
                scan(&path, from, &mut found).map_err(|e| super::storage_error(&path, &e))?;
            if seq == cursor.seg {
                cursor.off = cursor.off.min(scan.end);
            }
            if let Some(problem) = scan.bad {
                if i == last {
                    tracing::warn!(path = %path.display(), offset = scan.end, problem, "decision log spool: torn tail truncated");
                    let file = File::options()
                        .write(true)
                        .open(&path)
                        .map_err(|e| super::storage_error(&path, &e))?;
                    file.set_len(scan.end)
                        .and_then(|()| if full { file.sync_all() } else { Ok(()) })
                        .map_err(|e| super::storage_error(&path, &e))?;
                } else {
                    tracing::warn!(path = %path.display(), offset = scan.end, problem, "decision log spool: bad frame; the rest of the segment is skipped");
                }
            }
            segments.push(Segment { seq, end: scan.end });
        }
        let head_seq = seqs[last];
        let head = open_head(dir, head_seq)?;
        let log = Log {
            dir: dir.to_path_buf(),
            full,
            segment_bytes,
            segments,
            head,
            cursor,
            dirty: saved != Some(cursor),
            written: Instant::now(),
            reader: Reader::default(),
            buf: Vec::new(),
        };
        Ok((log, found))
    }

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

fn open_head(dir: &Path, seq: u64) -> Result<File, SpoolError> {
    let path = dir.join(segment_name(seq));
    File::options()
        .write(true)
        .open(&path)
        .map_err(|e| super::storage_error(&path, &e))
}

/// What a scan of one segment found: where its valid frames end, and why they end there if
/// not at the end of the file.
struct Scan {
    end: u64,
    bad: Option<&'static str>,
}

/// Checks the frames of the segment at `path` from `from` on, counting them into `found`.
fn scan(path: &Path, from: u64, found: &mut Found) -> io::Result<Scan> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    if from >= size {
        return Ok(Scan {
            end: size.min(from),
            bad: None,
        });
    }
    let mut input = BufReader::with_capacity(1 << 20, file);
    io::Seek::seek(&mut input, io::SeekFrom::Start(from))?;
    let mut at = from;
    let mut payload = Vec::new();
    let bad = loop {
        if at == size {
            break None;
        }
        if size - at < HEADER {
            break Some("partial frame header");
        }
        let mut header = [0u8; HEADER as usize];
        input.read_exact(&mut header)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let sum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if u64::from(len) > size - at - HEADER {
            break Some("frame longer than the rest of the file");
        }
        payload.resize(len as usize, 0);
        input.read_exact(&mut payload)?;
        if crc(len, &payload) != sum {
            break Some("frame checksum mismatch");
        }
        at += HEADER + u64::from(len);
        found.events += 1;
        found.bytes += u64::from(len);
    };
    Ok(Scan { end: at, bad })
}
