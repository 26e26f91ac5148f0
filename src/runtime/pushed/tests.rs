//! OPA's storage semantics for Data API writes, case by case against what OPA 1.9 answers.

use super::*;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn path(p: &str) -> StoragePath {
    p.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn put(tree: &Value, p: &str, value: &str) -> Result<Option<Value>, WriteError> {
    let op = WriteOp::Put {
        path: path(p),
        value: json(value),
        if_none_match: false,
    };
    apply(tree, &op, &[])
}

fn patch(tree: &Value, ops: &[(PatchKind, &str, &str)]) -> Result<Option<Value>, WriteError> {
    let patches = ops
        .iter()
        .map(|(kind, p, v)| Patch {
            kind: *kind,
            path: path(p),
            value: json(v),
        })
        .collect();
    apply(tree, &WriteOp::Patch(patches), &[])
}

fn owners() -> Vec<Owner> {
    vec![Owner {
        bundle: "payment-bundle.tar.gz".into(),
        roots: vec![path("payment"), path("limits/roles")],
    }]
}

#[test]
fn put_creates_parents_and_if_none_match_leaves_a_document_alone() {
    let tree = Value::new_object();
    let tree = put(&tree, "/scratch/merchants", r#"{"m-1": {"tier": "gold"}}"#)
        .unwrap()
        .unwrap();
    assert_eq!(
        tree,
        json(r#"{"scratch": {"merchants": {"m-1": {"tier": "gold"}}}}"#)
    );
    let again = WriteOp::Put {
        path: path("/scratch/merchants"),
        value: json("{}"),
        if_none_match: true,
    };
    assert!(apply(&tree, &again, &[]).unwrap().is_none());
    let absent = WriteOp::Put {
        path: path("/scratch/other"),
        value: json("1"),
        if_none_match: true,
    };
    assert!(apply(&tree, &absent, &[]).unwrap().is_some());
}

#[test]
fn writes_under_or_above_a_bundle_root_are_refused_in_opas_words() {
    let tree = Value::new_object();
    let put_at = |p: &str| WriteOp::Put {
        path: path(p),
        value: json("1"),
        if_none_match: false,
    };
    let refused = |p: &str| apply(&tree, &put_at(p), &owners()).unwrap_err().to_string();
    assert_eq!(
        refused("/limits/roles/extra"),
        r#"path limits/roles/extra is owned by bundle "payment-bundle.tar.gz""#
    );
    // Above a root is owned too: writing `limits` would replace the bundle's `roles`.
    assert_eq!(
        refused("/limits"),
        r#"path limits is owned by bundle "payment-bundle.tar.gz""#
    );
    assert_eq!(
        refused(""),
        "can't write to document root with bundle roots configured"
    );
    assert!(apply(&tree, &put_at("/limits/other"), &owners()).is_ok());
    assert!(apply(&tree, &put_at("/paymentx"), &owners()).is_ok());
    let everything = vec![Owner {
        bundle: "b".into(),
        roots: vec![vec![]],
    }];
    assert_eq!(
        apply(&tree, &put_at("/x"), &everything)
            .unwrap_err()
            .to_string(),
        r#"all paths owned by bundle "b""#
    );
}

#[test]
fn patch_follows_json_patch_on_objects_and_arrays() {
    let tree = json(r#"{"s": {"m": {"m-1": {"tier": "gold"}}, "list": [1, 2]}}"#);
    let next = patch(
        &tree,
        &[
            (PatchKind::Add, "/s/m/m-2", r#"{"tier": "silver"}"#),
            (PatchKind::Replace, "/s/m/m-1/tier", r#""platinum""#),
            (PatchKind::Add, "/s/list/0", "0"),
            (PatchKind::Add, "/s/list/-", "3"),
            (PatchKind::Remove, "/s/list/1", "null"),
            (PatchKind::Replace, "/s/list/0", r#""zero""#),
        ],
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        next,
        json(
            r#"{"s": {"m": {"m-1": {"tier": "platinum"}, "m-2": {"tier": "silver"}}, "list": ["zero", 2, 3]}}"#
        )
    );
    assert_eq!(
        tree,
        json(r#"{"s": {"m": {"m-1": {"tier": "gold"}}, "list": [1, 2]}}"#),
        "the tree a write started from is untouched"
    );
}

#[test]
fn failures_carry_opas_storage_errors_and_apply_nothing() {
    let tree = json(r#"{"s": {"m": {}, "list": [1], "n": 5}}"#);
    let err = |ops: &[(PatchKind, &str, &str)]| patch(&tree, ops).unwrap_err().to_string();
    assert_eq!(
        err(&[(PatchKind::Remove, "/s/m/nope", "null")]),
        "storage_not_found_error: /s/m/nope: document does not exist"
    );
    assert_eq!(
        err(&[
            (PatchKind::Add, "/s/m/ok", "1"),
            (PatchKind::Replace, "/s/missing/x", "1")
        ]),
        "storage_not_found_error: /s/missing/x: document does not exist"
    );
    assert_eq!(
        err(&[(PatchKind::Add, "/s/list/x", "1")]),
        "storage_not_found_error: /s/list/x: array index must be integer"
    );
    assert_eq!(
        err(&[(PatchKind::Replace, "/s/list/5", "1")]),
        "storage_not_found_error: /s/list/5: array index out of range"
    );
    assert_eq!(
        err(&[(PatchKind::Replace, "/s/list/-", "1")]),
        "storage_invalid_patch_error: /s/list/-: invalid patch path"
    );
    assert_eq!(
        err(&[(PatchKind::Remove, "", "null")]),
        "storage_invalid_patch_error: root cannot be removed"
    );
    assert_eq!(
        put(&tree, "", "[1]").unwrap_err().to_string(),
        "storage_invalid_patch_error: root must be object"
    );
    // PUT through a value that is not an object: OPA's MakeDir write conflict.
    assert_eq!(
        put(&tree, "/s/n/deeper/still", "1")
            .unwrap_err()
            .to_string(),
        "storage_write_conflict_error: /s/n"
    );
    let delete = WriteOp::Delete {
        path: path("/s/gone"),
    };
    assert_eq!(
        apply(&tree, &delete, &[]).unwrap_err().to_string(),
        "storage_not_found_error: /s/gone: document does not exist"
    );
}

#[test]
fn documents_too_deep_to_store_are_refused() {
    let deep = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    let err = put(&Value::new_object(), "/a", &deep).unwrap_err();
    assert!(matches!(err, WriteError::TooDeep { .. }), "{err}");
    let fits = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH - 1),
        "]".repeat(MAX_DEPTH - 1)
    );
    assert!(put(&Value::new_object(), "/a", &fits).is_ok());
}

#[test]
fn activation_erases_its_roots_and_the_store_learns_which_documents_changed() {
    let tree = json(r#"{"limits": {"roles": {"x": 1}, "mine": 2}, "payment": 3, "keep": 4}"#);
    let erased = erase(
        &tree,
        &[path("payment"), path("limits/roles"), path("absent")],
    );
    assert_eq!(erased, json(r#"{"limits": {"mine": 2}, "keep": 4}"#));
    let changes = changed_documents(&tree, &erased);
    assert_eq!(
        changes,
        vec![
            ("limits".to_string(), Some(json(r#"{"mine": 2}"#))),
            ("payment".to_string(), None),
        ]
    );
}

#[test]
fn paths_print_as_gos_path_escape() {
    assert_eq!(display(&[]), "/");
    assert_eq!(
        display(&path("/a b/c%d/ok-._~$&+:=@")),
        "/a%20b/c%25d/ok-._~$&+:=@"
    );
    assert_eq!(
        display(&["x/y".to_string(), "é".to_string()]),
        "/x%2Fy/%C3%A9"
    );
}
