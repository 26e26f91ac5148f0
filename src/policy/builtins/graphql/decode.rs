//! AST objects a policy hands back (`graphql.parse_query`'s result, say) into documents, read
//! as OPA reads them: Go's `encoding/json` into gqlparser's structs. Keys match their Go field
//! names, case-insensitively except in the four structs gqlparser decodes by hand (operations,
//! fields, inline fragments, fragment definitions); unknown keys are ignored; `null` leaves the
//! zero value; a value of the wrong JSON type fails the whole document. gqlparser decodes each
//! selection as a field when it can, so spreads and inline fragments come back as fields.

mod schema;

pub use schema::schema_document;

use regorus::Value;

use super::ast::{
    Argument, ChildValue, Directive, Field, FragmentDefinition, FragmentSpread, InlineFragment,
    Operation, QueryDocument, Selection, Type, Value as GqlValue, ValueKind, VariableDefinition,
};
use super::parser::MAX_DEPTH;

/// Why an object is not a document, in the manner of Go's `json` errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

type DResult<T> = Result<T, DecodeError>;

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null | Value::Undefined => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) | Value::Set(_) => "array",
        Value::Object(_) => "object",
    }
}

fn mismatch(v: &Value, field: &str, go_type: &str) -> DecodeError {
    DecodeError(format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        json_type(v)
    ))
}

/// One JSON object being read into a Go struct named `name`.
#[derive(Clone, Copy)]
struct Obj<'a> {
    name: &'static str,
    fields: &'a regorus::value::Object,
    /// gqlparser's hand-written decoders match keys exactly; `encoding/json` does not.
    exact: bool,
}

impl<'a> Obj<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        let found = self.fields.get(&Value::from(key)).or_else(|| {
            if self.exact {
                return None;
            }
            self.fields.iter().find_map(|(k, v)| match k {
                Value::String(s) if s.eq_ignore_ascii_case(key) => Some(v),
                _ => None,
            })
        });
        found.filter(|v| !matches!(v, Value::Null | Value::Undefined))
    }

    fn string(&self, key: &str) -> DResult<String> {
        match self.get(key) {
            None => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.to_string()),
            Some(other) => Err(mismatch(other, &self.path(key), "string")),
        }
    }

    fn boolean(&self, key: &str) -> DResult<bool> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(mismatch(other, &self.path(key), "bool")),
        }
    }

    fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    fn items(&self, key: &str) -> DResult<Vec<&'a Value>> {
        items(self.get(key), &self.path(key))
    }

    fn list<T>(&self, key: &str, d: &mut Dec, item: DecodeFn<T>) -> DResult<Vec<T>> {
        let mut out = Vec::new();
        for v in self.items(key)? {
            if matches!(v, Value::Null | Value::Undefined) {
                return Err(DecodeError(format!(
                    "json: null element in {}",
                    self.path(key)
                )));
            }
            out.push(item(d, v)?);
        }
        Ok(out)
    }

    fn strings(&self, key: &str) -> DResult<Vec<String>> {
        self.items(key)?
            .into_iter()
            .map(|v| match v {
                Value::Null | Value::Undefined => Ok(String::new()),
                Value::String(s) => Ok(s.to_string()),
                other => Err(mismatch(other, &self.path(key), "string")),
            })
            .collect()
    }

    /// A key gqlparser would decode into a struct verdict does not keep (positions, comments,
    /// the validator's annotations): it must still be an object.
    fn unkept(&self, keys: &[&str]) -> DResult<()> {
        for key in keys {
            if let Some(v) = self.get(key) {
                if !matches!(v, Value::Object(_)) {
                    return Err(mismatch(v, &self.path(key), "struct"));
                }
            }
        }
        Ok(())
    }
}

type DecodeFn<T> = fn(&mut Dec, &Value) -> DResult<T>;

fn items<'a>(v: Option<&'a Value>, path: &str) -> DResult<Vec<&'a Value>> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a.iter().collect()),
        Some(Value::Set(s)) => Ok(s.iter().collect()),
        Some(other) => Err(mismatch(other, path, "slice")),
    }
}

