//! JSON Schema validation with the `jsonschema` crate, its findings written as gojsonschema
//! writes them for OPA: `{"desc", "error", "field", "type"}`, with gojsonschema's error types,
//! its English descriptions, the field as a dotted path from `(root)`, and `error` as
//! `field: desc`. Where the two validators disagree on which errors a failure produces (a
//! failed `anyOf` lists the closest branch's errors too in gojsonschema), the crate's set is
//! kept: the verdict (valid or not) is the same.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, ValidationError, Validator};
use regorus::Value;
use serde_json::Value as Json;

use crate::policy::builtins::args;

const PRIMITIVE_TYPES: [&str; 7] = [
    "array", "boolean", "integer", "number", "null", "object", "string",
];

/// The validator for `schema`, or gojsonschema's complaint about it where it has one.
pub fn compile(schema: &Json) -> Result<Validator, String> {
    let mut options = jsonschema::options().should_validate_formats(true);
    if schema.get("$schema").is_none() {
        options = options.with_draft(Draft::Draft7);
    }
    options.build(schema).map_err(|e| schema_error(&e))
}

/// gojsonschema's words for a `type` naming no JSON type, the crate's for anything else.
fn schema_error(e: &ValidationError<'_>) -> String {
    let path: Vec<String> = e.instance_path().iter().map(|s| s.to_string()).collect();
    let keyword_maps = ["properties", "patternProperties", "definitions", "$defs"];
    let at_type = matches!(path.as_slice(), [.., parent, last]
        if last == "type" && !keyword_maps.contains(&parent.as_str()))
        || path.as_slice() == ["type"];
    let unknown = match e.instance().as_ref() {
        Json::String(t) => Some(t.as_str()),
        Json::Array(items) => items.iter().filter_map(Json::as_str).next(),
        _ => None,
    }
    .filter(|t| !PRIMITIVE_TYPES.contains(t));
    match unknown {
        Some(t) if at_type => format!(
            "has a primitive type that is NOT VALID -- given: /{t}/ Expected valid values \
             are:[{}]",
            PRIMITIVE_TYPES.join(" ")
        ),
        _ => e.to_string(),
    }
}

/// Every error of `document`, as gojsonschema reports them.
pub fn errors(validator: &Validator, document: &Json) -> Vec<Value> {
    let mut out = Vec::new();
    for e in validator.iter_errors(document) {
        let field = field(&e);
        for (kind, desc) in describe(&e, &field) {
            out.push(args::object_of([
                ("desc", Value::from(desc.as_str())),
                ("error", Value::from(format!("{field}: {desc}"))),
                ("field", Value::from(field.as_str())),
                ("type", Value::from(kind)),
            ]));
        }
    }
    out
}

/// gojsonschema's `Field()`: the instance's path joined by dots, `(root)` for the document.
fn field(e: &ValidationError<'_>) -> String {
    let path: Vec<String> = e.instance_path().iter().map(|s| s.to_string()).collect();
    if path.is_empty() {
        "(root)".into()
    } else {
        path.join(".")
    }
}

