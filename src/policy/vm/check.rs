//! The static check: the constructs over which regorus's VM is known to disagree with its
//! interpreter (or with verdict's corrections to it), looked for in every rule an entrypoint
//! reaches. One found keeps the entrypoint on the interpreter; the check also gathers the
//! `input` references the differential check builds its inputs from. Rules that could give
//! two values, which OPA reports as a conflict and the VM does not, are `conflicts`'s.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};

use crate::policy::guard::recursion::reachable;

/// Why an entrypoint may not go to the VM: the construct and where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{construct} at {file}:{row}")]
pub struct Refusal {
    pub construct: &'static str,
    pub file: String,
    pub row: u32,
}

/// What the rules an entrypoint reaches read from `input`: constant paths, cut at the first
/// variable segment (`input.a[x].b` gives `a`).
pub type InputRefs = BTreeSet<Vec<String>>;

/// Checks the rules `entry` reaches. (verdict's own builtins are no reason to refuse: the VM
/// calls the very functions the interpreter calls, through host-await, see `FastPath::run`.)
pub fn check(modules: &[Ref<Module>], entry: &[String]) -> Result<InputRefs, Refusal> {
    let mut walker = Walker {
        inputs: BTreeSet::new(),
        file: String::new(),
    };
    let reached = reachable(modules, entry);
    for &(m, r) in &reached {
        let rule = &modules[m].policy[r];
        let span = rule.span();
        walker.file = span.source.file().to_string();
        walker.rule(rule).map_err(|(construct, row)| Refusal {
            construct,
            file: walker.file.clone(),
            row: if row == 0 { span.line } else { row },
        })?;
    }
    super::conflicts::check(modules, &reached)?;
    Ok(walker.inputs)
}

/// The last constant segment of a rule's name (`test_x` of `test_x if ...`).
pub fn rule_name(rule: &Rule) -> Option<String> {
    let refr = crate::policy::rewrite::walk::head_ref(rule);
    dotted(refr).and_then(|d| d.rsplit('.').next().map(str::to_string))
}

type Found = (&'static str, u32);

struct Walker {
    inputs: InputRefs,
    file: String,
}

impl Walker {
    fn rule(&mut self, rule: &Rule) -> Result<(), Found> {
        match rule {
            Rule::Spec { head, bodies, .. } => {
                match head {
                    RuleHead::Compr { refr, assign, .. } => {
                        head_shape(refr, false)?;
                        if let Some(a) = assign {
                            self.expr(&a.value)?;
                        }
                    }
                    RuleHead::Set { refr, key, .. } => {
                        head_shape(refr, true)?;
                        if let Some(k) = key {
                            self.expr(k)?;
                        }
                    }
                    RuleHead::Func {
                        refr, args, assign, ..
                    } => {
                        head_shape(refr, true)?;
                        for a in args {
                            self.expr(a)?;
                        }
                        if let Some(a) = assign {
                            self.expr(&a.value)?;
                        }
                    }
                }
                for body in bodies {
                    if let Some(a) = &body.assign {
                        self.expr(&a.value)?;
                    }
                    self.query(&body.query)?;
                }
                Ok(())
            }
            Rule::Default { value, args, .. } => {
                for a in args {
                    self.expr(a)?;
                }
                self.expr(value)
            }
        }
    }

    fn query(&mut self, query: &Query) -> Result<(), Found> {
        for stmt in &query.stmts {
            if !stmt.with_mods.is_empty() {
                return Err(("`with`", stmt.span.line));
            }
            match &stmt.literal {
                Literal::SomeVars { .. } => {}
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    if let Some(k) = key {
                        self.expr(k)?;
                    }
                    self.expr(value)?;
                    self.expr(collection)?;
                }
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr)?,
                Literal::Every { domain, query, .. } => {
                    self.expr(domain)?;
                    self.query(query)?;
                }
            }
        }
        Ok(())
    }

    fn expr(&mut self, expr: &Expr) -> Result<(), Found> {
        match expr {
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                if let Some(path) = input_path(expr) {
                    self.inputs.insert(path);
                }
                self.indexes(expr)
            }
            Expr::Call { fcn, params, .. } => {
                let name = dotted(fcn);
                let line = expr.span().line;
                match name.as_deref() {
                    Some("print") => return Err(("`print`", line)),
                    Some("walk") => return Err(("`walk`", line)),
                    // Only plain names: a call through a computed reference is not known.
                    None => return Err(("a call through a computed reference", line)),
                    Some(_) => {}
                }
                for p in params {
                    self.expr(p)?;
                }
                Ok(())
            }
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. } => Ok(()),
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                items.iter().try_for_each(|i| self.expr(i))
            }
            Expr::Object { fields, .. } => fields.iter().try_for_each(|(_, k, v)| {
                self.expr(k)?;
                self.expr(v)
            }),
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.expr(term)?;
                self.query(query)
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                self.expr(key)?;
                self.expr(value)?;
                self.query(query)
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs)?;
                self.expr(rhs)
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k)?;
                }
                self.expr(value)?;
                self.expr(collection)
            }
        }
    }

    fn indexes(&mut self, expr: &Expr) -> Result<(), Found> {
        match expr {
            Expr::RefDot { refr, .. } => self.indexes(refr),
            Expr::RefBrack { refr, index, .. } => {
                self.indexes(refr)?;
                self.expr(index)
            }
            _ => Ok(()),
        }
    }
}

