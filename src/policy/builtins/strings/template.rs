//! A small Go `text/template`: parsing into nodes and rendering them over a Rego value.

use regorus::Value;

use crate::policy::builtins::args::BuiltinError;

#[derive(Debug)]
pub enum Node {
    Text(String),
    /// A value to print: a path from `.` or from a variable.
    Print(Path),
    If(Path, Vec<Node>, Vec<Node>),
    /// Optional index and element variables, the collection, body, else branch.
    Range(Option<String>, Option<String>, Path, Vec<Node>, Vec<Node>),
}

/// `.a.b` (from dot), `$x.a` (from a variable), `$.a` (from the root).
#[derive(Debug)]
pub struct Path {
    var: Option<String>,
    fields: Vec<String>,
}

fn error(message: impl Into<String>) -> BuiltinError {
    BuiltinError::invalid(format!("template: {}", message.into()))
}

fn parse_path(text: &str) -> Result<Path, BuiltinError> {
    let text = text.trim();
    let (var, rest) = if let Some(rest) = text.strip_prefix('$') {
        let end = rest.find('.').unwrap_or(rest.len());
        (Some(rest[..end].to_string()), &rest[end..])
    } else if text.starts_with('.') {
        (None, text)
    } else {
        let name = text.split_whitespace().next().unwrap_or(text);
        return Err(error(format!("function \"{name}\" not supported")));
    };
    if rest.contains(char::is_whitespace) || rest.contains('|') {
        return Err(error(format!("pipelines are not supported: {text}")));
    }
    let fields = rest
        .split('.')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    Ok(Path { var, fields })
}

/// The actions and text between them, with `{{-`/`-}}` trimming applied.
fn tokens(text: &str) -> Result<Vec<(bool, String)>, BuiltinError> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let mut before = rest[..start].to_string();
        let mut inner = &rest[start + 2..];
        if let Some(trimmed) = inner.strip_prefix("- ") {
            before = before.trim_end().to_string();
            inner = trimmed;
        }
        let end = inner.find("}}").ok_or_else(|| error("unclosed action"))?;
        let mut action = &inner[..end];
        let mut after = &inner[end + 2..];
        if let Some(trimmed) = action.strip_suffix(" -") {
            action = trimmed;
            after = after.trim_start();
        }
        out.push((false, before));
        out.push((true, action.trim().to_string()));
        rest = after;
    }
    out.push((false, rest.to_string()));
    Ok(out)
}

pub fn parse(text: &str) -> Result<Vec<Node>, BuiltinError> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let (nodes, end) = parse_list(&tokens, &mut at)?;
    match end {
        None => Ok(nodes),
        Some(e) => Err(error(format!("unexpected {{{{{e}}}}}"))),
    }
}

/// Nodes up to an `end` or `else` (returned) or the end of input (`None`).
fn parse_list(
    tokens: &[(bool, String)],
    at: &mut usize,
) -> Result<(Vec<Node>, Option<String>), BuiltinError> {
    let mut nodes = Vec::new();
    while let Some((is_action, text)) = tokens.get(*at) {
        *at += 1;
        if !is_action {
            if !text.is_empty() {
                nodes.push(Node::Text(text.clone()));
            }
            continue;
        }
        if text.starts_with("/*") {
            continue;
        }
        if text == "end" || text == "else" {
            return Ok((nodes, Some(text.clone())));
        }
        if let Some(cond) = text.strip_prefix("if ") {
            let (body, otherwise) = parse_block(tokens, at)?;
            nodes.push(Node::If(parse_path(cond)?, body, otherwise));
        } else if let Some(spec) = text.strip_prefix("range ") {
            let (vars, collection) = match spec.split_once(":=") {
                Some((vars, collection)) => (Some(vars), collection),
                None => (None, spec),
            };
            let names: Vec<String> = vars
                .map(|v| {
                    v.split(',')
                        .map(|n| n.trim().trim_start_matches('$').to_string())
                        .collect()
                })
                .unwrap_or_default();
            let (index, element) = match names.as_slice() {
                [] => (None, None),
                [element] => (None, Some(element.clone())),
                [index, element] => (Some(index.clone()), Some(element.clone())),
                _ => return Err(error("too many declarations in range")),
            };
            let (body, otherwise) = parse_block(tokens, at)?;
            nodes.push(Node::Range(
                index,
                element,
                parse_path(collection)?,
                body,
                otherwise,
            ));
        } else {
            nodes.push(Node::Print(parse_path(text)?));
        }
    }
    Ok((nodes, None))
}

