//! Recursion refused at load, as OPA's compiler refuses it (`rego_recursion_error`).
//!
//! regorus accepts rules and functions that depend on themselves and only fails when they run;
//! driven deep enough by input, they overflow the thread's stack and abort the process, which
//! no `catch_unwind` can stop. So the dependency graph between rules is built here from
//! regorus's parsed modules, as OPA builds its own: a rule depends on every rule a reference
//! or call in it may reach (through `data.…`, the package's own names, imports and aliases;
//! a variable segment reaches every rule below it). A rule definition with a dependency in its
//! own strongly connected component is recursive.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;

use regorus::unstable::{Expr, Literal, Module, Query, Ref, Rule, RuleHead};

use super::super::error::{Location, RegoError};

/// One segment of a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    /// Only known at evaluation: may be any rule's name.
    Any,
    /// A number, boolean or null: never a rule's name.
    Never,
}

/// A reference's path under `data`.
type RefPath = Vec<Seg>;

/// OPA's compiler stops at 10 errors; a cycle through thousands of rules is reported as much.
const MAX_ERRORS: usize = 10;

/// One rule definition (a module may define a rule in several places).
struct Definition {
    node: usize,
    location: Location,
    deps: BTreeSet<usize>,
}

/// Refuses `modules` when a rule or function depends on itself: one `rego_recursion_error` per
/// recursive definition, at its location, naming the cycle as OPA does.
pub fn check(modules: &[Ref<Module>]) -> Result<(), Vec<RegoError>> {
    let mut paths: Vec<Vec<String>> = Vec::new();
    let mut ids: HashMap<Vec<String>, usize> = HashMap::new();
    let mut heads = Vec::new();
    for module in modules {
        let package = package_path(module);
        for rule in &module.policy {
            let mut path = package.clone();
            path.extend(constant_prefix(rule_ref(rule)));
            let next = ids.len();
            let node = *ids.entry(path.clone()).or_insert_with(|| {
                paths.push(path);
                next
            });
            heads.push((module, rule, node));
        }
    }
    let index = PathIndex::new(&paths);
    let definitions: Vec<Definition> = heads
        .into_iter()
        .map(|(module, rule, node)| {
            let span = rule.span();
            let mut deps = BTreeSet::new();
            for target in references(module, rule) {
                index.matching(&target, &mut deps);
            }
            Definition {
                node,
                location: Location {
                    file: span.source.file().clone(),
                    row: span.line,
                    col: span.col,
                },
                deps,
            }
        })
        .collect();

    let mut edges: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); paths.len()];
    for d in &definitions {
        edges[d.node].extend(d.deps.iter().copied());
    }
    let component = components(&edges);
    let mut errors = Vec::new();
    for d in &definitions {
        if errors.len() == MAX_ERRORS {
            break;
        }
        let Some(&first) = d.deps.iter().find(|&&t| component[t] == component[d.node]) else {
            continue;
        };
        let mut cycle = vec![d.node];
        cycle.extend(shortest_path(&edges, &component, first, d.node));
        let names: Vec<String> = cycle.iter().map(|&n| data_ref(&paths[n])).collect();
        errors.push(RegoError {
            code: "rego_recursion_error",
            message: format!(
                "rule {} is recursive: {}",
                data_ref(&paths[d.node]),
                names.join(" -> ")
            ),
            location: Some(d.location.clone()),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn data_ref(path: &[String]) -> String {
    let mut out = String::from("data");
    for p in path {
        out.push('.');
        out.push_str(p);
    }
    out
}

fn package_path(module: &Module) -> Vec<String> {
    constant_prefix(&module.package.refr)
        .into_iter()
        .skip_while(|s| s == "data")
        .collect()
}

fn rule_ref(rule: &Rule) -> &Expr {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    }
}

/// The leading constant segments of a reference.
fn constant_prefix(expr: &Expr) -> Vec<String> {
    let (head, path) = chain(expr);
    head.into_iter()
        .chain(path.into_iter().map_while(|s| match s {
            Seg::Key(k) => Some(k),
            _ => None,
        }))
        .collect()
}

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

/// Rule paths in order, so that the rules below a reference's constant prefix are one range
/// and the rules above it a few lookups, whatever the number of rules.
struct PathIndex<'a> {
    sorted: BTreeMap<&'a [String], usize>,
}

impl<'a> PathIndex<'a> {
    fn new(paths: &'a [Vec<String>]) -> Self {
        let sorted = paths
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_slice(), i))
            .collect();
        PathIndex { sorted }
    }

    /// Every rule a reference to `target` may read: the rules at, below or above it, where a
    /// variable segment matches any name (OPA's `GetRulesDynamic`).
    fn matching(&self, target: &RefPath, out: &mut BTreeSet<usize>) {
        let prefix: Vec<String> = target
            .iter()
            .map_while(|s| match s {
                Seg::Key(k) => Some(k.clone()),
                _ => None,
            })
            .collect();
        for n in 0..prefix.len() {
            if let Some(&i) = self.sorted.get(&prefix[..n]) {
                out.insert(i);
            }
        }
        let below = self
            .sorted
            .range::<[String], _>((Bound::Included(prefix.as_slice()), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(&prefix));
        for (path, &i) in below {
            let agrees = path.iter().zip(target).all(|(p, t)| match t {
                Seg::Key(k) => k == p,
                Seg::Any => true,
                Seg::Never => false,
            });
            if agrees {
                out.insert(i);
            }
        }
    }
}

