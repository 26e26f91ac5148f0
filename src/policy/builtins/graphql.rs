//! `graphql.*` (OPA's `topdown/graphql.go`): parsing queries and schemas into the ASTs OPA
//! returns (gqlparser's structs, pruned), and validating queries against schemas as
//! gqlparser's validator does, with its error texts and locations. A schema or query may be
//! given as text or as such an AST object (read back as Go's `encoding/json` reads it).
//!
//! `parse`, `parse_query` and `parse_schema` fail (undefined unless strict) on a bad document;
//! `parse_and_verify`, `is_valid` and `schema_is_valid` answer false instead. Documents are
//! bounded (1 MiB of text, nesting, validation work) so that a hostile one costs little.

mod ast;
mod cache;
mod decode;
mod encode;
mod lexer;
mod parser;
mod query_parser;
mod schema;
mod schema_check;
mod schema_parser;
mod validate;

use std::sync::Arc;

use regorus::Value;

use self::ast::{QueryDocument, SchemaDocument};
use self::cache::Loaded;
use self::schema::{GqlError, Schema};
use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("graphql.is_valid", 2, is_valid),
    ("graphql.parse", 2, parse),
    ("graphql.parse_and_verify", 2, parse_and_verify),
    ("graphql.parse_query", 1, parse_query),
    ("graphql.parse_schema", 1, parse_schema),
    ("graphql.schema_is_valid", 1, schema_is_valid),
];

/// The longest GraphQL text accepted, as for `strings.render_template`'s templates.
const MAX_TEXT: usize = 1 << 20;

fn too_long() -> BuiltinError {
    BuiltinError::invalid(format!("GraphQL document longer than {MAX_TEXT} bytes"))
}

/// OPA's `formatGqlParserError` over gqlparser's error text: `input:L:C: message` becomes
/// `message in GraphQL string at location L:C` (a trailing `.` and newline dropped); text
/// without a location is wrapped as a parse error.
fn opa_error(text: &str) -> BuiltinError {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    if let [_, line, column, message] = parts.as_slice() {
        if let (Some(line), Some(column)) = (number(line), number(column)) {
            let message = message.trim_start_matches(' ');
            let message = message.strip_suffix(".\n").unwrap_or(message);
            return BuiltinError::invalid(format!(
                "{message} in GraphQL string at location {line}:{column}"
            ));
        }
    }
    BuiltinError::invalid(format!("GraphQL parse error: {text}"))
}

fn syntax(e: parser::SyntaxError) -> BuiltinError {
    let error = GqlError {
        message: e.message,
        location: Some((e.line, e.column)),
    };
    opa_error(&error.render())
}

fn text_query(text: &str) -> Result<QueryDocument, BuiltinError> {
    if text.len() > MAX_TEXT {
        return Err(too_long());
    }
    query_parser::parse_query(text).map_err(syntax)
}

fn text_schema(text: &str) -> Result<SchemaDocument, BuiltinError> {
    if text.len() > MAX_TEXT {
        return Err(too_long());
    }
    schema_parser::parse_schema(text, false).map_err(syntax)
}

/// A query given as text or as an AST object; `position` is OPA's (0-based) for its errors.
fn query_operand(value: &Value, position: usize) -> Result<QueryDocument, BuiltinError> {
    match value {
        Value::String(text) => text_query(text),
        Value::Object(_) => decode::query_document(value).map_err(|e| BuiltinError::invalid(e.0)),
        other => Err(either_type(position, other)),
    }
}

/// A schema given as text (kept loaded, see `cache`) or as an AST object: its AST as the
/// builtins return it, and the schema it loads into or why it does not.
fn schema_operand(value: &Value, position: usize) -> Result<Arc<Loaded>, BuiltinError> {
    let loaded = |doc: SchemaDocument| Loaded {
        ast: encode::schema_document(&doc),
        schema: load(&doc),
    };
    match value {
        Value::String(text) => cache::loaded(text, || text_schema(text).map(loaded)),
        Value::Object(_) => decode::schema_document(value)
            .map(|doc| Arc::new(loaded(doc)))
            .map_err(|e| BuiltinError::invalid(e.0)),
        other => Err(either_type(position, other)),
    }
}

fn either_type(position: usize, value: &Value) -> BuiltinError {
    BuiltinError::Operand {
        position,
        expected: "one of {string, object}",
        actual: args::type_name(value),
    }
}

fn load(doc: &SchemaDocument) -> Result<Schema, BuiltinError> {
    schema::load(doc).map_err(|e| {
        BuiltinError::invalid(format!(
            "Error in gqlparser SchemaDocument to Schema conversion: {}",
            e.render()
        ))
    })
}

/// gqlparser's error list as OPA formats it: every error's text, one a line.
fn check(schema: &Schema, query: &QueryDocument) -> Result<(), BuiltinError> {
    let errors = validate::validate(schema, query);
    if errors.is_empty() {
        return Ok(());
    }
    let text: String = errors.iter().map(|e| e.render() + "\n").collect();
    Err(opa_error(&text))
}

/// `[query AST, schema AST]` of a query valid against a schema.
fn verified(query: &Value, schema: &Value) -> Result<(Value, Value), BuiltinError> {
    let query = query_operand(query, 0)?;
    let loaded = schema_operand(schema, 1)?;
    let schema = loaded.schema.as_ref().map_err(Clone::clone)?;
    let query_ast = encode::query_document(&query);
    check(schema, &query)?;
    Ok((query_ast, loaded.ast.clone()))
}

fn parse(args: &[Value]) -> Result<Value, BuiltinError> {
    let (query, schema) = verified(args::arg(args, 0), args::arg(args, 1))?;
    Ok(args::array(vec![query, schema]))
}

fn parse_and_verify(args: &[Value]) -> Result<Value, BuiltinError> {
    Ok(match verified(args::arg(args, 0), args::arg(args, 1)) {
        Ok((query, schema)) => args::array(vec![Value::from(true), query, schema]),
        Err(_) => args::array(vec![
            Value::from(false),
            Value::new_object(),
            Value::new_object(),
        ]),
    })
}

fn parse_query(args: &[Value]) -> Result<Value, BuiltinError> {
    let query = text_query(args::string(args, 0)?)?;
    Ok(encode::query_document(&query))
}

fn parse_schema(args: &[Value]) -> Result<Value, BuiltinError> {
    let schema = text_schema(args::string(args, 0)?)?;
    Ok(encode::schema_document(&schema))
}

fn is_valid(args: &[Value]) -> Result<Value, BuiltinError> {
    let valid = (|| -> Result<(), BuiltinError> {
        let query = query_operand(args::arg(args, 0), 0)?;
        let loaded = schema_operand(args::arg(args, 1), 1)?;
        let schema = loaded.schema.as_ref().map_err(Clone::clone)?;
        check(schema, &query)
    })();
    Ok(Value::from(valid.is_ok()))
}

fn schema_is_valid(args: &[Value]) -> Result<Value, BuiltinError> {
    let valid = schema_operand(args::arg(args, 0), 0).is_ok_and(|l| l.schema.is_ok());
    Ok(Value::from(valid))
}

#[cfg(test)]
mod tests;
