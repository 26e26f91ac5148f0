//! Schema documents (type system definitions and extensions), parsed as gqlparser parses
//! them, with its leniencies (`implements` and `on` recognised by value alone) and its
//! refusals (empty extensions, descriptions on extensions).

use super::ast::{
    ArgumentDefinition, Definition, DirectiveDefinition, EnumValueDefinition, FieldDefinition,
    OperationTypeDefinition, SchemaDefinition, SchemaDocument, ENUM, INPUT_OBJECT, INTERFACE,
    OBJECT, SCALAR, UNION,
};
use super::lexer::Kind;
use super::parser::{PResult, Parser};

/// The directive locations gqlparser knows.
const LOCATIONS: &[&str] = &[
    "QUERY",
    "MUTATION",
    "SUBSCRIPTION",
    "FIELD",
    "FRAGMENT_DEFINITION",
    "FRAGMENT_SPREAD",
    "INLINE_FRAGMENT",
    "VARIABLE_DEFINITION",
    "SCHEMA",
    "SCALAR",
    "OBJECT",
    "FIELD_DEFINITION",
    "ARGUMENT_DEFINITION",
    "INTERFACE",
    "UNION",
    "ENUM",
    "ENUM_VALUE",
    "INPUT_OBJECT",
    "INPUT_FIELD_DEFINITION",
];

/// Parses a schema document; `built_in` marks its types as the prelude's.
pub fn parse_schema(input: &str, built_in: bool) -> PResult<SchemaDocument> {
    let mut p = Parser::new(input);
    let mut doc = SchemaDocument::default();
    while p.peek_kind() != Kind::Eof {
        let description = match p.peek_kind() {
            Kind::String | Kind::BlockString => Some(p.next()),
            _ => None,
        };
        let text = description
            .as_ref()
            .map(|t| t.value.clone())
            .unwrap_or_default();
        let Some(keyword) = p.peek_name().map(str::to_string) else {
            return Err(p.unexpected());
        };
        match keyword.as_str() {
            "scalar" | "type" | "interface" | "union" | "enum" | "input" => {
                let mut def = type_definition(&mut p, &keyword)?;
                def.description = text;
                def.built_in = built_in;
                doc.definitions.push(def);
            }
            "schema" => {
                p.next();
                let mut def = schema_body(&mut p)?;
                def.description = text;
                doc.schema.push(def);
            }
            "directive" => {
                let mut def = directive_definition(&mut p)?;
                def.description = text;
                doc.directives.push(def);
            }
            "extend" => {
                // gqlparser refuses a (non-empty) description here, at the description.
                if let Some(token) = description.filter(|_| !text.is_empty()) {
                    let message = format!("Unexpected {}", token.describe());
                    return Err(Parser::error_at(&token, message));
                }
                extension(&mut p, &mut doc, built_in)?;
            }
            _ => return Err(p.unexpected()),
        }
    }
    Ok(doc)
}

fn type_definition(p: &mut Parser, keyword: &str) -> PResult<Definition> {
    p.expect_keyword(keyword)?;
    let mut def = Definition {
        at: p.pos(),
        name: p.name()?,
        ..Definition::default()
    };
    match keyword {
        "scalar" => {
            def.kind = SCALAR.to_string();
            def.directives = p.directives(true)?;
        }
        "type" | "interface" => {
            def.kind = if keyword == "type" { OBJECT } else { INTERFACE }.to_string();
            def.interfaces = implements(p)?;
            def.directives = p.directives(true)?;
            def.fields = fields(p)?;
        }
        "union" => {
            def.kind = UNION.to_string();
            def.directives = p.directives(true)?;
            def.types = union_members(p)?;
        }
        "enum" => {
            def.kind = ENUM.to_string();
            def.directives = p.directives(true)?;
            def.enum_values = enum_values(p)?;
        }
        _ => {
            def.kind = INPUT_OBJECT.to_string();
            def.directives = p.directives(true)?;
            def.fields = input_fields(p)?;
        }
    }
    Ok(def)
}

/// After `schema`: directives and `{ operation: Type ... }`.
fn schema_body(p: &mut Parser) -> PResult<SchemaDefinition> {
    let at = p.pos();
    let directives = p.directives(true)?;
    let operation_types = p.some(Kind::BraceL, Kind::BraceR, |p| {
        let at = p.pos();
        let operation = p.operation_type()?;
        p.expect(Kind::Colon)?;
        Ok(OperationTypeDefinition {
            operation,
            ty: p.name()?,
            at,
        })
    })?;
    Ok(SchemaDefinition {
        description: String::new(),
        directives,
        operation_types,
        at,
    })
}

fn implements(p: &mut Parser) -> PResult<Vec<String>> {
    let mut types = Vec::new();
    if p.peek().value == "implements" {
        p.next();
        p.skip(Kind::Amp);
        types.push(p.name()?);
        while p.skip(Kind::Amp) {
            types.push(p.name()?);
        }
    }
    Ok(types)
}

fn union_members(p: &mut Parser) -> PResult<Vec<String>> {
    let mut types = Vec::new();
    if p.skip(Kind::Equals) {
        p.skip(Kind::Pipe);
        types.push(p.name()?);
        while p.skip(Kind::Pipe) {
            types.push(p.name()?);
        }
    }
    Ok(types)
}

/// An optional description before a field, argument or enum value.
fn description(p: &mut Parser) -> String {
    match p.peek_kind() {
        Kind::String | Kind::BlockString => p.next().value,
        _ => String::new(),
    }
}

