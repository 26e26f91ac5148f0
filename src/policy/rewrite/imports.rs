//! Imports scoped to their file, as in OPA: every use of an import's name is written out as
//! the imported path and the import itself is blanked. regorus resolves imports per package,
//! so in a package split over files one file's import leaked into the others (and another's
//! was lost), changing which rules a body saw.
//!
//! A rule that declares a local of the import's name (`:=`, `some`, `every`, an argument)
//! is left alone, and so is the import then; so is an import named like a rule of the module.

use std::collections::HashSet;

use regorus::unstable::{AssignOp, Expr, Import, Literal, Module, Rule};

use super::edits::{newlines, Edit};
use super::walk;

pub fn edits(module: &Module) -> Vec<Edit> {
    let rule_names: HashSet<String> = walk::rules(module).filter_map(walk::rule_name).collect();
    let mut out = Vec::new();
    for import in &module.imports {
        let Some((name, path)) = alias(import) else {
            continue;
        };
        if rule_names.contains(&name) {
            continue;
        }
        let mut uses = Vec::new();
        let mut shadowed = false;
        for rule in walk::rules(module) {
            if declares(rule, &name) {
                shadowed = true;
                continue;
            }
            uses_in_rule(rule, &name, &mut uses);
        }
        out.extend(
            uses.into_iter()
                .map(|at: (u32, u32)| Edit::replace(at.0, at.1, &path)),
        );
        if !shadowed {
            out.push(Edit::replace(
                import.span.start,
                import.span.end,
                newlines(import.span.text()),
            ));
        }
    }
    out
}

/// The name an import binds and the path it stands for, for imports of `data` and `input`
/// below their roots (`future.keywords` and `rego.v1` are the parser's business).
fn alias(import: &Import) -> Option<(String, String)> {
    let path = import.refr.span().text().to_string();
    let root = path.split(['.', '[']).next()?;
    if root != "data" && root != "input" {
        return None;
    }
    let name = match &import.r#as {
        Some(span) => span.text().to_string(),
        None => match import.refr.as_ref() {
            Expr::RefDot { field, .. } => field.0.text().to_string(),
            Expr::RefBrack { index, .. } => match index.as_ref() {
                Expr::String { value, .. } => value.as_string().ok()?.to_string(),
                _ => return None,
            },
            _ => return None,
        },
    };
    (name != root && name != "data" && name != "input").then_some((name, path))
}

/// True when `rule` declares a local named `name` anywhere in it.
fn declares(rule: &Rule, name: &str) -> bool {
    let has_var = |e: &Expr| {
        let mut seen = false;
        walk::exprs(e, &mut |v| {
            seen |= matches!(v, Expr::Var { span, .. } if span.text() == name);
        });
        seen
    };
    let args = match rule {
        Rule::Spec {
            head: regorus::unstable::RuleHead::Func { args, .. },
            ..
        }
        | Rule::Default { args, .. } => args.as_slice(),
        Rule::Spec { .. } => &[],
    };
    let mut found = args.iter().any(|a| has_var(a));
    walk::queries_of_rule(rule, &mut |query, _| {
        for stmt in &query.stmts {
            found |= match &stmt.literal {
                Literal::SomeVars { vars, .. } => vars.iter().any(|v| v.text() == name),
                Literal::SomeIn { key, value, .. } => {
                    key.iter().any(|k| has_var(k)) || has_var(value)
                }
                Literal::Every { key, value, .. } => {
                    key.iter().chain([value]).any(|v| v.text() == name)
                }
                Literal::Expr { expr, .. } => match expr.as_ref() {
                    Expr::AssignExpr {
                        op: AssignOp::ColEq,
                        lhs,
                        ..
                    } => has_var(lhs),
                    _ => false,
                },
                Literal::NotExpr { .. } => false,
            };
        }
    });
    found
}

/// The spans of every use of `name` in `rule` (the rule's own name excepted).
fn uses_in_rule(rule: &Rule, name: &str, uses: &mut Vec<(u32, u32)>) {
    let mut collect = |e: &Expr| {
        if let Expr::Var { span, .. } = e {
            if span.text() == name {
                uses.push((span.start, span.end));
            }
        }
    };
    match rule {
        Rule::Spec { head, bodies, .. } => {
            // The head's reference starts with the rule's name, which is not `name` (see
            // `edits`): every match in the head is a use.
            walk::head_exprs(head, &mut collect);
            for body in bodies {
                if let Some(assign) = &body.assign {
                    walk::exprs(&assign.value, &mut collect);
                }
            }
        }
        Rule::Default { value, .. } => walk::exprs(value, &mut collect),
    }
    walk::queries_of_rule(rule, &mut |query, _| {
        for stmt in &query.stmts {
            walk::literal_exprs(&stmt.literal, &mut collect);
            for w in &stmt.with_mods {
                walk::exprs(&w.refr, &mut collect);
                walk::exprs(&w.r#as, &mut collect);
            }
        }
    });
}
