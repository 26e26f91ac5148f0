//! The durable spool: every event is committed to SQLite (WAL) before its decision is
//! answered, and deleted only once a collector has taken it.
//!
//! One writer thread owns the database. Requests hand it their event and wait; it commits
//! whatever has queued up meanwhile as one row (group commit), so that a commit per event is
//! never paid under load, an idle spool answers at once, and the WAL grows by about what the
//! events weigh (a row per event rewrote the same pages again and again). A second thread
//! checkpoints the WAL into the database: a commit never waits for a checkpoint's copying and
//! syncing, which is what a decision would otherwise wait for in the tail of its latency.
//!
//! An event's id (what the uploader acknowledges) is its group's row and its index in the
//! group. Events leave from the front only: acknowledged, or dropped when the spool is full.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::config::{SpoolConfig, Synchronous, WhenFull};
use crate::telemetry::metrics::SpoolMetrics;

const FILE_NAME: &str = "spool.db";
const LOCK_NAME: &str = "spool.lock";

/// The most events committed in one transaction; bounds the wait of the last one in it.
const MAX_GROUP: usize = 4096;
/// An event id is `row << INDEX_BITS | index`; MAX_GROUP must stay below `1 << INDEX_BITS`.
const INDEX_BITS: u32 = 16;
/// The checkpointer's rest between two checkpoints while events keep coming.
const CHECKPOINT_PACE: Duration = Duration::from_millis(250);
/// WAL frames (pages) past which the checkpointer restarts the WAL from its beginning.
/// Checkpoints that never wait cannot restart it while commits keep coming, so it would grow
/// without bound under steady load; a restart makes the writer wait for the frames written
/// since the last checkpoint only. 16,384 pages of 4 KiB: 64 MiB.
const RESTART_FRAMES: i64 = 16_384;
/// A commit waiting for a WAL restart (or a restart for a commit) looks again this often, and
/// fails after 5 s.
const BUSY_POLL: Duration = Duration::from_micros(100);
const BUSY_ATTEMPTS: i32 = 50_000;

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
        let path = dir.join(FILE_NAME);
        let storage = |e: &dyn std::fmt::Display| storage_error(&path, e);
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
        let sync = match config.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        let connect = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(&path)?;
            // SQLite's own busy handler sleeps up to 50 ms at a time: a commit would wait that
            // long for a restart of a few milliseconds.
            conn.busy_handler(Some(|attempt: i32| {
                std::thread::sleep(BUSY_POLL);
                attempt < BUSY_ATTEMPTS
            }))?;
            conn.execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync};
                 PRAGMA journal_size_limit = {};",
                RESTART_FRAMES * 4096
            ))?;
            Ok(conn)
        };
        let mut conn = connect().map_err(|e| storage(&e))?;
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE IF NOT EXISTS event_groups (
                 seq INTEGER PRIMARY KEY,
                 sizes BLOB NOT NULL,
                 events BLOB NOT NULL
             );",
        )
        .map_err(|e| storage(&e))?;
        migrate_rows(&mut conn).map_err(|e| storage(&e))?;
        let groups = load_groups(&conn).map_err(|e| storage(&e))?;
        let checkpointer = connect().map_err(|e| storage(&e))?;
        let (checkpoints, wanted) = std_mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("decision-log-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &wanted))
            .map_err(|e| storage(&e))?;
        let writer = Writer {
            conn,
            path: path.clone(),
            limits,
            counts: Counts::of(&groups),
            groups,
            head: 0,
            metrics,
            checkpoints,
            _lock: lock,
        };
        if writer.counts.events > 0 {
            let Counts { events, bytes } = writer.counts;
            tracing::info!(path = %path.display(), events, bytes, "decision log spool has events to upload");
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

/// Spools written by verdict 0.1's first builds kept a row per event: each becomes a group.
fn migrate_rows(conn: &mut Connection) -> rusqlite::Result<()> {
    let old: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if old.is_none() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut read = tx.prepare("SELECT event FROM events ORDER BY seq")?;
        let mut write = tx.prepare("INSERT INTO event_groups (sizes, events) VALUES (?1, ?2)")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let event: Vec<u8> = row.get(0)?;
            write.execute(params![encode_sizes(&[event.len()]), event])?;
        }
    }
    tx.execute_batch("DROP TABLE events")?;
    tx.commit()
}

