//! The engine guard over real sockets: Rego text that would stall regorus's parser (nested
//! literals) and recursion that would overflow its stack are refused before they can, in
//! ad-hoc queries, bundles (at start and on reload) and Gatekeeper templates; and an archive
//! naming one path twice is refused like any malformed bundle. Beside them, two inputs OPA
//! accepts and regorus or the decoder did not: long data-path keys, multi-member gzip bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::admission::{pod, review, Hook};
use common::{bundle_tar, replace_file, request, simple_bundle, tar_gz, test_config, Server, WAIT};
use serde_json::{json, Value as Json};
use verdict::bundle::Source;
use verdict::policy::guard::text::MAX_RETRY_DEPTH;

/// `[[…[1]…]]`, `depth` arrays each holding the next as its first element.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// The attack of issue 15: 40 nested arrays in a request of 99 bytes. Without the guard the
/// parse takes time in 2^40 and the request never ends.
fn deep_query_body() -> Vec<u8> {
    format!(r#"{{"query": "x := {}"}}"#, nested(40)).into_bytes()
}

/// A module whose literal is nested `depth` deep.
fn deep_module(depth: usize) -> (String, Vec<u8>) {
    let text = format!(
        "package app\n\nallow := true\n\ndeep := {}\n",
        nested(depth)
    );
    ("app/deep.rego".into(), text.into_bytes())
}

/// Mutual recursion driven by input: `allow` with `input.n` = 1,000 would go 2,000 calls deep
/// and overflow the stack of the thread evaluating it.
fn recursive_module() -> (String, Vec<u8>) {
    let text = "package app\n\nallow := f(input.n)\n\nf(n) := 0 if n <= 0\n\nf(n) := g(n - 1) if n > 0\n\ng(n) := f(n)\n";
    ("app/recursive.rego".into(), text.as_bytes().to_vec())
}

fn with_module(revision: &str, module: (String, Vec<u8>)) -> Vec<(String, Vec<u8>)> {
    let mut files = simple_bundle(revision, "true");
    files.push(module);
    files
}

/// Found by the `query` fuzz target (fuzz/regressions/query/huge-exponent-number): regorus
/// builds a number's exponent as an exact big integer while lexing, for minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twelve_byte_query_with_a_huge_exponent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &simple_bundle("q-1", "true"));
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    let response = tokio::time::timeout(
        WAIT,
        server.raw(&request(
            "POST",
            "/v1/query",
            &[],
            br#"{"query": "0e175555555/"}"#,
        )),
    )
    .await
    .expect("the query is answered, not lexed for minutes");
    assert_eq!(response.status, 400, "{}", response.text());
    let body = response.json();
    assert_eq!(body["errors"][0]["code"], "rego_parse_error", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("exponent"),
        "{body}"
    );
    let health = server.raw(&request("GET", "/health", &[], b"")).await;
    assert_eq!(health.status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_query_is_refused_at_once_and_the_server_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &simple_bundle("q-1", "true"));
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;

    let response = tokio::time::timeout(
        WAIT,
        server.raw(&request("POST", "/v1/query", &[], &deep_query_body())),
    )
    .await
    .expect("the deep query is answered, not parsed for ever");
    assert_eq!(response.status, 400, "{}", response.text());
    let body = response.json();
    assert_eq!(body["code"], "invalid_parameter", "{body}");
    let error = &body["errors"][0];
    assert_eq!(error["code"], "rego_parse_error", "{body}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&format!("(limit {MAX_RETRY_DEPTH})")),
        "names the limit: {body}"
    );
    // Where the limit was passed: `x := ` then the first bracket past it.
    let col = 5 + MAX_RETRY_DEPTH as usize + 2;
    assert_eq!(error["location"], json!({"file": "", "row": 1, "col": col}));

    let health = server.raw(&request("GET", "/health", &[], b"")).await;
    assert_eq!(health.status, 200);
    // Nesting within the bound still parses and evaluates: 11 deep, its innermost element
    // read under 11 retried levels.
    let ok = format!(
        r#"{{"query": "x := {}"}}"#,
        nested(MAX_RETRY_DEPTH as usize)
    );
    let response = server
        .raw(&request("POST", "/v1/query", &[], ok.as_bytes()))
        .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().contains(&nested(MAX_RETRY_DEPTH as usize)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_the_parser_would_recurse_through_are_refused_before_it_overflows() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &simple_bundle("u-1", "true"));
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    // 5,000 unary minus signs (over lines, each short) overflowed the parser's stack and
    // aborted the process; a 20,000-segment reference is recursed through as well.
    let queries = [
        (
            format!("x := {}1", "-\n".repeat(5000)),
            "unary minus signs in a row",
        ),
        (
            format!("x := input{}", ".a".repeat(20_000)),
            "reference with more than",
        ),
        (
            format!("x := 1{}", " + 1".repeat(20_000)),
            "operators in one term",
        ),
    ];
    for (query, expected) in queries {
        let body = serde_json::to_vec(&json!({ "query": query })).unwrap();
        let r = server.raw(&request("POST", "/v1/query", &[], &body)).await;
        assert_eq!(r.status, 400, "{expected}: {}", r.text());
        let message = r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(expected), "{message}");
    }
    let health = server.raw(&request("GET", "/health", &[], b"")).await;
    assert_eq!(health.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn verdict_eval_refuses_the_deep_query_too() {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(common::running::BIN)
            .args(["eval", &format!("x := {}", nested(40))])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("eval returns instead of parsing for ever")
    .unwrap();
    assert!(!out.status.success());
    // OPA's JSON presentation of the query's error, on stdout.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rego_parse_error") && stdout.contains("literal nested too deeply"),
        "{stdout}"
    );
}

