//! The names a rule binds itself (arguments, `some`, `:=`, `every`, head variables): a
//! reference starting with one of them reads no rule.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, Literal, Query, Rule, RuleHead};

/// Collects the names a rule binds locally.
pub(super) fn bind_rule(rule: &Rule, out: &mut BTreeSet<String>) {
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Func { args, .. } => args.iter().for_each(|a| vars(a, out)),
                RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => index_vars(refr, out),
            }
            if let RuleHead::Set { key: Some(k), .. } = head {
                if matches!(k.as_ref(), Expr::Var { .. }) {
                    vars(k, out);
                }
            }
            for body in bodies {
                bind_query(&body.query, out);
            }
        }
        Rule::Default { args, .. } => args.iter().for_each(|a| vars(a, out)),
    }
}

fn index_vars(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::RefDot { refr, .. } => index_vars(refr, out),
        Expr::RefBrack { refr, index, .. } => {
            index_vars(refr, out);
            if matches!(index.as_ref(), Expr::Var { .. }) {
                vars(index, out);
            }
        }
        _ => {}
    }
}

fn bind_query(query: &Query, out: &mut BTreeSet<String>) {
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { vars: names, .. } => {
                out.extend(names.iter().map(|s| s.text().to_string()));
            }
            Literal::SomeIn { key, value, .. } => {
                if let Some(k) = key {
                    vars(k, out);
                }
                vars(value, out);
            }
            Literal::Every {
                key, value, query, ..
            } => {
                if let Some(k) = key {
                    out.insert(k.text().to_string());
                }
                out.insert(value.text().to_string());
                bind_query(query, out);
            }
            Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => bind_expr(expr, out),
        }
    }
}

/// `:=` declarations, also inside comprehensions.
fn bind_expr(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::AssignExpr { op, lhs, rhs, .. } => {
            if matches!(op, regorus::unstable::AssignOp::ColEq) {
                vars(lhs, out);
            }
            bind_expr(rhs, out);
        }
        Expr::ArrayCompr { query, .. }
        | Expr::SetCompr { query, .. }
        | Expr::ObjectCompr { query, .. } => bind_query(query, out),
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|i| bind_expr(i, out))
        }
        Expr::Call { params, .. } => params.iter().for_each(|p| bind_expr(p, out)),
        Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::BinExpr { lhs, rhs, .. } => {
            bind_expr(lhs, out);
            bind_expr(rhs, out);
        }
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, _, v)| bind_expr(v, out)),
        _ => {}
    }
}

/// The variables of a pattern (an argument, the left side of `:=`): plain names and the names
/// inside arrays and objects; references are not bindings.
fn vars(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::Var { value, .. } => {
            if let Ok(s) = value.as_string() {
                out.insert(s.to_string());
            }
        }
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            items.iter().for_each(|i| vars(i, out))
        }
        Expr::Object { fields, .. } => fields.iter().for_each(|(_, _, v)| vars(v, out)),
        _ => {}
    }
}
