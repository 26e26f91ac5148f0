//! Recursion refused at load, as OPA's compiler refuses it (`rego_recursion_error`), and
//! chains of rules too deep for the evaluator's stack (`depth`).
//!
//! regorus accepts rules and functions that depend on themselves and only fails when they run;
//! driven deep enough by input, they overflow the thread's stack and abort the process, which
//! no `catch_unwind` can stop. So the dependency graph between rules is built here from
//! regorus's parsed modules, as OPA builds its own: a rule depends on every rule a reference
//! or call in it may reach (through `data.…`, the package's own names, imports and aliases;
//! a variable segment reaches every rule below it). A rule definition with a dependency in its
//! own strongly connected component is recursive.

mod depth;
mod locals;
mod reach;
mod refs;

pub use depth::{weight, MAX_DEPTH};
pub use reach::reachable;
pub use refs::import_names;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;

use regorus::unstable::{Module, Ref};

use super::super::error::{Location, RegoError};
use crate::policy::rules;
use refs::{references, RefPath, Seg};

/// OPA's compiler stops at 10 errors; a cycle through thousands of rules is reported as much.
const MAX_ERRORS: usize = 10;

/// One rule definition (a module may define a rule in several places).
struct Definition {
    node: usize,
    location: Location,
    deps: BTreeSet<usize>,
    /// What the definition adds to the depth of an evaluation passing through it.
    weight: u32,
}

