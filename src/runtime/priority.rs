//! The CPU priority of the threads that evaluate policies and decode large bodies: below the
//! async workers. A runaway evaluation can hold a core until its time limit; at the workers'
//! priority, two of them on a two-core node made health probes, metrics scrapes and the
//! accept loop queue behind them (measured in benches/README.md, "Isolation"). Lowered, they
//! only get the CPU the workers leave, while a short decision still wakes up promptly.

use std::cell::Cell;

/// How far below the workers such threads run, in nice steps: at 10 the scheduler weighs a
/// worker about nine times as heavily as an evaluation.
const NICE: i32 = 10;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Lowers the calling thread's priority, once per thread. Call it first in any blocking task
/// that runs policy or parses untrusted bytes. A thread of the blocking pool stays lowered for
/// the other blocking work it later runs (file writes), which waits for devices, not CPU.
pub fn lower_this_thread() {
    LOWERED.with(|done| {
        if done.replace(true) {
            return;
        }
        let tid = rustix::thread::gettid();
        let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
        // Linux gives each thread its own nice value; raising it needs no privilege.
        if let Err(error) =
            rustix::process::setpriority_process(Some(tid), (current + NICE).min(19))
        {
            tracing::debug!(%error, "evaluation thread keeps the workers' priority");
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_lowered_thread_runs_below_the_others_and_only_it() {
        let here = rustix::thread::gettid();
        let before = rustix::process::getpriority_process(Some(here)).unwrap_or_default();
        let lowered = std::thread::spawn(|| {
            super::lower_this_thread();
            super::lower_this_thread();
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
        })
        .join()
        .map_err(|_| "thread panicked");
        assert_eq!(lowered, Ok(Ok((before + super::NICE).min(19))));
        assert_eq!(rustix::process::getpriority_process(Some(here)), Ok(before));
    }
}
