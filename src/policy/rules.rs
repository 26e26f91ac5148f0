//! What the compiled modules define: packages, rule paths, functions and tests, read from
//! regorus's parsed modules so that decisions can take the exact-rule fast path and bundles can
//! be checked against their roots and their data.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, Module, Ref, Rule, RuleAssign, RuleHead};
use regorus::Value;

/// The documents one module defines, as paths of plain segments under `data`.
#[derive(Debug, Default)]
pub struct ModuleIndex {
    pub package: Vec<String>,
    /// Paths of rules that produce documents (complete, partial set and partial object rules),
    /// up to the first non-constant part of their head.
    pub rules: BTreeSet<Vec<String>>,
    /// Those of `rules` cut before the end of a generic head (`p[q].r` gives `p`): the document
    /// there is only whole when queried, regorus's rule lookup does not take it.
    pub generic: BTreeSet<Vec<String>>,
    pub functions: BTreeSet<Vec<String>>,
}

impl ModuleIndex {
    pub fn of(module: &Module) -> ModuleIndex {
        let mut index = ModuleIndex {
            package: package_path(module),
            ..ModuleIndex::default()
        };
        for rule in &module.policy {
            let (refr, is_function) = match rule.as_ref() {
                Rule::Spec { head, .. } => match head {
                    RuleHead::Compr { refr, .. } | RuleHead::Set { refr, .. } => (refr, false),
                    RuleHead::Func { refr, .. } => (refr, true),
                },
                Rule::Default { refr, args, .. } => (refr, !args.is_empty()),
            };
            let mut path = index.package.clone();
            let prefix = ref_prefix(refr);
            let generic = prefix.len() + 1 < ref_len(refr);
            path.extend(prefix);
            if is_function {
                index.functions.insert(path);
            } else {
                if generic {
                    index.generic.insert(path.clone());
                }
                index.rules.insert(path);
            }
        }
        index
    }
}

/// The path of `module`'s package under `data`: `["a", "b"]` for `package a.b`.
pub fn package_path(module: &Module) -> Vec<String> {
    ref_prefix(&module.package.refr)
        .into_iter()
        .skip_while(|s| s == "data")
        .collect()
}

/// The path a rule of the package at `package` defines, up to the first variable of its head
/// (`p.q[x]` in `package a` gives `a.p.q`).
pub fn rule_path(package: &[String], rule: &Rule) -> Vec<String> {
    let mut path = package.to_vec();
    path.extend(ref_prefix(crate::policy::rewrite::walk::head_ref(rule)));
    path
}

/// The leading constant segments of a reference: `a.b["c"][x]` gives `[a, b, c]`.
pub fn ref_prefix(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    collect(expr, &mut out);
    out
}

/// How many segments a reference has, constant or not: `a.b[x].c` has four.
fn ref_len(expr: &Expr) -> usize {
    match expr {
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => ref_len(refr) + 1,
        _ => 1,
    }
}

/// Returns false once a non-constant segment is met, so that later segments are dropped.
fn collect(expr: &Expr, out: &mut Vec<String>) -> bool {
    match expr {
        Expr::Var { value, .. } => push_text(value, out),
        Expr::RefDot { refr, field, .. } => collect(refr, out) && push_text(&field.1, out),
        Expr::RefBrack { refr, index, .. } => {
            collect(refr, out)
                && match index.as_ref() {
                    Expr::String { value, .. } | Expr::RawString { value, .. } => {
                        push_text(value, out)
                    }
                    _ => false,
                }
        }
        _ => false,
    }
}

fn push_text(value: &Value, out: &mut Vec<String>) -> bool {
    match value.as_string() {
        Ok(s) => {
            out.push(s.to_string());
            true
        }
        Err(_) => false,
    }
}

/// OPA's type of the function at `path` as far as its heads show it, `(any, any) => boolean`:
/// each argument `any` (OPA infers more from the bodies), the result the type of the literal
/// values its heads give (`boolean` when they give none), `any` when they differ or are not
/// literals. `None` when no module defines it.
pub fn function_signature(modules: &[Ref<Module>], path: &[String]) -> Option<String> {
    let mut arity = None;
    let mut result: Option<&str> = None;
    let mut merge = |t: &'static str| {
        result = Some(match result {
            Some(r) if r != t => "any",
            _ => t,
        })
    };
    for module in modules {
        let package: Vec<String> = ref_prefix(&module.package.refr)
            .into_iter()
            .skip_while(|s| s == "data")
            .collect();
        for rule in &module.policy {
            let (refr, args, values): (_, _, Vec<Option<&Expr>>) = match rule.as_ref() {
                Rule::Spec {
                    head:
                        RuleHead::Func {
                            refr, args, assign, ..
                        },
                    bodies,
                    ..
                } => {
                    let head = assign.as_ref().map(|a: &RuleAssign| a.value.as_ref());
                    let mut values: Vec<_> = bodies
                        .iter()
                        .map(|b| b.assign.as_ref().map(|a| a.value.as_ref()).or(head))
                        .collect();
                    if values.is_empty() {
                        values.push(head);
                    }
                    (refr, args.len(), values)
                }
                Rule::Default {
                    refr, args, value, ..
                } if !args.is_empty() => (refr, args.len(), vec![Some(value.as_ref())]),
                _ => continue,
            };
            let mut full = package.clone();
            full.extend(ref_prefix(refr));
            if full != path {
                continue;
            }
            arity = Some(args);
            for value in values {
                merge(value.map_or("boolean", literal_type));
            }
        }
    }
    let args = vec!["any"; arity?].join(", ");
    Some(format!("({args}) => {}", result.unwrap_or("any")))
}

fn literal_type(expr: &Expr) -> &'static str {
    match expr {
        Expr::String { .. } | Expr::RawString { .. } => "string",
        Expr::Number { .. } => "number",
        Expr::Bool { .. } => "boolean",
        Expr::Null { .. } => "null",
        _ => "any",
    }
}

/// `data.a.b`: the key `eval_rule` and the fast-path index use.
pub fn rule_key(path: &[String]) -> String {
    let mut key = String::from("data");
    for p in path {
        key.push('.');
        key.push_str(p);
    }
    key
}
