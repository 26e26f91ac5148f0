//! OPA's `RewriteDynamicTerms` for negated statements: the references and calls among a
//! call's arguments (and inside a reference's brackets) are evaluated first, outside the
//! `not`, so `not f(input.x)` is undefined when `input.x` is, where regorus made it true.
//! `__vhN__ = <term>;` is written before the statement and the term replaced by the variable,
//! on the same line. Outside `not` the rewrite changes nothing and is not done.

use regorus::unstable::{AssignOp, Expr, Literal, Module, Query};

use super::edits::Edit;
use super::walk::{self, Place};

pub fn edits(module: &Module) -> Vec<Edit> {
    let mut out = Vec::new();
    let mut next = 0usize;
    for rule in walk::rules(module) {
        walk::queries_of_rule(rule, &mut |query, place| {
            rewrite_query(query, place, &mut next, &mut out);
        });
    }
    out
}

fn rewrite_query(query: &Query, place: Place, next: &mut usize, out: &mut Vec<Edit>) {
    let mut edits = Vec::new();
    for stmt in &query.stmts {
        let Literal::NotExpr { expr, .. } = &stmt.literal else {
            continue;
        };
        let mut terms = Vec::new();
        in_expr(expr, &mut terms);
        let with: String = stmt
            .with_mods
            .iter()
            .map(|w| format!(" {}", w.span.text()))
            .collect();
        // An edit must not move a line: a term written over several lines stays as it is.
        if terms.is_empty()
            || with.contains('\n')
            || terms.iter().any(|t| t.span().text().contains('\n'))
        {
            continue;
        }
        for term in terms {
            let name = format!("__vh{next}__");
            *next += 1;
            let (start, end) = walk::range(term);
            let text = term.span().source.contents();
            let Some(written) = text.get(start as usize..end as usize) else {
                continue;
            };
            edits.push(Edit::insert(
                stmt.span.start,
                format!("{name} = {written}{with}; "),
            ));
            edits.push(Edit::replace(start, end, name));
        }
    }
    if edits.is_empty() {
        return;
    }
    // `p if not f(x)` has one statement and no braces; it now has two. The opening brace goes
    // first among the insertions at the query's start.
    let wrap = place == Place::RuleBody && !walk::braced(query);
    if wrap {
        out.push(Edit::insert(query.span.start, "{ "));
    }
    out.append(&mut edits);
    if wrap {
        out.push(Edit::insert(query.span.end, " }"));
    }
}

/// The terms of a negated expression that OPA evaluates before the negation.
fn in_expr<'a>(expr: &'a Expr, out: &mut Vec<&'a Expr>) {
    match expr {
        Expr::Call { params, .. } => params.iter().for_each(|p| one(p, out)),
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. } => {
            one(lhs, out);
            one(rhs, out);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            key.iter().for_each(|k| one(k, out));
            one(value, out);
            one(collection, out);
        }
        Expr::AssignExpr {
            op: AssignOp::Eq,
            lhs,
            rhs,
            ..
        } => {
            in_term(lhs, out);
            in_term(rhs, out);
        }
        Expr::AssignExpr { .. } => {}
        other => in_term(other, out),
    }
}

/// A side of `=` or a whole negated term: a reference keeps its place, the dynamic terms in
/// its brackets move out; anything else is treated as an argument.
fn in_term<'a>(term: &'a Expr, out: &mut Vec<&'a Expr>) {
    match term {
        Expr::RefDot { .. } | Expr::RefBrack { .. } => brackets(term, out),
        other => one(other, out),
    }
}

fn brackets<'a>(term: &'a Expr, out: &mut Vec<&'a Expr>) {
    match term {
        Expr::RefDot { refr, .. } => brackets(refr, out),
        Expr::RefBrack { refr, index, .. } => {
            brackets(refr, out);
            one(index, out);
        }
        Expr::Call { .. } => out.push(term),
        _ => {}
    }
}

/// One argument: references and calls move out whole; collections are looked into.
fn one<'a>(term: &'a Expr, out: &mut Vec<&'a Expr>) {
    match term {
        Expr::RefDot { .. }
        | Expr::RefBrack { .. }
        | Expr::Call { .. }
        | Expr::BinExpr { .. }
        | Expr::BoolExpr { .. }
        | Expr::ArithExpr { .. }
        | Expr::Membership { .. } => out.push(term),
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|i| one(i, out));
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                one(k, out);
                one(v, out);
            }
        }
        _ => {}
    }
}
