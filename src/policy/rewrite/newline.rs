//! A statement ending in a reference, followed by a line that starts with `(`: OPA ends the
//! statement at the newline, regorus reads a call (`input.x` then `(a - b) < 2` becomes
//! `input.x(a - b) < 2`, "undefined function"). A `;` is written where the line ends.

use regorus::unstable::{Expr, Module};

use super::edits::Edit;
use super::walk;

pub fn edits(module: &Module) -> Vec<Edit> {
    let mut out = Vec::new();
    for rule in walk::rules(module) {
        walk::queries_of_rule(rule, &mut |query, _| {
            for stmt in &query.stmts {
                walk::literal_exprs(&stmt.literal, &mut |e| {
                    if let Some(at) = split_at(e) {
                        out.push(Edit::insert(at, ";"));
                    }
                });
            }
        });
    }
    out
}

/// Where a call's name ends when a newline separates it from its `(`.
fn split_at(e: &Expr) -> Option<u32> {
    let Expr::Call { fcn, .. } = e else {
        return None;
    };
    let end = fcn.span().end;
    let rest = fcn.span().source.contents().get(end as usize..)?;
    let gap = &rest[..rest.find(|c: char| !c.is_whitespace())?];
    (gap.contains('\n') && rest[gap.len()..].starts_with('(')).then_some(end)
}
