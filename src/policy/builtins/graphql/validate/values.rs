//! The rules that watch values: NoUndefinedVariables, UniqueInputFieldNames,
//! ValuesOfCorrectType (with gqlparser's messages, and its habit of judging only the value's
//! own kind) and VariablesInAllowedPosition.

use std::collections::HashSet;

use super::super::ast::{Definition, Type, Value, ValueKind, VariableDefinition, ENUM, SCALAR};
use super::super::schema_check::compatible;
use super::{suggest, Expect, VResult, Validator};
use crate::policy::builtins::strings::goquote::quote;

/// gqlparser's `Value.String()`.
fn text(value: &Value) -> String {
    match value.kind {
        ValueKind::Variable => format!("${}", value.raw),
        ValueKind::String | ValueKind::Block => quote(&value.raw, false),
        ValueKind::List => {
            let items: Vec<String> = value.children.iter().map(|c| text(&c.value)).collect();
            format!("[{}]", items.join(","))
        }
        ValueKind::Object => {
            let items: Vec<String> = value
                .children
                .iter()
                .map(|c| format!("{}:{}", c.name, text(&c.value)))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        _ => value.raw.clone(),
    }
}

/// Go's `strconv.ParseInt(raw, 10, 32)` failing for range rather than syntax.
fn out_of_int32_range(raw: &str) -> bool {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && raw.parse::<i32>().is_err()
}

fn one_of(def: &Definition, names: &[&str]) -> bool {
    names.contains(&def.name.as_str())
}

impl<'a> Validator<'a> {
    /// The current operation's definition of the variable `value` names.
    fn variable(&self, value: &Value) -> Option<&'a VariableDefinition> {
        if value.kind != ValueKind::Variable {
            return None;
        }
        let op = self.op?;
        op.variable_definitions
            .iter()
            .find(|d| d.variable == value.raw)
    }

    /// Whether gqlparser's `Value.Value(nil)` fails: a number out of 64-bit range, a boolean
    /// or number that does not parse (from an AST object), in the value or a variable's default
    /// (`follow`: a default is followed once, for a default cannot use variables).
    fn unreadable(&self, value: &Value, follow: bool) -> bool {
        match value.kind {
            ValueKind::Int => value.raw.parse::<i64>().is_err(),
            ValueKind::Float => match value.raw.parse::<f64>() {
                Ok(f) => f.is_infinite() && !value.raw.to_ascii_lowercase().contains("inf"),
                Err(_) => true,
            },
            ValueKind::Boolean => !matches!(
                value.raw.as_str(),
                "1" | "t"
                    | "T"
                    | "TRUE"
                    | "true"
                    | "True"
                    | "0"
                    | "f"
                    | "F"
                    | "FALSE"
                    | "false"
                    | "False"
            ),
            ValueKind::List | ValueKind::Object => value
                .children
                .iter()
                .any(|c| self.unreadable(&c.value, follow)),
            ValueKind::Variable if follow => self
                .variable(value)
                .and_then(|d| d.default_value.as_ref())
                .is_some_and(|d| self.unreadable(d, false)),
            _ => false,
        }
    }

    pub(super) fn on_value(&mut self, value: &'a Value, expect: Expect<'a>) -> VResult {
        self.tick()?;
        let var = self.variable(value);
        // NoUndefinedVariables
        if let Some(op) = self.op {
            if value.kind == ValueKind::Variable && var.is_none() {
                let message = if op.name.is_empty() {
                    format!("Variable \"{}\" is not defined.", text(value))
                } else {
                    format!(
                        "Variable \"{}\" is not defined by operation \"{}\".",
                        text(value),
                        op.name
                    )
                };
                self.error(value.at, message);
            }
        }
        // UniqueInputFieldNames
        if value.kind == ValueKind::Object {
            let mut seen = HashSet::new();
            for child in &value.children {
                if !seen.insert(child.name.as_str()) {
                    let message = format!(
                        "There can be only one input field named \"{}\".",
                        child.name
                    );
                    self.error(child.at, message);
                }
            }
        }
        // ValuesOfCorrectType
        if let (Some(def), Some(ty)) = (expect.def, expect.ty) {
            self.correct_type(value, ty, def);
        }
        // VariablesInAllowedPosition
        if let (Some(ty), Some(var), Some(_)) = (expect.ty, var, self.op) {
            let defaulted = var
                .default_value
                .as_ref()
                .is_some_and(|d| d.kind != ValueKind::Null);
            let mut allowed = ty.clone();
            if (defaulted && ty.non_null) || expect.has_default {
                allowed.non_null = false;
            }
            if !compatible(&var.ty, &allowed) {
                let message = format!(
                    "Variable \"{}\" of type \"{}\" used in position expecting type \"{}\".",
                    text(value),
                    var.ty.render(),
                    ty.render()
                );
                self.error(value.at, message);
            }
        }
        Ok(())
    }

    fn unexpected(&mut self, value: &Value, ty: &Type, def: &Definition, hint: String) {
        let shown = text(value);
        let message = match ty.render().as_str() {
            "Int" | "Int!" if out_of_int32_range(&value.raw) => {
                format!("Int cannot represent non 32-bit signed integer value: {shown}")
            }
            "Int" | "Int!" => format!("Int cannot represent non-integer value: {shown}"),
            "String" | "String!" | "[String]" => {
                format!("String cannot represent a non string value: {shown}")
            }
            "Boolean" | "Boolean!" => {
                format!("Boolean cannot represent a non boolean value: {shown}")
            }
            "Float" | "Float!" => format!("Float cannot represent non numeric value: {shown}"),
            "ID" | "ID!" => {
                format!("ID cannot represent a non-string and non-integer value: {shown}")
            }
            rendered if def.kind == ENUM => {
                format!("Enum \"{rendered}\" cannot represent non-enum value: {shown}.")
            }
            rendered => format!("Expected value of type \"{rendered}\", found {shown}."),
        };
        self.error(value.at, format!("{message}{hint}"));
    }

    fn correct_type(&mut self, value: &Value, ty: &Type, def: &'a Definition) {
        if value.kind == ValueKind::Null && ty.non_null {
            let message = format!(
                "Expected value of type \"{}\", found {}.",
                ty.render(),
                text(value)
            );
            self.error(value.at, message);
        }
        if def.kind == SCALAR && !one_of(def, &["Int", "Float", "String", "Boolean", "ID"]) {
            return;
        }
        let enums: Vec<&str> = if def.kind == ENUM {
            def.enum_values.iter().map(|e| e.name.as_str()).collect()
        } else {
            Vec::new()
        };
        if self.unreadable(value, true) {
            self.unexpected(value, ty, def, String::new());
        }
        let raw = value.raw.as_str();
        match value.kind {
            ValueKind::Null | ValueKind::Variable => {}
            ValueKind::List => {
                if ty.elem.is_none() {
                    self.unexpected(value, ty, def, String::new());
                }
            }
            ValueKind::Int if !one_of(def, &["Int", "Float", "ID"]) => {
                self.unexpected(value, ty, def, String::new())
            }
            ValueKind::Float if !one_of(def, &["Float"]) => {
                self.unexpected(value, ty, def, String::new())
            }
            ValueKind::Boolean if !one_of(def, &["Boolean"]) => {
                self.unexpected(value, ty, def, String::new())
            }
            ValueKind::Int | ValueKind::Float | ValueKind::Boolean => {}
            ValueKind::String | ValueKind::Block => {
                if def.kind == ENUM {
                    let message = format!(
                        "Enum \"{}\" cannot represent non-enum value: {}.{}",
                        ty.render(),
                        text(value),
                        suggest::quoted("Did you mean the enum value", raw, &enums)
                    );
                    self.error(value.at, message);
                } else if !one_of(def, &["String", "ID"]) {
                    self.unexpected(value, ty, def, String::new());
                }
            }
            ValueKind::Enum => {
                if def.kind != ENUM {
                    let hint = suggest::unquoted("Did you mean the enum value", raw, &enums);
                    self.unexpected(value, ty, def, hint);
                } else if !enums.contains(&raw) {
                    let message = format!(
                        "Value \"{}\" does not exist in \"{}\" enum.{}",
                        text(value),
                        ty.render(),
                        suggest::quoted("Did you mean the enum value", raw, &enums)
                    );
                    self.error(value.at, message);
                }
            }
            ValueKind::Object => self.object_value(value, def),
        }
    }

    fn object_value(&mut self, value: &Value, def: &'a Definition) {
        for field in &def.fields {
            let given = value.children.iter().any(|c| c.name == field.name);
            if field.ty.non_null && !given && field.default_value.is_none() {
                let message = format!(
                    "Field \"{}.{}\" of required type \"{}\" was not provided.",
                    def.name,
                    field.name,
                    field.ty.render()
                );
                self.error(value.at, message);
            }
        }
        for _ in def.directives.iter().filter(|d| d.name == "oneOf") {
            let [only] = value.children.as_slice() else {
                let message = format!(
                    "OneOf Input Object \"{}\" must specify exactly one key.",
                    def.name
                );
                self.error(value.at, message);
                continue;
            };
            if only.value.kind == ValueKind::Null {
                let first = def.fields.first().map_or("", |f| f.name.as_str());
                let message = format!("Field \"{}.{first}\" must be non-null.", def.name);
                self.error(only.value.at, message);
                continue;
            }
            if let Some(var) = self.variable(&only.value) {
                if !var.ty.non_null {
                    let message = format!(
                        "Variable \"{}\" must be non-nullable to be used for OneOf Input Object \"{}\".",
                        var.variable, def.name
                    );
                    self.error(only.value.at, message);
                }
            }
        }
        let names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
        for child in &value.children {
            if def.field(&child.name).is_none() {
                let message = format!(
                    "Field \"{}\" is not defined by type \"{}\".{}",
                    child.name,
                    def.name,
                    suggest::quoted("Did you mean", &child.name, &names)
                );
                self.error(child.at, message);
            }
        }
    }
}
