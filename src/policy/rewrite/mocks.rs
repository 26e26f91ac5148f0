//! `with io.jwt.decode_verify as mock` for a builtin verdict adds: OPA replaces the builtin
//! everywhere under the `with`, as it does for its own; regorus accepts only its own builtins
//! and rules as a `with` target ("undefined rule"). Where a module set mocks one of verdict's
//! builtins, every call of it goes through a function of a package of verdict's own
//! (`data.__verdict_mocks__`) that calls the builtin, and the `with` names that function: a
//! target regorus accepts, reached by every call the mock must reach.

use std::collections::BTreeSet;

use regorus::unstable::{Expr, Module, Rule, BUILTINS};

use super::edits::Edit;
use super::walk;
use crate::policy::builtins;

/// The package of the functions calls are sent through.
pub const PACKAGE: &str = "__verdict_mocks__";

/// The builtins of verdict's own that any of `texts` names as a `with` target. A name in a
/// comment or a string counts too: it only costs its calls one function call.
pub fn mocked<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let ours: BTreeSet<&str> = builtins::arities()
        .map(|(name, _)| name)
        .filter(|name| !BUILTINS.contains_key(name))
        .collect();
    let mut found = BTreeSet::new();
    for text in texts {
        let mut rest = text;
        while let Some(at) = rest.find("with") {
            let after = &rest[at + 4..];
            let before_ok = rest[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let target: String = after
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            if before_ok && after.starts_with(char::is_whitespace) && ours.contains(target.as_str())
            {
                found.insert(target);
            }
            rest = after;
        }
    }
    found
}

/// The function every call of `name` goes through.
fn shim(name: &str) -> String {
    format!("data.{PACKAGE}.{}", name.replace('.', "_"))
}

/// The module of the functions for `mocked`, or none.
pub fn shim_module(mocked: &BTreeSet<String>) -> Option<String> {
    if mocked.is_empty() {
        return None;
    }
    let arity = |name: &str| {
        builtins::arities()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a)
    };
    let mut text = format!("package {PACKAGE}\n");
    for name in mocked {
        let params: Vec<String> = (0..arity(name).unwrap_or(0))
            .map(|i| format!("__a{i}"))
            .collect();
        let params = params.join(", ");
        let function = name.replace('.', "_");
        text.push_str(&format!("\n{function}({params}) := {name}({params})\n"));
    }
    Some(text)
}

/// Sends `module`'s calls of mocked builtins, and its `with` targets naming them, through
/// their functions.
pub fn edits(module: &Module, mocked: &BTreeSet<String>) -> Vec<Edit> {
    if mocked.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut call = |e: &Expr| {
        if let Expr::Call { fcn, .. } = e {
            if let Some(name) = walk::call_name(fcn).filter(|n| mocked.contains(n)) {
                let span = fcn.span();
                out.push(Edit::replace(span.start, span.end, shim(&name)));
            }
        }
    };
    let mut targets = Vec::new();
    for rule in walk::rules(module) {
        match rule {
            Rule::Spec { head, bodies, .. } => {
                walk::head_exprs(head, &mut call);
                for assign in bodies.iter().filter_map(|b| b.assign.as_ref()) {
                    walk::exprs(&assign.value, &mut call);
                }
            }
            Rule::Default { value, .. } => walk::exprs(value, &mut call),
        }
        walk::queries_of_rule(rule, &mut |query, _| {
            for stmt in &query.stmts {
                walk::literal_exprs(&stmt.literal, &mut call);
                for w in &stmt.with_mods {
                    walk::exprs(&w.r#as, &mut call);
                    if let Some(name) = walk::call_name(&w.refr).filter(|n| mocked.contains(n)) {
                        let span = w.refr.span();
                        targets.push(Edit::replace(span.start, span.end, shim(&name)));
                    }
                }
            }
        });
    }
    out.extend(targets);
    out.sort_by_key(|e| e.start);
    out.dedup_by_key(|e| e.start);
    out
}

/// The package `rewrite::mocks` adds is verdict's, not the policy's: not part of `data`.
pub fn hide(root: &mut regorus::Value) {
    if let regorus::Value::Object(fields) = root {
        let key = regorus::Value::from(PACKAGE);
        if fields.contains_key(&key) {
            std::sync::Arc::make_mut(fields).remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verdicts_own_builtins_named_after_with_are_mocked() {
        let texts = [
            "t if { allow with io.jwt.decode_verify as m\n with http.send as h }",
            "u if { x with input as {} }\n# withio.jwt.decode as x",
            "v if { y with crypto.x509.parse_certificates as p }",
        ];
        let found = mocked(texts);
        assert!(found.contains("io.jwt.decode_verify"), "{found:?}");
        assert!(
            !found.contains("http.send"),
            "regorus's own: it accepts those"
        );
        assert!(!found.contains("io.jwt.decode"), "not after a `with`");
        let module = shim_module(&found).unwrap();
        assert!(
            module.contains("io_jwt_decode_verify(__a0, __a1) := io.jwt.decode_verify(__a0, __a1)"),
            "{module}"
        );
        assert!(shim_module(&BTreeSet::new()).is_none());
    }
}
