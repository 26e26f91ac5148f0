//! VM decisions on the thread that asks for them: a verified entrypoint answers within
//! `INLINE_BUDGET` without the hand-off to a blocking thread and back, which cost more than
//! the decision itself.

use std::time::{Duration, Instant};

use regorus::Value;

use super::{serve, Place};
use crate::policy::{navigate, Decision, Plan, PolicySet, Query};

impl PolicySet {
    /// The decision the VM makes on the calling thread within `INLINE_BUDGET`, when it
    /// serves the path and answers in time; `None` otherwise, and `evaluate` decides, on a
    /// thread where a long evaluation holds nobody up. A verified decision takes tens of
    /// microseconds, less than handing it to another thread and back.
    pub fn evaluate_inline(&self, query: &Query<'_>) -> Option<Decision> {
        let (fast, input) = (self.fast.as_ref()?, query.input.as_ref()?);
        if query.strict_builtin_errors {
            return None;
        }
        let started = Instant::now();
        // Only paths prepared already: a path's first decision is `evaluate`'s, which counts
        // it as OPA's prepared-query cache miss.
        let Some(Plan::Rule { key, rest }) =
            self.definitions.plans.prepared(&query.path.display_ref())
        else {
            return None;
        };
        let value = serve(fast, &self.template, &key, input, Place::Inline)?;
        Some(decision(value, query, rest, started, None))
    }
}

/// A decision the VM answered: the part of the rule's value the path names.
pub(in crate::policy) fn decision(
    value: Value,
    query: &Query<'_>,
    rest: usize,
    started: Instant,
    prepare_time: Option<Duration>,
) -> Decision {
    let value = navigate(value, &query.path.segments()[rest..]);
    Decision {
        result: (value != Value::Undefined).then_some(value),
        eval_time: started.elapsed(),
        prepare_time,
    }
}
