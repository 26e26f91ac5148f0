//! The rewrites, as text and as meaning: each case is evaluated by a real engine the way the
//! decision core compiles modules, and compared with OPA 1.9's answer (from the issue's
//! repros and OPA's documented compile stages).

use regorus::Value;

use crate::bundle::{Bundle, LoadOptions};
use crate::policy::{compile, CompileOptions, DataPath, PolicySet, Query};

fn rewrite(text: &str) -> String {
    super::module("t.rego", text, false).into_owned()
}

fn set(files: &[(&str, &str)]) -> PolicySet {
    let files = crate::bundle::files_of(files);
    let bundle = Bundle::from_files("t", "", files, LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    match compile(&[std::sync::Arc::new(bundle)], CompileOptions::default()) {
        Ok(set) => set,
        Err(e) => panic!("{e}"),
    }
}

fn eval(set: &PolicySet, path: &str, input: &str) -> Option<Value> {
    let path = DataPath::parse(path).unwrap_or_else(|e| panic!("{e}"));
    let input = Value::from_json_str(input).unwrap_or_else(|e| panic!("{e}"));
    set.evaluate(Query {
        path: &path,
        input: Some(input),
        strict_builtin_errors: false,
    })
    .unwrap_or_else(|e| panic!("{e}"))
    .result
}

fn json(text: &str) -> Value {
    Value::from_json_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn strings(items: &[&str]) -> Value {
    Value::from(
        items
            .iter()
            .map(|s| Value::from(*s))
            .collect::<std::collections::BTreeSet<_>>(),
    )
}

#[test]
fn every_edit_keeps_the_line_count() {
    let text = "package p\n\nimport data.lib.ok\n\nr contains \"m\" if not is_string(input.c)\n\nx if {\n\tio.jwt.decode(\n\t\tinput.t,\n\t\tout\n\t)\n\tok\n}\n";
    let out = rewrite(text);
    assert_ne!(out, text);
    assert_eq!(out.lines().count(), text.lines().count(), "{out}");
}

#[test]
fn not_over_a_call_is_undefined_when_an_argument_is() {
    let s = set(&[(
        "p.rego",
        "package p\n\nr contains \"currency missing\" if not is_string(input.currency)\n\ns contains \"x\" if {\n\tnot startswith(input.name, \"a\")\n}\n\nt if not input.a == input.b\n\nu if not input.m[input.k]\n\nv if not input.present\n",
    )]);
    assert_eq!(eval(&s, "p/r", "{}"), Some(strings(&[])));
    assert_eq!(
        eval(&s, "p/r", r#"{"currency": 1}"#),
        Some(strings(&["currency missing"]))
    );
    assert_eq!(eval(&s, "p/s", "{}"), Some(strings(&[])));
    assert_eq!(eval(&s, "p/s", r#"{"name": "bob"}"#), Some(strings(&["x"])));
    assert_eq!(eval(&s, "p/t", r#"{"a": 1}"#), None);
    assert_eq!(
        eval(&s, "p/t", r#"{"a": 1, "b": 2}"#),
        Some(Value::from(true))
    );
    assert_eq!(eval(&s, "p/u", r#"{"m": {}}"#), None);
    assert_eq!(
        eval(&s, "p/u", r#"{"m": {}, "k": "z"}"#),
        Some(Value::from(true))
    );
    // A plain reference is not moved: `not input.present` is true when it is missing.
    assert_eq!(eval(&s, "p/v", "{}"), Some(Value::from(true)));
}

#[test]
fn an_import_is_seen_by_its_own_file_only() {
    let s = set(&[
        ("a.rego", "package p\n\ndeny contains \"a\" if false\n"),
        (
            "b.rego",
            "package p\n\nimport data.lib.ok\n\ndeny contains \"b\" if not ok\n",
        ),
        ("lib.rego", "package lib\n\nok := true\n"),
        ("c.rego", "package c\n\nimport data.p\n\nout := p.deny\n"),
    ]);
    assert_eq!(eval(&s, "c/out", "{}"), Some(strings(&[])));

    let s = set(&[
        (
            "m1.rego",
            "package main\n\nimport data.lib as L\n\nx := L.y\n",
        ),
        ("m2.rego", "package main\n"),
        ("lib.rego", "package lib\n\ny := 42\n"),
    ]);
    assert_eq!(eval(&s, "main", "{}"), Some(json(r#"{"x": 42}"#)));
}

#[test]
fn a_package_importing_itself_reaches_its_rules() {
    let s = set(&[(
        "k.rego",
        "package kubernetes\n\nimport data.kubernetes\n\nis_pod if input.kind == \"Pod\"\n\nname := input.metadata.name if kubernetes.is_pod\n",
    )]);
    assert_eq!(
        eval(
            &s,
            "kubernetes/name",
            r#"{"kind": "Pod", "metadata": {"name": "web"}}"#
        ),
        Some(Value::from("web"))
    );
}

#[test]
fn a_local_of_the_import_name_keeps_the_import() {
    let text = "package p\n\nimport data.lib.ok\n\nf(ok) := ok\n\ng := ok\n";
    let out = rewrite(text);
    assert!(out.contains("import data.lib.ok"), "{out}");
    assert!(out.contains("g := data.lib.ok"), "{out}");
    assert!(out.contains("f(ok) := ok"), "{out}");
}

#[test]
fn added_builtins_take_the_output_argument_form() {
    let text = "package p\n\nclaims := c if {\n\tio.jwt.decode(input.t, [_, c, _])\n}\n";
    assert_eq!(
        rewrite(text),
        "package p\n\nclaims := c if {\n\tio.jwt.decode(input.t) = [_, c, _]\n}\n"
    );
    let s = set(&[(
        "p.rego",
        "package p\n\nh if {\n\tcrypto.md5(\"a\", x)\n\tx == \"0cc175b9c0f1b6a831c399e269772661\"\n}\n",
    )]);
    assert_eq!(eval(&s, "p/h", "{}"), Some(Value::from(true)));
}

#[test]
fn text_that_does_not_parse_is_left_for_the_engine_to_report() {
    let text = "package p\n\nx := [\n";
    assert_eq!(rewrite(text), text);
}

#[test]
fn a_line_starting_with_a_parenthesis_starts_a_statement() {
    let s = set(&[(
        "p.rego",
        "package p\n\nok if {\n\tinput.spread\n\t(input.max - input.min) >= input.spread\n}\n",
    )]);
    assert_eq!(
        eval(&s, "p/ok", r#"{"spread": 2, "max": 5, "min": 1}"#),
        Some(Value::from(true))
    );
    assert_eq!(
        eval(&s, "p/ok", r#"{"spread": 5, "max": 5, "min": 1}"#),
        None
    );
}

#[test]
fn a_set_key_into_a_missing_path_is_an_empty_set() {
    let s = set(&[(
        "k.rego",
        "package k\n\npod := input.pod\n\nvolumes contains pod.spec.volumes[_]\n\nnames contains pod.spec.volumes[_].name if {\n\tinput.on\n}\n\nname := \"x\"\n",
    )]);
    assert_eq!(eval(&s, "k/name", "{}"), Some(Value::from("x")));
    assert_eq!(eval(&s, "k/volumes", "{}"), Some(strings(&[])));
    assert_eq!(
        eval(
            &s,
            "k/names",
            r#"{"on": true, "pod": {"spec": {"volumes": [{"name": "a"}]}}}"#
        ),
        Some(strings(&["a"]))
    );
    assert_eq!(
        eval(&s, "k/volumes", r#"{"pod": {"spec": {"volumes": ["v"]}}}"#),
        Some(strings(&["v"]))
    );
}

#[test]
fn v0_rules_with_several_bodies_are_one_definition_each() {
    let files = [
        ("/.manifest", r#"{"rego_version": 0}"#),
        (
            "/p.rego",
            "package p\n\nviolation[{\"msg\": m}] {\n  input.a\n  m := \"a\"\n} {\n  input.b\n  m := \"b\"\n}\n",
        ),
    ];
    let s = set(&files);
    assert_eq!(
        eval(&s, "p/violation", r#"{"a": true, "b": true}"#),
        Some(Value::from(
            [json(r#"{"msg": "a"}"#), json(r#"{"msg": "b"}"#)]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
        ))
    );
}

#[test]
fn a_builtin_may_replace_a_function_in_with() {
    let s = set(&[(
        "p.rego",
        "package p\n\nf(_) := 2\n\nx := y if {\n\ty := f([1, 2, 3]) with f as count\n}\n\nz := y if {\n\ty := object.union_n([{}, {\"a\": 1}]) with object.union_n as count\n}\n",
    )]);
    assert_eq!(eval(&s, "p/x", "{}"), Some(Value::from(3u64)));
    assert_eq!(eval(&s, "p/z", "{}"), Some(Value::from(2u64)));
}

#[test]
fn walk_takes_the_assignment_form() {
    let s = set(&[(
        "p.rego",
        "package p\n\nx := {\"a\": [{\"b\": \"AA\"}, {\"c\": \"CCC\"}, 1]}\n\nq := {path: value | [path, value] := walk(x); count(value) == 2}\n",
    )]);
    let path = Value::from(vec![Value::from("a"), Value::from(0u64), Value::from("b")]);
    let want = std::collections::BTreeMap::from([(path, Value::from("AA"))]);
    assert_eq!(eval(&s, "p/q", "{}"), Some(Value::from(want)));
}

#[test]
fn a_rule_inside_a_generic_document_is_found_by_a_query_of_it() {
    // The generic rule in one file, the rules inside its document in another and in a package
    // below: OPA 1.9 reads them as one document however deep the query.
    let s = set(&[
        (
            "g.rego",
            "package test\n\np[q].r contains s if {\n\tx := [\"a\", \"b\", \"c\"]\n\tq := x[_]\n\ts := x[_]\n\tq != s\n}\n",
        ),
        (
            "s.rego",
            "package test\n\np.b.r contains \"foo\"\n\np[\"c\"].r contains v if {\n\tv := \"bar\"\n}\n\nf(x) := x\n",
        ),        ("u.rego", "package u\n\na := data.test.p.b.r\n\nb contains x if {\n\tx := data.test.p.c.r[_]\n}\n"),
    ]);
    let query = |text: &str| {
        let results = s.query(text, None).unwrap_or_else(|e| panic!("{e}"));
        results
            .result
            .iter()
            .map(|r| r.expressions[0].value.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(query("data.test.p.b.r.c"), vec![Value::from("c")]);
    assert_eq!(query("data.test.p.b.r"), vec![strings(&["a", "c", "foo"])]);
    assert_eq!(query("data.test.p.c.r"), vec![strings(&["a", "b", "bar"])]);
    assert!(query("data.test.p.b.r.zzz").is_empty());
    assert_eq!(query("data.test.f(1)"), vec![Value::from(1u64)]);
    assert_eq!(
        eval(&s, "test/p/b/r", "{}"),
        Some(strings(&["a", "c", "foo"]))
    );
    assert_eq!(eval(&s, "u/a", "{}"), Some(strings(&["a", "c", "foo"])));
    assert_eq!(eval(&s, "u/b", "{}"), Some(strings(&["a", "b", "bar"])));
    // Heads stay as written: a computed package still finds the literal rule (OPA issue 7399).
    let s = set(&[
        (
            "t.rego",
            "package test\np := data[first].allow.see.something_else if first := \"primary\"\n",
        ),
        (
            "p.rego",
            "package primary\nallow[action].something if  action := \"show\"\nallow.see.something_else if true\n",
        ),
    ]);
    assert_eq!(eval(&s, "test/p", "{}"), Some(Value::from(true)));
    let see = s
        .query("data.primary.allow.see", None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        see.result[0].expressions[0].value,
        json(r#"{"something_else": true}"#)
    );
}
