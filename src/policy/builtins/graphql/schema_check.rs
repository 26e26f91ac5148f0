//! The checks gqlparser makes on each type and directive definition of a schema, in its
//! order and with its words: names, type references, argument types, directive uses, union
//! members, interface implementations (covariant fields, matching arguments, transitive
//! interfaces), and the kinds each kind of field may have.

use super::ast::{
    ArgumentDefinition, Definition, Directive, DirectiveDefinition, Pos, Type, ENUM, INPUT_OBJECT,
    INTERFACE, OBJECT, SCALAR, UNION,
};
use super::schema::{GqlError, SResult, Schema};
use crate::policy::builtins::strings::goquote::quote;

fn name(at: Option<Pos>, name: &str) -> SResult<()> {
    if name.starts_with("__") {
        let message = format!(
            "Name \"{name}\" must not begin with \"__\", which is reserved by GraphQL introspection."
        );
        return Err(GqlError::at(at, message));
    }
    Ok(())
}

fn type_ref(schema: &Schema, ty: &Type) -> SResult<()> {
    if schema.ty(ty.name()).is_none() {
        return Err(GqlError::at(
            ty.at,
            format!("Undefined type {}.", ty.name()),
        ));
    }
    Ok(())
}

fn arguments(
    schema: &Schema,
    args: &[ArgumentDefinition],
    current: Option<&DirectiveDefinition>,
) -> SResult<()> {
    for arg in args {
        name(arg.at, &arg.name)?;
        type_ref(schema, &arg.ty)?;
        if let Some(def) = schema.ty(arg.ty.name()) {
            if !def.is_input() {
                let message = format!(
                    "cannot use {} as argument {} because {} is not a valid input type",
                    arg.ty.render(),
                    arg.name,
                    def.kind
                );
                return Err(GqlError::at(arg.at, message));
            }
        }
        directives(schema, &arg.directives, "ARGUMENT_DEFINITION", current)?;
    }
    Ok(())
}

/// Directives applied in a schema: defined, allowed at `location`, with known arguments and
/// the required ones given.
pub fn directives(
    schema: &Schema,
    dirs: &[Directive],
    location: &str,
    current: Option<&DirectiveDefinition>,
) -> SResult<()> {
    for dir in dirs {
        name(dir.at, &dir.name)?;
        if current.is_some_and(|c| c.name == dir.name) {
            let message = format!("Directive {} cannot refer to itself.", dir.name);
            return Err(GqlError::at(dir.at, message));
        }
        let Some(def) = schema.directives.get(&dir.name) else {
            return Err(GqlError::at(
                dir.at,
                format!("Undefined directive {}.", dir.name),
            ));
        };
        if !def.locations.iter().any(|l| l == location) {
            let message = format!("Directive {} is not applicable on {location}.", dir.name);
            return Err(GqlError::at(dir.at, message));
        }
        for arg in &dir.arguments {
            if !def.arguments.iter().any(|a| a.name == arg.name) {
                let message = format!(
                    "Undefined argument {} for directive {}.",
                    arg.name, dir.name
                );
                return Err(GqlError::at(arg.at, message));
            }
        }
        for wanted in &def.arguments {
            if !wanted.ty.non_null || wanted.default_value.is_some() {
                continue;
            }
            let given = dir.arguments.iter().find(|a| a.name == wanted.name);
            if given.is_none_or(|a| a.value.kind == super::ast::ValueKind::Null) {
                let message = format!(
                    "Argument {} for directive {} cannot be null.",
                    wanted.name, dir.name
                );
                return Err(GqlError::at(dir.at, message));
            }
        }
    }
    Ok(())
}

pub fn directive_definition(schema: &Schema, def: &DirectiveDefinition) -> SResult<()> {
    name(def.at, &def.name)?;
    arguments(schema, &def.arguments, Some(def))
}

fn kinds(list: &[&str]) -> String {
    list.join(", ")
}