#[tokio::test]
async fn bundles_with_a_deep_literal_or_recursion_do_not_start() {
    let cases = [
        (
            with_module("d-1", deep_module(40)),
            "app/deep.rego:5: rego_parse_error: literal nested too deeply",
        ),
        (
            with_module("r-1", recursive_module()),
            "app/recursive.rego:7: rego_recursion_error: rule data.app.f is recursive: data.app.f -> data.app.g -> data.app.f",
        ),
    ];
    for (files, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.tar.gz");
        std::fs::write(&path, bundle_tar(&files)).unwrap();
        let err = tokio::time::timeout(
            WAIT,
            Server::try_start(test_config(), vec![Source::path(&path)]),
        )
        .await
        .expect("start gives up instead of hanging")
        .err()
        .unwrap_or_else(|| panic!("must not start: {expected}"));
        let text = format!("{err:#}");
        assert!(text.contains(expected), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reloads_are_rejected_in_status_while_the_last_good_revision_serves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&simple_bundle("good-1", "true"))).unwrap();
    let mut config = test_config();
    config.verdict.watch = true;
    let server = Server::start(config, vec![Source::path(&path)]).await;

    let cases = [
        (
            with_module("deep-2", deep_module(40)),
            "literal nested too deeply",
        ),
        (
            with_module("rec-3", recursive_module()),
            "rule data.app.f is recursive: data.app.f -> data.app.g -> data.app.f",
        ),
    ];
    for (files, expected) in cases {
        replace_file(&path, &bundle_tar(&files));
        let status = server.wait_for_error(expected).await;
        assert_eq!(status.active_revision, "good-1");
        assert_eq!(server.revision(), "good-1");
        let allow = server
            .raw(&request(
                "POST",
                "/v1/data/app/allow",
                &[],
                br#"{"input": {}}"#,
            ))
            .await;
        assert_eq!(allow.json(), json!({"result": true}));

        let report: Json = server
            .raw(&request("GET", "/v1/status", &[], b""))
            .await
            .json();
        assert!(report.to_string().contains(expected), "{report}");
        let warning = common::health::rejection_warning(&server).await;
        assert!(warning.contains(expected), "{warning}");
    }

    replace_file(&path, &bundle_tar(&simple_bundle("good-4", "false")));
    server.wait_for_revision("good-4").await;
    let allow = server
        .raw(&request(
            "POST",
            "/v1/data/app/allow",
            &[],
            br#"{"input": {}}"#,
        ))
        .await;
    assert_eq!(allow.json(), json!({"result": false}));
    server.stop().await;
}

