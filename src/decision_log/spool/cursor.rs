//! The cursor file: where the oldest live event starts, so that a restart resends only what
//! a collector has not taken. The writer notes each new cursor in memory (`Persister::note`);
//! whoever has a blocking thread at hand writes the newest one noted (`Persister::flush`) and
//! then deletes the segments wholly behind it. A note that is never flushed (a write that
//! failed, an ack whose caller went away) is flushed by the next one: nothing is forgotten.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::segment::{segment_name, sync_dir, Pos};
use super::SpoolError;

const CURSOR_NAME: &str = "cursor";
const CURSOR_TEMP: &str = "cursor.tmp";

/// A cursor to write and the segments it leaves behind (see `Log::checkpoint`).
pub(super) struct Checkpoint {
    pub cursor: Pos,
    pub consumed: Vec<u64>,
}

/// Writes cursors one at a time. Notes arrive in cursor order; an older cursor never replaces
/// a newer one on disk, and a segment is deleted only once a written cursor is past it: a
/// crash must not find a cursor pointing into a deleted segment's past.
pub(super) struct Persister {
    dir: PathBuf,
    /// fsync the cursor and the directory (`synchronous: full`).
    full: bool,
    state: Mutex<Persisted>,
}

#[derive(Default)]
struct Persisted {
    written: Option<Pos>,
    pending: Option<Pos>,
    /// Consumed segments whose files are still there.
    consumed: Vec<u64>,
}

impl Persister {
    pub fn new(dir: &Path, full: bool) -> Persister {
        Persister {
            dir: dir.to_path_buf(),
            full,
            state: Mutex::default(),
        }
    }

    /// Takes a checkpoint to write at the next flush. In memory only.
    pub fn note(&self, checkpoint: Checkpoint) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.pending = state.pending.max(Some(checkpoint.cursor));
        state.consumed.extend(checkpoint.consumed);
    }

    /// Writes the newest cursor noted, then deletes the segments behind the written cursor.
    /// On an error the cursor stays noted, for the next flush. Blocking.
    pub fn flush(&self) -> Result<(), SpoolError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pending) = state.pending {
            if state.written.is_none_or(|w| w < pending) {
                write_cursor(&self.dir, self.full, pending)?;
                state.written = Some(pending);
            }
            state.pending = None;
        }
        let Some(written) = state.written else {
            return Ok(());
        };
        state.consumed.retain(|&seq| {
            if seq >= written.seg {
                return true;
            }
            let path = self.dir.join(segment_name(seq));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "decision log spool: consumed segment not deleted")
                }
            }
            false
        });
        Ok(())
    }
}

fn write_cursor(dir: &Path, full: bool, cursor: Pos) -> Result<(), SpoolError> {
    let mut record = Vec::with_capacity(20);
    record.extend_from_slice(&cursor.seg.to_le_bytes());
    record.extend_from_slice(&cursor.off.to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(&record).to_le_bytes());
    let temp = dir.join(CURSOR_TEMP);
    let written = (|| {
        let file = File::create(&temp)?;
        file.write_all_at(&record, 0)?;
        if full {
            file.sync_all()?;
        }
        std::fs::rename(&temp, dir.join(CURSOR_NAME))?;
        if full {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    written.map_err(|e: io::Error| super::storage_error(&temp, &e))
}

/// The saved cursor; `None` if there is none or it is unreadable (then every segment is read
/// from its beginning: events are resent rather than lost).
pub(super) fn read_cursor(dir: &Path) -> Option<Pos> {
    let path = dir.join(CURSOR_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "decision log spool cursor unreadable; all events will be resent");
            return None;
        }
    };
    let valid = bytes.len() == 20 && crc32fast::hash(&bytes[..16]).to_le_bytes()[..] == bytes[16..];
    if !valid {
        tracing::warn!(path = %path.display(), "decision log spool cursor damaged; all events will be resent");
        return None;
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    Some(Pos {
        seg: word(0),
        off: word(8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(seg: u64, off: u64) -> Pos {
        Pos { seg, off }
    }

    #[test]
    fn a_cursor_that_could_not_be_written_is_written_by_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let persister = Persister::new(dir.path(), false);
        let segment = |seq| dir.path().join(segment_name(seq));
        for seq in [0, 1, 3] {
            std::fs::write(segment(seq), b"x").unwrap();
        }
        // The temporary file cannot be created: the write fails, and nothing is deleted.
        std::fs::create_dir(dir.path().join(CURSOR_TEMP)).unwrap();
        persister.note(Checkpoint {
            cursor: pos(2, 0),
            consumed: vec![0, 1],
        });
        assert!(persister.flush().is_err());
        assert!(segment(0).exists() && segment(1).exists());
        assert_eq!(read_cursor(dir.path()), None);

        std::fs::remove_dir(dir.path().join(CURSOR_TEMP)).unwrap();
        persister.flush().unwrap();
        assert_eq!(read_cursor(dir.path()), Some(pos(2, 0)));
        assert!(!segment(0).exists() && !segment(1).exists());

        // An older cursor never replaces a newer one; a segment the written cursor has not
        // passed stays until one has.
        persister.note(Checkpoint {
            cursor: pos(1, 9),
            consumed: vec![3],
        });
        persister.flush().unwrap();
        assert_eq!(read_cursor(dir.path()), Some(pos(2, 0)));
        assert!(segment(3).exists());
        persister.note(Checkpoint {
            cursor: pos(4, 0),
            consumed: vec![],
        });
        persister.flush().unwrap();
        assert_eq!(read_cursor(dir.path()), Some(pos(4, 0)));
        assert!(!segment(3).exists());
    }
}
