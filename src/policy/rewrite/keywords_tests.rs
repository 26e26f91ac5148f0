use std::sync::Arc;

use regorus::{Engine, Value};

use super::*;
use crate::bundle::{Bundle, LoadOptions, RawFile};
use crate::policy::{compile, CompileOptions, DataPath, Query};

const ALL: [&str; 15] = [
    "as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null",
    "package", "some", "true", "with",
];

fn rewrite(source: &str) -> Rewritten<'_> {
    rewrite_keyword_refs(source, false).unwrap()
}

/// Every text regorus is given, added to one engine as `compile` adds them.
fn engine(source: &str) -> Engine {
    let rewritten = rewrite(source);
    let mut engine = Engine::new();
    engine
        .add_policy("p.rego".into(), rewritten.module.into_owned())
        .unwrap();
    for split in rewritten.split {
        engine.add_policy("p.rego".into(), split).unwrap();
    }
    engine
}

fn query(engine: &mut Engine, text: &str) -> Value {
    let results = engine.eval_query(text.into(), false).unwrap();
    results
        .result
        .into_iter()
        .next()
        .map_or(Value::Undefined, |r| {
            r.expressions.into_iter().next().unwrap().value
        })
}

#[test]
fn texts_without_leading_keywords_stay_borrowed() {
    for text in [
        "package a.in.with\n\nimport data.x.in.y\n\np.if := input.in.not\n",
        "package a\n\nx := \"in.foo\" # in.foo and true.x\n",
        "package a\n\nx := `in.foo\nsome.x`\n",
        "package a\n\nx := 1.5 + 2.0e3\ny := [1, 2][0]\nz := x in {1.5}\n",
        "package a\n\nq := {\"a\": 1}.a\nr := true\n",
    ] {
        let rewritten = rewrite(text);
        assert!(matches!(rewritten.module, Cow::Borrowed(_)), "{text}");
        assert!(rewritten.split.is_empty());
    }
}

#[test]
fn a_leading_keyword_in_a_body_reads_the_package_rule() {
    let text = "package a.b\n\np if {\n  in.foo == 1 # in.foo\n  x := \"in.foo\"\n}\n";
    let rewritten = rewrite(text);
    assert_eq!(
        rewritten.module,
        "package a.b\n\np if {\n  data.a.b.in.foo == 1 # in.foo\n  x := \"in.foo\"\n}\n"
    );
    assert!(rewritten.split.is_empty());
}

#[test]
fn a_rule_whose_head_starts_with_a_keyword_moves_in_place() {
    let text = "package test\n\nimport input.x as y\n\np if in.foo == y\n\nin.foo := 1 if {\n  \"a\" == `a`\n}\n\nq := 2.5\n";
    let rewritten = rewrite(text);
    let lines = |t: &str| t.lines().map(str::to_string).collect::<Vec<_>>();
    let (module, split) = (lines(&rewritten.module), lines(&rewritten.split[0]));
    assert_eq!(module.len(), lines(text).len());
    assert_eq!(split.len(), lines(text).len());
    assert_eq!(module[4], "p if data.test.in.foo == y");
    assert!(
        module[6..9].iter().all(|l| l.trim().is_empty()),
        "{module:?}"
    );
    assert_eq!(module[10], "q := 2.5");
    assert_eq!(split[0], "package test.in");
    assert_eq!(split[2], "import input.x as y");
    assert!(split[4].trim().is_empty());
    // The rule keeps its row and its columns.
    assert_eq!(split[6], "   foo := 1 if {");
    assert_eq!(split[7], "  \"a\" == `a`");
    assert_eq!(split[8], "}");
    assert!(split[10].trim().is_empty());
}

#[test]
fn every_keyword_may_start_a_rule_head_and_a_reference() {
    for kw in ALL {
        let text = format!(
            "package test\n\np if {{\n  {kw}.foo == 1\n  {kw}.f(2) == 2\n  {kw}.s == {{\"a\"}}\n  foo.{kw} == 3\n}}\n\n\
             {kw}.foo := 1\n\ndefault {kw}.f(_) := 0\n\n{kw}.f(x) := x if x > 1\n\n\
             {kw}.s contains \"a\"\n\n{kw}.e := 1 if false else := 2\n\nfoo.{kw} := 3\n"
        );
        let mut engine = engine(&text);
        assert_eq!(query(&mut engine, "data.test.p"), Value::from(true), "{kw}");
        let e = format!("data.test.{kw}.e");
        assert_eq!(query(&mut engine, &e), Value::from(2u64), "{kw}");
    }
}

#[test]
fn rego_v0_keeps_its_own_keywords_and_reads_the_others() {
    let text = "package test\n\np { in.x == 1; true.foo == 2 }\n\ntrue.foo := 2\n";
    let rewritten = rewrite_keyword_refs(text, true).unwrap();
    let blank = |line: &str| " ".repeat(line.len());
    assert_eq!(
        rewritten.module,
        format!(
            "package test\n\np {{ in.x == 1; data.test.true.foo == 2 }}\n\n{}\n",
            blank("true.foo := 2")
        )
    );
    assert_eq!(
        rewritten.split,
        [format!(
            "package test.true\n\n{}\n\n     foo := 2\n",
            blank("p { in.x == 1; true.foo == 2 }")
        )]
    );
}