/// Refuses `modules` when a rule or function depends on itself: one `rego_recursion_error` per
/// recursive definition, at its location, naming the cycle as OPA does. Without recursion,
/// refuses them when an evaluation could go deeper than `MAX_DEPTH`: one `rego_compile_error`
/// at the first rule of the deepest chain, naming it.
pub fn check(modules: &[Ref<Module>]) -> Result<(), Vec<RegoError>> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    let mut ids: HashMap<Vec<String>, usize> = HashMap::new();
    let mut heads = Vec::new();
    for module in modules {
        let package = rules::package_path(module);
        for rule in &module.policy {
            let path = rules::rule_path(&package, rule);
            let next = ids.len();
            let node = *ids.entry(path.clone()).or_insert_with(|| {
                paths.push(path);
                next
            });
            heads.push((module, rule, node));
        }
    }
    let index = PathIndex::new(&paths);
    let definitions: Vec<Definition> = heads
        .into_iter()
        .map(|(module, rule, node)| {
            let span = rule.span();
            let mut deps = BTreeSet::new();
            for target in references(module, rule) {
                index.matching(&target, &mut deps);
            }
            Definition {
                node,
                location: Location {
                    file: span.source.file().clone(),
                    row: span.line,
                    col: span.col,
                },
                deps,
                weight: depth::weight(span.text()),
            }
        })
        .collect();

    let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); paths.len()];
    for d in &definitions {
        edges[d.node].extend(d.deps.iter().copied());
    }
    let component = components(&edges);
    let mut errors = Vec::new();
    for d in &definitions {
        if errors.len() == MAX_ERRORS {
            break;
        }
        let Some(&first) = d.deps.iter().find(|&&t| component[t] == component[d.node]) else {
            continue;
        };
        let mut cycle = vec![d.node];
        cycle.extend(shortest_path(&edges, &component, first, d.node));
        let names: Vec<String> = cycle.iter().map(|&n| data_ref(&paths[n])).collect();
        errors.push(RegoError {
            code: "rego_recursion_error",
            message: format!(
                "rule {} is recursive: {}",
                data_ref(&paths[d.node]),
                names.join(" -> ")
            ),
            location: Some(d.location.clone()),
            details: None,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut weights = vec![0u32; paths.len()];
    for d in &definitions {
        weights[d.node] = weights[d.node].max(d.weight);
    }
    let (chain, levels) = depth::deepest(&edges, &weights);
    if levels <= MAX_DEPTH {
        return Ok(());
    }
    let location = definitions
        .iter()
        .find(|d| Some(&d.node) == chain.first())
        .map(|d| d.location.clone());
    let mut names: Vec<String> = chain.iter().map(|&n| data_ref(&paths[n])).collect();
    if names.len() > 6 {
        names.splice(3..names.len() - 2, ["...".to_string()]);
    }
    Err(vec![RegoError {
        code: "rego_compile_error",
        message: format!(
            "rule {} is evaluated {levels} levels deep through {} rules ({}): more than the \
             {MAX_DEPTH} verdict's evaluator has stack for (each rule is one level, plus its \
             deepest nesting of brackets)",
            names.first().map(String::as_str).unwrap_or("?"),
            chain.len(),
            names.join(" -> "),
        ),
        location,
        details: None,
    }])
}

fn data_ref(path: &[String]) -> String {
    let mut out = String::from("data");
    for p in path {
        out.push('.');
        out.push_str(p);
    }
    out
}

/// Rule paths in order, so that the rules below a reference's constant prefix are one range
/// and the rules above it a few lookups, whatever the number of rules.
struct PathIndex<'a> {
    sorted: BTreeMap<&'a [String], usize>,
}

impl<'a> PathIndex<'a> {
    fn new(paths: &'a [Vec<String>]) -> Self {
        let sorted = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_slice(), i))
            .collect();
        PathIndex { sorted }
    }

    /// Every rule a reference to `target` may read: the rules at, below or above it, where a
    /// variable segment matches any name (OPA's `GetRulesDynamic`).
    fn matching(&self, target: &RefPath, out: &mut BTreeSet<usize>) {
        let prefix: Vec<String> = target
            .iter()
            .map_while(|s| match s {
                Seg::Key(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        for n in 0..prefix.len() {
            if let Some(&i) = self.sorted.get(&prefix[..n]) {
                out.insert(i);
            }
        }
        let below = self
            .sorted
            .range::<[String], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(&prefix));
        for (path, &i) in below {
            let agrees = path.iter().zip(target).all(|(p, t)| match t {
                Seg::Key(k) => k == p,
                Seg::Any => true,
                Seg::Never => false,
            });
            if agrees {
                out.insert(i);
            }
        }
    }
}

/// Strongly connected components (Kosaraju, iterative: a long chain of rules must not
/// exhaust the stack this check exists to protect). Returns each node's component number.
fn components(edges: &[BTreeSet<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![(start, edges[start].iter())];
        while let Some((node, iter)) = stack.last_mut() {
            let node = *node;
            match iter.next() {
                Some(&next) if !seen[next] => {
                    seen[next] = true;
                    stack.push((next, edges[next].iter()));
                }
                Some(_) => {}
                None => {
                    order.push(node);
                    stack.pop();
                }
            }
        }
    }
    let mut reverse = vec![Vec::new(); n];
    for (from, targets) in edges.iter().enumerate() {
        for &to in targets {
            reverse[to].push(from);
        }
    }
    let mut component = vec![usize::MAX; n];
    let mut count = 0;
    for &root in order.iter().rev() {
        if component[root] != usize::MAX {
            continue;
        }
        component[root] = count;
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            for &prev in &reverse[node] {
                if component[prev] == usize::MAX {
                    component[prev] = count;
                    stack.push(prev);
                }
            }
        }
        count += 1;
    }
    component
}

/// The shortest walk from `from` to `to` inside their component, both ends included.
fn shortest_path(
    edges: &[BTreeSet<usize>],
    component: &[usize],
    from: usize,
    to: usize,
) -> Vec<usize> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut reached = from == to;
    while let Some(node) = queue.pop_front() {
        if reached {
            break;
        }
        for &next in &edges[node] {
            if component[next] != component[from] || next == from || parent.contains_key(&next) {
                continue;
            }
            parent.insert(next, node);
            if next == to {
                reached = true;
                break;
            }
            queue.push_back(next);
        }
    }
    let mut path = vec![to];
    let mut node = to;
    while node != from {
        match parent.get(&node) {
            Some(&p) => {
                path.push(p);
                node = p;
            }
            None => break,
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests;
