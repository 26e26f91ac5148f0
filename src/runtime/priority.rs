//! Where work a client chooses runs: ad-hoc queries and the decoding of large bodies get
//! threads of their own, below every other thread's CPU priority and a few at a time, so that
//! a client looping runaway queries can take neither the async workers (listeners, health,
//! metrics) nor the threads that evaluate the bundle's decisions away from anyone else.
//!
//! A decision (Data API, ext_authz, admission) runs the platform's own policy: it stays on the
//! shared blocking pool at normal priority, so that it never waits behind the gateway beside
//! it on the node. Ad-hoc work gets a fresh thread each time (a lowered priority cannot be
//! raised again without privilege, so no such thread may serve a decision later); spawning
//! one costs tens of microseconds, nothing next to what such work costs.

use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// How far below the other threads ad-hoc work runs, in nice steps: at 10 the scheduler
/// weighs any other thread about nine times as heavily.
const NICE: i32 = 10;

/// Ad-hoc work running at once: one per CPU the process may use (`cpus`). More waits its turn.
fn slots() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(Semaphore::new(super::cpus::available())))
}

/// Why ad-hoc work did not produce a value.
#[derive(Debug, thiserror::Error)]
pub enum AdHocError {
    #[error("no thread could be started for the request")]
    Spawn,
    #[error("the request's work stopped unexpectedly")]
    Lost,
}

/// Runs `work` on a thread of its own at a lowered priority, once one of the slots is free.
pub async fn ad_hoc<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AdHocError> {
    let permit = slots()
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| AdHocError::Lost)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("verdict-ad-hoc".into())
        .spawn(move || {
            lower_this_thread();
            // The receiver may be gone (the client left): the value is dropped.
            let _ = tx.send(work());
            drop(permit);
        })
        .map_err(|_| AdHocError::Spawn)?;
    rx.await.map_err(|_| AdHocError::Lost)
}

/// Lowers the calling thread's priority by `NICE` steps (Linux gives each thread its own nice
/// value; raising it needs no privilege).
fn lower_this_thread() {
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(error) = rustix::process::setpriority_process(Some(tid), (current + NICE).min(19)) {
        tracing::debug!(%error, "ad-hoc work keeps the normal priority");
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn ad_hoc_work_runs_below_the_caller_and_the_caller_keeps_its_priority() {
        let here = rustix::thread::gettid();
        let before = rustix::process::getpriority_process(Some(here)).unwrap_or_default();
        let there =
            super::ad_hoc(|| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
                .await;
        assert!(
            matches!(there, Ok(Ok(p)) if p == (before + super::NICE).min(19)),
            "{there:?}"
        );
        assert_eq!(rustix::process::getpriority_process(Some(here)), Ok(before));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_run_at_once_than_there_are_slots() {
        use std::sync::Arc;
        // All of them: another test's work may hold one for a moment, never for long.
        let slots = super::super::cpus::available();
        let gate = Arc::new(tokio::sync::RwLock::new(()));
        let (started, mut seen) = tokio::sync::watch::channel(0usize);
        let started = Arc::new(started);
        let held = gate.write().await;
        let mut jobs = tokio::task::JoinSet::new();
        for _ in 0..slots * 3 {
            let (gate, started) = (gate.clone(), started.clone());
            jobs.spawn(super::ad_hoc(move || {
                started.send_modify(|n| *n += 1);
                drop(gate.blocking_read());
            }));
        }
        // Every slot taken, the rest waiting: exactly `slots` have started.
        let full = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            seen.wait_for(|n| *n >= slots),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        assert!(full, "the slots never filled");
        tokio::task::yield_now().await;
        assert_eq!(*seen.borrow(), slots);
        drop(held);
        while let Some(outcome) = jobs.join_next().await {
            assert!(matches!(outcome, Ok(Ok(()))));
        }
        assert_eq!(*seen.borrow(), slots * 3);
    }
}
