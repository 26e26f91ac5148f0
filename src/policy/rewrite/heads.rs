//! OPA's `RewriteRefsInHead` for partial sets: a key that is a reference
//! (`volumes contains pod.spec.volumes[_]`) is evaluated in the body, so a missing path makes
//! the set empty. regorus evaluated it in the head and failed the whole document with "item
//! cannot be indexed", even when only a sibling rule was asked for.

use regorus::unstable::{Expr, Module, Rule, RuleHead};

use super::edits::Edit;
use super::walk;

pub fn edits(module: &Module, rego_v0: bool) -> Vec<Edit> {
    let mut out = Vec::new();
    let mut next = 0usize;
    for rule in walk::rules(module) {
        let Rule::Spec {
            head:
                RuleHead::Set {
                    span: head,
                    key: Some(key),
                    ..
                },
            bodies,
            ..
        } = rule
        else {
            continue;
        };
        if !matches!(key.as_ref(), Expr::RefDot { .. } | Expr::RefBrack { .. }) {
            continue;
        }
        let (start, end) = walk::range(key);
        let text = head.source.contents();
        let Some(written) = text.get(start as usize..end as usize) else {
            continue;
        };
        if written.contains('\n') {
            continue;
        }
        let name = format!("__vk{next}__");
        next += 1;
        let binding = format!("{name} = {written}");
        out.push(Edit::replace(start, end, &name));
        if bodies.is_empty() {
            let keyword = if rego_v0 { "" } else { " if" };
            out.push(Edit::insert(head.end, format!("{keyword} {{ {binding} }}")));
            continue;
        }
        for body in bodies {
            let query = &body.query;
            if !walk::braced(query) {
                out.push(Edit::insert(query.span.start, "{ "));
                out.push(Edit::insert(query.span.end, format!("; {binding} }}")));
                continue;
            }
            // On the line of the last statement: a `;` may not start a line.
            let Some(last) = query.stmts.last() else {
                continue;
            };
            let at = walk::span_range(&last.span).1;
            out.push(Edit::insert(at, format!("; {binding}")));
        }
    }
    out
}
