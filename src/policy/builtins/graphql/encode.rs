//! Documents as the objects OPA returns: gqlparser's structs under their Go field names, as
//! Go's `encoding/json` writes them, then pruned as OPA prunes them: positions, comments and
//! nulls dropped, empty arrays and objects dropped (after pruning what they hold), while empty
//! strings, `false` and `0` stay.

use std::collections::BTreeMap;

use regorus::Value;

use super::ast::{
    Argument, ArgumentDefinition, ChildValue, Definition, Directive, DirectiveDefinition,
    EnumValueDefinition, FieldDefinition, FragmentDefinition, Operation, QueryDocument,
    SchemaDefinition, SchemaDocument, Selection, Type, Value as GqlValue, VariableDefinition,
};

/// An object under construction, pruned as it is built.
struct Obj(BTreeMap<Value, Value>);

impl Obj {
    fn new() -> Obj {
        Obj(BTreeMap::new())
    }

    fn put(mut self, key: &str, value: Value) -> Obj {
        if !is_pruned(&value) {
            self.0.insert(Value::from(key), value);
        }
        self
    }

    fn str(self, key: &str, value: &str) -> Obj {
        self.put(key, Value::from(value))
    }

    fn bool(self, key: &str, value: bool) -> Obj {
        self.put(key, Value::from(value))
    }

    fn opt<T>(self, key: &str, value: Option<&T>, encode: impl Fn(&T) -> Value) -> Obj {
        match value {
            Some(v) => self.put(key, encode(v)),
            None => self,
        }
    }

    fn done(self) -> Value {
        Value::from(self.0)
    }
}