#[tokio::test]
async fn an_archive_naming_a_module_or_the_manifest_twice_does_not_start() {
    let manifest = br#"{"revision": "dup", "roots": ["app"]}"#.as_slice();
    let module = b"package app\n\nallow := true\n".as_slice();
    let cases = [
        vec![
            ("/.manifest", manifest),
            ("/app/p.rego", module),
            ("/app/p.rego", module),
        ],
        vec![
            ("/.manifest", manifest),
            ("/app/p.rego", module),
            ("./.manifest", br#"{"roots": [""]}"#.as_slice()),
        ],
    ];
    for entries in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dup.tar.gz");
        std::fs::write(&path, tar_gz(&entries)).unwrap();
        let err = Server::try_start(test_config(), vec![Source::path(&path)])
            .await
            .err()
            .expect("a duplicated entry is refused");
        let text = format!("{err:#}");
        assert!(text.contains("more than once"), "{text}");
    }
}

fn template(name: &str, rego: &str) -> String {
    let kind = format!("{}{}", name[..1].to_uppercase(), &name[1..]);
    let rego: String = rego.lines().map(|l| format!("        {l}\n")).collect();
    format!(
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {{name: {name}}}\nspec:\n  crd: {{spec: {{names: {{kind: {kind}}}}}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n{rego}"
    )
}

#[tokio::test]
async fn templates_with_a_deep_literal_or_recursion_are_rejected_and_the_rest_serve() {
    let hook = Hook::start(&[], |_| {}).await;
    let deep = template(
        "paymentdeep",
        &format!(
            "package paymentdeep\n\nviolation[{{\"msg\": m}}] {{\n  m := sprintf(\"%v\", [{}])\n}}",
            nested(40)
        ),
    );
    let recursive = template(
        "paymentrecursive",
        "package paymentrecursive\n\nviolation[{\"msg\": m}] {\n  m := f(count(input.review.object.metadata.name))\n}\n\nf(n) = g(n - 1) { n > 0 }\n\ng(n) = f(n)",
    );
    for (file, text, expected) in [
        ("templates/deep.yaml", deep, "literal nested too deeply"),
        (
            "templates/recursive.yaml",
            recursive,
            "rule data.paymentrecursive.f is recursive",
        ),
    ] {
        let seen = hook.generation().attempts;
        hook.write(file, &text);
        hook.wait_for(expected, seen, |s| {
            s.set()
                .errors
                .iter()
                .any(|e| e.to_string().contains(expected))
        })
        .await;
    }
    // The payment templates still decide.
    let response = hook
        .admit(&review("CREATE", &pod("p", "payments", "docker.io/app:1")))
        .await;
    assert_eq!(response["allowed"], false, "{response}");
}

#[tokio::test]
async fn a_long_key_in_a_data_path_is_undefined_as_in_opa() {
    let dir = tempfile::tempdir().unwrap();
    common::write_dir(dir.path(), &simple_bundle("k-1", "true"));
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    // Past regorus's default of 1,024 columns for the one-line query such a path becomes.
    for key in ["k".repeat(1016), "k".repeat(5000)] {
        for path in [format!("/v1/data/app/{key}"), format!("/v1/data/{key}/x")] {
            let r = server.raw(&request("GET", &path, &[], b"")).await;
            assert_eq!((r.status, r.json()), (200, json!({})), "{}", &path[..40]);
        }
    }
    server.stop().await;
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, bytes).unwrap();
    enc.finish().unwrap()
}

#[tokio::test]
async fn a_multi_member_gzip_body_is_read_to_its_end_as_in_opa() {
    let dir = tempfile::tempdir().unwrap();
    let policy = "package app\n\nallow := input.role == \"admin\"\n";
    common::write_dir(
        dir.path(),
        &[
            (".manifest".into(), br#"{"roots": ["app"]}"#.to_vec()),
            ("app/policy.rego".into(), policy.as_bytes().to_vec()),
        ],
    );
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    let mut body = gzip(br#"{"input": {"ro"#);
    body.extend(gzip(br#"le": "admin"}}"#));
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/app/allow",
            &[("Content-Encoding", "gzip")],
            &body,
        ))
        .await;
    assert_eq!((r.status, r.json()), (200, json!({"result": true})));
    server.stop().await;
}
