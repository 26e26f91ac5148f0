//! OPA's `RewriteRefsInHead` for partial sets: a key that is a reference
//! (`volumes contains pod.spec.volumes[_]`) is evaluated in the body, so a missing path makes
//! the set empty. regorus evaluated it in the head and failed the whole document with "item
//! cannot be indexed", even when only a sibling rule was asked for.

use regorus::unstable::{Expr, Module, Rule, RuleBody, RuleHead, Span};

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
        out.push(Edit::replace(start, end, &name));
        out.extend(bind(head, bodies, &format!("{name} = {written}"), rego_v0));
    }
    out
}

/// The edits that add `binding` as the last statement of every body of a rule whose head is
/// `head` (a body `if { binding }` when it has none), on the line each body ends on.
fn bind(head: &Span, bodies: &[RuleBody], binding: &str, rego_v0: bool) -> Vec<Edit> {
    if bodies.is_empty() {
        let head_end = walk::span_range(head).1;
        let keyword = if rego_v0 { "" } else { " if" };
        return vec![Edit::insert(head_end, format!("{keyword} {{ {binding} }}"))];
    }
    let mut out = Vec::new();
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
    out
}
