//! Opening the log after a stop or a crash: finding its segments, deleting those behind the
//! cursor, checking every live frame and truncating a torn tail, and counting what is left.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use super::{crc, segment_name, sync_dir, Found, Log, Pos, Segment, HEADER, SUFFIX};
use crate::decision_log::spool::cursor::read_cursor;
use crate::decision_log::spool::read::Reader;
use crate::decision_log::spool::{storage_error, SpoolError};

impl Log {
    /// Opens the log in `dir` (creating it if empty), checks every live frame, truncates a torn
    /// tail, and counts the live events.
    pub fn open(dir: &Path, full: bool, segment_bytes: u64) -> Result<(Log, Found), SpoolError> {
        let err = |e: io::Error| storage_error(dir, &e);
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
            File::create(&path).map_err(|e| storage_error(&path, &e))?;
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
            let scan = scan(&path, from, &mut found).map_err(|e| storage_error(&path, &e))?;
            if seq == cursor.seg {
                cursor.off = cursor.off.min(scan.end);
            }
            if let Some(problem) = scan.bad {
                if i == last {
                    tracing::warn!(path = %path.display(), offset = scan.end, problem, "decision log spool: torn tail truncated");
                    let file = File::options()
                        .write(true)
                        .open(&path)
                        .map_err(|e| storage_error(&path, &e))?;
                    file.set_len(scan.end)
                        .and_then(|()| if full { file.sync_all() } else { Ok(()) })
                        .map_err(|e| storage_error(&path, &e))?;
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
}

fn open_head(dir: &Path, seq: u64) -> Result<File, SpoolError> {
    let path = dir.join(segment_name(seq));
    File::options()
        .write(true)
        .open(&path)
        .map_err(|e| storage_error(&path, &e))
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
