//! `with f as count`: a builtin as the replacement of a `with`. OPA calls the builtin in the
//! replaced function's place; regorus reads `count` as a variable and refuses the rule ("var
//! count is unsafe"). The replacement becomes a function of the module that calls the builtin,
//! written after the module's last line (no line before it moves).

use std::collections::{HashMap, HashSet};

use regorus::unstable::{Expr, Module, BUILTINS};

use super::edits::Edit;
use super::walk;
use crate::policy::builtins;

pub fn edits(module: &Module) -> Vec<Edit> {
    let added: HashMap<&str, u8> = builtins::arities().collect();
    let arity = |name: &str| {
        added
            .get(name)
            .copied()
            .or_else(|| BUILTINS.get(name).map(|(_, n)| *n))
    };
    let rules: HashSet<String> = walk::rules(module).filter_map(walk::rule_name).collect();
    let mut out = Vec::new();
    let mut wrappers = String::new();
    let mut next = 0usize;
    for rule in walk::rules(module) {
        walk::queries_of_rule(rule, &mut |query, _| {
            for w in query.stmts.iter().flat_map(|s| &s.with_mods) {
                let replacement = w.r#as.as_ref();
                if !matches!(replacement, Expr::Var { .. } | Expr::RefDot { .. }) {
                    continue;
                }
                let Some(name) = walk::call_name(replacement) else {
                    continue;
                };
                let root = name.split('.').next().unwrap_or_default();
                if rules.contains(root) {
                    continue;
                }
                let Some(n) = arity(&name).filter(|n| *n > 0) else {
                    continue;
                };
                let wrapper = format!("__vb{next}__");
                next += 1;
                let params: Vec<String> = (0..n).map(|i| format!("__a{i}")).collect();
                let params = params.join(", ");
                wrappers.push_str(&format!("\n{wrapper}({params}) := {name}({params})\n"));
                let span = replacement.span();
                out.push(Edit::replace(span.start, span.end, wrapper));
            }
        });
    }
    if !wrappers.is_empty() {
        let end = module.package.span.source.contents().len() as u32;
        out.push(Edit::insert(end, wrappers));
    }
    out
}
