//! What a rule reads: the `data` paths its references and calls may reach, resolved through
//! the package's own names, imports and aliases as OPA's compiler resolves them.

use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};

use super::locals::bind_rule;

/// One segment of a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    /// Only known at evaluation: may be any rule's name.
    Any,
    /// A number, boolean or null: never a rule's name.
    Never,
}

/// A reference's path under `data`.
pub(super) type RefPath = Vec<Seg>;

/// A reference taken apart: its head variable (if it starts with one) and its segments.
fn chain(expr: &Expr) -> (Option<String>, RefPath) {
    match expr {
        Expr::Var { value, .. } => (value.as_string().ok().map(|s| s.to_string()), Vec::new()),
        Expr::RefDot { refr, field, .. } => {
            let (head, mut path) = chain(refr);
            path.push(match field.1.as_string() {
                Ok(s) => Seg::Key(s.to_string()),
                Err(_) => Seg::Any,
            });
            (head, path)
        }
        Expr::RefBrack { refr, index, .. } => {
            let (head, mut path) = chain(refr);
            let segment = match index.as_ref() {
                Expr::String { value, .. } | Expr::RawString { value, .. } => {
                    match value.as_string() {
                        Ok(s) => Seg::Key(s.to_string()),
                        Err(_) => Seg::Any,
                    }
                }
                Expr::Number { .. } | Expr::Bool { .. } | Expr::Null { .. } => Seg::Never,
                _ => Seg::Any,
            };
            path.push(segment);
            (head, path)
        }
        _ => (None, Vec::new()),
    }
}

/// The `data` paths a rule's references and calls may read.
pub(super) fn references(module: &Module, rule: &Rule) -> Vec<RefPath> {
    let mut scope = Scope {
        package: crate::policy::rules::package_path(module),
        imports: imports(module),
        locals: BTreeSet::new(),
        found: Vec::new(),
    };
    bind_rule(rule, &mut scope.locals);
    match rule {
        Rule::Spec { head, bodies, .. } => {
            match head {
                RuleHead::Compr { refr, assign, .. } => {
                    scope.indexes(refr);
                    if let Some(a) = assign {
                        scope.expr(&a.value);
                    }
                }
                RuleHead::Set { refr, key, .. } => {
                    scope.indexes(refr);
                    if let Some(k) = key {
                        scope.expr(k);
                    }
                }
                RuleHead::Func {
                    refr, args, assign, ..
                } => {
                    scope.indexes(refr);
                    for a in args {
                        scope.expr(a);
                    }
                    if let Some(a) = assign {
                        scope.expr(&a.value);
                    }
                }
            }
            for body in bodies {
                if let Some(a) = &body.assign {
                    scope.expr(&a.value);
                }
                scope.query(&body.query);
            }
        }
        Rule::Default { args, value, .. } => {
            for a in args {
                scope.expr(a);
            }
            scope.expr(value);
        }
    }
    scope.found
}

/// The names a module's imports bring into scope (`import data.a.b` is `b`, `... as c` is
/// `c`).
pub fn import_names(module: &Module) -> impl Iterator<Item = String> {
    imports(module).into_keys()
}

/// `import data.a.b` is `b`; `import data.a.b as c` is `c`. Imports of `input` read no rule.
fn imports(module: &Module) -> BTreeMap<String, Option<RefPath>> {
    let mut out = BTreeMap::new();
    for import in &module.imports {
        let (head, path) = chain(&import.refr);
        let alias = match &import.r#as {
            Some(span) => Some(span.text().to_string()),
            None => match path.last() {
                Some(Seg::Key(last)) => Some(last.clone()),
                Some(_) => None,
                None => head.clone(),
            },
        };
        let Some(alias) = alias else { continue };
        let target = (head.as_deref() == Some("data")).then_some(path);
        out.insert(alias, target);
    }
    out
}

struct Scope {
    package: Vec<String>,
    imports: BTreeMap<String, Option<RefPath>>,
    /// Names bound in the rule (arguments, `some`, `:=`, `every`): never rule references. One
    /// set for the whole rule: a name bound anywhere in it is taken as a local everywhere,
    /// which can only miss a dependency, never invent one.
    locals: BTreeSet<String>,
    found: Vec<RefPath>,
}