/// The `data` paths a rule's references and calls may read.
fn references(module: &Module, rule: &Rule) -> Vec<RefPath> {
    let mut scope = Scope {
        package: package_path(module),
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

/// Collects the names a rule binds locally.
fn bind_rule(rule: &Rule, out: &mut BTreeSet<String>) {
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

/// Strongly connected components (Kosaraju, iterative: a long chain of rules must not
/// exhaust the stack this check exists to protect). Returns each node's component number.
fn components(edges: &[BTreeSet<usize>]) -> Vec<usize> {
    let n = edges.len();
    let mut order = Vec::with_capacity(n);
    let mut seen = vec![false; n];
    for start in 0..n {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![(start, edges[start].iter())];
        while let Some((node, iter)) = stack.last_mut() {
            let node = *node;
            match iter.next() {
                Some(&next) if !seen[next] => {
                    seen[next] = true;
                    stack.push((next, edges[next].iter()));
                }
                Some(_) => {}
                None => {
                    order.push(node);
                    stack.pop();
                }
            }
        }
    }
    let mut reverse = vec![Vec::new(); n];
    for (from, targets) in edges.iter().enumerate() {
        for &to in targets {
            reverse[to].push(from);
        }
    }
    let mut component = vec![usize::MAX; n];
    let mut count = 0;
    for &root in order.iter().rev() {
        if component[root] != usize::MAX {
            continue;
        }
        component[root] = count;
        let mut stack = vec![root];
        while let Some(node) = stack.pop() {
            for &prev in &reverse[node] {
                if component[prev] == usize::MAX {
                    component[prev] = count;
                    stack.push(prev);
                }
            }
        }
        count += 1;
    }
    component
}

/// The shortest walk from `from` to `to` inside their component, both ends included.
fn shortest_path(
    edges: &[BTreeSet<usize>],
    component: &[usize],
    from: usize,
    to: usize,
) -> Vec<usize> {
    let mut parent: HashMap<usize, usize> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut reached = from == to;
    while let Some(node) = queue.pop_front() {
        if reached {
            break;
        }
        for &next in &edges[node] {
            if component[next] != component[from] || next == from || parent.contains_key(&next) {
                continue;
            }
            parent.insert(next, node);
            if next == to {
                reached = true;
                break;
            }
            queue.push_back(next);
        }
    }
    let mut path = vec![to];
    let mut node = to;
    while node != from {
        match parent.get(&node) {
            Some(&p) => {
                path.push(p);
                node = p;
            }
            None => break,
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
#[path = "recursion_tests.rs"]
mod tests;
