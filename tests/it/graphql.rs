//! A bundle authorizing GraphQL API calls (OPA's documented pattern: parse the request's query
//! against the schema, then decide on the AST) serves decisions over HTTP with the
//! `graphql.*` builtins verdict adds: allowed queries pass, the rest and invalid or hostile
//! queries are denied, and a strict evaluation reports gqlparser's error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::{request, test_config, write_dir, Server};
use serde_json::{json, Value as Json};
use verdict::bundle::Source;

const POLICY: &str = r#"package gql

schema := `
  type Employee { id: String! salary: Int! }
  type Query { employeeByID(id: String!): Employee }
  type Mutation { raise(id: String!, amount: Int!): Employee }
`

default allow := false

query_ast := graphql.parse_and_verify(input.query, schema)[1] if {
	graphql.parse_and_verify(input.query, schema)[0]
}

allow if {
	every operation in query_ast.Operations {
		operation.Operation == "query"
		every selection in operation.SelectionSet {
			selection.Name == "employeeByID"
			selection.Arguments[0].Value.Raw == input.user
		}
	}
}

errors := graphql.parse(input.query, schema)
"#;

async fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &[
            (
                ".manifest".into(),
                br#"{"revision": "gql-1", "roots": ["gql"]}"#.to_vec(),
            ),
            ("gql/policy.rego".into(), POLICY.as_bytes().to_vec()),
        ],
    );
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    (dir, server)
}

async fn decide(server: &Server, path: &str, query: &str) -> (u16, Json) {
    let body = json!({"input": {"user": "alice", "query": query}}).to_string();
    let response = server
        .raw(&request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        ))
        .await;
    (response.status, response.json())
}

#[tokio::test]
async fn a_bundle_authorizing_graphql_queries_serves_decisions() {
    let (_dir, server) = start().await;
    let allow = "/v1/data/gql/allow";
    assert_eq!(
        decide(
            &server,
            allow,
            r#"query { employeeByID(id: "alice") { salary } }"#
        )
        .await,
        (200, json!({"result": true}))
    );
    let deep = format!("{{{}", "a{".repeat(100_000));
    for (what, query) in [
        ("someone else", r#"{ employeeByID(id: "bob") { salary } }"#),
        (
            "a mutation",
            r#"mutation { raise(id: "alice", amount: 9) { salary } }"#,
        ),
        (
            "an unknown field",
            r#"{ employeeByID(id: "alice") { bonus } }"#,
        ),
        (
            "a syntax error",
            r#"{ employeeByID(id: "alice") { salary }"#,
        ),
        ("a selection nested 100000 deep", deep.as_str()),
    ] {
        let got = decide(&server, allow, query).await;
        assert_eq!(got, (200, json!({"result": false})), "{what}");
    }
    server.stop().await;
}

#[tokio::test]
async fn strict_builtin_errors_report_gqlparsers_error() {
    let (_dir, server) = start().await;
    let path = "/v1/data/gql/errors";
    let query = r#"{ employeeByID(id: "alice") { bonus } }"#;
    assert_eq!(decide(&server, path, query).await, (200, json!({})));
    let (status, body) = decide(
        &server,
        &format!("{path}?strict-builtin-errors=true"),
        query,
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.to_string().contains(
            r#"graphql.parse: Cannot query field \"bonus\" on type \"Employee\" in GraphQL string at location 1:31"#
        ),
        "{body}"
    );
    server.stop().await;
}
