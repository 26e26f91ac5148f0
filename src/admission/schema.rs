//! The part of a ConstraintTemplate's OpenAPI v3 schema that the API server would apply to a
//! Constraint's `spec.parameters` before Gatekeeper ever saw it: types, `enum`, `required`,
//! `items`, `properties`/`additionalProperties`, and `default` values. Without an API server in
//! front of verdict, a Constraint whose parameters do not fit is refused here, as `kubectl
//! apply` would refuse it.

use serde_json::{Map, Value as Json};

/// Checks `value` against `schema` and returns it with defaults filled in. The error names
/// the first offending field, as the API server's validation does (`parameters.repos[0]`).
pub fn apply(schema: &Json, value: &Json, path: &str) -> Result<Json, String> {
    if value.is_null() && schema.get("nullable").and_then(Json::as_bool) == Some(true) {
        return Ok(Json::Null);
    }
    if let Some(allowed) = schema.get("enum").and_then(Json::as_array) {
        if !allowed.contains(value) {
            return Err(format!(
                "{path}: {value} is not one of {}",
                Json::from(allowed.clone())
            ));
        }
    }
    let want = schema.get("type").and_then(Json::as_str).unwrap_or("");
    match (want, value) {
        ("object", Json::Object(map)) => object(schema, map, path),
        ("array", Json::Array(items)) => {
            let Some(item_schema) = schema.get("items") else {
                return Ok(value.clone());
            };
            items
                .iter()
                .enumerate()
                .map(|(i, v)| apply(item_schema, v, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array)
        }
        ("string", Json::String(_)) | ("boolean", Json::Bool(_)) | ("number", Json::Number(_)) => {
            Ok(value.clone())
        }
        ("integer", Json::Number(n)) if n.is_i64() || n.is_u64() => Ok(value.clone()),
        // No type: anything goes (and a typeless object still gets its properties' defaults).
        ("", Json::Object(map)) => object(schema, map, path),
        ("", _) => Ok(value.clone()),
        _ => Err(format!(
            "{path}: expected {want}, found {}",
            type_name(value)
        )),
    }
}

fn object(schema: &Json, map: &Map<String, Json>, path: &str) -> Result<Json, String> {
    let properties = schema.get("properties").and_then(Json::as_object);
    let additional = schema.get("additionalProperties");
    let mut out = Map::new();
    for (key, value) in map {
        let child = format!("{path}.{key}");
        let sub = properties
            .and_then(|p| p.get(key))
            .or(additional.filter(|a| a.is_object()));
        match sub {
            Some(sub) => {
                out.insert(key.clone(), apply(sub, value, &child)?);
            }
            None if additional == Some(&Json::Bool(false)) => {
                return Err(format!("{child}: unknown field"));
            }
            // The API server prunes unknown fields of structural schemas; Gatekeeper's
            // templates are often loose (legacy schemas), so verdict keeps them as written.
            None => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, sub) in properties.into_iter().flatten() {
        if !out.contains_key(key) {
            if let Some(default) = sub.get("default") {
                out.insert(key.clone(), apply(sub, default, &format!("{path}.{key}"))?);
            }
        }
    }
    for required in schema
        .get("required")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        if !out.contains_key(required) {
            return Err(format!("{path}.{required}: required"));
        }
    }
    Ok(Json::Object(out))
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_f64() => "number",
        Json::Number(_) => "integer",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_missing_fields_and_types_are_checked() {
        let schema = json!({"type": "object", "properties": {
            "repos": {"type": "array", "items": {"type": "string"}},
            "mode": {"type": "string", "enum": ["strict", "lax"], "default": "strict"},
        }});
        assert_eq!(
            apply(&schema, &json!({"repos": ["a/"]}), "parameters").unwrap(),
            json!({"repos": ["a/"], "mode": "strict"})
        );
        assert_eq!(
            apply(&schema, &json!({"repos": "a/"}), "parameters").unwrap_err(),
            "parameters.repos: expected array, found string"
        );
        assert!(apply(&schema, &json!({"repos": [1]}), "parameters")
            .unwrap_err()
            .starts_with("parameters.repos[0]"));
        assert!(apply(&schema, &json!({"mode": "x"}), "parameters").is_err());
    }
}
