//! The validation rules one by one: each error in gqlparser's words and place, and the
//! documents that pass.

use super::super::query_parser::parse_query;
use super::super::schema::load;
use super::super::schema_parser::parse_schema;

const SCHEMA: &str = r#"
interface Node { id: ID! }
type Employee implements Node { id: ID! salary: Int name: String role: Role manager: Employee }
type Contractor implements Node { id: ID! rate: Float }
union Person = Employee | Contractor
enum Role { ENGINEER MANAGER }
input Filter { role: Role! minSalary: Int = 0 }
type Query {
  employee(id: ID!): Employee
  employees(filter: Filter, first: Int): [Employee!]!
  node(id: ID!): Node
  people: [Person]
}
type Subscription { hired: Employee fired: Employee }
"#;

/// gqlparser's rendered errors for `query` against `SCHEMA`.
fn errors(query: &str) -> Vec<String> {
    let schema = match parse_schema(SCHEMA, false) {
        Ok(doc) => load(&doc).unwrap_or_else(|e| panic!("schema: {e:?}")),
        Err(e) => panic!("schema: {e:?}"),
    };
    let doc = parse_query(query).unwrap_or_else(|e| panic!("{query}: {e:?}"));
    super::validate(&schema, &doc)
        .into_iter()
        .map(|e| e.render())
        .collect()
}

fn one(query: &str) -> String {
    let errors = errors(query);
    assert_eq!(errors.len(), 1, "{query}: {errors:?}");
    errors.into_iter().next().unwrap_or_default()
}

#[test]
fn valid_documents_have_no_errors() {
    for query in [
        "{ employee(id: 1) { id salary manager { name } } }",
        "query Q($id: ID!) { employee(id: $id) { ...E } } fragment E on Employee { name role }",
        "{ people { __typename ... on Employee { salary } ... on Contractor { rate } } }",
        "{ employees(filter: {role: ENGINEER}) { id } }",
        "query ($f: Boolean = true) { node(id: \"x\") { id ... on Employee @include(if: $f) { name } } }",
        "subscription { hired { id } }",
        "{ __schema { types { name } } __type(name: \"Employee\") { fields { name } } }",
        "",
    ] {
        assert_eq!(errors(query), Vec::<String>::new(), "{query}");
    }
}

#[test]
fn fields_arguments_and_leaves() {
    assert_eq!(
        one("{ employee(id: 1) { salry } }"),
        r#"input:1:21: Cannot query field "salry" on type "Employee". Did you mean "salary"?"#
    );
    assert_eq!(
        one("{ node(id: 1) { salary } }"),
        r#"input:1:17: Cannot query field "salary" on type "Node". Did you mean to use an inline fragment on "Employee"?"#
    );
    assert_eq!(
        one("{ employee(id: 1, nme: 2) { id } }"),
        r#"input:1:3: Unknown argument "nme" on field "Query.employee"."#
    );
    assert_eq!(
        one("{ employee { id } }"),
        r#"input:1:3: Field "employee" argument "id" of type "ID!" is required, but it was not provided."#
    );
    assert_eq!(
        one("{ employee(id: 1) }"),
        r#"input:1:3: Field "employee" of type "Employee" must have a selection of subfields. Did you mean "employee { ... }"?"#
    );
    // The inner field is reported first: a field's rules run after its selections'.
    assert_eq!(
        errors("{ employee(id: 1) { id { x } } }"),
        [
            r#"input:1:26: Cannot query field "x" on type "ID"."#,
            r#"input:1:21: Field "id" must not have a selection since type "ID" has no subfields."#,
        ]
    );
    assert_eq!(
        one("{ employee(id: 1, id: 2) { id } }"),
        r#"input:1:19: There can be only one argument named "id"."#
    );
}

#[test]
fn values_are_checked_against_their_types() {
    assert_eq!(
        one("{ employees(first: \"ten\") { id } }"),
        r#"input:1:21: Int cannot represent non-integer value: "ten""#
    );
    // gqlparser accepts any 64-bit integer for Int; past that the number is unreadable.
    assert_eq!(
        errors("{ employees(first: 99999999999) { id } }"),
        Vec::<String>::new()
    );
    assert_eq!(
        one("{ employees(first: 99999999999999999999) { id } }"),
        "input:1:20: Int cannot represent non 32-bit signed integer value: 99999999999999999999"
    );
    assert_eq!(
        one("{ employees(filter: {role: BOSS}) { id } }"),
        r#"input:1:28: Value "BOSS" does not exist in "Role!" enum."#
    );
    assert_eq!(
        one("{ employees(filter: {role: \"ENGINEER\"}) { id } }"),
        r#"input:1:29: Enum "Role!" cannot represent non-enum value: "ENGINEER". Did you mean the enum value "ENGINEER"?"#
    );
    assert_eq!(
        one("{ employees(filter: {minSalary: 1}) { id } }"),
        r#"input:1:21: Field "Filter.role" of required type "Role!" was not provided."#
    );
    assert_eq!(
        one("{ employees(filter: {role: ENGINEER, rol: MANAGER}) { id } }"),
        r#"input:1:38: Field "rol" is not defined by type "Filter". Did you mean "role"?"#
    );
    assert_eq!(
        one("{ employee(id: null) { id } }"),
        r#"input:1:16: Expected value of type "ID!", found null."#
    );
}

