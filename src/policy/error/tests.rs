//! Classifying regorus's rendered errors: conflicts, static errors and builtin errors.

use super::*;

const CONFLICT: &str = "\n--> /bundle/payment/policy.rego:57:1\n   |\n57 | tier := \"vip\" if input.role == \"admin\"\n   | ^\nerror: rule conflicts with rule at /bundle/payment/policy.rego:55:1";

#[test]
fn conflict_points_at_the_first_rule_like_opa() {
    let e = classify(CONFLICT);
    assert_eq!(e.code, "eval_conflict_error");
    assert_eq!(
        e.message,
        "complete rules must not produce multiple outputs"
    );
    assert_eq!(
        e.location,
        Some(Location {
            file: "/bundle/payment/policy.rego".into(),
            row: 55,
            col: 1
        })
    );
}

fn rendered(row: u32, line: &str, col: usize, message: &str) -> String {
    let pad = " ".repeat(col.saturating_sub(1));
    format!("\n--> test-0.rego:{row}:{col}\n  |\n{row} | {line}\n  | {pad}^\nerror: {message}")
}

#[test]
fn a_conflict_is_worded_by_the_kind_of_rule_that_produced_it() {
    let object = rendered(
        3,
        "p[x] := y if {",
        1,
        "rules must not produce multiple outputs",
    );
    assert_eq!(classify(&object).message, "object keys must be unique");
    let complete = rendered(
        9,
        "q := xs[_]",
        1,
        "rules must not produce multiple outputs",
    );
    assert_eq!(
        classify(&complete).message,
        "complete rules must not produce multiple outputs"
    );
    let keyed = rendered(
        5,
        "p.q[s] := 2 if s := \"r\"",
        4,
        "rule conflicts with rule at test-0.rego:3:4",
    );
    let e = classify(&keyed);
    assert_eq!(
        (e.code, e.message.as_str(), e.location.map(|l| l.row)),
        ("eval_conflict_error", "object keys must be unique", Some(3))
    );
    let function = rendered(
        8,
        "\tdata.test1.p([1, 2, 3], y)",
        17,
        "function produced multiple outputs Set({Number(1), Number(2)})",
    );
    assert_eq!(
        classify(&function).message,
        "functions must not produce multiple outputs for same inputs"
    );
    let comprehension = rendered(
        9,
        "\tv = {\"bar\": y | y = data.a[_]}",
        7,
        "value for key `\"bar\"` generated multiple times: `1` and `2`",
    );
    let e = classify(&comprehension);
    assert_eq!(
        (e.code, e.message.as_str()),
        ("eval_conflict_error", "object keys must be unique")
    );
}

#[test]
fn a_wrong_operand_is_a_type_error_at_run_time_and_a_wrong_arity_static() {
    let operand = rendered(
        3,
        "p := object.keys(input.x)",
        18,
        "`object.keys` expects object argument. Got `\"object\"` instead",
    );
    let e = classify(&operand);
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            "eval_type_error",
            "object.keys: operand 1 must be object but got string"
        )
    );
    assert!(!is_static(&e));
    let arity = rendered(3, "p := count(1, 2, 3)", 15, "`count` expects 1 argument");
    let e = classify(&arity);
    assert_eq!(e.code, "rego_type_error");
    assert!(is_static(&e));
}

#[test]
fn unsafe_variable_is_a_static_error() {
    let e = classify(
        "\n--> /x.rego:2:13\n  |\n2 | broken if { x > 1 }\n  |             ^\nerror: use of undefined variable `x` is unsafe",
    );
    assert_eq!(e.code, "rego_unsafe_var_error");
    assert_eq!(e.message, "var x is unsafe");
    assert_eq!(e.location.as_ref().map(|l| (l.row, l.col)), Some((2, 13)));
    assert!(is_static(&e));
    assert_eq!(
        e.to_string(),
        "/x.rego:2: rego_unsafe_var_error: var x is unsafe"
    );
}

#[test]
fn unknown_text_is_kept_as_a_builtin_error() {
    let e = classify("something odd");
    assert_eq!(e.code, "eval_builtin_error");
    assert_eq!(e.message, "something odd");
    assert!(e.location.is_none());
}
