//! The policies table: each Rego module put through the policy API (`PUT /v1/policies/{id}`),
//! its text as the client sent it, keyed by its id. Committed like a data write, before the
//! client is answered, so that a policy a client was told about survives a restart.

use std::collections::BTreeMap;

use rusqlite::{Connection, TransactionBehavior};

use super::{PushedStore, StoreError};

/// Policy id → module text.
pub type StoredPolicies = BTreeMap<String, String>;

impl PushedStore {
    /// The policies read when the store was opened; the reloader takes them once at start.
    pub fn take_policies(&mut self) -> StoredPolicies {
        std::mem::take(&mut self.policies)
    }

    /// Stores the policy `id` (`None`: removes it), durable when this returns.
    pub fn commit_policy(&mut self, id: &str, raw: Option<&str>) -> Result<(), StoreError> {
        let mut conn = match self.connection().take() {
            Some(conn) => conn,
            None => self.create()?,
        };
        let result = write_policy(&self.path, &mut conn, id, raw);
        *self.connection() = Some(conn);
        result
    }

    pub(super) fn load_policies(&self, conn: &Connection) -> Result<StoredPolicies, StoreError> {
        self.text_pairs(conn, "SELECT id, raw FROM policies ORDER BY id")
    }
}

fn write_policy(
    path: &std::path::Path,
    conn: &mut Connection,
    id: &str,
    raw: Option<&str>,
) -> Result<(), StoreError> {
    let sqlite = |error| StoreError::Sqlite {
        path: path.to_path_buf(),
        error,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite)?;
    match raw {
        Some(raw) => tx.execute(
            "INSERT INTO policies (id, raw) VALUES (?1, ?2)
             ON CONFLICT (id) DO UPDATE SET raw = excluded.raw",
            (id, raw),
        ),
        None => tx.execute("DELETE FROM policies WHERE id = ?1", [id]),
    }
    .map_err(sqlite)?;
    tx.commit().map_err(sqlite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_survive_a_reopen_beside_the_documents() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = PushedStore::open(dir.path()).unwrap();
        assert!(store.take_policies().is_empty());
        store.commit_policy("a", Some("package a\n")).unwrap();
        store.commit_policy("b/c", Some("package b\n")).unwrap();
        store
            .commit_policy("a", Some("package a\n\nx := 1\n"))
            .unwrap();
        store.commit_policy("b/c", None).unwrap();
        drop(store);
        let (mut store, tree) = PushedStore::open(dir.path()).unwrap();
        assert_eq!(tree, regorus::Value::new_object());
        let policies = store.take_policies();
        assert_eq!(
            policies,
            BTreeMap::from([("a".to_string(), "package a\n\nx := 1\n".to_string())])
        );
    }

    #[test]
    fn a_version_one_store_gains_the_policies_table() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(super::super::FILE_NAME);
        let conn = Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE documents (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
             INSERT INTO documents VALUES ('k', '1');
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(conn);
        let (mut store, tree) = PushedStore::open(dir.path()).unwrap();
        assert_eq!(tree["k"], regorus::Value::from(1u64));
        store.commit_policy("p", Some("package p\n")).unwrap();
        drop(store);
        let (mut store, _) = PushedStore::open(dir.path()).unwrap();
        assert_eq!(store.take_policies().len(), 1);
    }
}
