//! Prepared decision paths: how a path a client asks is read (an exact rule, or a query and a
//! walk below it) is worked out on the first decision of the path and kept for the
//! compilation, as OPA prepares a query once per path until its policies change. The first
//! decision of a path is OPA's prepared-query cache miss, and reports the time the preparation
//! took (`timer_rego_query_compile_ns`); the next ones are hits.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::Plan;

/// Paths kept per compilation, as OPA's server keeps 100 prepared queries: clients choose the
/// paths, so the table must not grow with them. Once full, a new path is prepared for each
/// decision (a miss each time) and the paths already kept stay.
const CAPACITY: usize = 100;

/// The prepared paths of one compilation, shared by its data revisions.
#[derive(Debug, Default)]
pub(super) struct Plans {
    known: RwLock<HashMap<String, Plan>>,
}

impl Plans {
    /// The plan for `key` when it is prepared already; nothing is prepared or counted.
    pub fn prepared(&self, key: &str) -> Option<Plan> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        known.get(key).cloned()
    }

    /// The plan for `key`, and the time preparing it took when it was not prepared yet.
    pub fn get(&self, key: String, prepare: impl FnOnce() -> Plan) -> (Plan, Option<Duration>) {
        // A poisoned lock only means another decision panicked while holding it; the table
        // is still a valid cache.
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        if let Some(plan) = known.get(&key) {
            return (plan.clone(), None);
        }
        drop(known);
        let started = Instant::now();
        let plan = prepare();
        let took = started.elapsed();
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() < CAPACITY {
            known.insert(key, plan.clone());
        }
        (plan, Some(took))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(key: &str) -> Plan {
        Plan::Rule {
            key: key.to_string(),
            rest: 0,
        }
    }

    #[test]
    fn the_first_decision_of_a_path_prepares_it_and_the_next_reuse_it() {
        let plans = Plans::default();
        let (_, first) = plans.get("data.a".into(), || rule("data.a"));
        assert!(first.is_some(), "a miss");
        let (plan, again) = plans.get("data.a".into(), || panic!("prepared twice"));
        assert!(again.is_none(), "a hit");
        assert!(matches!(plan, Plan::Rule { key, .. } if key == "data.a"));
        assert!(plans.prepared("data.a").is_some());
        assert!(
            plans.prepared("data.b").is_none(),
            "looking does not prepare"
        );
        assert!(plans.get("data.b".into(), || rule("data.b")).1.is_some());
    }

    #[test]
    fn a_full_table_keeps_its_paths_and_prepares_new_ones_each_time() {
        let plans = Plans::default();
        for i in 0..CAPACITY + 10 {
            plans.get(format!("data.p{i}"), || rule("x"));
        }
        assert!(plans.get("data.p0".into(), || rule("x")).1.is_none());
        let late = format!("data.p{}", CAPACITY + 5);
        assert!(plans.get(late.clone(), || rule("x")).1.is_some());
        assert!(plans.get(late, || rule("x")).1.is_some(), "never kept");
    }
}
