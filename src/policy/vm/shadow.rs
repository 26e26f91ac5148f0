//! Shadow checking: a sampled share of the VM's answers re-run on the interpreter, off the
//! request path, on one worker thread behind a small queue. A mismatch turns the VM off for
//! that entrypoint of that revision, is logged and counted. When the queue is full the sample
//! is dropped (counted): shadowing never delays or blocks a decision.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

use regorus::{Engine, Value};

use super::Entry;

/// Samples waiting for the worker; past it new ones are dropped.
const QUEUE: usize = 64;

/// One VM answer to check again.
struct Sample {
    engine: Engine,
    key: String,
    input: Value,
    vm: Value,
    entry: Arc<Entry>,
}

/// Process-wide counts, for metrics: samples checked, mismatches found, samples dropped.
#[derive(Debug, Default)]
pub struct ShadowCounts {
    pub checked: AtomicU64,
    pub mismatches: AtomicU64,
    pub dropped: AtomicU64,
}

pub static COUNTS: ShadowCounts = ShadowCounts {
    checked: AtomicU64::new(0),
    mismatches: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
};

/// The worker's queue, started with the first sample.
static WORKER: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();

enum Job {
    Check(Box<Sample>),
    /// Answered once every sample queued before it is checked.
    Flush(SyncSender<()>),
}

/// Queues `vm`, the VM's answer for rule `key` on `input`, to be compared with the
/// interpreter's (`engine` is a clone of the revision's warmed engine). Never blocks.
pub(super) fn submit(engine: Engine, key: &str, input: Value, vm: Value, entry: Arc<Entry>) {
    let sample = Box::new(Sample {
        engine,
        key: key.to_string(),
        input,
        vm,
        entry,
    });
    let sent = WORKER
        .get_or_init(start)
        .as_ref()
        .map(|tx| tx.try_send(Job::Check(sample)));
    match sent {
        Some(Ok(())) => {}
        Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
            COUNTS.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Waits at most `timeout` for the samples queued so far to be checked; true when they are.
pub fn wait_idle(timeout: std::time::Duration) -> bool {
    let Some(Some(tx)) = WORKER.get() else {
        return true;
    };
    let (done_tx, done_rx) = sync_channel(1);
    if tx.send(Job::Flush(done_tx)).is_err() {
        return false;
    }
    done_rx.recv_timeout(timeout).is_ok()
}

fn start() -> Option<SyncSender<Job>> {
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    std::thread::Builder::new()
        .name("verdict-vm-shadow".into())
        .stack_size(crate::policy::guard::stack::EVAL_STACK)
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                match job {
                    Job::Check(sample) => check(*sample),
                    Job::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        })
        .ok()?;
    Some(tx)
}

fn check(mut sample: Sample) {
    sample.engine.set_input(sample.input);
    let key = sample.key.clone();
    let interpreted = crate::policy::guard::stack::contained(|| sample.engine.eval_rule(key));
    COUNTS.checked.fetch_add(1, Ordering::Relaxed);
    let agrees = match interpreted {
        Ok(Ok(value)) => value == sample.vm,
        // The interpreter failing where the VM answered is a disagreement too.
        _ => false,
    };
    if !agrees {
        COUNTS.mismatches.fetch_add(1, Ordering::Relaxed);
        sample.entry.disable();
        tracing::warn!(
            path = %sample.entry.key,
            "shadow check: the VM disagreed with the interpreter; the interpreter serves this entrypoint from now on"
        );
    }
}