impl Scope {
    /// Records where a reference starting with variable `head` leads.
    fn reference(&mut self, head: &str, rest: RefPath) {
        if head == "input" || head == "_" || self.locals.contains(head) {
            return;
        }
        let base = if head == "data" {
            Vec::new()
        } else if let Some(target) = self.imports.get(head) {
            match target {
                Some(path) => path.clone(),
                None => return,
            }
        } else {
            let mut p: RefPath = self.package.iter().cloned().map(Seg::Key).collect();
            p.push(Seg::Key(head.to_string()));
            p
        };
        let mut path = base;
        path.extend(rest);
        self.found.push(path);
    }

    /// The expressions inside a reference's brackets (a rule head's or a body's).
    fn indexes(&mut self, expr: &Expr) {
        match expr {
            Expr::RefDot { refr, .. } => self.indexes(refr),
            Expr::RefBrack { refr, index, .. } => {
                self.indexes(refr);
                self.expr(index);
            }
            Expr::Var { .. } => {}
            other => self.expr(other),
        }
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                let (head, path) = chain(expr);
                match head {
                    Some(head) => self.reference(&head, path),
                    None => self.base_of(expr),
                }
                self.indexes(expr);
            }
            Expr::Call { fcn, params, .. } => {
                let (head, path) = chain(fcn);
                if let Some(head) = head {
                    // A function name is never a local: resolve it even if a variable shares it.
                    let shadowed = self.locals.remove(&head);
                    self.reference(&head, path);
                    if shadowed {
                        self.locals.insert(head);
                    }
                }
                self.indexes(fcn);
                for p in params {
                    self.expr(p);
                }
            }
            Expr::String { .. }
            | Expr::RawString { .. }
            | Expr::Number { .. }
            | Expr::Bool { .. }
            | Expr::Null { .. } => {}
            Expr::Array { items, .. } | Expr::Set { items, .. } => {
                for i in items {
                    self.expr(i);
                }
            }
            Expr::Object { fields, .. } => {
                for (_, k, v) in fields {
                    self.expr(k);
                    self.expr(v);
                }
            }
            Expr::ArrayCompr { term, query, .. } | Expr::SetCompr { term, query, .. } => {
                self.expr(term);
                self.query(query);
            }
            Expr::ObjectCompr {
                key, value, query, ..
            } => {
                self.expr(key);
                self.expr(value);
                self.query(query);
            }
            Expr::UnaryExpr { expr, .. } => self.expr(expr),
            Expr::BinExpr { lhs, rhs, .. }
            | Expr::BoolExpr { lhs, rhs, .. }
            | Expr::ArithExpr { lhs, rhs, .. }
            | Expr::AssignExpr { lhs, rhs, .. } => {
                self.expr(lhs);
                self.expr(rhs);
            }
            Expr::Membership {
                key,
                value,
                collection,
                ..
            } => {
                if let Some(k) = key {
                    self.expr(k);
                }
                self.expr(value);
                self.expr(collection);
            }
        }
    }

    /// A reference whose base is not a variable (`f(x).y`, `[1, 2][i]`): its base is an
    /// expression of its own.
    fn base_of(&mut self, expr: &Expr) {
        match expr {
            Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => match refr.as_ref() {
                Expr::Var { .. } | Expr::RefDot { .. } | Expr::RefBrack { .. } => {
                    self.base_of(refr)
                }
                other => self.expr(other),
            },
            _ => {}
        }
    }

    fn query(&mut self, query: &Query) {
        for stmt in &query.stmts {
            match &stmt.literal {
                Literal::SomeVars { .. } => {}
                Literal::SomeIn {
                    key,
                    value,
                    collection,
                    ..
                } => {
                    if let Some(k) = key {
                        self.expr(k);
                    }
                    self.expr(value);
                    self.expr(collection);
                }
                Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => self.expr(expr),
                Literal::Every { domain, query, .. } => {
                    self.expr(domain);
                    self.query(query);
                }
            }
            for w in &stmt.with_mods {
                self.expr(&w.refr);
                self.expr(&w.r#as);
            }
        }
    }
}