/// Decoding state: how deep the object nests, bounded as parsing is. Once too deep, the
/// whole document fails, whichever selection decoder was trying.
struct Dec {
    depth: usize,
    too_deep: bool,
}

impl Dec {
    fn obj<'a>(&mut self, v: &'a Value, name: &'static str, exact: bool) -> DResult<Obj<'a>> {
        match v {
            Value::Object(fields) => Ok(Obj {
                name,
                fields,
                exact,
            }),
            other => Err(DecodeError(format!(
                "json: cannot unmarshal {} into Go value of type ast.{name}",
                json_type(other)
            ))),
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Dec) -> DResult<T>) -> DResult<T> {
        self.depth += 1;
        if self.depth > 2 * MAX_DEPTH || self.too_deep {
            self.too_deep = true;
            self.depth -= 1;
            return Err(too_deep());
        }
        let out = f(self);
        self.depth -= 1;
        out
    }
}

fn too_deep() -> DecodeError {
    DecodeError(format!(
        "GraphQL AST nested deeper than {} levels",
        2 * MAX_DEPTH
    ))
}

pub fn query_document(v: &Value) -> DResult<QueryDocument> {
    let d = &mut Dec {
        depth: 0,
        too_deep: false,
    };
    let o = d.obj(v, "QueryDocument", false)?;
    let doc = QueryDocument {
        operations: o.list("Operations", d, operation)?,
        fragments: o.list("Fragments", d, fragment_definition)?,
    };
    if d.too_deep {
        return Err(too_deep());
    }
    Ok(doc)
}

fn operation(d: &mut Dec, v: &Value) -> DResult<Operation> {
    let o = d.obj(v, "OperationDefinition", true)?;
    o.unkept(&["Position"])?;
    Ok(Operation {
        operation: o.string("Operation")?,
        name: o.string("Name")?,
        variable_definitions: o.list("VariableDefinitions", d, variable_definition)?,
        directives: o.list("Directives", d, directive)?,
        selection_set: selection_set(d, o.get("SelectionSet"))?,
        at: None,
    })
}

fn fragment_definition(d: &mut Dec, v: &Value) -> DResult<FragmentDefinition> {
    let o = d.obj(v, "FragmentDefinition", true)?;
    o.unkept(&["Position", "Definition"])?;
    Ok(FragmentDefinition {
        name: o.string("Name")?,
        variable_definition: o.list("VariableDefinition", d, variable_definition)?,
        type_condition: o.string("TypeCondition")?,
        directives: o.list("Directives", d, directive)?,
        selection_set: selection_set(d, o.get("SelectionSet"))?,
        at: None,
    })
}

fn variable_definition(d: &mut Dec, v: &Value) -> DResult<VariableDefinition> {
    let o = d.obj(v, "VariableDefinition", false)?;
    o.unkept(&["Definition", "Comment"])?;
    Ok(VariableDefinition {
        variable: o.string("Variable")?,
        ty: required(d, &o, "Type", ty)?,
        default_value: optional(d, &o, "DefaultValue", value)?,
        directives: o.list("Directives", d, directive)?,
        used: o.boolean("Used")?,
        at: None,
    })
}

fn required<T>(d: &mut Dec, o: &Obj, key: &str, item: DecodeFn<T>) -> DResult<T> {
    match o.get(key) {
        Some(v) => item(d, v),
        None => Err(DecodeError(format!("json: {} is missing", o.path(key)))),
    }
}

fn optional<T>(d: &mut Dec, o: &Obj, key: &str, item: DecodeFn<T>) -> DResult<Option<T>> {
    o.get(key).map(|v| item(d, v)).transpose()
}

/// gqlparser's selection set decoder: each item as a field, else a spread, else an inline
/// fragment, else dropped.
fn selection_set(d: &mut Dec, v: Option<&Value>) -> DResult<Vec<Selection>> {
    let list = items(v, "SelectionSet")?;
    d.nested(|d| {
        let mut out = Vec::new();
        for item in list {
            let field = field(d, item);
            if d.too_deep {
                return Err(too_deep());
            }
            if let Ok(field) = field {
                out.push(Selection::Field(field));
            } else if let Ok(spread) = spread(d, item) {
                out.push(Selection::Spread(spread));
            } else if let Ok(inline) = inline(d, item) {
                out.push(Selection::Inline(inline));
            }
        }
        Ok(out)
    })
}