#[test]
fn keywords_in_packages_and_imports_are_left_to_regorus() {
    for text in [
        "package in.foo\n\np := 1\n",
        "package a\n\nimport data.x as y\nimport in.foo\n\np := in.foo\n",
    ] {
        assert!(matches!(rewrite(text).module, Cow::Borrowed(_)), "{text}");
    }
}

#[test]
fn a_moved_rule_may_not_name_a_rule_of_its_package() {
    let text = "package test\n\nbar := 1\n\nin.foo := 2\n\n  in.baz := x if {\n    x := bar\n  }\n";
    let err = rewrite_keyword_refs(text, false).unwrap_err();
    assert_eq!(
        err,
        KeywordRefError::SiblingName {
            row: 7,
            col: 3,
            head: "in.baz".into(),
            keyword: "in".into(),
            package: "test".into(),
            name: "bar".into(),
        }
    );
    let located = err.rego_error("p.rego");
    assert_eq!(located.location.map(|l| (l.row, l.col)), Some((7, 3)));
    // Nor one that moves beside it: in OPA `foo` is not `in.foo`.
    let text = "package test\n\nin.foo := 2\n\nin.baz := foo\n";
    assert!(rewrite_keyword_refs(text, false).is_err());
    // Its own fields, locals, input and data are no rules of the package.
    let text =
        "package test\n\nbar := 1\n\nin.baz := x if {\n  x := input.bar + data.test.bar\n}\n";
    assert!(rewrite_keyword_refs(text, false).is_ok());
}

#[test]
fn a_compiled_set_serves_moved_rules_at_their_path() {
    let text = "package test\n\np if in.foo == 1\n\nin.foo := 1\n\nin.test_ok if true\n";
    let files = vec![RawFile {
        path: "/p.rego".into(),
        bytes: text.as_bytes().to_vec(),
    }];
    let bundle = Bundle::from_files("b", "", files, LoadOptions::default()).unwrap();
    let set = compile(&[Arc::new(bundle)], CompileOptions::default()).unwrap();
    let eval = |path: &str| {
        let path = DataPath::parse(path).unwrap();
        let query = Query {
            path: &path,
            input: None,
            strict_builtin_errors: false,
        };
        set.evaluate(query).unwrap()
    };
    assert_eq!(eval("test/in/foo").result, Some(Value::from(1u64)));
    assert_eq!(
        eval("test/in").result,
        Some(serde_json::from_str(r#"{"foo": 1, "test_ok": true}"#).unwrap())
    );
    assert_eq!(eval("test/p").result, Some(Value::from(true)));
    let tests: Vec<_> = set.tests().iter().map(|t| t.path.join(".")).collect();
    assert_eq!(tests, ["test.in.test_ok"]);
    // The policy is listed once, as written.
    assert_eq!(set.modules().len(), 1);
    assert_eq!(set.modules()[0].raw, text);
}

fn compile_errors(text: &str) -> Vec<crate::policy::RegoError> {
    let files = vec![RawFile {
        path: "/p.rego".into(),
        bytes: text.as_bytes().to_vec(),
    }];
    let bundle = Bundle::from_files("b", "", files, LoadOptions::default()).unwrap();
    match compile(&[Arc::new(bundle)], CompileOptions::default()) {
        Err(crate::policy::CompileError::Modules(errors)) => errors,
        other => panic!("not refused for its modules: {other:?}"),
    }
}

#[test]
fn errors_in_a_moved_rule_point_into_the_original_file() {
    let moved = "package test\n\np := 1\n\n  in.foo := y if {\n    y := nope(1)\n  }\n";
    let errors = compile_errors(moved);
    let location = errors[0].location.clone().unwrap();
    assert_eq!((location.file.as_str(), location.row), ("/p.rego", 6));
    // Where regorus points in the same rule left in its package, column included.
    let staying = moved.replace("in.foo", "   foo");
    assert_eq!(errors, compile_errors(&staying));
}

#[test]
fn every_prefix_of_a_text_keeps_its_line_count() {
    // Cut anywhere, including inside strings, comments and moved rules.
    let text = "package t.u\n\nimport input.x\n\np if { in.foo == \"in.x\\\"é\" } # in.é\n\n\
                in.foo := 1 if {\n  `a\nin.b` == in.bar\n}\n\nin.s contains \"a\"\n\
                default true.f(_) := 1.5\n";
    let lines = |t: &str| t.matches('\n').count();
    for (at, _) in text.char_indices().chain([(text.len(), ' ')]) {
        let prefix = &text[..at];
        let rewritten = rewrite_keyword_refs(prefix, false).unwrap();
        assert_eq!(lines(&rewritten.module), lines(prefix), "{prefix:?}");
        for split in &rewritten.split {
            assert_eq!(lines(split), lines(prefix), "{prefix:?}");
        }
    }
    assert_eq!(rewrite(text).split.len(), 2, "`in` and `true` rules move");
}
