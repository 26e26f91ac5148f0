//! regorus's builtin errors as it renders them, and OPA's words for each.

use super::*;

/// regorus's rendering of `message` at `col` of `line` (line 4 of test-0.rego).
fn rendered(line: &str, col: usize, message: &str) -> String {
    let pad = " ".repeat(col.saturating_sub(1));
    format!("\n--> test-0.rego:4:{col}\n  |\n4 | {line}\n  | {pad}^\nerror: {message}")
}

fn opa(line: &str, col: usize, message: &str) -> Option<(&'static str, String)> {
    let text = rendered(line, col, message);
    translate(message, Excerpt::of(&text).as_ref()).map(|t| (t.code, t.message))
}

fn type_error(message: &str) -> Option<(&'static str, String)> {
    Some((TYPE_ERROR, message.to_string()))
}

#[test]
fn a_wrong_operand_is_named_by_its_position_and_type() {
    let line = "\tarray.concat([1, 2], __local1__, __local0__)";
    let message = "`array.concat` expects array argument. Got `{\"v1\":\"hello\"}` instead";
    assert_eq!(
        opa(line, 26, message),
        type_error("array.concat: operand 2 must be array but got object")
    );
    let message = "`bits.lsh` expects non-negative integer arguments. Got `-1`";
    assert_eq!(
        opa("\tbits.lsh(7, -1, __local1__)", 17, message),
        type_error(
            "bits.lsh: operand 2 must be an unsigned integer number but got a negative integer"
        )
    );
    let message = "`bits.and` expects integer arguments. Got `7.2`";
    assert_eq!(
        opa("\tbits.and(7.2, 3, x)", 14, message),
        type_error("bits.and: operand 1 must be integer number but got floating-point number")
    );
}

#[test]
fn the_call_as_written_names_the_builtin_where_regorus_misnames_it() {
    let message = "`trim` expects string argument. Got `100` instead";
    assert_eq!(
        opa("p := strings.replace_n({\"a\": \"b\"}, 100)", 36, message),
        type_error("strings.replace_n: operand 2 must be string but got number")
    );
    let message = "`reverse` expects string argument. Got `123` instead";
    assert_eq!(
        opa("p := strings.reverse(123)", 22, message),
        type_error("strings.reverse: operand 1 must be string but got number")
    );
}

#[test]
fn a_printed_array_is_a_set_only_where_an_array_was_wanted() {
    let wanted_array = "`array.reverse` expects array argument. Got `[1]` instead";
    assert_eq!(
        opa("x := array.reverse(s)", 20, wanted_array),
        type_error("array.reverse: operand 1 must be array but got set")
    );
    // An object was wanted: the value may have been an array or a set, so neither is said.
    let wanted_object = "`object.keys` expects object argument. Got `[1]` instead";
    assert_eq!(
        opa("x := object.keys(s)", 18, wanted_object),
        type_error("object.keys: operand 1 must be object")
    );
}

#[test]
fn accepted_types_are_listed_in_opas_order() {
    let message = "`count` requires array/object/set/string argument. Got `null`.";
    assert_eq!(
        opa("\tcount(input.foo, x)", 11, message),
        type_error("count: operand 1 must be one of {array, object, set, string} but got null")
    );
    let message = "`object.remove` requires array/object/set argument";
    assert_eq!(
        opa("\tobject.remove(a, b, x)", 5, message),
        type_error("object.remove: operand 2 must be one of {object, set, array}")
    );
}

#[test]
fn errors_without_a_name_take_it_from_the_call() {
    assert_eq!(
        opa("\tnumbers.range(3.14, 4)", 19, "operand must be integer"),
        type_error("numbers.range: operand 1 must be integer number but got floating-point number")
    );
    let message = "could not convert numeric value of `ns` to int64";
    assert_eq!(
        opa("\ttime.date(__local6__, __local7__)", 15, message),
        Some((BUILTIN_ERROR, "time.date: timestamp too big".into()))
    );
    let message = "spaces not allowed in resource strings";
    assert_eq!(
        opa("\tunits.parse(\"1 G\")", 16, message),
        Some((BUILTIN_ERROR, format!("units.parse: {message}")))
    );
    assert_eq!(
        opa("1 / 0", 1, "divide by zero"),
        Some((BUILTIN_ERROR, "div: divide by zero".into()))
    );
}

#[test]
fn verdicts_own_operand_errors_are_type_errors() {
    let message = "array.flatten: operand 1 must be array but got set";
    assert_eq!(
        opa("x := array.flatten(s)", 1, message),
        type_error(message)
    );
}

#[test]
fn other_messages_are_left_to_the_caller() {
    assert_eq!(
        opa("x := count(1, 2, 3)", 17, "`count` expects 1 argument"),
        None
    );
    assert_eq!(
        opa(
            "x := to_number(\"a\")",
            16,
            "could not parse string as number"
        ),
        None
    );
    assert_eq!(opa("x := y", 6, "undefined rule"), None);
}