fn fields(p: &mut Parser) -> PResult<Vec<FieldDefinition>> {
    p.some(Kind::BraceL, Kind::BraceR, |p| {
        let at = p.pos();
        let description = description(p);
        let name = p.name()?;
        let arguments = argument_definitions(p)?;
        p.expect(Kind::Colon)?;
        Ok(FieldDefinition {
            description,
            name,
            arguments,
            default_value: None,
            ty: p.type_reference()?,
            directives: p.directives(true)?,
            at,
        })
    })
}

fn input_fields(p: &mut Parser) -> PResult<Vec<FieldDefinition>> {
    p.some(Kind::BraceL, Kind::BraceR, |p| {
        let arg = argument_definition(p)?;
        Ok(FieldDefinition {
            description: arg.description,
            name: arg.name,
            arguments: Vec::new(),
            default_value: arg.default_value,
            ty: arg.ty,
            directives: arg.directives,
            at: arg.at,
        })
    })
}

fn argument_definitions(p: &mut Parser) -> PResult<Vec<ArgumentDefinition>> {
    p.some(Kind::ParenL, Kind::ParenR, argument_definition)
}

fn argument_definition(p: &mut Parser) -> PResult<ArgumentDefinition> {
    let at = p.pos();
    let description = description(p);
    let name = p.name()?;
    p.expect(Kind::Colon)?;
    let ty = p.type_reference()?;
    let default_value = if p.skip(Kind::Equals) {
        Some(p.value(true)?)
    } else {
        None
    };
    Ok(ArgumentDefinition {
        description,
        name,
        default_value,
        ty,
        directives: p.directives(true)?,
        at,
    })
}

fn enum_values(p: &mut Parser) -> PResult<Vec<EnumValueDefinition>> {
    p.some(Kind::BraceL, Kind::BraceR, |p| {
        let at = p.pos();
        let description = description(p);
        Ok(EnumValueDefinition {
            description,
            name: p.name()?,
            directives: p.directives(true)?,
            at,
        })
    })
}

fn directive_definition(p: &mut Parser) -> PResult<DirectiveDefinition> {
    p.expect_keyword("directive")?;
    p.expect(Kind::At)?;
    let at = p.pos();
    let name = p.name()?;
    let arguments = argument_definitions(p)?;
    let is_repeatable = p.peek_name() == Some("repeatable");
    if is_repeatable {
        p.next();
    }
    p.expect_keyword("on")?;
    p.skip(Kind::Pipe);
    let mut locations = vec![directive_location(p)?];
    while p.skip(Kind::Pipe) {
        locations.push(directive_location(p)?);
    }
    Ok(DirectiveDefinition {
        description: String::new(),
        name,
        arguments,
        locations,
        is_repeatable,
        at,
    })
}

fn directive_location(p: &mut Parser) -> PResult<String> {
    let token = p.expect(Kind::Name)?;
    if LOCATIONS.contains(&token.value.as_str()) {
        return Ok(token.value);
    }
    let message = format!("Unexpected {}", token.describe());
    Err(Parser::error_at(&token, message))
}

/// `extend ...`: schema extensions and type extensions, each required to add something.
fn extension(p: &mut Parser, doc: &mut SchemaDocument, built_in: bool) -> PResult<()> {
    p.expect_keyword("extend")?;
    let keyword = p.peek().value.clone();
    if keyword == "schema" {
        p.expect_keyword("schema")?;
        let def = schema_body(p)?;
        if def.directives.is_empty() && def.operation_types.is_empty() {
            return Err(p.unexpected());
        }
        doc.schema_extension.push(def);
        return Ok(());
    }
    if !matches!(
        keyword.as_str(),
        "scalar" | "type" | "interface" | "union" | "enum" | "input"
    ) {
        return Err(p.unexpected());
    }
    p.expect_keyword(&keyword)?;
    let mut def = Definition {
        at: p.pos(),
        name: p.name()?,
        built_in,
        ..Definition::default()
    };
    let empty = match keyword.as_str() {
        "scalar" => {
            def.kind = SCALAR.to_string();
            def.directives = p.directives(true)?;
            def.directives.is_empty()
        }
        "type" => {
            def.kind = OBJECT.to_string();
            def.interfaces = implements(p)?;
            def.directives = p.directives(true)?;
            def.fields = fields(p)?;
            def.interfaces.is_empty() && def.directives.is_empty() && def.fields.is_empty()
        }
        "interface" => {
            def.kind = INTERFACE.to_string();
            def.directives = p.directives(true)?;
            def.fields = fields(p)?;
            def.directives.is_empty() && def.fields.is_empty()
        }
        "union" => {
            def.kind = UNION.to_string();
            def.directives = p.directives(true)?;
            def.types = union_members(p)?;
            def.directives.is_empty() && def.types.is_empty()
        }
        "enum" => {
            def.kind = ENUM.to_string();
            def.directives = p.directives(true)?;
            def.enum_values = enum_values(p)?;
            def.directives.is_empty() && def.enum_values.is_empty()
        }
        _ => {
            def.kind = INPUT_OBJECT.to_string();
            // gqlparser lets an input extension's directives take variables.
            def.directives = p.directives(false)?;
            def.fields = input_fields(p)?;
            def.directives.is_empty() && def.fields.is_empty()
        }
    };
    if empty {
        return Err(p.unexpected());
    }
    doc.extensions.push(def);
    Ok(())
}
