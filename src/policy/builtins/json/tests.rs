//! `json.is_valid`, `json.verify_schema` and `json.match_schema` against OPA's answers.

use regorus::Value;

use crate::policy::builtins::testing::{eval_with_input, fails, json, value};

fn with_input(expr: &str, input: &str) -> Value {
    let input = json(input);
    let lax = eval_with_input(expr, input.clone(), false);
    assert_eq!(
        lax,
        eval_with_input(expr, input, true),
        "{expr}: strict and lax differ"
    );
    match lax {
        Ok(Some(v)) => v,
        other => panic!("{expr}: expected a value, got {other:?}"),
    }
}

#[test]
fn is_valid_is_false_for_non_strings_even_when_strict() {
    for other in ["1", "null", "[\"{}\"]", "{\"a\": 1}"] {
        let input = format!(r#"{{"v": {other}}}"#);
        assert_eq!(
            with_input("json.is_valid(input.v)", &input),
            Value::from(false)
        );
    }
    assert_eq!(
        value(r#"json.is_valid("{\"a\": [1, 2.5e3]}")"#),
        Value::from(true)
    );
    assert_eq!(value(r#"json.is_valid("{\"a\": }")"#), Value::from(false));
    // Go checks syntax only: a lone surrogate and a huge number are valid JSON.
    assert_eq!(
        value(r#"json.is_valid("[\"\\ud800\", 1e999]")"#),
        Value::from(true)
    );
}

#[test]
fn verify_schema_answers_true_and_null_or_false_and_the_reason() {
    assert_eq!(
        value(r#"json.verify_schema({"type": "boolean"})"#),
        json("[true, null]")
    );
    assert_eq!(
        value(r#"json.verify_schema(`{"type": "unknown_type"}`)"#),
        json(
            r#"[false, "jsonschema: has a primitive type that is NOT VALID -- given: /unknown_type/ Expected valid values are:[array boolean integer number null object string]"]"#
        )
    );
    assert_eq!(
        value(r#"json.verify_schema("{")"#),
        json(r#"[false, "jsonschema: invalid JSON string"]"#)
    );
    assert_eq!(
        value("json.verify_schema(5)"),
        json(r#"[false, "jsonschema: wrong type, expected string or object"]"#)
    );
}

#[test]
fn schemas_without_a_draft_are_read_as_draft_7() {
    // Tuple `items` is draft 7; draft 2020-12 would refuse the schema.
    let schema = r#"{"type": "array", "items": [{"type": "string"}], "additionalItems": false}"#;
    assert_eq!(
        value(&format!(r#"json.match_schema(["a"], {schema})"#)),
        json("[true, []]")
    );
    assert_eq!(
        value(&format!(r#"json.match_schema(["a", 1], {schema})"#)),
        json(
            r#"[false, [{"desc": "No additional items allowed on array", "error": "(root): No additional items allowed on array", "field": "(root)", "type": "array_no_additional_items"}]]"#
        )
    );
}

#[test]
fn match_schema_reports_errors_in_gojsonschemas_shape() {
    let schema = r#"{
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string", "minLength": 3},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
            "n": {"minimum": 5}
        },
        "required": ["id", "kind"],
        "additionalProperties": false
    }"#;
    let doc = r#"{"id": "x", "name": "ab", "tags": ["a", "c"], "n": 1.5, "extra": true}"#;
    let out = with_input(
        "json.match_schema(input.doc, input.schema)",
        &format!(r#"{{"doc": {doc}, "schema": {schema}}}"#),
    );
    assert_eq!(out[0], Value::from(false));
    let Value::Array(errors) = &out[1] else {
        panic!("{out:?}")
    };
    let mut got: Vec<String> = errors
        .iter()
        .map(|e| match (&e["type"], &e["error"]) {
            (Value::String(t), Value::String(m)) => format!("{t} | {m}"),
            other => panic!("{other:?}"),
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "additional_property_not_allowed | (root): Additional property extra is not allowed",
            "enum | tags.1: tags.1 must be one of the following: \"a\", \"b\"",
            "invalid_type | id: Invalid type. Expected: integer, given: string",
            "number_gte | n: Must be greater than or equal to 5",
            "required | (root): kind is required",
            "string_gte | name: String length must be greater than or equal to 3",
        ]
    );
}

#[test]
fn match_schema_takes_json_text_and_refuses_other_types() {
    assert_eq!(
        value(r#"json.match_schema(`{"id": 5}`, `{"properties": {"id": {"type": "integer"}}}`)"#),
        json("[true, []]")
    );
    fails(
        r#"json.match_schema("{", {})"#,
        "json.match_schema: invalid JSON string",
    );
    fails(
        "json.match_schema({}, 7)",
        "json.match_schema: wrong type, expected string or object",
    );
    fails(
        r#"json.match_schema({}, {"type": "unknown"})"#,
        "json.match_schema: has a primitive type that is NOT VALID -- given: /unknown/",
    );
}

#[test]
fn deep_documents_are_refused_not_overflowed() {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let input = format!(r#"{{"doc": {deep:?}}}"#);
    let got = eval_with_input("json.match_schema(input.doc, {})", json(&input), true);
    assert!(
        got.is_err_and(|e| e.contains("invalid JSON")),
        "deep document"
    );
}
