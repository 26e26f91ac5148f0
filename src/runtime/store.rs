//! The durable home of pushed data: one SQLite database, `pushed-data.db` in OPA's
//! `persistence_directory` (beside OPA's own `bundles/`), one row per top-level document, and
//! the Rego modules put through the policy API (`store/policies.rs`), one row per policy id.
//!
//! Each Data API write is one transaction, committed with `synchronous=FULL` in WAL mode before
//! the write is answered: writes are rare, and one a client was told about must survive a
//! power cut. The database is created by the first write, so a server nobody writes to never
//! touches the disk (a read-only root filesystem keeps working, as with OPA). Once it exists it
//! is read whole at start, and one that cannot be read stops the start: serving without the
//! sanctions a client pushed would be a silent wrong answer.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use regorus::Value;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

mod policies;
pub use policies::StoredPolicies;

pub const FILE_NAME: &str = "pushed-data.db";

/// OPA's default `persistence_directory`, for a config that names none.
const DEFAULT_DIR: &str = ".opa";

/// The layout this code reads and writes (SQLite's `user_version`); version 1 had no policies
/// table and is brought up to date when opened.
const SCHEMA_VERSION: i64 = 2;

/// How long opening waits for another process to let go of the database: long enough for a
/// restart to overlap its predecessor's exit, short enough to fail a start clearly when a
/// second verdict shares the directory.
const LOCK_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create {}: {error}", path.display())]
    Create {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {error}", path.display())]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("{}: integrity check failed: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("{}: schema version {found}, this verdict reads version {SCHEMA_VERSION}", path.display())]
    Schema { path: PathBuf, found: i64 },
    #[error("{}: document {key:?}: {error}", path.display())]
    Document {
        path: PathBuf,
        key: String,
        error: serde_json::Error,
    },
}

/// The pushed-data database. Owned by the reloader, the only writer; all its calls block.
pub struct PushedStore {
    path: PathBuf,
    /// `None` until the database exists. Behind a mutex only so that the store is `Sync` (the
    /// reloader is borrowed across awaits); it is reached through `&mut self`, so never locked.
    conn: Mutex<Option<Connection>>,
    lock_wait: Duration,
    /// The policies read at open, until the reloader takes them.
    policies: policies::StoredPolicies,
}

impl std::fmt::Debug for PushedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PushedStore {
    /// Opens the database in `dir` and reads every document, or notes that there is none yet.
    pub fn open(dir: &Path) -> Result<(PushedStore, Value), StoreError> {
        Self::open_waiting(dir, LOCK_WAIT)
    }

    fn open_waiting(dir: &Path, lock_wait: Duration) -> Result<(PushedStore, Value), StoreError> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(DEFAULT_DIR)
        } else {
            dir
        };
        let mut store = PushedStore {
            path: dir.join(FILE_NAME),
            conn: Mutex::new(None),
            lock_wait,
            policies: policies::StoredPolicies::new(),
        };
        let exists = store
            .path
            .try_exists()
            .map_err(|error| StoreError::Create {
                path: store.path.clone(),
                error,
            })?;
        if !exists {
            return Ok((store, Value::new_object()));
        }
        let conn = store.connect()?;
        let tree = store.load(&conn)?;
        store.policies = store.load_policies(&conn)?;
        *store.connection() = Some(conn);
        let documents = tree.as_object().map_or(0, |o| o.len());
        tracing::info!(path = %store.path.display(), documents, "pushed data loaded");
        Ok((store, tree))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the changed top-level documents (`None`: removed) in one transaction, durable
    /// when this returns.
    pub fn commit(&mut self, changes: &[(String, Option<Value>)]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut conn = match self.connection().take() {
            Some(conn) => conn,
            None => self.create()?,
        };
        let result = write(&self.path, &mut conn, changes);
        *self.connection() = Some(conn);
        result
    }

    fn connection(&mut self) -> &mut Option<Connection> {
        self.conn.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the directory, the file (readable by this user only: pushed data holds keys
    /// and lists that are nobody else's business) and the schema.
    fn create(&self) -> Result<Connection, StoreError> {
        let create_error = |error| StoreError::Create {
            path: self.path.clone(),
            error,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(create_error)?;
        }
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.path)
            .map_err(create_error)?;
        self.connect()
    }

    /// Opens with verdict's settings, takes the lock, checks integrity and schema.
    fn connect(&self) -> Result<Connection, StoreError> {
        let sqlite = |error| StoreError::Sqlite {
            path: self.path.clone(),
            error,
        };
        // No URI parsing: a directory named `file:...` is a directory.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(sqlite)?;
        conn.busy_timeout(self.lock_wait).map_err(sqlite)?;
        // One process owns the pushed data: a second verdict on the same directory would
        // answer from a tree that misses the first one's writes, and overwrite them.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .map_err(sqlite)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("cannot switch to WAL journaling (journal_mode is {mode})"),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(sqlite)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |row| row.get(0))
            .map_err(sqlite)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: check,
            });
        }
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sqlite)?;
        match version {
            0 => conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE documents (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                     CREATE TABLE policies (id TEXT PRIMARY KEY NOT NULL, raw TEXT NOT NULL);
                     PRAGMA user_version = 2;
                     COMMIT;",
                )
                .map_err(sqlite)?,
            1 => conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE policies (id TEXT PRIMARY KEY NOT NULL, raw TEXT NOT NULL);
                     PRAGMA user_version = 2;
                     COMMIT;",
                )
                .map_err(sqlite)?,
            SCHEMA_VERSION => {}
            found => {
                return Err(StoreError::Schema {
                    path: self.path.clone(),
                    found,
                })
            }
        }
        Ok(conn)
    }

    /// The whole pushed tree.
    fn load(&self, conn: &Connection) -> Result<Value, StoreError> {
        let rows: Vec<(String, String)> =
            self.text_pairs(conn, "SELECT key, value FROM documents ORDER BY key")?;
        let mut tree = Value::new_object();
        for (key, text) in rows {
            let value: Value =
                serde_json::from_str(&text).map_err(|error| StoreError::Document {
                    path: self.path.clone(),
                    key: key.clone(),
                    error,
                })?;
            if let Ok(object) = tree.as_object_mut() {
                object.insert(Value::from(key.as_str()), value);
            }
        }
        Ok(tree)
    }

    /// Every row of a query selecting two text columns, in its order: the pushed documents
    /// and the policies put over the API are both stored so.
    fn text_pairs<C: FromIterator<(String, String)>>(
        &self,
        conn: &Connection,
        sql: &str,
    ) -> Result<C, StoreError> {
        let sqlite = |error| StoreError::Sqlite {
            path: self.path.clone(),
            error,
        };
        let mut statement = conn.prepare(sql).map_err(sqlite)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(sqlite)?;
        rows.collect::<Result<_, _>>().map_err(sqlite)
    }
}