/// Rule heads the VM is known to get right: a plain name (`p`, `p contains x`, `p := v`, a
/// function `f(x)`), or for complete rules one variable key (`p[k] := v`). Multi-value rules
/// with keys (`r[k] contains v`) give wrong results; dotted and nested heads are not proven.
fn head_shape(refr: &Expr, plain_only: bool) -> Result<(), Found> {
    let line = refr.span().line;
    match refr {
        Expr::Var { .. } => Ok(()),
        Expr::RefBrack {
            refr: base, index, ..
        } if !plain_only
            && matches!(base.as_ref(), Expr::Var { .. })
            && matches!(index.as_ref(), Expr::Var { .. }) =>
        {
            Ok(())
        }
        _ if plain_only => Err(("a multi-value rule or function with a reference head", line)),
        _ => Err(("a rule head with a dotted or constant-key reference", line)),
    }
}

/// `a.b.c` as text when the expression is a chain of names, the way calls name functions.
fn dotted(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Var { value, .. } => value.as_string().ok().map(|s| s.to_string()),
        Expr::RefDot { refr, field, .. } => {
            let base = dotted(refr)?;
            let field = field.1.as_string().ok()?;
            Some(format!("{base}.{field}"))
        }
        _ => None,
    }
}

/// The constant path below `input` a reference reads, if it reads `input`.
fn input_path(expr: &Expr) -> Option<Vec<String>> {
    fn walk(expr: &Expr, out: &mut Vec<String>, cut: &mut bool) -> bool {
        match expr {
            Expr::Var { value, .. } => value.as_string().is_ok_and(|s| s.as_ref() == "input"),
            Expr::RefDot { refr, field, .. } => {
                let is_input = walk(refr, out, cut);
                if is_input && !*cut {
                    match field.1.as_string() {
                        Ok(s) => out.push(s.to_string()),
                        Err(_) => *cut = true,
                    }
                }
                is_input
            }
            Expr::RefBrack { refr, index, .. } => {
                let is_input = walk(refr, out, cut);
                if is_input && !*cut {
                    match index.as_ref() {
                        Expr::String { value, .. } | Expr::RawString { value, .. } => {
                            match value.as_string() {
                                Ok(s) => out.push(s.to_string()),
                                Err(_) => *cut = true,
                            }
                        }
                        _ => *cut = true,
                    }
                }
                is_input
            }
            _ => false,
        }
    }
    let mut out = Vec::new();
    let mut cut = false;
    walk(expr, &mut out, &mut cut).then_some(out)
}
