//! A schema document (merged after the prelude of built-in types) made into the schema queries
//! are validated against, as gqlparser's `ValidateSchemaDocument` makes it: extensions merged
//! (an extension of a missing type creates it), root operation types found, every type and
//! directive definition checked (`schema_check`), and the first problem reported.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::ast::{
    Definition, DirectiveDefinition, FieldDefinition, Pos, SchemaDocument, Type, INPUT_OBJECT,
    INTERFACE, OBJECT, UNION,
};
use super::schema_check;

/// A problem gqlparser reports, and where; `location` is `None` when gqlparser has none to
/// print (a validation error about a node that came without a position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GqlError {
    pub message: String,
    pub location: Option<(i64, i64)>,
}

impl GqlError {
    /// An error gqlparser positions with `ErrorPosf`: a node without a position is at -1:-1.
    pub fn at(at: Option<Pos>, message: String) -> GqlError {
        let (line, column) = at.map_or((-1, -1), |p| (p.line, p.column));
        GqlError {
            message,
            location: Some((line, column)),
        }
    }

    /// gqlerror's text: `input:LINE:COLUMN: message`.
    pub fn render(&self) -> String {
        match self.location {
            Some((line, column)) => format!("input:{line}:{column}: {}", self.message),
            None => format!("input: {}", self.message),
        }
    }
}

pub type SResult<T> = Result<T, GqlError>;

/// A validated schema: its types (extensions merged in), directives and root types.
#[derive(Debug, Clone)]
pub struct Schema {
    pub types: HashMap<String, Definition>,
    pub directives: HashMap<String, DirectiveDefinition>,
    roots: HashMap<String, String>,
    /// The object types a type may be at run time, by type name (an object is its own).
    possible: HashMap<String, Vec<String>>,
}

/// The directives gqlparser lets a schema define again.
const REDEFINABLE: &[&str] = &[
    "include",
    "skip",
    "deprecated",
    "specifiedBy",
    "defer",
    "oneOf",
];

fn prelude() -> &'static SchemaDocument {
    static PRELUDE: OnceLock<SchemaDocument> = OnceLock::new();
    PRELUDE.get_or_init(|| {
        super::schema_parser::parse_schema(include_str!("prelude.graphql"), true)
            .unwrap_or_default()
    })
}

impl Schema {
    pub fn ty(&self, name: &str) -> Option<&Definition> {
        self.types.get(name)
    }

    /// The root type of an operation (`query`, `mutation`, `subscription`).
    pub fn root(&self, operation: &str) -> Option<&Definition> {
        self.roots.get(operation).and_then(|name| self.ty(name))
    }

    pub fn possible_types(&self, def: &Definition) -> Vec<&Definition> {
        self.possible
            .get(&def.name)
            .map(|names| names.iter().filter_map(|n| self.ty(n)).collect())
            .unwrap_or_default()
    }

    fn add_possible(&mut self, name: &str, member: &str) {
        self.possible
            .entry(name.to_string())
            .or_default()
            .push(member.to_string());
    }

    /// Whether the type named `name` is one of the possible types of the type named `of`.
    pub fn is_possible(&self, of: &str, name: &str) -> bool {
        self.possible
            .get(of)
            .is_some_and(|names| names.iter().any(|n| n == name))
    }

    fn set_root(&mut self, operation: &str, ty: &str) {
        if matches!(operation, "query" | "mutation" | "subscription") {
            self.roots.insert(operation.to_string(), ty.to_string());
        }
    }
}

