//! Reading the oldest events of the log: frames walked from the cursor through a read-ahead
//! buffer. The writer walks them to drop the oldest events of a full spool; the uploader reads
//! them from a `View`, without the writer, since bytes once written never change. A segment
//! can disappear under a view (a full spool dropped it meanwhile): that read ends early.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::segment::{segment_name, Frame, Pos, Segment, HEADER, READ_AHEAD};
use super::{Peeked, Rows, SpoolError};

/// The segments as they were when taken, and the cursor then.
#[derive(Debug, Clone)]
pub(super) struct View {
    pub dir: PathBuf,
    pub segments: Vec<Segment>,
    pub cursor: Pos,
}

impl View {
    /// The oldest events, at most `max_bytes` of them (at least one). Blocking.
    pub fn peek(&self, max_bytes: usize) -> Result<Peeked, SpoolError> {
        let mut reader = Reader::default();
        let mut frames = Frames {
            dir: &self.dir,
            segments: &self.segments,
            reader: &mut reader,
        };
        let mut rows = Vec::new();
        let all = match self.read(&mut frames, max_bytes, &mut rows) {
            Ok(all) => all,
            // A full spool dropped what is gone since the view was taken: what was read goes,
            // and the next round starts from the new cursor.
            Err(SpoolError::Consumed) => false,
            Err(e) => return Err(e),
        };
        Ok(Peeked {
            rows,
            all,
            from: self.cursor,
        })
    }

    /// Reads rows from the cursor into `rows`; true when it reached the end of the log.
    fn read(
        &self,
        frames: &mut Frames<'_>,
        max: usize,
        rows: &mut Rows,
    ) -> Result<bool, SpoolError> {
        let (mut total, mut pos) = (0usize, self.cursor);
        while let Some(frame) = frames.frame(pos)? {
            total += frame.len as usize;
            if !rows.is_empty() && total > max {
                return Ok(false);
            }
            rows.push((frame.end.id(), frames.payload(&frame)?));
            pos = frame.end;
        }
        Ok(true)
    }
}

/// A segment that is gone was consumed; any other failure is the storage's.
fn read_error(path: &Path, e: &io::Error) -> SpoolError {
    match e.kind() {
        io::ErrorKind::NotFound => SpoolError::Consumed,
        _ => super::storage_error(path, e),
    }
}

/// The frames of `segments`, read through `reader`.
pub(super) struct Frames<'a> {
    pub dir: &'a Path,
    pub segments: &'a [Segment],
    pub reader: &'a mut Reader,
}

impl Frames<'_> {
    /// The frame at `pos` (or, at the end of a segment, the first of the next one); `None` at
    /// the end of the log.
    pub fn frame(&mut self, pos: Pos) -> Result<Option<Frame>, SpoolError> {
        let pos = Frames::normalize_in(self.segments, pos);
        let Some(seg) = self.segments.iter().find(|s| s.seq == pos.seg).copied() else {
            return Ok(None);
        };
        if pos.off >= seg.end {
            return Ok(None);
        }
        let path = || self.dir.join(segment_name(seg.seq));
        if pos.off + HEADER > seg.end {
            return Err(super::storage_error(
                &path(),
                &format!("frame header cut at {}", pos.off),
            ));
        }
        let header = self
            .reader
            .bytes(self.dir, seg.seq, pos.off, HEADER as usize)
            .map_err(|e| read_error(&path(), &e))?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let payload = Pos {
            seg: seg.seq,
            off: pos.off + HEADER,
        };
        let end = Pos {
            seg: seg.seq,
            off: payload.off + u64::from(len),
        };
        if end.off > seg.end {
            return Err(super::storage_error(
                &path(),
                &format!("frame at {} runs past the segment", pos.off),
            ));
        }
        Ok(Some(Frame { payload, len, end }))
    }

    /// The payload of `frame`.
    pub fn payload(&mut self, frame: &Frame) -> Result<Vec<u8>, SpoolError> {
        let seq = frame.payload.seg;
        self.reader
            .bytes(self.dir, seq, frame.payload.off, frame.len as usize)
            .map(<[u8]>::to_vec)
            .map_err(|e| read_error(&self.dir.join(segment_name(seq)), &e))
    }

    /// At the end of a segment that is not the last, the beginning of the next one.
    pub fn normalize_in(segments: &[Segment], mut pos: Pos) -> Pos {
        for (i, seg) in segments.iter().enumerate() {
            if seg.seq < pos.seg {
                continue;
            }
            if seg.seq > pos.seg {
                // Between segments (one skipped or deleted): the next one's beginning.
                pos = Pos {
                    seg: seg.seq,
                    off: 0,
                };
            }
            if pos.off < seg.end || i + 1 == segments.len() {
                return pos;
            }
            pos = Pos {
                seg: pos.seg + 1,
                off: 0,
            };
        }
        pos
    }
}

/// Reads the oldest frames through a read-ahead buffer, from one segment at a time.
#[derive(Default)]
pub(super) struct Reader {
    file: Option<(u64, File)>,
    start: u64,
    buf: Vec<u8>,
}

impl Reader {
    /// `len` bytes at `off` in segment `seq`. Bytes once written never change, so what the
    /// buffer holds stays valid while groups are appended after it.
    pub fn bytes(&mut self, dir: &Path, seq: u64, off: u64, len: usize) -> io::Result<&[u8]> {
        let same = matches!(&self.file, Some((s, _)) if *s == seq);
        let held =
            same && off >= self.start && off + len as u64 <= self.start + self.buf.len() as u64;
        if !held {
            if !same {
                self.file = Some((seq, File::open(dir.join(segment_name(seq)))?));
            }
            let Some((_, file)) = &self.file else {
                return Err(io::Error::other("no segment open"));
            };
            self.buf.resize(len.max(READ_AHEAD), 0);
            let mut filled = 0;
            while filled < self.buf.len() {
                match file.read_at(&mut self.buf[filled..], off + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.buf.truncate(filled);
            self.start = off;
            if filled < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{len} bytes expected at {off}, {filled} found"),
                ));
            }
        }
        let at = (off - self.start) as usize;
        Ok(&self.buf[at..at + len])
    }

    /// Closes segment `seq` if it is the one held: its file was deleted.
    pub fn forget(&mut self, seq: u64) {
        if matches!(&self.file, Some((s, _)) if *s == seq) {
            self.file = None;
            self.buf.clear();
        }
    }
}
