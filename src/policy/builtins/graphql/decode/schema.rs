//! Schema document objects back into documents (see the parent module for the rules).

use regorus::Value;

use super::super::ast::{
    ArgumentDefinition, Definition, DirectiveDefinition, EnumValueDefinition, FieldDefinition,
    OperationTypeDefinition, SchemaDefinition, SchemaDocument,
};
use super::{directive, optional, required, ty, value, DResult, Dec};

pub fn schema_document(v: &Value) -> DResult<SchemaDocument> {
    let d = &mut Dec {
        depth: 0,
        too_deep: false,
    };
    let o = d.obj(v, "SchemaDocument", false)?;
    o.unkept(&["Comment"])?;
    Ok(SchemaDocument {
        schema: o.list("Schema", d, schema_definition)?,
        schema_extension: o.list("SchemaExtension", d, schema_definition)?,
        directives: o.list("Directives", d, directive_definition)?,
        definitions: o.list("Definitions", d, definition)?,
        extensions: o.list("Extensions", d, definition)?,
    })
}

fn schema_definition(d: &mut Dec, v: &Value) -> DResult<SchemaDefinition> {
    let o = d.obj(v, "SchemaDefinition", false)?;
    Ok(SchemaDefinition {
        description: o.string("Description")?,
        directives: o.list("Directives", d, directive)?,
        operation_types: o.list("OperationTypes", d, |d, v| {
            let o = d.obj(v, "OperationTypeDefinition", false)?;
            Ok(OperationTypeDefinition {
                operation: o.string("Operation")?,
                ty: o.string("Type")?,
                at: None,
            })
        })?,
        at: None,
    })
}

fn definition(d: &mut Dec, v: &Value) -> DResult<Definition> {
    let o = d.obj(v, "Definition", false)?;
    Ok(Definition {
        kind: o.string("Kind")?,
        description: o.string("Description")?,
        name: o.string("Name")?,
        directives: o.list("Directives", d, directive)?,
        interfaces: o.strings("Interfaces")?,
        fields: o.list("Fields", d, field_definition)?,
        types: o.strings("Types")?,
        enum_values: o.list("EnumValues", d, |d, v| {
            let o = d.obj(v, "EnumValueDefinition", false)?;
            Ok(EnumValueDefinition {
                description: o.string("Description")?,
                name: o.string("Name")?,
                directives: o.list("Directives", d, directive)?,
                at: None,
            })
        })?,
        built_in: o.boolean("BuiltIn")?,
        at: None,
    })
}

fn field_definition(d: &mut Dec, v: &Value) -> DResult<FieldDefinition> {
    let o = d.obj(v, "FieldDefinition", false)?;
    Ok(FieldDefinition {
        description: o.string("Description")?,
        name: o.string("Name")?,
        arguments: o.list("Arguments", d, argument_definition)?,
        default_value: optional(d, &o, "DefaultValue", value)?,
        ty: required(d, &o, "Type", ty)?,
        directives: o.list("Directives", d, directive)?,
        at: None,
    })
}

fn argument_definition(d: &mut Dec, v: &Value) -> DResult<ArgumentDefinition> {
    let o = d.obj(v, "ArgumentDefinition", false)?;
    Ok(ArgumentDefinition {
        description: o.string("Description")?,
        name: o.string("Name")?,
        default_value: optional(d, &o, "DefaultValue", value)?,
        ty: required(d, &o, "Type", ty)?,
        directives: o.list("Directives", d, directive)?,
        at: None,
    })
}

fn directive_definition(d: &mut Dec, v: &Value) -> DResult<DirectiveDefinition> {
    let o = d.obj(v, "DirectiveDefinition", false)?;
    Ok(DirectiveDefinition {
        description: o.string("Description")?,
        name: o.string("Name")?,
        arguments: o.list("Arguments", d, argument_definition)?,
        locations: o.strings("Locations")?,
        is_repeatable: o.boolean("IsRepeatable")?,
        at: None,
    })
}
