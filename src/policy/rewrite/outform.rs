//! OPA's output-argument call form for the builtins verdict adds: `f(x, out)` is `f(x) = out`.
//! regorus resolves that form through its own builtin table only, and calls the result of an
//! extension unsafe (`var out is unsafe`), so a policy calling `io.jwt.decode(t, out)` would be
//! refused.

use std::collections::HashMap;

use regorus::unstable::{Expr, Literal, Module};

use super::edits::{newlines, Edit};
use super::walk;
use crate::policy::builtins;

pub fn edits(module: &Module) -> Vec<Edit> {
    let arities: HashMap<&str, u8> = builtins::arities().collect();
    let mut out = Vec::new();
    for rule in walk::rules(module) {
        walk::queries_of_rule(rule, &mut |query, _| {
            for stmt in &query.stmts {
                let (Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. }) = &stmt.literal
                else {
                    continue;
                };
                if let Some(edit) = output_form(expr, &arities) {
                    out.extend(edit);
                }
            }
        });
    }
    out
}

/// `f(a, b, out)` → `f(a, b) = out`: the comma before the last argument becomes `) = `, the
/// closing parenthesis gives way to the newlines the comma's gap held. (A string literal's span
/// stops before its closing quote, so the edits are placed by the comma and the parenthesis.)
fn output_form(expr: &Expr, arities: &HashMap<&str, u8>) -> Option<[Edit; 2]> {
    let Expr::Call {
        span, fcn, params, ..
    } = expr
    else {
        return None;
    };
    let name = walk::call_name(fcn)?;
    let nargs = usize::from(*arities.get(name.as_str())?);
    if params.len() != nargs + 1 || nargs == 0 {
        return None;
    }
    let last = params.last()?.span();
    let before = params.get(nargs - 1)?.span();
    let text = span.source.contents();
    let gap = text.get(before.end as usize..last.start as usize)?;
    let comma = before.end + u32::try_from(gap.find(',')?).ok()?;
    let close = span.end.checked_sub(1)?;
    if text.get(close as usize..span.end as usize) != Some(")") {
        return None;
    }
    let moved = text.get(comma as usize..last.start as usize)?;
    // A trailing comma after the output argument (`f(a, out,\n)`) goes with the parenthesis.
    let tail = text.get(last.end as usize..close as usize)?;
    let end = match tail.find(',') {
        Some(at) => last.end + u32::try_from(at).ok()?,
        None => close,
    };
    let dropped = text.get(end as usize..span.end as usize)?;
    Some([
        Edit::replace(comma, last.start, ") = "),
        Edit::replace(end, span.end, newlines(moved) + &newlines(dropped)),
    ])
}
