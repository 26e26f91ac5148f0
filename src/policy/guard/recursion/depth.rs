//! How deep an evaluation may go. Without recursion a rule's evaluation still recurses once per
//! rule it passes through on its way down and once per term nested in each, on the evaluator's
//! own stack; a long enough chain (about 500 plain rules on a 2 MiB thread) overflows it and
//! aborts the process. OPA has no such limit (Go stacks grow), so verdict bounds the depth at
//! load, where a bundle can be refused, and runs every evaluation on a stack sized for that
//! bound (`guard::stack`).

use std::collections::BTreeSet;

use super::super::tokens::{Kind, Tokens};

/// The deepest evaluation a bundle may ask for, in levels: each rule on the way down is one,
/// plus its deepest nesting of brackets, plus one per `OPERATORS_PER_LEVEL` operators in one
/// statement. Real policies stay below a hundred. On a release build the deepest chains
/// admitted (of plain rules, functions, comprehensions, partial sets, `every`, `not`, `with`,
/// object literals, nested comprehensions and operator runs) touched at most 4.8 MiB of the
/// interpreter's stack, 2.8 MiB of the bytecode VM's; `guard::stack` keeps 16 MiB for them.
pub const MAX_DEPTH: u32 = 1_000;

/// Operators in a row that cost about as much stack as one nested term (an expression tree
/// recurses once per operator, ~0.2 KiB each).
const OPERATORS_PER_LEVEL: u32 = 32;

/// What one rule definition adds to the depth of any evaluation that passes through it.
pub fn weight(text: &str) -> u32 {
    let (mut depth, mut deepest) = (0u32, 0u32);
    let (mut ops, mut most_ops) = (0u32, 0u32);
    for token in Tokens::new(text) {
        if token.newline {
            ops = 0;
        }
        match token.kind {
            Kind::Open(_) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Kind::Close => depth = depth.saturating_sub(1),
            Kind::Sep(b';' | b',' | b'|' | b':') => ops = 0,
            Kind::Sep(b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'<' | b'>' | b'=' | b'!') => {
                ops += 1;
                most_ops = most_ops.max(ops);
            }
            _ => {}
        }
    }
    1 + deepest + most_ops / OPERATORS_PER_LEVEL
}

/// The deepest chain of rules in the graph (`edges[n]`: the rules `n` reads), each weighed as
/// `weights` says: the chain from its first rule down, and its depth. The graph has no cycle
/// (recursion is refused before); should one slip through, it is cut, never followed forever.
pub(super) fn deepest(edges: &[BTreeSet<usize>], weights: &[u32]) -> (Vec<usize>, u32) {
    let n = edges.len();
    let mut depth = vec![0u32; n];
    let mut state = vec![Visit::New; n];
    // Iterative, like the components: the chain measured here is the one that must not
    // exhaust a stack.
    for start in 0..n {
        if state[start] != Visit::New {
            continue;
        }
        state[start] = Visit::Open;
        let mut stack = vec![(start, edges[start].iter())];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            match next.next() {
                Some(&dep) if state[dep] == Visit::New => {
                    state[dep] = Visit::Open;
                    stack.push((dep, edges[dep].iter()));
                }
                Some(_) => {}
                None => {
                    let below = edges[node]
                        .iter()
                        .filter(|&&d| state[d] == Visit::Done)
                        .map(|&d| depth[d])
                        .max()
                        .unwrap_or(0);
                    depth[node] = weights[node].saturating_add(below);
                    state[node] = Visit::Done;
                    stack.pop();
                }
            }
        }
    }
    let Some(top) = (0..n).max_by_key(|&i| depth[i]) else {
        return (Vec::new(), 0);
    };
    let mut chain = vec![top];
    let mut on_chain = vec![false; n];
    on_chain[top] = true;
    let mut node = top;
    while let Some(&next) = edges[node]
        .iter()
        .filter(|&&d| !on_chain[d])
        .max_by_key(|&&d| depth[d])
    {
        on_chain[next] = true;
        chain.push(next);
        node = next;
    }
    (chain, depth[top])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Open,
    Done,
}