#[test]
fn variables_are_defined_used_and_well_placed() {
    assert_eq!(
        one("query Q($id: ID!, $n: Int) { employee(id: $id) { id } }"),
        r#"input:1:19: Variable "$n" is never used in operation "Q"."#
    );
    assert_eq!(
        one("{ employee(id: $id) { id } }"),
        r#"input:1:16: Variable "$id" is not defined."#
    );
    assert_eq!(
        one("query ($id: ID) { employee(id: $id) { id } }"),
        r#"input:1:32: Variable "$id" of type "ID" used in position expecting type "ID!"."#
    );
    assert_eq!(
        errors("query ($e: Employee) { employees(first: 1) { id } }"),
        [
            r#"input:1:8: Variable "$e" is never used."#,
            r#"input:1:8: Variable "$e" cannot be non-input type "Employee"."#,
        ]
    );
    assert_eq!(
        errors("query ($e: Employee, $f: Nope) { node(id: $e) { id } n: node(id: $f) { id } }"),
        [
            r#"input:1:22: Unknown type "Nope"."#,
            r#"input:1:43: Variable "$e" of type "Employee" used in position expecting type "ID!"."#,
            r#"input:1:66: Variable "$f" of type "Nope" used in position expecting type "ID!"."#,
            r#"input:1:8: Variable "$e" cannot be non-input type "Employee"."#,
        ]
    );
}

#[test]
fn fragments_are_known_used_acyclic_and_possible() {
    assert_eq!(
        one("{ employee(id: 1) { ...Missing } }"),
        r#"input:1:24: Unknown fragment "Missing"."#
    );
    assert_eq!(
        errors("{ employee(id: 1) { id } } fragment F on Employee { id }"),
        [r#"input:1:28: Fragment "F" is never used."#]
    );
    assert_eq!(
        errors(
            "{ employee(id: 1) { ...A } } fragment A on Employee { manager { ...B } } \
             fragment B on Employee { manager { ...A } }"
        ),
        [r#"input:1:112: Cannot spread fragment "A" within itself via "B"."#]
    );
    assert_eq!(
        one("{ employee(id: 1) { ... on Contractor { rate } } }"),
        r#"input:1:25: Fragment cannot be spread here as objects of type "Employee" can never be of type "Contractor"."#
    );
    assert_eq!(
        errors("{ employee(id: 1) { ... on Role { id } } }"),
        [
            r#"input:1:35: Cannot query field "id" on type "Role"."#,
            r#"input:1:25: Fragment cannot condition on non composite type "Role"."#,
        ]
    );
    assert_eq!(
        errors("{ employee(id: 1) { ...F } } fragment F on Nope { id }"),
        [r#"input:1:30: Unknown type "Nope". Did you mean "Node" or "Role"?"#]
    );
}

#[test]
fn operations_and_directives() {
    assert_eq!(
        errors("{ people { __typename } } { people { __typename } }"),
        [
            "input:1:1: This anonymous operation must be the only defined operation.",
            "input:1:27: This anonymous operation must be the only defined operation.",
            r#"input:1:27: There can be only one operation named ""."#,
        ]
    );
    assert_eq!(
        one("mutation { x }"),
        r#"input:1:1: Schema does not support operation type "mutation""#
    );
    assert_eq!(
        one("subscription S { hired { id } fired { id } }"),
        r#"input:1:31: Subscription "S" must select only one top level field."#
    );
    assert_eq!(
        one("{ people @nope { __typename } }"),
        r#"input:1:11: Unknown directive "@nope"."#
    );
    assert_eq!(
        one("query @skip(if: true) { people { __typename } }"),
        r#"input:1:8: Directive "@skip" may not be used on QUERY."#
    );
    assert_eq!(
        one("{ people @skip { __typename } }"),
        r#"input:1:11: Directive "@skip" argument "if" of type "Boolean!" is required, but it was not provided."#
    );
    assert_eq!(
        one("{ people @skip(if: true) @skip(if: false) { __typename } }"),
        r#"input:1:27: The directive "@skip" can only be used once at this location."#
    );
}

#[test]
fn overlapping_fields_must_merge() {
    assert_eq!(
        one("{ employee(id: 1) { x: salary x: name } }"),
        r#"input:1:31: Fields "x" conflict because "salary" and "name" are different fields. Use different aliases on the fields to fetch both if this was intentional."#
    );
    assert_eq!(
        one("{ employee(id: 1) { id } employee(id: 2) { id } }"),
        r#"input:1:26: Fields "employee" conflict because they have differing arguments. Use different aliases on the fields to fetch both if this was intentional."#
    );
    assert_eq!(
        one("{ employee(id: 1) { manager { x: id } manager { x: name } } }"),
        r#"input:1:39: Fields "manager" conflict because subfields "x" conflict because "id" and "name" are different fields. Use different aliases on the fields to fetch both if this was intentional."#
    );
    // Distinct object types may select different fields under one name, of compatible
    // types only.
    assert_eq!(
        errors("{ people { ... on Employee { x: id } ... on Contractor { x: id } } }"),
        Vec::<String>::new()
    );
    assert_eq!(
        one("{ people { ... on Employee { x: salary } ... on Contractor { x: rate } } }"),
        r#"input:1:62: Fields "x" conflict because they return conflicting types "Int" and "Float". Use different aliases on the fields to fetch both if this was intentional."#
    );
}

#[test]
fn introspection_is_bounded() {
    assert_eq!(
        one("{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"),
        "input:1:3: Maximum introspection depth exceeded"
    );
}