fn load_groups(conn: &Connection) -> rusqlite::Result<VecDeque<Group>> {
    let mut stmt = conn.prepare("SELECT seq, sizes FROM event_groups ORDER BY seq")?;
    let groups = stmt.query_map([], |r| {
        Ok(Group {
            seq: r.get(0)?,
            sizes: decode_sizes(&r.get::<_, Vec<u8>>(1)?),
        })
    })?;
    groups.collect()
}

fn encode_sizes(sizes: &[usize]) -> Vec<u8> {
    sizes
        .iter()
        .flat_map(|s| u32::try_from(*s).unwrap_or(u32::MAX).to_le_bytes())
        .collect()
}

fn decode_sizes(blob: &[u8]) -> Vec<u32> {
    blob.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Checkpoints whenever the writer says it committed, at most every CHECKPOINT_PACE; ends
/// with the writer.
fn checkpoint_loop(conn: &Connection, wanted: &std_mpsc::Receiver<()>) {
    let checkpoint = |mode: &str| {
        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            r.get::<_, i64>(1)
        })
    };
    while wanted.recv().is_ok() {
        // PASSIVE: copies what it can without ever making the writer wait.
        let done = checkpoint("PASSIVE").and_then(|frames| match frames > RESTART_FRAMES {
            true => checkpoint("RESTART"),
            false => Ok(frames),
        });
        if let Err(error) = done {
            tracing::warn!(%error, "decision log spool checkpoint failed; retried later");
        }
        std::thread::sleep(CHECKPOINT_PACE);
    }
}

/// One committed row of events.
struct Group {
    seq: i64,
    sizes: Vec<u32>,
}

fn id(seq: i64, index: usize) -> i64 {
    (seq << INDEX_BITS) | index as i64
}

#[derive(Debug, Clone, Copy)]
struct Counts {
    events: u64,
    bytes: u64,
}

impl Counts {
    fn of(groups: &VecDeque<Group>) -> Counts {
        let sizes = || groups.iter().flat_map(|g| g.sizes.iter());
        Counts {
            events: sizes().count() as u64,
            bytes: sizes().map(|s| u64::from(*s)).sum(),
        }
    }

    fn room(&self, limits: &Limits, size: u64) -> bool {
        let events_ok = limits.max_events.is_none_or(|max| self.events < max);
        events_ok && self.bytes + size <= limits.max_bytes
    }
}

