//! Bundles through the running server: what loads, what is refused, and that a refused bundle
//! never replaces the one serving. Reloads are driven by real file changes seen by the watcher;
//! tests wait on reload events, never on the clock. (Several bundles, layouts, symlinks and
//! size limits are in `bundles_layout`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::path::Path;

use common::{bundle_tar, replace_file, request, simple_bundle, tar_gz, test_config, Server};
use serde_json::{json, Value as Json};
use verdict::bundle::Source;

pub(crate) async fn allow(server: &Server) -> Json {
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/app/allow",
            &[],
            b"{\"input\": {}}",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["result"].clone()
}

/// A server on one tar.gz bundle at `path`, watched.
async fn watched_server(path: &Path) -> Server {
    let mut config = test_config_with_limit();
    config.verdict.watch = true;
    Server::start(config, vec![Source::path(path)]).await
}

pub(crate) fn files(entries: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    entries
        .iter()
        .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
        .collect()
}

const MANIFEST: &str = r#"{"revision": "bad", "roots": ["app"]}"#;
pub(crate) const POLICY: &str = "package app\n\nallow := true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_bundle_is_refused_and_the_last_good_one_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.tar.gz");
    std::fs::write(&path, bundle_tar(&simple_bundle("good-1", "true"))).unwrap();
    let server = watched_server(&path).await;
    assert_eq!(allow(&server).await, json!(true));

    let big = " ".repeat(2 << 20);
    let bad: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a Rego syntax error",
            bundle_tar(&files(&[
                (".manifest", MANIFEST),
                ("app/p.rego", "package app\nallow if {\n"),
            ])),
            "error(s) occurred while compiling module(s)",
        ),
        (
            "invalid JSON data",
            bundle_tar(&files(&[
                (".manifest", MANIFEST),
                ("app/p.rego", POLICY),
                ("app/data.json", "{not json"),
            ])),
            "bundle load failed on /app/data.json",
        ),
        (
            "overlapping roots",
            bundle_tar(&files(&[
                (".manifest", r#"{"roots": ["app", "app/sub"]}"#),
                ("app/p.rego", POLICY),
            ])),
            "manifest has overlapped roots: 'app' and 'app/sub'",
        ),
        (
            "data outside the roots",
            bundle_tar(&files(&[
                (".manifest", MANIFEST),
                ("app/p.rego", POLICY),
                ("data.json", r#"{"other": 1}"#),
            ])),
            "manifest roots [app] do not permit data at path '/other'",
        ),
        (
            "a package outside the roots",
            bundle_tar(&files(&[
                (".manifest", MANIFEST),
                ("other/p.rego", "package other\n\nx := 1\n"),
            ])),
            "do not permit 'package other'",
        ),
        (
            "an unknown function",
            bundle_tar(&files(&[
                (".manifest", MANIFEST),
                ("app/p.rego", "package app\n\nallow := nope(1)\n"),
            ])),
            "undefined function nope",
        ),
        (
            "an unsafe variable",
            bundle_tar(&files(&[
                (".manifest", MANIFEST),
                ("app/p.rego", "package app\n\nallow if { x > 1 }\n"),
            ])),
            "var x is unsafe",
        ),
        (
            "a rule over data",
            bundle_tar(&files(&[
                (".manifest", MANIFEST),
                ("app/p.rego", POLICY),
                ("data.json", r#"{"app": {"allow": false}}"#),
            ])),
            "conflicting rule for data path app/allow found",
        ),
        (
            "a ../ entry",
            tar_gz(&[
                (".manifest", MANIFEST.as_bytes()),
                ("../../etc/app/p.rego", POLICY.as_bytes()),
            ]),
            "entry '../../etc/app/p.rego' would be written outside the bundle",
        ),
        (
            "an absolute entry",
            tar_gz(&[
                (".manifest", MANIFEST.as_bytes()),
                ("//etc/app/p.rego", POLICY.as_bytes()),
            ]),
            "entry '//etc/app/p.rego' would be written outside the bundle",
        ),
        (
            "a symlink entry",
            common::tar_gz_with_symlink(
                &[(".manifest", MANIFEST.as_bytes())],
                "app/p.rego",
                "/etc/passwd",
            ),
            "entry 'app/p.rego' is a link",
        ),
        (
            "a decompression bomb",
            tar_gz(&[
                (".manifest", MANIFEST.as_bytes()),
                ("app/p.rego", POLICY.as_bytes()),
                ("app/data.json", big.as_bytes()),
            ]),
            "bundle exceeds the size limit of 1048576 bytes",
        ),
        (
            "a bomb in an ignored entry",
            tar_gz(&[
                (".manifest", MANIFEST.as_bytes()),
                ("junk.bin", big.as_bytes()),
                ("app/p.rego", POLICY.as_bytes()),
            ]),
            "bundle exceeds the size limit of 1048576 bytes",
        ),
        (
            "not gzip at all",
            b"this is not a gzip stream\n".to_vec(),
            "archive read failed: gzip: invalid header",
        ),
    ];
    let cases = bad.len() as f64;
    for (what, bytes, expected) in bad {
        // The previous case left an error in the status: wait for this bundle's own verdict.
        let before = server.attempts();
        replace_file(&path, &bytes);
        server.reloads_after(before, 1).await;
        let status = server.state.bundle_status()[0].clone();
        let said = format!("{} {:?}", status.message, status.errors);
        assert!(
            said.contains(expected),
            "{what}: expected {expected:?}, got {said}"
        );
        assert_eq!(status.code, "bundle_error", "{what}");
        assert_eq!(
            status.active_revision, "good-1",
            "{what}: the good revision stays active"
        );
        assert_eq!(server.revision(), "good-1", "{what}");
        assert_eq!(
            allow(&server).await,
            json!(true),
            "{what}: still serving the good bundle"
        );
        let report: Json = common::get(server.url("/v1/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let shown = report["result"]["bundles"][path.display().to_string()].to_string();
        assert!(
            shown.contains("bundle_error"),
            "{what}: /v1/status shows it: {shown}"
        );
        let warning = common::health::rejection_warning(&server).await;
        assert!(
            warning.contains("update rejected") && warning.contains("\"good-1\" still serving"),
            "{what}: /health?bundles names the rejection: {warning}"
        );
    }

    // Every rejection is counted where a dashboard or an alert looks for it.
    let metrics = common::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failed = format!(
        r#"verdict_bundle_failures_total{{name="{}"}} "#,
        path.display()
    );
    let counted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(failed.as_str()))
        .unwrap_or_else(|| panic!("no {failed} in {metrics}"))
        .parse()
        .unwrap();
    assert_eq!(counted, cases);
    // OPA's family counts the same failures, apart by their message.
    let name = format!(r#",name="{}"}} "#, path.display());
    let by_message: f64 = metrics
        .lines()
        .filter(|l| l.starts_with(r#"bundle_failed_load_counter{code="bundle_error",message=""#))
        .filter_map(|l| {
            l.split_once(name.as_str())
                .map(|(_, n)| n.parse::<f64>().unwrap())
        })
        .sum();
    assert_eq!(by_message, cases, "{metrics}");

    // A good bundle again: activated, and the error is gone.
    replace_file(&path, &bundle_tar(&simple_bundle("good-2", "false")));
    server.wait_for_revision("good-2").await;
    assert_eq!(allow(&server).await, json!(false));
    let health = server
        .raw(&request("GET", "/health?bundles", &[], b""))
        .await;
    assert_eq!(
        (health.status, health.text()),
        (200, "{}\n".to_string()),
        "a good bundle again: OPA's plain healthy answer"
    );
    let status = &server.state.bundle_status()[0];
    assert!(
        status.code.is_empty() && status.errors.is_empty(),
        "{status:?}"
    );
    server.stop().await;
}

/// The size limit is the one under test above; make it small for every server here.
pub(crate) fn test_config_with_limit() -> verdict::config::Config {
    let mut config = test_config();
    config.verdict.bundle_size_limit_bytes = 1 << 20;
    config
}

#[tokio::test]
async fn bad_bundles_at_startup_stop_verdict_with_opas_message() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.tar.gz");
    std::fs::write(&garbage, b"this is not a gzip stream").unwrap();
    let cases = [
        (common::golden("fixtures/variants/garbage.tar.gz"), "bundle read failed: archive read failed: gzip: invalid header"),
        (common::golden("fixtures/variants/bad-overlap.tar.gz"), "manifest has overlapped roots: 'payment' and 'payment/sub'"),
        (common::golden("fixtures/variants/bad-roots.tar.gz"), "manifest roots [payment] do not permit data at path '/limits' (hint: check bundle directory structure)"),
        (common::golden("fixtures/variants/bad-compile.tar.gz"), "rego_unsafe_var_error: var x is unsafe"),
        (dir.path().join("missing"), "error reading"),
    ];
    for (path, expected) in cases {
        let err = Server::try_start(test_config(), vec![Source::path(&path)])
            .await
            .err()
            .unwrap_or_else(|| panic!("{} must not start", path.display()));
        let text = format!("{err:#}");
        assert!(text.contains(expected), "{}: {text}", path.display());
    }
}