/// gojsonschema's error type and description for one error (additional properties give one
/// error per property).
fn describe(e: &ValidationError<'_>, field: &str) -> Vec<(String, String)> {
    let one = |kind: &str, desc: String| vec![(kind.to_string(), desc)];
    match e.kind() {
        ValidationErrorKind::AdditionalItems { .. } => one(
            "array_no_additional_items",
            "No additional items allowed on array".into(),
        ),
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let mut names = unexpected.clone();
            names.sort();
            names
                .into_iter()
                .map(|p| {
                    let desc = format!("Additional property {p} is not allowed");
                    ("additional_property_not_allowed".to_string(), desc)
                })
                .collect()
        }
        ValidationErrorKind::AnyOf { .. } => one(
            "number_any_of",
            "Must validate at least one schema (anyOf)".into(),
        ),
        ValidationErrorKind::OneOfMultipleValid { .. }
        | ValidationErrorKind::OneOfNotValid { .. } => one(
            "number_one_of",
            "Must validate one and only one schema (oneOf)".into(),
        ),
        ValidationErrorKind::Not { .. } => {
            one("number_not", "Must not validate the schema (not)".into())
        }
        ValidationErrorKind::Constant { expected_value } => one(
            "const",
            format!("{field} does not match: {}", go_json(expected_value)),
        ),
        ValidationErrorKind::Enum { options } => {
            let allowed = match options.as_ref() {
                Json::Array(items) if items.is_empty() => "(none)".to_string(),
                Json::Array(items) => items.iter().map(go_json).collect::<Vec<_>>().join(", "),
                other => go_json(other),
            };
            one(
                "enum",
                format!("{field} must be one of the following: {allowed}"),
            )
        }
        ValidationErrorKind::Contains => {
            one("contains", "At least one of the items must match".into())
        }
        ValidationErrorKind::FalseSchema => one("false", "False always fails validation".into()),
        ValidationErrorKind::Format { format } => {
            one("format", format!("Does not match format '{format}'"))
        }
        ValidationErrorKind::Pattern { pattern } => {
            one("pattern", format!("Does not match pattern '{pattern}'"))
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_string);
            one("required", format!("{name} is required"))
        }
        ValidationErrorKind::PropertyNames { error } => {
            let name = error
                .instance()
                .as_str()
                .map_or_else(|| error.instance().to_string(), str::to_string);
            one(
                "invalid_property_name",
                format!("Property name of \"{name}\" does not match"),
            )
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => {
                    let names: Vec<String> = set.iter().map(|t| t.to_string()).collect();
                    format!("[{}]", names.join(","))
                }
            };
            let given = type_name(e.instance().as_ref());
            one(
                "invalid_type",
                format!("Invalid type. Expected: {expected}, given: {given}"),
            )
        }
        ValidationErrorKind::UniqueItems => {
            let (i, j) = first_duplicate(e.instance().as_ref()).unwrap_or((0, 0));
            one("unique", format!("array items[{i},{j}] must be unique"))
        }
        ValidationErrorKind::MinLength { limit } => one(
            "string_gte",
            format!("String length must be greater than or equal to {limit}"),
        ),
        ValidationErrorKind::MaxLength { limit } => one(
            "string_lte",
            format!("String length must be less than or equal to {limit}"),
        ),
        ValidationErrorKind::MinItems { limit } => one(
            "array_min_items",
            format!("Array must have at least {limit} items"),
        ),
        ValidationErrorKind::MaxItems { limit } => one(
            "array_max_items",
            format!("Array must have at most {limit} items"),
        ),
        ValidationErrorKind::MinProperties { limit } => one(
            "array_min_properties",
            format!("Must have at least {limit} properties"),
        ),
        ValidationErrorKind::MaxProperties { limit } => one(
            "array_max_properties",
            format!("Must have at most {limit} properties"),
        ),
        ValidationErrorKind::Minimum { limit } => one(
            "number_gte",
            format!("Must be greater than or equal to {}", go_number(limit)),
        ),
        ValidationErrorKind::ExclusiveMinimum { limit } => one(
            "number_gt",
            format!("Must be greater than {}", go_number(limit)),
        ),
        ValidationErrorKind::Maximum { limit } => one(
            "number_lte",
            format!("Must be less than or equal to {}", go_number(limit)),
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => one(
            "number_lt",
            format!("Must be less than {}", go_number(limit)),
        ),
        ValidationErrorKind::MultipleOf { multiple_of } => one(
            "multiple_of",
            format!("Must be a multiple of {}", go_float(*multiple_of)),
        ),
        other => one(other.keyword(), e.to_string()),
    }
}

/// gojsonschema's name for an instance's type: integral numbers are `integer`.
fn type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// A value as gojsonschema prints it in a message: Go's JSON.
fn go_json(value: &Json) -> String {
    Value::from_json_str(&value.to_string())
        .map(|v| args::to_json(&v))
        .unwrap_or_else(|_| value.to_string())
}

fn go_number(value: &Json) -> String {
    value.as_f64().map_or_else(|| value.to_string(), go_float)
}

/// A `big.Float` as Go's `%v` prints it: shortest digits, an exponent outside [1e-4, 1e6).
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// The first pair of equal items, as gojsonschema finds it: the later one and its first twin.
fn first_duplicate(value: &Json) -> Option<(usize, usize)> {
    let items = value.as_array()?;
    let mut seen = std::collections::HashMap::new();
    for (j, item) in items.iter().enumerate() {
        if let Some(&i) = seen.get(&go_json(item)) {
            return Some((i, j));
        }
        seen.insert(go_json(item), j);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::go_float;

    #[test]
    fn floats_print_as_go_prints_a_big_float() {
        let cases = [
            (5.0, "5"),
            (0.5, "0.5"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e21, "-2.5e+21"),
        ];
        for (f, want) in cases {
            assert_eq!(go_float(f), want, "{f}");
        }
    }
}
