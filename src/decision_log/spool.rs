//! The durable spool: every event is committed to SQLite (WAL) before its decision is
//! answered, and deleted only once a collector has taken it.
//!
//! One writer thread owns the database. Requests hand it their event and wait; it commits
//! whatever has queued up meanwhile in one transaction (group commit), so that a commit per
//! event is never paid under load and an idle spool answers at once.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};
use tokio::sync::{mpsc, oneshot};

use crate::config::{SpoolConfig, Synchronous, WhenFull};
use crate::telemetry::metrics::SpoolMetrics;

const FILE_NAME: &str = "spool.db";

/// The most events committed in one transaction; bounds the wait of the last one in it.
const MAX_GROUP: usize = 4096;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SpoolError {
    #[error("the decision log spool is full ({0} bytes)")]
    Full(u64),
    #[error("decision log spool {path}: {message}")]
    Storage { path: String, message: String },
    #[error("the decision log spool has stopped")]
    Stopped,
}

/// Events as the uploader takes them: their sequence numbers and JSON.
pub type Rows = Vec<(i64, Vec<u8>)>;

/// An event waiting for its commit, and who to tell.
type Pending = (Vec<u8>, oneshot::Sender<Result<(), SpoolError>>);

enum Command {
    Append(Vec<u8>, oneshot::Sender<Result<(), SpoolError>>),
    Peek(usize, oneshot::Sender<Result<Rows, SpoolError>>),
    Ack(i64, i64, oneshot::Sender<Result<u64, SpoolError>>),
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
        let path = dir.join(FILE_NAME);
        let storage = |e: &dyn std::fmt::Display| SpoolError::Storage {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| storage(&e))?;
        let conn = Connection::open(&path).map_err(|e| storage(&e))?;
        let sync = match config.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        // EXCLUSIVE: a second verdict on the same spool would upload and delete the first
        // one's events; it fails at start instead.
        conn.execute_batch(&format!(
            "PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = {sync};
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 event BLOB NOT NULL
             );"
        ))
        .map_err(|e| storage(&e))?;
        let (events, bytes): (i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(length(event)), 0) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| storage(&e))?;
        let (events, bytes) = (events.unsigned_abs(), bytes.unsigned_abs());
        if events > 0 {
            tracing::info!(path = %path.display(), events, bytes, "decision log spool has events to upload");
        }
        let writer = Writer {
            conn,
            path: path.clone(),
            limits,
            counts: Counts { events, bytes },
            metrics,
        };
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
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Command::Append(event, done))
            .map_err(|_| SpoolError::Stopped)?;
        wait.await.map_err(|_| SpoolError::Stopped)?
    }

    /// The oldest events, at most `max_bytes` of them (at least one).
    pub async fn peek(&self, max_bytes: usize) -> Result<Rows, SpoolError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Command::Peek(max_bytes, done))
            .map_err(|_| SpoolError::Stopped)?;
        wait.await.map_err(|_| SpoolError::Stopped)?
    }

    /// Deletes the events `first..=last` a collector has taken; returns how many there were.
    pub async fn ack(&self, first: i64, last: i64) -> Result<u64, SpoolError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Command::Ack(first, last, done))
            .map_err(|_| SpoolError::Stopped)?;
        wait.await.map_err(|_| SpoolError::Stopped)?
    }
}

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
    conn: Connection,
    path: PathBuf,
    limits: Limits,
    counts: Counts,
    metrics: Option<SpoolMetrics>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        while let Some(first) = rx.blocking_recv() {
            let mut appends = Vec::new();
            let mut others = Vec::new();
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(event, done) => appends.push((event, done)),
                    other => others.push(other),
                }
                if appends.len() < MAX_GROUP {
                    next = rx.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.commit(appends);
            }
            for command in others {
                match command {
                    Command::Peek(max, done) => {
                        let _ = done.send(self.peek(max));
                    }
                    Command::Ack(first, last, done) => {
                        let _ = done.send(self.ack(first, last));
                    }
                    Command::Append(..) => {}
                }
            }
            self.publish();
        }
    }

    fn error(&self, e: &dyn std::fmt::Display) -> SpoolError {
        SpoolError::Storage {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// One transaction for the whole group; every waiter learns the outcome of its own event.
    fn commit(&mut self, appends: Vec<Pending>) {
        let before = self.counts;
        let result = insert_group(&mut self.conn, &mut self.counts, &self.limits, &appends);
        let (outcomes, dropped) = match result {
            Ok(done) => done,
            Err(e) => {
                self.counts = before;
                let error = self.error(&e);
                tracing::error!(%error, events = appends.len(), "decision log events not committed");
                for (_, done) in appends {
                    let _ = done.send(Err(error.clone()));
                }
                return;
            }
        };
        let refused = outcomes.iter().filter(|o| o.is_err()).count() as u64;
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
        for ((_, done), outcome) in appends.into_iter().zip(outcomes) {
            let _ = done.send(outcome);
        }
    }

    fn peek(&self, max_bytes: usize) -> Result<Rows, SpoolError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, event FROM events ORDER BY seq LIMIT 10000")
            .map_err(|e| self.error(&e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(|e| self.error(&e))?;
        let mut out = Vec::new();
        let mut total = 0usize;
        for row in rows {
            let row = row.map_err(|e| self.error(&e))?;
            total += row.1.len();
            if !out.is_empty() && total > max_bytes {
                break;
            }
            out.push(row);
        }
        Ok(out)
    }

    fn ack(&mut self, first: i64, last: i64) -> Result<u64, SpoolError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "DELETE FROM events WHERE seq BETWEEN ?1 AND ?2 RETURNING length(event)",
            )
            .map_err(|e| self.error(&e))?;
        let sizes: Vec<u64> = stmt
            .query_map(params![first, last], |r| {
                r.get::<_, i64>(0).map(i64::unsigned_abs)
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.error(&e))?;
        let n = sizes.len() as u64;
        self.counts.events = self.counts.events.saturating_sub(n);
        self.counts.bytes = self.counts.bytes.saturating_sub(sizes.iter().sum());
        Ok(n)
    }

    fn publish(&self) {
        if let Some(m) = &self.metrics {
            m.depth(self.counts.events, self.counts.bytes);
        }
    }
}

type Outcomes = Vec<Result<(), SpoolError>>;

/// Inserts what fits in one transaction; returns each event's outcome and how many old events
/// were dropped to make room.
fn insert_group(
    conn: &mut Connection,
    counts: &mut Counts,
    limits: &Limits,
    appends: &[Pending],
) -> rusqlite::Result<(Outcomes, u64)> {
    let tx = conn.transaction()?;
    let mut outcomes = Vec::with_capacity(appends.len());
    let mut dropped = 0;
    {
        let mut insert = tx.prepare_cached("INSERT INTO events (event) VALUES (?1)")?;
        let mut oldest = tx.prepare_cached(
            "DELETE FROM events WHERE seq = (SELECT min(seq) FROM events) RETURNING length(event)",
        )?;
        for (event, _) in appends {
            let size = event.len() as u64;
            if limits.when_full == WhenFull::DropOldest {
                while counts.events > 0 && !counts.room(limits, size) {
                    let freed = oldest.query_row([], |r| r.get::<_, i64>(0))?.unsigned_abs();
                    counts.events -= 1;
                    counts.bytes = counts.bytes.saturating_sub(freed);
                    dropped += 1;
                }
            }
            // Refused, or larger than the whole spool: nothing can make room for it.
            if !counts.room(limits, size) {
                outcomes.push(Err(SpoolError::Full(limits.max_bytes)));
                continue;
            }
            insert.execute(params![event])?;
            counts.events += 1;
            counts.bytes += size;
            outcomes.push(Ok(()));
        }
    }
    tx.commit()?;
    Ok((outcomes, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_bytes: u64, when_full: WhenFull) -> Limits {
        Limits {
            max_bytes,
            max_events: None,
            when_full,
        }
    }

    #[tokio::test]
    async fn events_survive_reopening_and_leave_only_when_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig::default();
        {
            let spool =
                Spool::open(dir.path(), &config, limits(1 << 20, WhenFull::Refuse), None).unwrap();
            for i in 0..5 {
                spool
                    .append(format!("{{\"n\":{i}}}").into_bytes())
                    .await
                    .unwrap();
            }
            let rows = spool.peek(1 << 20).await.unwrap();
            assert_eq!(rows.len(), 5);
            assert_eq!(spool.ack(rows[0].0, rows[1].0).await.unwrap(), 2);
        }
        // The writer thread ends with its last handle; the database is released.
        let spool = loop {
            match Spool::open(dir.path(), &config, limits(1 << 20, WhenFull::Refuse), None) {
                Ok(s) => break s,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        let rows = spool.peek(1 << 20).await.unwrap();
        let bodies: Vec<&[u8]> = rows.iter().map(|r| r.1.as_slice()).collect();
        assert_eq!(bodies, vec![&b"{\"n\":2}"[..], b"{\"n\":3}", b"{\"n\":4}"]);
    }

    #[tokio::test]
    async fn a_full_spool_refuses_or_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig::default();
        let refuse = Spool::open(
            &dir.path().join("r"),
            &config,
            limits(10, WhenFull::Refuse),
            None,
        )
        .unwrap();
        refuse.append(b"12345".to_vec()).await.unwrap();
        refuse.append(b"67890".to_vec()).await.unwrap();
        assert!(matches!(
            refuse.append(b"x".to_vec()).await,
            Err(SpoolError::Full(10))
        ));

        let drop = Spool::open(
            &dir.path().join("d"),
            &config,
            limits(10, WhenFull::DropOldest),
            None,
        )
        .unwrap();
        for e in [&b"12345"[..], b"67890", b"abcde"] {
            drop.append(e.to_vec()).await.unwrap();
        }
        let rows = drop.peek(100).await.unwrap();
        let bodies: Vec<&[u8]> = rows.iter().map(|r| r.1.as_slice()).collect();
        assert_eq!(bodies, vec![&b"67890"[..], b"abcde"]);
        assert!(matches!(
            drop.append(vec![b'x'; 11]).await,
            Err(SpoolError::Full(10))
        ));
    }
}