fn parse_block(
    tokens: &[(bool, String)],
    at: &mut usize,
) -> Result<(Vec<Node>, Vec<Node>), BuiltinError> {
    let (body, end) = parse_list(tokens, at)?;
    match end.as_deref() {
        Some("end") => Ok((body, Vec::new())),
        Some(_) => match parse_list(tokens, at)? {
            (otherwise, Some(e)) if e == "end" => Ok((body, otherwise)),
            _ => Err(error("unexpected EOF")),
        },
        None => Err(error("unexpected EOF")),
    }
}

struct Scope<'v> {
    root: &'v Value,
    vars: Vec<(String, Value)>,
}

fn resolve(path: &Path, dot: &Value, scope: &Scope<'_>) -> Value {
    let mut value = match &path.var {
        None => dot.clone(),
        Some(name) if name.is_empty() => scope.root.clone(),
        Some(name) => match scope.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => v.clone(),
            None => Value::Undefined,
        },
    };
    for field in &path.fields {
        value = match &value {
            Value::Object(o) => o
                .get(&Value::from(field.as_str()))
                .cloned()
                .unwrap_or(Value::Undefined),
            _ => Value::Undefined,
        };
    }
    value
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null | Value::Undefined => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Set(s) => !s.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Go's `%v` of the value OPA hands the template.
fn print(v: &Value, out: &mut String) {
    match v {
        Value::Undefined => out.push_str("<undefined>"),
        Value::Null => out.push_str("<nil>"),
        Value::String(s) => out.push_str(s),
        Value::Array(_) | Value::Set(_) => {
            out.push('[');
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                Value::Set(s) => s.iter().collect(),
                _ => Vec::new(),
            };
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print(item, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            out.push_str("map[");
            for (i, (k, item)) in o.iter_sorted().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                print(k, out);
                out.push(':');
                print(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&crate::gojson::value_to_string(other, false)),
    }
}

pub fn render(
    nodes: &[Node],
    vars: &Value,
    out: &mut String,
    limit: usize,
) -> Result<(), BuiltinError> {
    let mut scope = Scope {
        root: vars,
        vars: Vec::new(),
    };
    render_nodes(nodes, vars, &mut scope, out, limit)
}

fn render_nodes(
    nodes: &[Node],
    dot: &Value,
    scope: &mut Scope<'_>,
    out: &mut String,
    limit: usize,
) -> Result<(), BuiltinError> {
    for node in nodes {
        if out.len() > limit {
            return Err(error("output is too large"));
        }
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Print(path) => print(&resolve(path, dot, scope), out),
            Node::If(cond, body, otherwise) => {
                let branch = if truthy(&resolve(cond, dot, scope)) {
                    body
                } else {
                    otherwise
                };
                render_nodes(branch, dot, scope, out, limit)?;
            }
            Node::Range(index, element, collection, body, otherwise) => {
                let items: Vec<(Value, Value)> = match resolve(collection, dot, scope) {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i), v.clone()))
                        .collect(),
                    Value::Set(s) => s
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (Value::from(i), v.clone()))
                        .collect(),
                    Value::Object(o) => o
                        .iter_sorted()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    Value::Null | Value::Undefined => Vec::new(),
                    other => {
                        return Err(error(format!(
                            "range can't iterate over {}",
                            crate::gojson::value_to_string(&other, false)
                        )))
                    }
                };
                if items.is_empty() {
                    render_nodes(otherwise, dot, scope, out, limit)?;
                }
                for (key, item) in items {
                    let depth = scope.vars.len();
                    if let Some(name) = index {
                        scope.vars.push((name.clone(), key));
                    }
                    if let Some(name) = element {
                        scope.vars.push((name.clone(), item.clone()));
                    }
                    let result = render_nodes(body, &item, scope, out, limit);
                    scope.vars.truncate(depth);
                    result?;
                }
            }
        }
    }
    Ok(())
}
