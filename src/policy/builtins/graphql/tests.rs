//! The `graphql.*` builtins through an engine: AST shapes, OPA's error texts, what fails and
//! what answers false, AST objects given back, and hostile documents refused within bounds.

use regorus::Value;

use super::super::args::object_of;
use super::super::testing::{eval_with_input, fails, json, value};

fn with_input(expr: &str, input: Value) -> Result<Option<Value>, String> {
    eval_with_input(expr, input, true)
}

fn text_input(text: String) -> Value {
    object_of([("q", Value::from(text))])
}

#[test]
fn a_query_parses_to_gqlparsers_ast_pruned_as_opa_prunes_it() {
    let got = value(
        r#"graphql.parse_query(`query Q($v: [Int!] = [1]) @dir { a: f(x: $v, y: {k: "s"}) { ...F ... on T @skip(if: true) { g } } } fragment F on T { h }`)"#,
    );
    let want = json(
        r#"{"Operations": [{"Name": "Q", "Operation": "query",
          "VariableDefinitions": [{"Variable": "v", "Used": false,
            "Type": {"Elem": {"NamedType": "Int", "NonNull": true}, "NamedType": "", "NonNull": false},
            "DefaultValue": {"Children": [{"Name": "", "Value": {"ExpectedTypeHasDefault": false, "Kind": 1, "Raw": "1"}}],
                             "ExpectedTypeHasDefault": false, "Kind": 8, "Raw": ""}}],
          "Directives": [{"Location": "", "Name": "dir"}],
          "SelectionSet": [{"Alias": "a", "Name": "f",
            "Arguments": [
              {"Name": "x", "Value": {"ExpectedTypeHasDefault": false, "Kind": 0, "Raw": "v"}},
              {"Name": "y", "Value": {"Children": [{"Name": "k", "Value": {"ExpectedTypeHasDefault": false, "Kind": 3, "Raw": "s"}}],
                                      "ExpectedTypeHasDefault": false, "Kind": 9, "Raw": ""}}],
            "SelectionSet": [
              {"Name": "F"},
              {"TypeCondition": "T",
               "Directives": [{"Arguments": [{"Name": "if", "Value": {"ExpectedTypeHasDefault": false, "Kind": 5, "Raw": "true"}}],
                               "Location": "", "Name": "skip"}],
               "SelectionSet": [{"Alias": "g", "Name": "g"}]}]}]}],
        "Fragments": [{"Name": "F", "TypeCondition": "T", "SelectionSet": [{"Alias": "h", "Name": "h"}]}]}"#,
    );
    assert_eq!(got, want);
}