/// The schema `doc` describes, with the built-in types and directives, or its first problem.
pub fn load(doc: &SchemaDocument) -> SResult<Schema> {
    let prelude = prelude();
    let mut schema = Schema {
        types: HashMap::new(),
        directives: HashMap::new(),
        roots: HashMap::new(),
        possible: HashMap::new(),
    };
    let mut order: Vec<String> = Vec::new();
    for def in prelude.definitions.iter().chain(&doc.definitions) {
        if schema.types.contains_key(&def.name) {
            let message = format!("Cannot redeclare type {}.", def.name);
            return Err(GqlError::at(def.at, message));
        }
        schema.types.insert(def.name.clone(), def.clone());
        order.push(def.name.clone());
    }
    for ext in prelude.extensions.iter().chain(&doc.extensions) {
        let def = schema.types.entry(ext.name.clone()).or_insert_with(|| {
            order.push(ext.name.clone());
            Definition {
                kind: ext.kind.clone(),
                name: ext.name.clone(),
                at: ext.at,
                ..Definition::default()
            }
        });
        if def.kind != ext.kind {
            let message = format!(
                "Cannot extend type {} because the base type is a {}, not {}.",
                ext.name, def.kind, ext.kind
            );
            return Err(GqlError::at(ext.at, message));
        }
        def.directives.extend(ext.directives.iter().cloned());
        def.interfaces.extend(ext.interfaces.iter().cloned());
        def.fields.extend(ext.fields.iter().cloned());
        def.types.extend(ext.types.iter().cloned());
        def.enum_values.extend(ext.enum_values.iter().cloned());
    }
    for name in &order {
        let Some(def) = schema.types.get(name).cloned() else {
            continue;
        };
        match def.kind.as_str() {
            UNION => {
                for member in &def.types {
                    if schema.types.contains_key(member) {
                        schema.add_possible(&def.name, member);
                    }
                }
            }
            OBJECT | INPUT_OBJECT | INTERFACE => {
                for interface in &def.interfaces {
                    schema.add_possible(interface, &def.name);
                }
                if def.kind != INTERFACE {
                    schema.add_possible(&def.name, &def.name);
                }
            }
            _ => {}
        }
    }
    for dir in prelude.directives.iter().chain(&doc.directives) {
        if schema.directives.contains_key(&dir.name) && !REDEFINABLE.contains(&dir.name.as_str()) {
            let message = format!("Cannot redeclare directive {}.", dir.name);
            return Err(GqlError::at(dir.at, message));
        }
        schema.directives.insert(dir.name.clone(), dir.clone());
    }
    if let Some(second) = doc.schema.get(1) {
        let message =
            "Cannot have multiple schema entry points, consider schema extensions instead.";
        return Err(GqlError::at(second.at, message.to_string()));
    }
    for def in doc.schema.iter().chain(&doc.schema_extension) {
        for entry in &def.operation_types {
            if !schema.types.contains_key(&entry.ty) {
                let message = format!(
                    "Schema root {} refers to a type {} that does not exist.",
                    entry.operation, entry.ty
                );
                return Err(GqlError::at(entry.at, message));
            }
            schema.set_root(&entry.operation, &entry.ty);
        }
        schema_check::directives(&schema, &def.directives, "SCHEMA", None)?;
    }
    let mut names: Vec<&String> = schema.types.keys().collect();
    names.sort();
    for name in names {
        if let Some(def) = schema.types.get(name) {
            schema_check::definition(&schema, def)?;
        }
    }
    let mut names: Vec<&String> = schema.directives.keys().collect();
    names.sort();
    for name in names {
        if let Some(def) = schema.directives.get(name) {
            schema_check::directive_definition(&schema, def)?;
        }
    }
    // Without a `schema` definition, the types named after the operations are their roots.
    if doc.schema.is_empty() {
        for (operation, name) in [
            ("query", "Query"),
            ("mutation", "Mutation"),
            ("subscription", "Subscription"),
        ] {
            if !schema.roots.contains_key(operation) && schema.types.contains_key(name) {
                schema.set_root(operation, name);
            }
        }
    }
    if let Some(query) = schema.roots.get("query").cloned() {
        if let Some(def) = schema.types.get_mut(&query) {
            def.fields
                .push(introspection_field("__schema", "__Schema", true, None));
            let name = super::ast::ArgumentDefinition {
                description: String::new(),
                name: "name".to_string(),
                default_value: None,
                ty: Type::named("String", true),
                directives: Vec::new(),
                at: None,
            };
            def.fields
                .push(introspection_field("__type", "__Type", false, Some(name)));
        }
    }
    Ok(schema)
}

fn introspection_field(
    name: &str,
    ty: &str,
    non_null: bool,
    argument: Option<super::ast::ArgumentDefinition>,
) -> FieldDefinition {
    FieldDefinition {
        description: String::new(),
        name: name.to_string(),
        arguments: argument.into_iter().collect(),
        default_value: None,
        ty: Type::named(ty, non_null),
        directives: Vec::new(),
        at: None,
    }
}