fn is_pruned(value: &Value) -> bool {
    match value {
        Value::Null | Value::Undefined => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

/// An array of encoded items, without the ones OPA prunes.
fn list<T>(items: &[T], encode: impl Fn(&T) -> Value) -> Value {
    let items: Vec<Value> = items.iter().map(encode).filter(|v| !is_pruned(v)).collect();
    Value::from(items)
}

fn strings(items: &[String]) -> Value {
    list(items, |s| Value::from(s.as_str()))
}

pub fn query_document(doc: &QueryDocument) -> Value {
    Obj::new()
        .put("Operations", list(&doc.operations, operation))
        .put("Fragments", list(&doc.fragments, fragment_definition))
        .done()
}

fn operation(op: &Operation) -> Value {
    Obj::new()
        .str("Operation", &op.operation)
        .str("Name", &op.name)
        .put(
            "VariableDefinitions",
            list(&op.variable_definitions, variable_definition),
        )
        .put("Directives", list(&op.directives, directive))
        .put("SelectionSet", list(&op.selection_set, selection))
        .done()
}

fn variable_definition(def: &VariableDefinition) -> Value {
    Obj::new()
        .str("Variable", &def.variable)
        .put("Type", ty(&def.ty))
        .opt("DefaultValue", def.default_value.as_ref(), value)
        .put("Directives", list(&def.directives, directive))
        .bool("Used", def.used)
        .done()
}

fn selection(sel: &Selection) -> Value {
    match sel {
        Selection::Field(f) => Obj::new()
            .str("Alias", &f.alias)
            .str("Name", &f.name)
            .put("Arguments", list(&f.arguments, argument))
            .put("Directives", list(&f.directives, directive))
            .put("SelectionSet", list(&f.selection_set, selection))
            .done(),
        Selection::Spread(s) => Obj::new()
            .str("Name", &s.name)
            .put("Directives", list(&s.directives, directive))
            .done(),
        Selection::Inline(i) => Obj::new()
            .str("TypeCondition", &i.type_condition)
            .put("Directives", list(&i.directives, directive))
            .put("SelectionSet", list(&i.selection_set, selection))
            .done(),
    }
}

fn fragment_definition(def: &FragmentDefinition) -> Value {
    Obj::new()
        .str("Name", &def.name)
        .put(
            "VariableDefinition",
            list(&def.variable_definition, variable_definition),
        )
        .str("TypeCondition", &def.type_condition)
        .put("Directives", list(&def.directives, directive))
        .put("SelectionSet", list(&def.selection_set, selection))
        .done()
}

fn argument(arg: &Argument) -> Value {
    Obj::new()
        .str("Name", &arg.name)
        .put("Value", value(&arg.value))
        .done()
}

fn directive(dir: &Directive) -> Value {
    Obj::new()
        .str("Name", &dir.name)
        .put("Arguments", list(&dir.arguments, argument))
        .str("Location", &dir.location)
        .done()
}

fn value(v: &GqlValue) -> Value {
    Obj::new()
        .str("Raw", &v.raw)
        .put("Children", list(&v.children, child_value))
        .put("Kind", Value::from(v.kind.number()))
        .bool("ExpectedTypeHasDefault", v.expected_type_has_default)
        .done()
}

fn child_value(child: &ChildValue) -> Value {
    Obj::new()
        .str("Name", &child.name)
        .put("Value", value(&child.value))
        .done()
}

fn ty(t: &Type) -> Value {
    Obj::new()
        .str("NamedType", &t.named_type)
        .opt("Elem", t.elem.as_deref(), ty)
        .bool("NonNull", t.non_null)
        .done()
}

pub fn schema_document(doc: &SchemaDocument) -> Value {
    Obj::new()
        .put("Schema", list(&doc.schema, schema_definition))
        .put(
            "SchemaExtension",
            list(&doc.schema_extension, schema_definition),
        )
        .put("Directives", list(&doc.directives, directive_definition))
        .put("Definitions", list(&doc.definitions, definition))
        .put("Extensions", list(&doc.extensions, definition))
        .done()
}

fn schema_definition(def: &SchemaDefinition) -> Value {
    Obj::new()
        .str("Description", &def.description)
        .put("Directives", list(&def.directives, directive))
        .put(
            "OperationTypes",
            list(&def.operation_types, |op| {
                Obj::new()
                    .str("Operation", &op.operation)
                    .str("Type", &op.ty)
                    .done()
            }),
        )
        .done()
}

fn definition(def: &Definition) -> Value {
    Obj::new()
        .str("Kind", &def.kind)
        .str("Description", &def.description)
        .str("Name", &def.name)
        .put("Directives", list(&def.directives, directive))
        .put("Interfaces", strings(&def.interfaces))
        .put("Fields", list(&def.fields, field_definition))
        .put("Types", strings(&def.types))
        .put("EnumValues", list(&def.enum_values, enum_value))
        .bool("BuiltIn", def.built_in)
        .done()
}

fn field_definition(def: &FieldDefinition) -> Value {
    Obj::new()
        .str("Description", &def.description)
        .str("Name", &def.name)
        .put("Arguments", list(&def.arguments, argument_definition))
        .opt("DefaultValue", def.default_value.as_ref(), value)
        .put("Type", ty(&def.ty))
        .put("Directives", list(&def.directives, directive))
        .done()
}

fn argument_definition(def: &ArgumentDefinition) -> Value {
    Obj::new()
        .str("Description", &def.description)
        .str("Name", &def.name)
        .opt("DefaultValue", def.default_value.as_ref(), value)
        .put("Type", ty(&def.ty))
        .put("Directives", list(&def.directives, directive))
        .done()
}

fn enum_value(def: &EnumValueDefinition) -> Value {
    Obj::new()
        .str("Description", &def.description)
        .str("Name", &def.name)
        .put("Directives", list(&def.directives, directive))
        .done()
}

fn directive_definition(def: &DirectiveDefinition) -> Value {
    Obj::new()
        .str("Description", &def.description)
        .str("Name", &def.name)
        .put("Arguments", list(&def.arguments, argument_definition))
        .put("Locations", strings(&def.locations))
        .bool("IsRepeatable", def.is_repeatable)
        .done()
}