#[test]
fn a_schema_parses_to_gqlparsers_ast_pruned_as_opa_prunes_it() {
    let got = value(
        r#"graphql.parse_schema(`"""Doc"""
type T implements I @key(f: "id") { "fd" a(x: Int = 1 @deprecated): [String!]! }
enum E { "v" A B @deprecated }
input In { f: Int = 2 }
directive @d(a: Int) repeatable on FIELD | QUERY
schema @s { query: T }
extend type T { b: Int }
extend schema { mutation: M }
scalar S
union U = | A | B`)"#,
    );
    let int = r#"{"NamedType": "Int", "NonNull": false}"#;
    let deprecated = r#"[{"Location": "", "Name": "deprecated"}]"#;
    let want = json(&format!(
        r#"{{"Definitions": [
          {{"BuiltIn": false, "Description": "Doc", "Kind": "OBJECT", "Name": "T", "Interfaces": ["I"],
            "Directives": [{{"Arguments": [{{"Name": "f", "Value": {{"ExpectedTypeHasDefault": false, "Kind": 3, "Raw": "id"}}}}],
                             "Location": "", "Name": "key"}}],
            "Fields": [{{"Description": "fd", "Name": "a",
              "Arguments": [{{"Description": "", "Name": "x", "Type": {int}, "Directives": {deprecated},
                              "DefaultValue": {{"ExpectedTypeHasDefault": false, "Kind": 1, "Raw": "1"}}}}],
              "Type": {{"Elem": {{"NamedType": "String", "NonNull": true}}, "NamedType": "", "NonNull": true}}}}]}},
          {{"BuiltIn": false, "Description": "", "Kind": "ENUM", "Name": "E",
            "EnumValues": [{{"Description": "v", "Name": "A"}}, {{"Description": "", "Name": "B", "Directives": {deprecated}}}]}},
          {{"BuiltIn": false, "Description": "", "Kind": "INPUT_OBJECT", "Name": "In",
            "Fields": [{{"Description": "", "Name": "f", "Type": {int},
                         "DefaultValue": {{"ExpectedTypeHasDefault": false, "Kind": 1, "Raw": "2"}}}}]}},
          {{"BuiltIn": false, "Description": "", "Kind": "SCALAR", "Name": "S"}},
          {{"BuiltIn": false, "Description": "", "Kind": "UNION", "Name": "U", "Types": ["A", "B"]}}],
        "Directives": [{{"Description": "", "Name": "d", "IsRepeatable": true, "Locations": ["FIELD", "QUERY"],
                         "Arguments": [{{"Description": "", "Name": "a", "Type": {int}}}]}}],
        "Schema": [{{"Description": "", "Directives": [{{"Location": "", "Name": "s"}}],
                     "OperationTypes": [{{"Operation": "query", "Type": "T"}}]}}],
        "SchemaExtension": [{{"Description": "", "OperationTypes": [{{"Operation": "mutation", "Type": "M"}}]}}],
        "Extensions": [{{"BuiltIn": false, "Description": "", "Kind": "OBJECT", "Name": "T",
                         "Fields": [{{"Description": "", "Name": "b", "Type": {int}}}]}}]}}"#
    ));
    assert_eq!(got, want);
}

#[test]
fn malformed_documents_fail_with_gqlparsers_words_and_place() {
    for (call, message) in [
        (
            "graphql.parse_query(`{`)",
            "Expected Name, found <EOF> in GraphQL string at location 1:2",
        ),
        (
            "graphql.parse_query(`{ f(a: 01) }`)",
            "Unexpected <Invalid> in GraphQL string at location 1:9",
        ),
        (
            r#"graphql.parse_query(`{ f(a: "x) }`)"#,
            "Unexpected <Invalid> in GraphQL string at location 1:13",
        ),
        (
            "graphql.parse_query(`query { f } extra`)",
            r#"Unexpected Name "extra" in GraphQL string at location 1:13"#,
        ),
        (
            "graphql.parse_query(`{ ...on }`)",
            "Expected Name, found } in GraphQL string at location 1:9",
        ),
        (
            "graphql.parse_schema(`type T { f(a: Int = $x): Int }`)",
            "Unexpected $ in GraphQL string at location 1:21",
        ),
        // The one place gqlparser's parser lets the lexer's own message through.
        (
            "graphql.parse_schema(`schema { 'x' }`)",
            r#"Unexpected single quote character ('), did you mean to use a double quote (")? in GraphQL string at location 1:10"#,
        ),
        (
            "graphql.parse(`{`, ``)",
            "Expected Name, found <EOF> in GraphQL string at location 1:2",
        ),
        (
            "graphql.parse(`{ a }`, `type`)",
            "Expected Name, found <EOF> in GraphQL string at location 1:5",
        ),
    ] {
        fails(call, message);
    }
}

#[test]
fn invalid_schemas_and_queries_fail_parse_and_answer_false_elsewhere() {
    fails(
        "graphql.parse(`{ a }`, `type Query { a: Int } union U = Missing`)",
        r#"Error in gqlparser SchemaDocument to Schema conversion: input:1:29: Undefined type "Missing"."#,
    );
    // Every error, one a line, the location the first one's.
    fails(
        "graphql.parse(`{ x y }`, `type Query { salary: Int }`)",
        "Cannot query field \"x\" on type \"Query\".\ninput:1:5: Cannot query field \"y\" on type \"Query\" in GraphQL string at location 1:3",
    );
    for call in [
        "graphql.is_valid(`{ x }`, `type Query { salary: Int }`)",
        "graphql.is_valid(`{ salary }`, `type Query { salary: Int } type Query { a: Int }`)",
        "graphql.schema_is_valid(`type T { f: Missing }`)",
        "graphql.schema_is_valid(`type T implements I { f: Int } interface I { g: Int }`)",
        "graphql.is_valid(1, ``)",
        "graphql.schema_is_valid([])",
    ] {
        assert_eq!(value(call), Value::from(false), "{call}");
    }
    assert_eq!(
        value("graphql.parse_and_verify(`{ x }`, `type Query { a: Int }`)"),
        json("[false, {}, {}]")
    );
    assert_eq!(
        value("graphql.is_valid(`{ salary }`, `type Query { salary: Int }`)"),
        Value::from(true)
    );
}

#[test]
fn wrong_argument_types_are_opas_operand_errors() {
    fails(
        "graphql.parse_query(1)",
        "operand 1 must be string but got number",
    );
    fails(
        "graphql.parse_schema({})",
        "operand 1 must be string but got object",
    );
    fails(
        "graphql.parse(1, ``)",
        "operand 0 must be one of {string, object} but got number",
    );
    fails(
        "graphql.parse(``, 1)",
        "operand 1 must be one of {string, object} but got number",
    );
    assert_eq!(
        value("graphql.parse_and_verify(1, ``)"),
        json("[false, {}, {}]")
    );
}

#[test]
fn ast_objects_are_read_back_as_opa_reads_them() {
    let s = "`type Query { salary: Int }`";
    assert_eq!(
        value(&format!(
            "graphql.parse(graphql.parse_query(`{{ salary }}`), graphql.parse_schema({s})) == [graphql.parse_query(`{{ salary }}`), graphql.parse_schema({s})]"
        )),
        Value::from(true)
    );
    // encoding/json matches keys case-insensitively; gqlparser's own decoders do not.
    assert_eq!(
        value(&format!(
            r#"graphql.is_valid({{"operations": [{{"Operation": "query", "SelectionSet": [{{"Alias": "salary", "Name": "salary"}}]}}]}}, {s})"#
        )),
        Value::from(true)
    );
    assert_eq!(
        value(&format!(
            r#"graphql.is_valid({{"Operations": [{{"Operation": "query", "SelectionSet": [{{"name": "salary"}}]}}]}}, {s})"#
        )),
        Value::from(false)
    );
    // gqlparser reads every selection it can as a field: a spread comes back as a field
    // named after the fragment, and the errors have no locations.
    fails(
        &format!("graphql.parse(graphql.parse_query(`{{ ...F }} fragment F on Query {{ salary }}`), {s})"),
        "GraphQL parse error: input: Cannot query field \"F\" on type \"Query\".\ninput: Fragment \"F\" is never used.",
    );
    fails(
        &format!(r#"graphql.parse({{"Operations": "x"}}, {s})"#),
        "json: cannot unmarshal string into Go struct field QueryDocument.Operations",
    );
}

#[test]
fn documents_past_the_bounds_are_refused_not_overflowed() {
    let n = 100_000;
    let cases = [
        (
            "{a".repeat(n) + &"}".repeat(n),
            "nesting deeper than 128 levels",
        ),
        (
            format!("{{ f(a: {}{}) }}", "[".repeat(n), "]".repeat(n)),
            "nesting deeper than 128 levels",
        ),
        (
            format!("query ($a: {}Int{}) {{ f }}", "[".repeat(n), "]".repeat(n)),
            "nesting deeper than 128 levels",
        ),
        (
            "{ a }".to_string() + &" ".repeat(1 << 20),
            "GraphQL document longer than 1048576 bytes",
        ),
    ];
    for (text, message) in cases {
        let got = with_input("graphql.parse_query(input.q)", text_input(text));
        assert!(got.as_ref().is_err_and(|e| e.contains(message)), "{got:?}");
    }
    // An AST object: selection sets nested 1000 deep.
    let deep = (0..1000).fold(object_of([("Name", Value::from("a"))]), |inner, _| {
        object_of([
            ("Name", Value::from("a")),
            ("SelectionSet", Value::from(vec![inner])),
        ])
    });
    let doc = object_of([("Operations", Value::from(vec![deep]))]);
    let input = object_of([("q", doc)]);
    let got = with_input(
        "graphql.parse(input.q, `type Query { a: Int }`)",
        input.clone(),
    );
    assert!(
        got.as_ref()
            .is_err_and(|e| e.contains("GraphQL AST nested deeper than 256 levels")),
        "{got:?}"
    );
    let got = with_input("graphql.is_valid(input.q, `type Query { a: Int }`)", input);
    assert_eq!(got, Ok(Some(Value::from(false))));
}

#[test]
fn validation_that_would_explode_is_cut_short() {
    let schema = "type Query { a: Int }";
    // Each fragment spreads the next twice: 2^40 paths for a naive walk.
    let mut fan_out = "{ __schema { ...F0 } }".to_string();
    for i in 0..40 {
        fan_out += &format!(
            " fragment F{i} on __Schema {{ description ...F{} ...F{} }}",
            i + 1,
            i + 1
        );
    }
    fan_out += " fragment F40 on __Schema { description }";
    // Every pair of 3000 fields under one name is compared.
    let pairs = format!("{{ {} }}", "a ".repeat(3000));
    // A chain of fragments nesting deeper and deeper.
    let mut chain = "{ ...C0 }".to_string();
    for i in 0..2000 {
        chain += &format!(" fragment C{i} on Query {{ a ...C{} }}", i + 1);
    }
    chain += " fragment C2000 on Query { a }";
    for query in [fan_out, pairs, chain] {
        let input = text_input(query);
        let got = with_input(
            &format!("graphql.parse(input.q, `{schema}`)"),
            input.clone(),
        );
        assert!(
            got.as_ref()
                .is_err_and(|e| e.contains("too large or too deeply nested to validate")),
            "{got:?}"
        );
        let got = with_input(&format!("graphql.is_valid(input.q, `{schema}`)"), input);
        assert_eq!(got, Ok(Some(Value::from(false))));
    }
}
