//! Walking regorus's parsed module: every query (rule bodies, comprehension and `every`
//! bodies) and every expression, in source order.

use regorus::unstable::{Expr, Literal, Module, Query, Rule, RuleHead};

/// Where a query sits: only a rule body may be written without braces (`p if x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    RuleBody,
    Nested,
}

/// Calls `f` on every query of `rule`, outermost first.
pub fn queries_of_rule<'a>(rule: &'a Rule, f: &mut dyn FnMut(&'a Query, Place)) {
    let mut nested = |e: &'a Expr| {
        if let Some(q) = comprehension_query(e) {
            queries(q, Place::Nested, f);
        }
    };
    match rule {
        Rule::Spec { head, bodies, .. } => {
            head_exprs(head, &mut nested);
            for body in bodies {
                if let Some(assign) = &body.assign {
                    exprs(&assign.value, &mut nested);
                }
            }
            for body in bodies {
                queries(&body.query, Place::RuleBody, f);
            }
        }
        Rule::Default { value, .. } => exprs(value, &mut nested),
    }
}

fn comprehension_query(e: &Expr) -> Option<&Query> {
    match e {
        Expr::ArrayCompr { query, .. }
        | Expr::SetCompr { query, .. }
        | Expr::ObjectCompr { query, .. } => Some(query),
        _ => None,
    }
}

/// `f` on `query`, then on the queries nested in its statements.
fn queries<'a>(query: &'a Query, place: Place, f: &mut dyn FnMut(&'a Query, Place)) {
    f(query, place);
    for stmt in &query.stmts {
        let mut inner: Vec<&'a Query> = Vec::new();
        literal_exprs(&stmt.literal, &mut |e| {
            if let Some(q) = comprehension_query(e) {
                inner.push(q);
            }
        });
        for w in &stmt.with_mods {
            exprs(&w.refr, &mut |e| inner.extend(comprehension_query(e)));
            exprs(&w.r#as, &mut |e| inner.extend(comprehension_query(e)));
        }
        if let Literal::Every { query, .. } = &stmt.literal {
            inner.push(query);
        }
        for q in inner {
            queries(q, Place::Nested, f);
        }
    }
}

/// `f` on each expression of a statement's literal (not inside nested queries).
pub fn literal_exprs<'a>(literal: &'a Literal, f: &mut dyn FnMut(&'a Expr)) {
    match literal {
        Literal::SomeVars { .. } => {}
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                exprs(k, f);
            }
            exprs(value, f);
            exprs(collection, f);
        }
        Literal::Expr { expr, .. } | Literal::NotExpr { expr, .. } => exprs(expr, f),
        Literal::Every { domain, .. } => exprs(domain, f),
    }
}

/// The expressions of a rule head: its reference, arguments, key and value.
pub fn head_exprs<'a>(head: &'a RuleHead, f: &mut dyn FnMut(&'a Expr)) {
    match head {
        RuleHead::Compr { refr, assign, .. } => {
            exprs(refr, f);
            if let Some(a) = assign {
                exprs(&a.value, f);
            }
        }
        RuleHead::Set { refr, key, .. } => {
            exprs(refr, f);
            if let Some(k) = key {
                exprs(k, f);
            }
        }
        RuleHead::Func {
            refr, args, assign, ..
        } => {
            exprs(refr, f);
            for a in args {
                exprs(a, f);
            }
            if let Some(a) = assign {
                exprs(&a.value, f);
            }
        }
    }
}

/// `f` on `e` and every expression below it, not entering comprehension bodies (their
/// statements are queries of their own) but their terms.
pub fn exprs<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    match e {
        Expr::Array { items, .. } | Expr::Set { items, .. } => {
            for i in items {
                exprs(i, f);
            }
        }
        Expr::Object { fields, .. } => {
            for (_, k, v) in fields {
                exprs(k, f);
                exprs(v, f);
            }
        }
        Expr::ArrayCompr { term, .. } | Expr::SetCompr { term, .. } => exprs(term, f),
        Expr::ObjectCompr { key, value, .. } => {
            exprs(key, f);
            exprs(value, f);
        }
        Expr::Call { fcn, params, .. } => {
            exprs(fcn, f);
            for p in params {
                exprs(p, f);
            }
        }
        Expr::UnaryExpr { expr, .. } => exprs(expr, f),
        Expr::RefDot { refr, .. } => exprs(refr, f),
        Expr::RefBrack { refr, index, .. } => {
            exprs(refr, f);
            exprs(index, f);
        }
        Expr::BinExpr { lhs, rhs, .. }
        | Expr::BoolExpr { lhs, rhs, .. }
        | Expr::ArithExpr { lhs, rhs, .. }
        | Expr::AssignExpr { lhs, rhs, .. } => {
            exprs(lhs, f);
            exprs(rhs, f);
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => {
            if let Some(k) = key {
                exprs(k, f);
            }
            exprs(value, f);
            exprs(collection, f);
        }
        _ => {}
    }
}

/// A call's function name as written (`io.jwt.decode`), when it is a plain reference.
pub fn call_name(fcn: &Expr) -> Option<String> {
    match fcn {
        Expr::Var { span, .. } => Some(span.text().to_string()),
        Expr::RefDot { refr, field, .. } => {
            let head = call_name(refr)?;
            Some(format!("{head}.{}", field.0.text()))
        }
        _ => None,
    }
}

/// A term's byte range, its closing quote included: regorus ends a string literal's span, and
/// so a term ending in one, before the quote.
pub fn range(term: &Expr) -> (u32, u32) {
    span_range(term.span())
}

/// `range` for any span: a statement ending in a string literal ends before its quote too.
pub fn span_range(span: &regorus::unstable::Span) -> (u32, u32) {
    let text = span.source.contents();
    let written = span.text();
    let quotes = written.matches('"').count() - written.matches("\\\"").count();
    let next = text
        .get(span.end as usize..)
        .and_then(|rest| rest.chars().next());
    let open = match next {
        Some('"') => quotes % 2 == 1,
        Some('`') => written.matches('`').count() % 2 == 1,
        _ => false,
    };
    (span.start, span.end + u32::from(open))
}

/// True when a query is written in braces (`p if x` has none).
pub fn braced(query: &Query) -> bool {
    let text = query.span.source.contents();
    let before = text.get(..query.span.start as usize).unwrap_or("");
    query.span.text().starts_with('{') || before.trim_end().ends_with('{')
}

/// The first name of a rule's head (`p` of `p.q[x]`).
pub fn rule_name(rule: &Rule) -> Option<String> {
    root_var(head_ref(rule)).map(|s| s.to_string())
}

/// The reference a rule's head names (`p.q[x]`), whatever the kind of rule.
pub fn head_ref(rule: &Rule) -> &Expr {
    match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    }
}

pub fn root_var(e: &Expr) -> Option<&str> {
    match e {
        Expr::Var { span, .. } => Some(span.text()),
        Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => root_var(refr),
        _ => None,
    }
}

/// Every rule of the module.
pub fn rules(module: &Module) -> impl Iterator<Item = &Rule> {
    module.policy.iter().map(|r| r.as_ref())
}
