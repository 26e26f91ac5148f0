//! Takes over a spool of the SQLite layouts verdict used before the segment log: a node
//! upgraded with events still spooled loses none of them.
//!
//! `spool.db` held either `event_groups (seq, sizes, events)` (a row per commit group, sizes
//! as u32 LE) or, in the first builds, `events (seq, event)`. Its events are appended to the
//! log in order and synced, then the database files are removed. A crash in between takes
//! them over again at the next open: sent twice, never lost.

use rusqlite::{Connection, OpenFlags};

use super::segment::{Found, Log};
use super::{storage_error, SpoolError};

const DB_NAME: &str = "spool.db";

/// Moves the events of `spool.db`, if there is one, into `log`; returns what it moved.
pub(super) fn take_over(log: &mut Log) -> Result<Found, SpoolError> {
    let path = log.dir().join(DB_NAME);
    if !path.exists() {
        return Ok(Found::default());
    }
    let err = |e: &dyn std::fmt::Display| storage_error(&path, e);
    // Read-write: opening replays (and then removes) a WAL the old writer left.
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| err(&e))?;
    let mut found = Found::default();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| err(&e))?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    // The old takeover moved `events` into `event_groups` in one transaction, so a database
    // holding both had not finished it: `events` are the older ones.
    if has("events") {
        let mut stmt = conn
            .prepare("SELECT event FROM events ORDER BY seq")
            .map_err(|e| err(&e))?;
        let mut rows = stmt.query([]).map_err(|e| err(&e))?;
        while let Some(row) = rows.next().map_err(|e| err(&e))? {
            let event: Vec<u8> = row.get(0).map_err(|e| err(&e))?;
            log.append(std::iter::once(event.as_slice()))?;
            found.events += 1;
            found.bytes += event.len() as u64;
        }
    }
    if has("event_groups") {
        let mut stmt = conn
            .prepare("SELECT sizes, events FROM event_groups ORDER BY seq")
            .map_err(|e| err(&e))?;
        let mut rows = stmt.query([]).map_err(|e| err(&e))?;
        while let Some(row) = rows.next().map_err(|e| err(&e))? {
            let sizes: Vec<u8> = row.get(0).map_err(|e| err(&e))?;
            let events: Vec<u8> = row.get(1).map_err(|e| err(&e))?;
            let mut parts = Vec::new();
            let mut at = 0usize;
            for size in sizes.chunks_exact(4) {
                let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
                let Some(event) = events.get(at..at + size) else {
                    tracing::warn!(path = %path.display(), "old spool row shorter than its sizes; its rest is lost");
                    break;
                };
                parts.push(event);
                at += size;
            }
            found.events += parts.len() as u64;
            found.bytes += parts.iter().map(|p| p.len() as u64).sum::<u64>();
            log.append(parts.into_iter())?;
        }
    }
    log.sync()?;
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let file = log.dir().join(format!("{DB_NAME}{suffix}"));
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(storage_error(&file, &e)),
        }
    }
    if found.events > 0 {
        tracing::info!(path = %path.display(), events = found.events, "decision log spool taken over from the SQLite layout");
    }
    Ok(found)
}