fn write(
    path: &Path,
    conn: &mut Connection,
    changes: &[(String, Option<Value>)],
) -> Result<(), StoreError> {
    let sqlite = |error| StoreError::Sqlite {
        path: path.to_path_buf(),
        error,
    };
    // Dropped without `commit` (any error below), the transaction rolls back: a write is
    // stored whole or not at all.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    for (key, document) in changes {
        match document {
            Some(value) => {
                let text = serde_json::to_string(value).map_err(|error| StoreError::Document {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    error,
                })?;
                tx.execute(
                    "INSERT INTO documents (key, value) VALUES (?1, ?2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, text),
                )
                .map_err(sqlite)?;
            }
            None => {
                tx.execute("DELETE FROM documents WHERE key = ?1", [key])
                    .map_err(sqlite)?;
            }
        }
    }
    tx.commit().map_err(sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Option<Value> {
        Some(serde_json::from_str(text).unwrap())
    }

    #[test]
    fn nothing_is_created_until_a_write_and_every_write_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("persist");
        let (mut store, tree) = PushedStore::open(&at).unwrap();
        assert_eq!(tree, Value::new_object());
        assert!(!at.exists(), "opening creates nothing");
        store
            .commit(&[
                ("a".into(), doc(r#"{"x": [1, "two"]}"#)),
                ("b".into(), doc("2")),
            ])
            .unwrap();
        store.commit(&[("b".into(), None)]).unwrap();
        let mode = std::fs::metadata(store.path()).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        drop(store);
        let (_, tree) = PushedStore::open(&at).unwrap();
        assert_eq!(
            tree,
            serde_json::from_str::<Value>(r#"{"a": {"x": [1, "two"]}}"#).unwrap()
        );
    }

    #[test]
    fn an_unreadable_database_is_an_error_not_an_empty_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            b"not a database, sixteen+ bytes",
        )
        .unwrap();
        let err = PushedStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a database"), "{err}");

        let other = tempfile::tempdir().unwrap();
        let (mut store, _) = PushedStore::open(other.path()).unwrap();
        store.commit(&[("a".into(), doc("1"))]).unwrap();
        drop(store);
        let conn = Connection::open(other.path().join(FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        drop(conn);
        let err = PushedStore::open(other.path()).unwrap_err();
        assert!(matches!(err, StoreError::Schema { found: 7, .. }), "{err}");
    }

    #[test]
    fn one_process_owns_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let (mut first, _) = PushedStore::open(dir.path()).unwrap();
        first.commit(&[("a".into(), doc("1"))]).unwrap();
        let second = PushedStore::open_waiting(dir.path(), Duration::from_millis(50));
        let err = second.unwrap_err().to_string();
        assert!(err.contains("locked"), "{err}");
        drop(first);
        assert!(
            PushedStore::open(dir.path()).is_ok(),
            "free once the owner is gone"
        );
    }
}