struct Writer {
    conn: Connection,
    path: PathBuf,
    limits: Limits,
    /// The rows in the database, oldest first.
    groups: VecDeque<Group>,
    /// How many events of the oldest group are gone already (acknowledged or dropped).
    head: usize,
    counts: Counts,
    metrics: Option<SpoolMetrics>,
    checkpoints: std_mpsc::SyncSender<()>,
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
            // Full means a checkpoint is pending already.
            let _ = self.checkpoints.try_send(());
            self.publish();
        }
    }

    fn error(&self, e: &dyn std::fmt::Display) -> SpoolError {
        storage_error(&self.path, e)
    }

    /// One row for the whole group; every waiter learns the outcome of its own event.
    fn commit(&mut self, appends: Vec<Pending>) {
        let plan = self.plan(&appends);
        let row = match self.write(&appends, &plan) {
            Ok(row) => row,
            Err(e) => {
                let error = self.error(&e);
                tracing::error!(%error, events = appends.len(), "decision log events not committed");
                for (_, done) in appends {
                    let _ = done.send(Err(error.clone()));
                }
                return;
            }
        };
        self.apply_front(plan.front);
        let dropped = plan.dropped;
        if let Some(seq) = row {
            let sizes = plan
                .kept
                .iter()
                .map(|&i| appends[i].0.len() as u32)
                .collect();
            self.groups.push_back(Group { seq, sizes });
        }
        self.counts = plan.counts;
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
    fn plan(&self, appends: &[Pending]) -> Plan {
        let mut counts = self.counts;
        let mut front = Front {
            groups: 0,
            head: self.head,
        };
        // Kept events of this group not yet dropped again start at `kept_from`.
        let (mut kept, mut kept_from): (Vec<usize>, usize) = (Vec::new(), 0);
        let mut outcomes = Vec::with_capacity(appends.len());
        let mut dropped = 0;
        for (i, (event, _)) in appends.iter().enumerate() {
            let size = event.len() as u64;
            if self.limits.when_full == WhenFull::DropOldest {
                while counts.events > 0 && !counts.room(&self.limits, size) {
                    let freed = match self.groups.get(front.groups) {
                        Some(group) => {
                            let freed = group.sizes.get(front.head).copied().unwrap_or(0);
                            front.head += 1;
                            if front.head == group.sizes.len() {
                                front = Front {
                                    groups: front.groups + 1,
                                    head: 0,
                                };
                            }
                            u64::from(freed)
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
        // committed, then dropped, as it would have been a moment later.
        kept.drain(..kept_from);
        Plan {
            kept,
            front,
            counts,
            outcomes,
            dropped,
        }
    }

    /// Deletes the rows `front` empties and inserts the kept events as one row, in one
    /// transaction; returns the new row, if any.
    fn write(&mut self, appends: &[Pending], plan: &Plan) -> rusqlite::Result<Option<i64>> {
        let tx = self.conn.transaction()?;
        if plan.front.groups > 0 {
            let last = self.groups[plan.front.groups - 1].seq;
            tx.prepare_cached("DELETE FROM event_groups WHERE seq <= ?1")?
                .execute(params![last])?;
        }
        let mut seq = None;
        if !plan.kept.is_empty() {
            let sizes: Vec<usize> = plan.kept.iter().map(|&i| appends[i].0.len()).collect();
            let mut events = Vec::with_capacity(sizes.iter().sum());
            for &i in &plan.kept {
                events.extend_from_slice(&appends[i].0);
            }
            tx.prepare_cached("INSERT INTO event_groups (sizes, events) VALUES (?1, ?2)")?
                .execute(params![encode_sizes(&sizes), events])?;
            seq = Some(tx.last_insert_rowid());
        }
        tx.commit()?;
        Ok(seq)
    }

    /// Forgets the groups `front` emptied, once their rows are deleted.
    fn apply_front(&mut self, front: Front) {
        self.groups.drain(..front.groups);
        self.head = front.head;
    }

    fn peek(&self, max_bytes: usize) -> Result<Rows, SpoolError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT events FROM event_groups WHERE seq = ?1")
            .map_err(|e| self.error(&e))?;
        let mut out = Vec::new();
        let mut total = 0usize;
        for (n, group) in self.groups.iter().enumerate() {
            let events: Vec<u8> = stmt
                .query_row(params![group.seq], |r| r.get(0))
                .map_err(|e| self.error(&e))?;
            let mut offset = 0usize;
            let skip = if n == 0 { self.head } else { 0 };
            for (index, size) in group.sizes.iter().enumerate() {
                let end = offset + *size as usize;
                let event = events.get(offset..end).ok_or_else(|| {
                    self.error(&format!("row {} is shorter than its sizes", group.seq))
                })?;
                offset = end;
                if index < skip {
                    continue;
                }
                total += event.len();
                if !out.is_empty() && total > max_bytes {
                    return Ok(out);
                }
                out.push((id(group.seq, index), event.to_vec()));
            }
        }
        Ok(out)
    }

    fn ack(&mut self, last: i64) -> Result<u64, SpoolError> {
        let (seq, index) = (
            last >> INDEX_BITS,
            (last & ((1 << INDEX_BITS) - 1)) as usize,
        );
        let mut front = Front {
            groups: 0,
            head: self.head,
        };
        let mut counts = self.counts;
        for group in &self.groups {
            if group.seq > seq {
                break;
            }
            let upto = if group.seq == seq {
                (index + 1).min(group.sizes.len())
            } else {
                group.sizes.len()
            };
            for size in group.sizes.get(front.head..upto).unwrap_or(&[]) {
                counts.events = counts.events.saturating_sub(1);
                counts.bytes = counts.bytes.saturating_sub(u64::from(*size));
            }
            front.head = front.head.max(upto);
            if front.head < group.sizes.len() {
                break;
            }
            front = Front {
                groups: front.groups + 1,
                head: 0,
            };
        }
        if front.groups > 0 {
            let last_row = self.groups[front.groups - 1].seq;
            self.conn
                .prepare_cached("DELETE FROM event_groups WHERE seq <= ?1")
                .and_then(|mut s| s.execute(params![last_row]))
                .map_err(|e| self.error(&e))?;
        }
        let acked = self.counts.events - counts.events;
        self.apply_front(front);
        self.counts = counts;
        Ok(acked)
    }

    fn publish(&self) {
        if let Some(m) = &self.metrics {
            m.depth(self.counts.events, self.counts.bytes);
        }
    }
}

/// Where the oldest live event will be: `groups` rows emptied, `head` events gone from the
/// next one.
#[derive(Debug, Clone, Copy)]
struct Front {
    groups: usize,
    head: usize,
}

struct Plan {
    /// Indexes in the appends of the events the new row holds.
    kept: Vec<usize>,
    front: Front,
    counts: Counts,
    outcomes: Vec<Result<(), SpoolError>>,
    dropped: u64,
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
            assert_eq!(spool.ack(rows[1].0).await.unwrap(), 2);
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

    #[tokio::test]
    async fn concurrent_events_share_rows_and_leave_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig::default();
        let spool =
            Spool::open(dir.path(), &config, limits(1 << 20, WhenFull::Refuse), None).unwrap();
        let appends = (0..500).map(|i| spool.append(format!("{i}").into_bytes()));
        for done in futures_util::future::join_all(appends).await {
            done.unwrap();
        }
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM event_groups", [], |r| r.get(0))
            .unwrap();
        assert!(rows < 500, "{rows} rows for 500 events");

        // Acknowledged part-way into a row: the rest of it stays, in order.
        let all = spool.peek(1 << 20).await.unwrap();
        let mut numbers: Vec<u32> = all
            .iter()
            .map(|(_, e)| std::str::from_utf8(e).unwrap().parse().unwrap())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..500).collect::<Vec<_>>());
        assert_eq!(spool.ack(all[249].0).await.unwrap(), 250);
        let rest = spool.peek(1 << 20).await.unwrap();
        assert_eq!(rest, all[250..].to_vec());
        assert_eq!(spool.ack(all[499].0).await.unwrap(), 250);
        assert!(spool.peek(1 << 20).await.unwrap().is_empty());
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM event_groups", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    #[tokio::test]
    async fn a_second_process_cannot_take_a_spool_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig::default();
        let l = limits(1 << 20, WhenFull::Refuse);
        let _first = Spool::open(dir.path(), &config, l, None).unwrap();
        let second = Spool::open(dir.path(), &config, l, None);
        assert!(
            matches!(&second, Err(SpoolError::Storage { message, .. }) if message.contains("in use")),
            "{second:?}"
        );
    }

    #[tokio::test]
    async fn a_spool_of_a_row_per_event_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
            conn.execute_batch(
                "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event BLOB NOT NULL);
                 INSERT INTO events (event) VALUES (CAST('{\"n\":1}' AS BLOB)), (CAST('{\"n\":2}' AS BLOB));",
            )
            .unwrap();
        }
        let config = SpoolConfig::default();
        let spool =
            Spool::open(dir.path(), &config, limits(1 << 20, WhenFull::Refuse), None).unwrap();
        let rows = spool.peek(1 << 20).await.unwrap();
        let bodies: Vec<&[u8]> = rows.iter().map(|r| r.1.as_slice()).collect();
        assert_eq!(bodies, vec![&b"{\"n\":1}"[..], b"{\"n\":2}"]);
    }
}
