//! The decision core's unit tests: evaluation, undefined, paths, functions, errors.

use std::sync::Arc;

use super::*;
use crate::bundle::{Bundle, LoadOptions, RawFile};

fn set(policy: &str) -> PolicySet {
    let files = vec![RawFile {
        path: "/p.rego".into(),
        bytes: policy.as_bytes().to_vec(),
    }];
    let bundle = Bundle::from_files("t", "", files, LoadOptions::default()).unwrap();
    compile(&[Arc::new(bundle)], CompileOptions::default()).unwrap()
}

fn eval(
    set: &PolicySet,
    path: &str,
    input: Option<&str>,
    strict: bool,
) -> Result<Option<Value>, EvalError> {
    let path = DataPath::parse(path).unwrap();
    let query = Query {
        path: &path,
        input: input.map(|i| serde_json::from_str(i).unwrap()),
        strict_builtin_errors: strict,
    };
    set.evaluate(query).map(|d| d.result)
}

#[test]
fn a_reused_engine_carries_nothing_from_one_decision_to_the_next() {
    let s = set(
        "package p\n\ndefault allow := false\n\nallow if input.ok\n\nn := to_number(input.n)\n",
    );
    assert_eq!(
        eval(&s, "p.allow", Some(r#"{"ok": true}"#), false).unwrap(),
        Some(Value::Bool(true))
    );
    assert_eq!(
        eval(&s, "p.allow", None, false).unwrap(),
        Some(Value::Bool(false)),
        "input is gone"
    );
    assert!(
        eval(&s, "p.n", Some(r#"{"n": "x"}"#), true).is_err(),
        "strict"
    );
    assert_eq!(
        eval(&s, "p.n", Some(r#"{"n": "x"}"#), false).unwrap(),
        None,
        "strict is off again"
    );
    // A second set on the same thread never answers with the first one's engine.
    let other = set("package p\n\nallow := \"other\"\n");
    assert_eq!(
        eval(&other, "p.allow", None, false).unwrap(),
        Some(Value::from("other"))
    );
    assert_eq!(
        eval(&s, "p.allow", Some(r#"{"ok": true}"#), false).unwrap(),
        Some(Value::Bool(true))
    );
}

#[test]
fn paths_below_rules_and_data_are_walked() {
    let s = set("package p\n\nobj := {\"a\": [10, 20], \"s\": {\"x\"}}\n");
    assert_eq!(
        eval(&s, "p/obj/a/1", None, false).unwrap(),
        Some(Value::from(20u64))
    );
    assert_eq!(eval(&s, "p/obj/a/-1", None, false).unwrap(), None);
    assert_eq!(
        eval(&s, "p/obj/s/x", None, false).unwrap(),
        Some(Value::from("x"))
    );
    assert_eq!(eval(&s, "p/obj/missing/deeper", None, false).unwrap(), None);
}

#[test]
fn a_long_key_in_a_path_is_undefined_not_an_error() {
    // The key goes into a generated query text on one line: OPA answers `{}` for it,
    // however long it is.
    let s = set("package p\n\nobj := {\"a\": 1}\n");
    let key = "k".repeat(4000);
    assert_eq!(eval(&s, &format!("p/{key}"), None, false).unwrap(), None);
    assert_eq!(
        eval(&s, &format!("p/obj/{key}"), None, false).unwrap(),
        None
    );
    assert_eq!(eval(&s, &format!("zz/{key}/y"), None, false).unwrap(), None);
}

#[test]
fn documents_of_rules_bound_what_a_path_is_counted_under() {
    let s = set("package pay.ment\n\ndecision := {\"allow\": true}\n\nallow := true\n");
    let doc = |p: &str| s.rule_document(&DataPath::parse(p).unwrap());
    let has = |p: &str| s.has_rules_at(&DataPath::parse(p).unwrap());
    assert_eq!(
        doc("pay/ment/decision").as_deref(),
        Some("pay/ment/decision")
    );
    assert_eq!(doc("pay").as_deref(), Some("pay"), "holds rules");
    assert_eq!(
        doc("pay/ment/decision/m-secret-merchant").as_deref(),
        Some("pay/ment/decision"),
        "below a rule: the rule, never what the client put there"
    );
    assert_eq!(doc("pay/ment/decisio"), None);
    assert_eq!(doc("pay/ment/decisionx"), None);
    assert_eq!(doc("pay/other"), None);
    assert_eq!(
        doc("pay/ment/decision/0"),
        None,
        "an index is no document of a rule"
    );
    assert!(has("pay/ment") && has("pay/ment/allow/x") && has("pay/ment/decision"));
    assert!(!has("pay/men") && !has("pay/ment/allowed") && !has("zzz"));
}

#[test]
fn a_rule_inside_a_generic_ref_head_is_part_of_its_document() {
    let s = set(
        "package test\n\np[q].r contains s if {\n\tx := [\"a\", \"b\", \"c\"]\n\tq := x[_]\n\ts := x[_]\n\tq != s\n}\n\np.b.r contains \"foo\"\n",
    );
    let members = |items: &[&str]| {
        Some(Value::from(
            items
                .iter()
                .map(|s| Value::from(*s))
                .collect::<std::collections::BTreeSet<_>>(),
        ))
    };
    // OPA 1.9: the generic rule's members and the specific rule's together.
    assert_eq!(
        eval(&s, "test/p/b/r", None, false).unwrap(),
        members(&["a", "c", "foo"])
    );
    assert_eq!(
        eval(&s, "test/p/b/r/c", None, false).unwrap(),
        Some(Value::from("c"))
    );
    assert_eq!(
        eval(&s, "test/p/a/r", None, false).unwrap(),
        members(&["b", "c"])
    );
}

#[test]
fn verdicts_own_builtins_can_be_mocked_with_with_everywhere_they_are_called() {
    let s = set(r#"package p

mock_verify("myjot", _) := [true, {}, {"owner": "alice"}]

payload := p if {
	[true, _, p] := io.jwt.decode_verify(input.token, {"cert": "c"})
}

allow if payload.owner == "alice"

test_allow if {
	allow with io.jwt.decode_verify as mock_verify with input.token as "myjot"
}

test_value if {
	payload == {"v": 1} with io.jwt.decode_verify as [true, {}, {"v": 1}] with input.token as "t"
}

# jwt.io's example token, HS256 with the secret "your-256-bit-secret".
unmocked := io.jwt.decode_verify("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", {"secret": "your-256-bit-secret"})
"#);
    assert_eq!(
        eval(&s, "p.test_allow", None, false).unwrap(),
        Some(Value::Bool(true))
    );
    assert_eq!(
        eval(&s, "p.test_value", None, false).unwrap(),
        Some(Value::Bool(true))
    );
    // Without the mock the real builtin answers.
    let unmocked = eval(&s, "p.unmocked", None, false).unwrap().unwrap();
    assert_eq!(
        unmocked[0],
        Value::Bool(true),
        "the real io.jwt.decode_verify"
    );
    assert_eq!(unmocked[2]["name"], Value::from("John Doe"));
    // The functions the mock goes through are verdict's, not part of `data`.
    let data = eval(&s, "", None, false).unwrap().unwrap();
    let keys: Vec<String> = data
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(keys, ["\"p\""]);
}
