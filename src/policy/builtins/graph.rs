//! `graph.reachable_paths` as OPA 1.9 walks it. regorus records the nodes on the current path
//! only; OPA 1.9 shares one set of explored nodes between every branch that starts at the
//! same first edge, so a node another branch already explored ends the path before it
//! (`cycle_1022_3` of OPA's compliance suite). A path that ends at several explored nodes is
//! committed once more each time, repeated, as OPA 1.9's accumulating slice does.

use std::collections::BTreeSet;

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("graph.reachable_paths", 2, reachable_paths)];

/// How many steps a walk takes between two looks at the evaluation's limits.
const CHECK_EVERY: usize = 256;

fn reachable_paths(args: &[Value]) -> Result<Value, BuiltinError> {
    let graph = args::object(args, 0)?;
    let initial = vertices(args::arg(args, 1)).ok_or_else(|| BuiltinError::Operand {
        position: 2,
        expected: "{array, set}",
        actual: args::type_name(args::arg(args, 1)),
    })?;
    let mut walk = Walk {
        graph,
        paths: BTreeSet::new(),
        steps: 0,
    };
    for node in initial {
        let Some(edges) = graph.get(&node) else {
            continue;
        };
        let neighbors = vertices(edges).unwrap_or_default();
        if neighbors.is_empty() {
            walk.paths.insert(Value::from(vec![node.clone()]));
            continue;
        }
        for first in neighbors {
            walk.from(&node, first)?;
        }
    }
    Ok(Value::from(walk.paths))
}

/// The members of an array (in order) or a set (sorted); `None` for anything else.
fn vertices(value: &Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items.to_vec()),
        Value::Set(items) => Some(items.iter().cloned().collect()),
        _ => None,
    }
}

struct Walk<'a> {
    graph: &'a regorus::value::Object,
    paths: BTreeSet<Value>,
    steps: usize,
}

/// A node being explored: its neighbors still to try and what it committed so far.
struct Frame {
    node: Value,
    neighbors: Vec<Value>,
    next: usize,
    committed: Vec<Value>,
}

impl Walk<'_> {
    /// Every path from `start` through its edge to `first`, depth first without recursion (a
    /// long chain in `input` must not overflow the stack).
    fn from(&mut self, start: &Value, first: Value) -> Result<(), BuiltinError> {
        let mut explored = BTreeSet::from([start.clone()]);
        let mut path = vec![start.clone()];
        let mut stack = Vec::new();
        self.enter(first, &mut path, &mut stack);
        while let Some(frame) = stack.last_mut() {
            self.steps += 1;
            if self.steps.is_multiple_of(CHECK_EVERY) {
                super::check_limits()?;
            }
            let Some(neighbor) = frame.neighbors.get(frame.next).cloned() else {
                stack.pop();
                path.pop();
                continue;
            };
            frame.next += 1;
            if explored.contains(&neighbor) {
                frame.committed.extend(path.iter().cloned());
                self.paths.insert(Value::from(frame.committed.clone()));
            } else {
                explored.insert(frame.node.clone());
                self.enter(neighbor, &mut path, &mut stack);
            }
        }
        Ok(())
    }

    /// Steps onto `node`: a node outside the graph ends the path before it, a node without
    /// edges ends it at itself, any other is explored.
    fn enter(&mut self, node: Value, path: &mut Vec<Value>, stack: &mut Vec<Frame>) {
        let Some(edges) = self.graph.get(&node) else {
            self.paths.insert(Value::from(path.clone()));
            return;
        };
        let neighbors = vertices(edges).unwrap_or_default();
        path.push(node.clone());
        if neighbors.is_empty() {
            self.paths.insert(Value::from(path.clone()));
            path.pop();
            return;
        }
        stack.push(Frame {
            node,
            neighbors,
            next: 0,
            committed: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use crate::policy::builtins::testing::{fails, set, value};

    fn paths(graph: &str, initial: &str) -> regorus::Value {
        value(&format!("graph.reachable_paths({graph}, {initial})"))
    }

    #[test]
    fn a_node_explored_by_a_sibling_branch_ends_the_path_before_it() {
        // OPA 1.9's answer (compliance case reachable_paths/cycle_1022_3).
        let graph = r#"{"one": ["two", "five"], "two": ["four"], "three": [""], "four": ["three"],
            "five": ["seven", "six"], "six": ["nine", "seven"], "seven": ["eight"],
            "eight": ["three"], "nine": [""]}"#;
        assert_eq!(
            paths(graph, r#"{"one"}"#),
            set(
                r#"[["one", "five", "seven", "eight", "three"], ["one", "five", "six"],
                ["one", "five", "six", "nine"], ["one", "two", "four", "three"]]"#
            )
        );
    }

    #[test]
    fn cycles_leaves_and_missing_nodes() {
        assert_eq!(
            paths(r#"{"a": {"b"}, "b": {"c"}, "c": {"a"}}"#, r#"{"a"}"#),
            set(r#"[["a", "b", "c"]]"#)
        );
        assert_eq!(
            paths(r#"{"a": ["b", "c"], "b": ["c"], "c": []}"#, r#"["a"]"#),
            set(r#"[["a", "b", "c"], ["a", "c"]]"#)
        );
        assert_eq!(
            paths(r#"{"a": ["b"], "b": ["nope"]}"#, r#"{"a", "b"}"#),
            set(r#"[["a", "b"], ["b"]]"#)
        );
        assert_eq!(paths(r#"{"a": null}"#, r#"["a"]"#), set(r#"[["a"]]"#));
        assert_eq!(paths("{}", r#"{"a"}"#), set("[]"));
    }

    #[test]
    fn a_path_ending_at_two_explored_nodes_is_committed_twice_over() {
        // c's edges both lead back to explored nodes: OPA 1.9 commits [a, b, c], then the
        // same path appended to what it committed.
        assert_eq!(
            paths(r#"{"a": ["b"], "b": ["c"], "c": ["a", "b"]}"#, r#"["a"]"#),
            set(r#"[["a", "b", "c"], ["a", "b", "c", "a", "b", "c"]]"#)
        );
    }

    #[test]
    fn a_long_chain_does_not_overflow_the_stack() {
        let n = 200_000;
        let mut graph = serde_json::Map::new();
        for i in 0..n {
            graph.insert(i.to_string(), serde_json::json!([(i + 1).to_string()]));
        }
        let input =
            regorus::Value::from_json_str(&serde_json::json!({"g": graph, "i": ["0"]}).to_string())
                .unwrap();
        let out = crate::policy::builtins::testing::eval_with_input(
            "graph.reachable_paths(input.g, input.i)",
            input,
            false,
        )
        .unwrap()
        .unwrap();
        let paths = out.as_set().unwrap();
        assert_eq!(paths.len(), 1);
        let only = paths.iter().next().unwrap().as_array().unwrap();
        assert_eq!(only.len(), n, "the chain up to the node outside the graph");
    }

    #[test]
    fn wrong_types_are_operand_errors() {
        fails(
            r#"graph.reachable_paths(1, ["a"])"#,
            "operand 1 must be object but got number",
        );
        fails(
            r#"graph.reachable_paths({}, "a")"#,
            "operand 2 must be {array, set} but got string",
        );
    }
}