/// `null` decodes as the zero field, as Go leaves a map it unmarshals `null` into.
fn field(d: &mut Dec, v: &Value) -> DResult<Field> {
    let empty = regorus::value::Object::default();
    let o = match v {
        Value::Null => Obj {
            name: "Field",
            fields: &empty,
            exact: true,
        },
        v => d.obj(v, "Field", true)?,
    };
    o.unkept(&["Position", "Definition", "ObjectDefinition"])?;
    Ok(Field {
        alias: o.string("Alias")?,
        name: o.string("Name")?,
        arguments: o.list("Arguments", d, argument)?,
        directives: o.list("Directives", d, directive)?,
        selection_set: selection_set(d, o.get("SelectionSet"))?,
        at: None,
    })
}

fn spread(d: &mut Dec, v: &Value) -> DResult<FragmentSpread> {
    let o = d.obj(v, "FragmentSpread", false)?;
    o.unkept(&["ObjectDefinition", "Definition", "Comment"])?;
    Ok(FragmentSpread {
        name: o.string("Name")?,
        directives: o.list("Directives", d, directive)?,
        at: None,
    })
}

fn inline(d: &mut Dec, v: &Value) -> DResult<InlineFragment> {
    let o = d.obj(v, "InlineFragment", true)?;
    o.unkept(&["Position", "ObjectDefinition"])?;
    Ok(InlineFragment {
        type_condition: o.string("TypeCondition")?,
        directives: o.list("Directives", d, directive)?,
        selection_set: selection_set(d, o.get("SelectionSet"))?,
        at: None,
    })
}

fn argument(d: &mut Dec, v: &Value) -> DResult<Argument> {
    let o = d.obj(v, "Argument", false)?;
    o.unkept(&["Comment"])?;
    Ok(Argument {
        name: o.string("Name")?,
        value: required(d, &o, "Value", value)?,
        at: None,
    })
}

fn directive(d: &mut Dec, v: &Value) -> DResult<Directive> {
    let o = d.obj(v, "Directive", false)?;
    o.unkept(&["ParentDefinition", "Definition"])?;
    Ok(Directive {
        name: o.string("Name")?,
        arguments: o.list("Arguments", d, argument)?,
        location: o.string("Location")?,
        at: None,
    })
}

fn value(d: &mut Dec, v: &Value) -> DResult<GqlValue> {
    let o = d.obj(v, "Value", false)?;
    o.unkept(&[
        "Comment",
        "Definition",
        "VariableDefinition",
        "ExpectedType",
    ])?;
    let kind = match o.get("Kind") {
        None => ValueKind::Variable,
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|_| n.is_integer())
            .and_then(|k| usize::try_from(k).ok())
            .and_then(|k| ValueKind::ALL.get(k).copied())
            .ok_or_else(|| DecodeError(format!("unknown value kind {}", n.format_decimal())))?,
        Some(other) => return Err(mismatch(other, "Value.Kind", "ast.ValueKind")),
    };
    let children = d.nested(|d| {
        o.list("Children", d, |d, v| {
            let c = d.obj(v, "ChildValue", false)?;
            c.unkept(&["Comment"])?;
            Ok(ChildValue {
                name: c.string("Name")?,
                value: required(d, &c, "Value", value)?,
                at: None,
            })
        })
    })?;
    Ok(GqlValue {
        raw: o.string("Raw")?,
        children,
        kind,
        expected_type_has_default: o.boolean("ExpectedTypeHasDefault")?,
        at: None,
    })
}

fn ty(d: &mut Dec, v: &Value) -> DResult<Type> {
    let o = d.obj(v, "Type", false)?;
    let elem = d.nested(|d| optional(d, &o, "Elem", ty))?;
    Ok(Type {
        named_type: o.string("NamedType")?,
        elem: elem.map(Box::new),
        non_null: o.boolean("NonNull")?,
        at: None,
    })
}
