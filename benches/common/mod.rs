//! What the in-process benches share: their `main`.

use criterion::Criterion;

/// Runs a bench's criterion group on a thread with the stack the service's threads have: on
/// the main thread's 8 MiB each evaluation would move to a stack of its own first (~9 µs a
/// decision that the service never pays).
pub fn main_on_eval_stack(group: fn()) {
    verdict::policy::guard::stack::on_eval_stack(|| {
        group();
        Criterion::default().configure_from_args().final_summary();
    });
}
