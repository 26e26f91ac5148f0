//! Terms, bodies and expressions of a parsed module in OPA's JSON shape: `{"type": ...,
//! "value": ...}` terms, references flattened to their parts, operators as OPA's builtin
//! names (`equal`, `plus`, `internal.member_2`), a call in a body written as its operands.

use regorus::unstable::{ArithOp, AssignOp, BinOp, BoolOp, Expr, Literal, LiteralStmt, Query, Ref};
use regorus::Value;
use serde_json::{json, Map, Value as Json};

use super::true_body;

pub(super) fn query_json(query: &Query) -> Json {
    if query.stmts.is_empty() {
        return true_body();
    }
    query
        .stmts
        .iter()
        .enumerate()
        .map(|(i, s)| stmt_json(i, s))
        .collect()
}

fn stmt_json(index: usize, stmt: &LiteralStmt) -> Json {
    let mut e = Map::new();
    e.insert("index".into(), Json::from(index));
    let terms = match &stmt.literal {
        Literal::Expr { expr, .. } => expr_terms(expr),
        Literal::NotExpr { expr, .. } => {
            e.insert("negated".into(), Json::Bool(true));
            expr_terms(expr)
        }
        Literal::SomeVars { vars, .. } => {
            json!({"symbols": vars.iter().map(|v| var(v.text())).collect::<Vec<_>>()})
        }
        Literal::SomeIn {
            key,
            value,
            collection,
            ..
        } => json!({"symbols": [membership(key.as_ref(), value, collection)]}),
        Literal::Every {
            key,
            value,
            domain,
            query,
            ..
        } => {
            let mut every = Map::new();
            if let Some(k) = key {
                every.insert("key".into(), var(k.text()));
            }
            every.insert("value".into(), var(value.text()));
            every.insert("domain".into(), term(domain));
            every.insert("body".into(), query_json(query));
            json!({"type": "every", "value": every})
        }
    };
    e.insert("terms".into(), terms);
    if !stmt.with_mods.is_empty() {
        let with: Vec<Json> = stmt
            .with_mods
            .iter()
            .map(|w| json!({"target": term(&w.refr), "value": term(&w.r#as)}))
            .collect();
        e.insert("with".into(), Json::Array(with));
    }
    Json::Object(e)
}

/// An expression of a body: a call is written as its operator and operands, anything else
/// as one term.
fn expr_terms(expr: &Expr) -> Json {
    match term(expr) {
        Json::Object(mut t) if t.get("type") == Some(&Json::from("call")) => {
            t.remove("value").unwrap_or(Json::Null)
        }
        other => other,
    }
}

pub(super) fn var(name: &str) -> Json {
    json!({"type": "var", "value": name})
}

pub(super) fn string(s: &str) -> Json {
    json!({"type": "string", "value": s})
}

fn call(operator: &[&str], args: Vec<Json>) -> Json {
    let mut op = vec![var(operator[0])];
    op.extend(operator[1..].iter().map(|s| string(s)));
    let mut value = vec![json!({"type": "ref", "value": op})];
    value.extend(args);
    json!({"type": "call", "value": value})
}

fn scalar(kind: &str, value: &Value) -> Json {
    let v = serde_json::to_value(value).unwrap_or(Json::Null);
    json!({"type": kind, "value": v})
}

fn membership(key: Option<&Ref<Expr>>, value: &Expr, collection: &Expr) -> Json {
    match key {
        Some(k) => call(
            &["internal", "member_3"],
            vec![term(k), term(value), term(collection)],
        ),
        None => call(
            &["internal", "member_2"],
            vec![term(value), term(collection)],
        ),
    }
}

/// A reference flattened: its head, then a string for each `.field` and a term for each
/// `[index]`.
pub(super) fn ref_parts(expr: &Expr) -> Vec<Json> {
    match expr {
        Expr::RefDot { refr, field, .. } => {
            let mut parts = ref_parts(refr);
            parts.push(scalar("string", &field.1));
            parts
        }
        Expr::RefBrack { refr, index, .. } => {
            let mut parts = ref_parts(refr);
            parts.push(term(index));
            parts
        }
        other => vec![term(other)],
    }
}

pub(super) fn term(expr: &Expr) -> Json {
    match expr {
        Expr::String { value, .. } | Expr::RawString { value, .. } => scalar("string", value),
        Expr::Number { value, .. } => scalar("number", value),
        Expr::Bool { value, .. } => scalar("boolean", value),
        Expr::Null { .. } => json!({"type": "null"}),
        Expr::Var { value, .. } => scalar("var", value),
        Expr::Array { items, .. } => {
            json!({"type": "array", "value": items.iter().map(|i| term(i)).collect::<Vec<_>>()})
        }
        Expr::Set { items, .. } => {
            json!({"type": "set", "value": items.iter().map(|i| term(i)).collect::<Vec<_>>()})
        }
        Expr::Object { fields, .. } => {
            let pairs: Vec<Json> = fields
                .iter()
                .map(|(_, k, v)| json!([term(k), term(v)]))
                .collect();
            json!({"type": "object", "value": pairs})
        }
        Expr::ArrayCompr { term: t, query, .. } => json!({"type": "arraycomprehension",
            "value": {"term": term(t), "body": query_json(query)}}),
        Expr::SetCompr { term: t, query, .. } => json!({"type": "setcomprehension",
            "value": {"term": term(t), "body": query_json(query)}}),
        Expr::ObjectCompr {
            key, value, query, ..
        } => json!({"type": "objectcomprehension",
            "value": {"key": term(key), "value": term(value), "body": query_json(query)}}),
        Expr::Call { fcn, params, .. } => {
            let mut value = vec![json!({"type": "ref", "value": ref_parts(fcn)})];
            value.extend(params.iter().map(|p| term(p)));
            json!({"type": "call", "value": value})
        }
        Expr::UnaryExpr { expr, .. } => match expr.as_ref() {
            Expr::Number { value, .. } => {
                let negated = serde_json::to_value(value)
                    .ok()
                    .and_then(|n| n.as_f64())
                    .map_or(Json::Null, |n| json!(-n));
                json!({"type": "number", "value": negated})
            }
            other => call(
                &["minus"],
                vec![json!({"type": "number", "value": 0}), term(other)],
            ),
        },
        Expr::RefDot { .. } | Expr::RefBrack { .. } => {
            json!({"type": "ref", "value": ref_parts(expr)})
        }
        Expr::BinExpr { op, lhs, rhs, .. } => {
            let name = match op {
                BinOp::Intersection => "and",
                BinOp::Union => "or",
            };
            call(&[name], vec![term(lhs), term(rhs)])
        }
        Expr::BoolExpr { op, lhs, rhs, .. } => {
            let name = match op {
                BoolOp::Lt => "lt",
                BoolOp::Le => "lte",
                BoolOp::Eq => "equal",
                BoolOp::Ge => "gte",
                BoolOp::Gt => "gt",
                BoolOp::Ne => "neq",
            };
            call(&[name], vec![term(lhs), term(rhs)])
        }
        Expr::ArithExpr { op, lhs, rhs, .. } => {
            let name = match op {
                ArithOp::Add => "plus",
                ArithOp::Sub => "minus",
                ArithOp::Mul => "mul",
                ArithOp::Div => "div",
                ArithOp::Mod => "rem",
            };
            call(&[name], vec![term(lhs), term(rhs)])
        }
        Expr::AssignExpr { op, lhs, rhs, .. } => {
            let name = match op {
                AssignOp::Eq => "eq",
                AssignOp::ColEq => "assign",
            };
            call(&[name], vec![term(lhs), term(rhs)])
        }
        Expr::Membership {
            key,
            value,
            collection,
            ..
        } => membership(key.as_ref(), value, collection),
        #[allow(unreachable_patterns)]
        _ => json!({"type": "null"}),
    }
}
