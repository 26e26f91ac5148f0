//! Compilation: bounds, pushed data joining and leaving the bundle data.

use super::*;
use crate::bundle::{LoadOptions, RawFile};
use crate::policy::{DataPath, Query};

/// A bundle `b` of these (path, text) files, for the decision core's tests.
pub(crate) fn bundle_of(files: &[(&str, &str)]) -> Arc<Bundle> {
    let files = crate::bundle::files_of(files);
    Arc::new(Bundle::from_files("b", "", files, LoadOptions::default()).unwrap())
}

fn set(files: &[(&str, &str)]) -> PolicySet {
    compile(&[bundle_of(files)], CompileOptions::default()).unwrap()
}

fn eval(set: &PolicySet, path: &str) -> Option<Value> {
    let path = DataPath::parse(path).unwrap();
    let query = Query {
        path: &path,
        input: None,
        strict_builtin_errors: false,
    };
    set.evaluate(query).unwrap().result
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_compilation_past_its_bound_is_refused_and_the_caller_goes_on() {
    // Validation runs every rule once: this one loops until the evaluation time limit, far
    // past the compilation's own bound.
    let files = vec![RawFile {
        path: "/slow.rego".into(),
        bytes: b"package slow\n\nn := count([1 | some i in numbers.range(1, 100000); some j in numbers.range(1, 100000)])\n".to_vec(),
    }];
    let bundle = Bundle::from_files("b", "", files, LoadOptions::default()).unwrap();
    let options = CompileOptions {
        eval_timeout: Duration::from_secs(2),
        compile_timeout: Duration::from_millis(50),
        ..CompileOptions::default()
    };
    let err = compile(&[Arc::new(bundle)], options).unwrap_err();
    assert!(matches!(err, CompileError::Timeout(_)), "{err}");
    assert_eq!(err.to_string(), "compilation did not finish within 50 ms");
}

#[test]
fn pushed_data_joins_the_bundle_data_and_can_be_taken_back() {
    let manifest = r#"{"roots": ["app", "limits/roles"]}"#;
    let s = set(&[
        ("/.manifest", manifest),
        ("/app/p.rego", "package app\n\nn := count(data.keys)\n"),
        ("/limits/roles/data.json", r#"{"admin": 1}"#),
    ]);
    assert_eq!(eval(&s, "app/n"), None);
    let pushed = s
        .with_pushed_data(&json(r#"{"keys": {"a": 1, "b": 2}, "limits": {"max": 9}}"#))
        .unwrap();
    assert_eq!(eval(&pushed, "app/n"), Some(Value::from(2u64)));
    assert_eq!(
        eval(&pushed, "limits"),
        Some(json(r#"{"max": 9, "roles": {"admin": 1}}"#))
    );
    // Rebuilt from the bundle-only engine: a removal really removes.
    let emptied = pushed.with_pushed_data(&Value::new_object()).unwrap();
    assert_eq!(eval(&emptied, "app/n"), None);
    assert_eq!(
        eval(&emptied, "limits"),
        Some(json(r#"{"roles": {"admin": 1}}"#))
    );
}

#[test]
fn pushed_data_may_not_collide_with_rules_or_bundle_data() {
    let s = set(&[
        ("/.manifest", r#"{"roots": ["app", "limits/roles"]}"#),
        ("/app/p.rego", "package app\n\nallow := true\n"),
        ("/limits/roles/data.json", r#"{"admin": 1}"#),
    ]);
    let err = s
        .with_pushed_data(&json(r#"{"app": {"allow": false}}"#))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("conflicting rule for data path app/allow found"),
        "{err}"
    );
    let err = s.with_pushed_data(&json(r#"{"limits": 5}"#)).unwrap_err();
    assert!(matches!(err, CompileError::PushedData(_)), "{err}");
}
