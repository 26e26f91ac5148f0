//! The rule definitions an entrypoint reaches, over the same dependency graph the recursion
//! check builds: what the bytecode fast path must check before it may serve the entrypoint.

use std::collections::{BTreeSet, HashMap};

use regorus::unstable::{Module, Ref};

use super::refs::{references, RefPath, Seg};
use super::PathIndex;
use crate::policy::rules;

/// Every rule definition reachable from `entry` (a path under `data`), as (module index, rule
/// index) pairs into `modules`, the entry's own definitions included. A variable segment
/// reaches every rule below it, so the set can only be too large, never too small.
pub fn reachable(modules: &[Ref<Module>], entry: &[String]) -> Vec<(usize, usize)> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    let mut ids: HashMap<Vec<String>, usize> = HashMap::new();
    let mut definitions: Vec<Vec<(usize, usize)>> = Vec::new();
    for (m, module) in modules.iter().enumerate() {
        let package = rules::package_path(module);
        for (r, rule) in module.policy.iter().enumerate() {
            let path = rules::rule_path(&package, rule);
            let next = ids.len();
            let node = *ids.entry(path.clone()).or_insert_with(|| {
                paths.push(path);
                definitions.push(Vec::new());
                next
            });
            definitions[node].push((m, r));
        }
    }
    let index = PathIndex::new(&paths);
    let mut seen = BTreeSet::new();
    let target: RefPath = entry.iter().cloned().map(Seg::Key).collect();
    let mut pending = BTreeSet::new();
    index.matching(&target, &mut pending);
    let mut stack: Vec<usize> = pending.into_iter().collect();
    let mut out = Vec::new();
    while let Some(node) = stack.pop() {
        if !seen.insert(node) {
            continue;
        }
        for &(m, r) in &definitions[node] {
            out.push((m, r));
            let mut deps = BTreeSet::new();
            for target in references(&modules[m], &modules[m].policy[r]) {
                index.matching(&target, &mut deps);
            }
            stack.extend(deps.into_iter().filter(|d| !seen.contains(d)));
        }
    }
    out.sort_unstable();
    out
}