pub fn definition(schema: &Schema, def: &Definition) -> SResult<()> {
    for field in &def.fields {
        name(field.at, &field.name)?;
        type_ref(schema, &field.ty)?;
        arguments(schema, &field.arguments, None)?;
        let location = if def.kind == INPUT_OBJECT {
            "INPUT_FIELD_DEFINITION"
        } else {
            "FIELD_DEFINITION"
        };
        directives(schema, &field.directives, location, None)?;
    }
    for member in &def.types {
        let Some(member_def) = schema.ty(member) else {
            let message = format!("Undefined type {}.", quote(member, false));
            return Err(GqlError::at(def.at, message));
        };
        if member_def.kind != OBJECT {
            let message = format!(
                "{} type {} must be {OBJECT}.",
                def.kind,
                quote(member, false)
            );
            return Err(GqlError::at(def.at, message));
        }
    }
    for interface in &def.interfaces {
        implements(schema, def, interface)?;
    }
    match def.kind.as_str() {
        OBJECT | INTERFACE => {
            if def.fields.is_empty() {
                let message = format!("{} {}: must define one or more fields.", def.kind, def.name);
                return Err(GqlError::at(def.at, message));
            }
            let allowed = [SCALAR, OBJECT, INTERFACE, UNION, ENUM];
            for field in &def.fields {
                if let Some(ty) = schema.ty(field.ty.name()) {
                    if !allowed.contains(&ty.kind.as_str()) {
                        let message = format!(
                            "{} {}: field must be one of {}.",
                            def.kind,
                            def.name,
                            kinds(&allowed)
                        );
                        return Err(GqlError::at(field.at, message));
                    }
                }
            }
        }
        ENUM => {
            if def.enum_values.is_empty() {
                let message = format!(
                    "{} {}: must define one or more unique enum values.",
                    def.kind, def.name
                );
                return Err(GqlError::at(def.at, message));
            }
            for value in &def.enum_values {
                if matches!(value.name.as_str(), "true" | "false" | "null") {
                    let message =
                        format!("{} {}: non-enum value {}.", def.kind, def.name, value.name);
                    return Err(GqlError::at(def.at, message));
                }
                directives(schema, &value.directives, "ENUM_VALUE", None)?;
            }
        }
        INPUT_OBJECT => {
            if def.fields.is_empty() {
                let message = format!(
                    "{} {}: must define one or more input fields.",
                    def.kind, def.name
                );
                return Err(GqlError::at(def.at, message));
            }
            let allowed = [SCALAR, ENUM, INPUT_OBJECT];
            for field in &def.fields {
                if let Some(ty) = schema.ty(field.ty.name()) {
                    if !allowed.contains(&ty.kind.as_str()) {
                        let message = format!(
                            "{} {}: field must be one of {}.",
                            ty.kind,
                            field.name,
                            kinds(&allowed)
                        );
                        return Err(GqlError::at(field.at, message));
                    }
                }
            }
        }
        _ => {}
    }
    for (i, first) in def.fields.iter().enumerate() {
        if let Some(again) = def.fields[i + 1..].iter().find(|f| f.name == first.name) {
            let message = format!(
                "Field {}.{} can only be defined once.",
                def.name, again.name
            );
            return Err(GqlError::at(again.at, message));
        }
    }
    if !def.built_in {
        name(def.at, &def.name)?;
    }
    directives(schema, &def.directives, &def.kind, None)
}

fn implements(schema: &Schema, def: &Definition, interface: &str) -> SResult<()> {
    let Some(intf) = schema.ty(interface) else {
        let message = format!("Undefined type {}.", quote(interface, false));
        return Err(GqlError::at(def.at, message));
    };
    if intf.kind != INTERFACE {
        let message = format!(
            "{} is a non interface type {}.",
            quote(interface, false),
            intf.kind
        );
        return Err(GqlError::at(def.at, message));
    }
    let (d, i) = (&def.name, &intf.name);
    for wanted in &intf.fields {
        let Some(found) = def.field(&wanted.name) else {
            let message = format!(
                "For {d} to implement {i} it must have a field called {}.",
                wanted.name
            );
            return Err(GqlError::at(def.at, message));
        };
        if !covariant(schema, &wanted.ty, &found.ty) {
            let message = format!(
                "For {d} to implement {i} the field {} must have type {}.",
                wanted.name,
                wanted.ty.render()
            );
            return Err(GqlError::at(found.at, message));
        }
        for arg in &wanted.arguments {
            let Some(found_arg) = found.arguments.iter().find(|a| a.name == arg.name) else {
                let message = format!(
                    "For {d} to implement {i} the field {} must have the same arguments but it is missing {}.",
                    wanted.name, arg.name
                );
                return Err(GqlError::at(found.at, message));
            };
            if !compatible(&arg.ty, &found_arg.ty) {
                let message = format!(
                    "For {d} to implement {i} the field {} must have the same arguments but {} has the wrong type.",
                    wanted.name, arg.name
                );
                return Err(GqlError::at(found_arg.at, message));
            }
        }
        for extra in &found.arguments {
            let declared = wanted.arguments.iter().any(|a| a.name == extra.name);
            if !declared && extra.ty.non_null && extra.default_value.is_none() {
                let message = format!(
                    "For {d} to implement {i} any additional arguments on {} must be optional or have a default value but {} is required.",
                    found.name, extra.name
                );
                return Err(GqlError::at(extra.at, message));
            }
        }
    }
    for transitive in &intf.interfaces {
        if def.interfaces.contains(transitive) {
            continue;
        }
        let message = if *transitive == def.name {
            format!("Type {d} cannot implement {interface} because it would create a circular reference.")
        } else {
            format!(
                "Type {d} must implement {transitive} because it is implemented by {interface}."
            )
        };
        return Err(GqlError::at(def.at, message));
    }
    Ok(())
}

/// Whether a field of type `actual` may stand for an interface's field of type `required`.
fn covariant(schema: &Schema, required: &Type, actual: &Type) -> bool {
    if required.non_null && !actual.non_null {
        return false;
    }
    if !required.named_type.is_empty() {
        return required.named_type == actual.named_type
            || schema.is_possible(&required.named_type, &actual.named_type);
    }
    match (&required.elem, &actual.elem) {
        (Some(r), Some(a)) => covariant(schema, r, a),
        _ => false,
    }
}

/// gqlparser's `Type.IsCompatible`: the same named type and shape, non-null where `other` is.
pub fn compatible(ty: &Type, other: &Type) -> bool {
    if ty.named_type != other.named_type {
        return false;
    }
    if let Some(elem) = &ty.elem {
        match &other.elem {
            Some(other_elem) if compatible(elem, other_elem) => {}
            _ => return false,
        }
    }
    !other.non_null || ty.non_null
}
