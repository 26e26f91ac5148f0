//! Data API writes through the single writer. A handler sends its write to the reloader; the
//! reloader checks it against the active bundles' roots, applies it to a copy of the pushed
//! tree, builds the policy set with it, commits it to the store, publishes the snapshot, and
//! only then answers. A write that fails at any step leaves the tree, the store and the
//! snapshot as they were.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use regorus::Value;
use tokio::sync::oneshot;

use super::{Reloader, Trigger};
use crate::bundle::Bundle;
use crate::runtime::pushed::{self, Owner, WriteError, WriteOp, Written};
use crate::runtime::AppState;

/// One write waiting for the reloader, and where its answer goes.
#[derive(Debug)]
pub struct WriteRequest {
    pub op: WriteOp,
    pub reply: oneshot::Sender<Result<Written, WriteError>>,
}

impl AppState {
    /// Applies a Data API write. Returns once the write is stored and every later decision
    /// sees it. A write sent is carried out even if the caller stops waiting.
    pub async fn write(&self, op: WriteOp) -> Result<Written, WriteError> {
        let writer = self
            .writer
            .as_ref()
            .and_then(|w| w.upgrade())
            .ok_or(WriteError::Unavailable)?;
        let (reply, answer) = oneshot::channel();
        writer
            .send(Trigger::Write(WriteRequest { op, reply }))
            .map_err(|_| WriteError::Unavailable)?;
        answer.await.map_err(|_| WriteError::Unavailable)?
    }
}

impl Reloader {
    /// Applies `writes` in the order they came, each published before it is answered. Runs
    /// them on a blocking thread (store commits, engine warm-up); `None` if that thread was
    /// lost, which ends the reloader as a lost reload does.
    pub(super) async fn write_all(
        mut self,
        state: &Arc<AppState>,
        writes: Vec<WriteRequest>,
    ) -> Option<Reloader> {
        let state = state.clone();
        let job = tokio::task::spawn_blocking(move || {
            for WriteRequest { op, reply } in writes {
                // A panic costs this write (answered as unavailable), not the writer.
                let result = catch_unwind(AssertUnwindSafe(|| self.write(&state, &op)))
                    .unwrap_or(Err(WriteError::Unavailable));
                if let Err(e) = &result {
                    log_refusal(e);
                }
                // The client may have gone; the write stands either way.
                let _ = reply.send(result);
            }
            self
        });
        match job.await {
            Ok(reloader) => Some(reloader),
            Err(e) => {
                tracing::error!(error = %e, "data writer stopped after an internal failure");
                None
            }
        }
    }

    fn write(&mut self, state: &AppState, op: &WriteOp) -> Result<Written, WriteError> {
        if let WriteOp::Policy(op) = op {
            return self.write_policy(state, op);
        }
        let owners = owners(&self.active);
        let Some(next) = pushed::apply(&self.pushed, op, &owners)? else {
            return Ok(Written::NotModified);
        };
        let current = state.snapshot();
        let policy = current
            .policy
            .with_pushed_data(&next)
            .map_err(WriteError::Rules)?;
        let changes = pushed::changed_documents(&self.pushed, &next);
        self.store.commit(&changes)?;
        self.pushed = next;
        let snapshot = self.snapshot(policy, current.activated_at);
        let generation = snapshot.generation;
        state.publish_write(snapshot);
        tracing::info!(
            documents = ?changes.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            generation,
            "pushed data written"
        );
        Ok(Written::Applied)
    }

    /// Adopts the pushed tree a bundle activation left (OPA's activation erases the data under
    /// the roots it takes over) and stores the erasure. A failed commit is logged: the erased
    /// documents are not served either way, and the next start erases them again.
    pub(super) fn keep_pushed(&mut self, next: Value) {
        let changes = pushed::changed_documents(&self.pushed, &next);
        if changes.is_empty() {
            return;
        }
        let documents: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
        tracing::warn!(
            ?documents,
            "pushed data under the roots of an activated bundle erased, as OPA's activation does"
        );
        if let Err(e) = self.store.commit(&changes) {
            tracing::error!(error = %e, "cannot store the erasure of pushed data; it is erased again at the next start");
        }
        self.pushed = next;
    }
}

/// The active bundles as owners of their roots.
pub(super) fn owners(active: &[Option<Arc<Bundle>>]) -> Vec<Owner> {
    active
        .iter()
        .flatten()
        .map(|b| Owner {
            bundle: b.name.clone(),
            roots: b.manifest.root_paths(),
        })
        .collect()
}

/// `tree` without whatever lies under the roots of `bundles`.
pub(super) fn erase_roots(tree: &Value, bundles: &[Option<Arc<Bundle>>]) -> Value {
    let roots: Vec<_> = bundles
        .iter()
        .flatten()
        .flat_map(|b| b.manifest.root_paths())
        .collect();
    pushed::erase(tree, &roots)
}

/// Client mistakes are the client's to read; failures of verdict's own are logged once here,
/// since the client only gets a generic 500.
fn log_refusal(e: &WriteError) {
    match e {
        WriteError::Store(_) | WriteError::Unavailable => {
            tracing::error!(error = %e, "data write failed; nothing was changed")
        }
        _ => tracing::debug!(error = %e, "data write refused"),
    }
}
