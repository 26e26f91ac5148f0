//! Conflicts the VM does not report. OPA fails a complete rule, a function or an object key
//! that gets two different values (`eval_conflict_error`); regorus's VM answers with the last
//! value it found. So an entrypoint that reaches a rule able to produce two different values
//! stays on the interpreter: one whose value is not a constant while its body may iterate or
//! it has several bodies, and a rule defined more than once with values that are not all the
//! same constant.

use std::collections::BTreeMap;

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};
use regorus::Value;

use super::check::Refusal;
use crate::policy::guard::recursion::import_names;
use crate::policy::rules;

/// A value of one definition: the constant, or `None` when it is computed.
type Values = Vec<Option<Value>>;

/// Checks the rule definitions `reached` (module, rule) for a possible conflict.
pub fn check(modules: &[Ref<Module>], reached: &[(usize, usize)]) -> Result<(), Refusal> {
    let mut groups: BTreeMap<Vec<String>, Vec<(usize, usize, Values)>> = BTreeMap::new();
    // Per module, read once: its package and the names its bodies use unbound.
    let mut scopes: BTreeMap<usize, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for &(m, r) in reached {
        let (package, globals) = scopes
            .entry(m)
            .or_insert_with(|| (rules::package_path(&modules[m]), globals(&modules[m])));
        let rule = &modules[m].policy[r];
        let Rule::Spec { head, bodies, .. } = rule.as_ref() else {
            continue;
        };
        let head_value = match head {
            RuleHead::Compr { assign, .. } | RuleHead::Func { assign, .. } => {
                assign.as_ref().map(|a| constant(&a.value))
            }
            // Members of a set are never in conflict.
            RuleHead::Set { .. } => continue,
        };
        // No value written is `true`.
        let mut values: Values = vec![head_value.unwrap_or(Some(Value::Bool(true)))];
        values.extend(
            bodies
                .iter()
                .filter_map(|b| b.assign.as_ref())
                .map(|a| constant(&a.value)),
        );
        let computed = values.iter().any(Option::is_none);
        let independent = bodies.iter().filter(|b| !b.is_else).count();
        // A name is bound when it is a rule of the module, an import or a function argument.
        let mut bound = globals.clone();
        if let RuleHead::Func { args, .. } = head {
            bound.extend(args.iter().filter_map(|a| var_name(a)));
        }
        let iterates = bodies
            .iter()
            .any(|b| query_iterates(&b.query, &mut bound.clone()));
        if computed && (iterates || independent > 1) {
            return Err(refusal(
                "a rule whose body may give it several values",
                rule,
            ));
        }
        let path = rules::rule_path(package, rule);
        groups.entry(path).or_default().push((m, r, values));
    }
    for definitions in groups.values().filter(|d| d.len() > 1) {
        for (i, (m, r, values)) in definitions.iter().enumerate() {
            for (m2, r2, values2) in &definitions[..i] {
                let same = values
                    .iter()
                    .chain(values2)
                    .all(|v| v.is_some() && *v == values[0]);
                let (a, b) = (&modules[*m].policy[*r], &modules[*m2].policy[*r2]);
                if !same && !exclusive(a, b) {
                    return Err(refusal(
                        "a rule defined more than once with different values",
                        a,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether two definitions can never both succeed: one body holds `E` and the other `not E`,
/// `E` the same reference to `input`, `data` or a rule (`now := a if input.t` and
/// `now := b if not input.t`).
fn exclusive(a: &Rule, b: &Rule) -> bool {
    let (Some(a), Some(b)) = (single_body(a), single_body(b)) else {
        return false;
    };
    let tests = |q: &Query, negated: bool| -> Vec<String> {
        let local = assigned(q);
        q.stmts
            .iter()
            .filter_map(|s| match (&s.literal, negated) {
                (Literal::Expr { expr, .. }, false) | (Literal::NotExpr { expr, .. }, true) => {
                    Some(expr)
                }
                _ => None,
            })
            .filter(|e| ground_ref(e, &local))
            .map(|e| e.span().text().to_string())
            .collect()
    };
    let (a_yes, b_no) = (tests(a, false), tests(b, true));
    let (a_no, b_yes) = (tests(a, true), tests(b, false));
    a_yes.iter().any(|t| b_no.contains(t)) || a_no.iter().any(|t| b_yes.contains(t))
}

/// The one body of a definition without `else`.
fn single_body(rule: &Rule) -> Option<&Query> {
    match rule {
        Rule::Spec { bodies, .. } if bodies.len() == 1 => Some(&bodies[0].query),
        _ => None,
    }
}

/// The variables a body assigns or declares: a reference rooted at one is not the same
/// reference in another body.
fn assigned(query: &Query) -> Vec<String> {
    let mut names = Vec::new();
    for stmt in &query.stmts {
        match &stmt.literal {
            Literal::SomeVars { vars, .. } => {
                names.extend(vars.iter().filter_map(|v| v.text().parse().ok()))
            }
            Literal::SomeIn { key, value, .. } => {
                names.extend(key.iter().chain([value]).filter_map(|e| var_name(e)))
            }
            Literal::Expr { expr, .. } => {
                if let Expr::AssignExpr { lhs, .. } = expr.as_ref() {
                    names.extend(var_name(lhs));
                }
            }
            _ => {}
        }
    }
    names
}

/// A reference with constant segments, rooted at a name no body assigns: `input.t`,
/// `data.x.y`, `valid`.
fn ground_ref(expr: &Expr, local: &[String]) -> bool {
    match expr {
        Expr::Var { .. } => var_name(expr).is_some_and(|n| n != "_" && !local.contains(&n)),
        Expr::RefDot { refr, .. } => ground_ref(refr, local),
        Expr::RefBrack { refr, index, .. } => constant(index).is_some() && ground_ref(refr, local),
        _ => false,
    }
}

fn refusal(construct: &'static str, rule: &Rule) -> Refusal {
    let span = rule.span();
    Refusal {
        construct,
        file: span.source.file().to_string(),
        row: span.line,
    }
}

/// A literal scalar's value.
fn constant(expr: &Expr) -> Option<Value> {
    match expr {
        Expr::String { value, .. }
        | Expr::RawString { value, .. }
        | Expr::Number { value, .. }
        | Expr::Bool { value, .. }
        | Expr::Null { value, .. } => Some(value.clone()),
        _ => None,
    }
}

/// Whether a body may succeed more than once: `some x in ...`, or a reference indexed by a
/// variable not bound before it (`xs[i]`, `xs[_]`), which iterates. `bound` starts with the
/// module's rules and imports and a function's arguments, gains each `x := ...` in order and
/// loses each name `some` declares afresh. Comprehensions are one value
/// each, and `not` and `every` bind nothing outside.
fn query_iterates(query: &Query, bound: &mut Vec<String>) -> bool {
    for stmt in &query.stmts {
        let iterates = match &stmt.literal {
            Literal::SomeIn { .. } => true,
            Literal::SomeVars { .. } | Literal::NotExpr { .. } | Literal::Every { .. } => false,
            Literal::Expr { expr, .. } => expr_iterates(expr, bound),
        };
        if iterates {
            return true;
        }
        match &stmt.literal {
            Literal::Expr { expr, .. } => {
                if let Expr::AssignExpr { lhs, .. } = expr.as_ref() {
                    bound.extend(var_name(lhs));
                }
            }
            // `some k` makes `k` a fresh variable, even where a rule has that name.
            Literal::SomeVars { vars, .. } => {
                bound.retain(|b| !vars.iter().any(|v| v.text() == b));
            }
            _ => {}
        }
    }
    false
}

/// The names a module's bodies can use without binding them: its rules' first names and its
/// imports' aliases and last segments.
fn globals(module: &Module) -> Vec<String> {
    let rules = module.policy.iter().filter_map(|r| {
        rules::ref_prefix(crate::policy::rewrite::walk::head_ref(r))
            .into_iter()
            .next()
    });
    rules.chain(import_names(module)).collect()
}

fn var_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        _ => None,
    }
}

/// Whether an index binds a variable: a variable not bound yet (`_` always), or a pattern
/// holding one.
fn index_binds(index: &Expr, bound: &[String]) -> bool {
    match index {
        Expr::Var { .. } => match var_name(index).as_deref() {
            Some("_") | None => true,
            Some("input" | "data") => false,
            Some(name) => !bound.iter().any(|b| b == name),
        },
        Expr::Array { items, .. } => items.iter().any(|i| index_binds(i, bound)),
        Expr::Object { fields, .. } => fields.iter().any(|(_, _, v)| index_binds(v, bound)),
        _ => false,
    }
}

fn expr_iterates(expr: &Expr, bound: &[String]) -> bool {
    let walk = |e: &Ref<Expr>| expr_iterates(e, bound);
    match expr {
        Expr::RefBrack { refr, index, .. } => {
            index_binds(index, bound) || walk(refr) || walk(index)
        }
        Expr::RefDot { refr, .. } => walk(refr),
        Expr::Call { params, .. } => params.iter().any(walk),
        Expr::Array { items, .. } | Expr::Set { items, .. } => items.iter().any(walk),
        Expr::Object { fields, .. } => fields.iter().any(|(_, k, v)| walk(k) || walk(v)),
        Expr::UnaryExpr { expr, .. } => walk(expr),
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => walk(lhs) || walk(rhs),
        // `x in xs` is a test; `some x in xs` is the literal above.
        Expr::Membership { .. } => false,
        Expr::ArrayCompr { .. } | Expr::SetCompr { .. } | Expr::ObjectCompr { .. } => false,
        Expr::Var { .. }
        | Expr::String { .. }
        | Expr::RawString { .. }
        | Expr::Number { .. }
        | Expr::Bool { .. }
        | Expr::Null { .. } => false,
    }
}
