//! Bundles side by side and as laid out on disk, through the running server: several bundles
//! serve together and may not overlap, data files and Rego versions load as OPA loads them, a
//! symlink out of a directory bundle and an oversized directory are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::bundles::{allow, files, test_config_with_limit, POLICY};
use crate::common;

use common::{replace_file, request, simple_bundle, test_config, write_dir, Server};
use serde_json::json;
use verdict::bundle::Source;

#[tokio::test]
async fn several_bundles_serve_side_by_side_and_must_not_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    write_dir(
        &a,
        &files(&[
            (".manifest", r#"{"revision": "a-1", "roots": ["app"]}"#),
            ("app/p.rego", POLICY),
        ]),
    );
    write_dir(
        &b,
        &files(&[
            (".manifest", r#"{"revision": "b-1", "roots": ["limits"]}"#),
            ("limits/data.json", r#"{"max": 5}"#),
        ]),
    );
    write_dir(
        &c,
        &files(&[
            (
                ".manifest",
                r#"{"revision": "c-1", "roots": ["app/extra"]}"#,
            ),
            ("app/extra/data.json", "{}"),
        ]),
    );

    let server = Server::start(test_config(), vec![Source::path(&a), Source::path(&b)]).await;
    assert_eq!(allow(&server).await, json!(true));
    let r = server
        .raw(&request("GET", "/v1/data/limits/max", &[], b""))
        .await;
    assert_eq!(r.json(), json!({"result": 5}));
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/app/allow?provenance",
            &[],
            b"{}",
        ))
        .await;
    let bundles = &r.json()["provenance"]["bundles"];
    assert_eq!(bundles[a.display().to_string()]["revision"], json!("a-1"));
    assert_eq!(bundles[b.display().to_string()]["revision"], json!("b-1"));

    // A reload that would make two bundles overlap is refused; both keep serving.
    replace_file(
        &b.join(".manifest"),
        br#"{"revision": "b-2", "roots": ["limits", "app"]}"#,
    );
    let status = server
        .wait_for_error("detected overlapping roots in manifests for these bundles")
        .await;
    assert_eq!(status.active_revision, "a-1");
    assert_eq!(server.revision(), "a-1,b-1");
    assert_eq!(allow(&server).await, json!(true));
    let r = server
        .raw(&request("GET", "/v1/data/limits/max", &[], b""))
        .await;
    assert_eq!(r.json(), json!({"result": 5}));
    server.stop().await;

    let err = Server::try_start(test_config(), vec![Source::path(&a), Source::path(&c)])
        .await
        .err()
        .expect("overlapping bundles do not start");
    let text = format!("{err:#}");
    assert!(
        text.contains("detected overlapping roots in manifests for these bundles")
            && text.contains("app overlaps app/extra"),
        "{text}"
    );
}

#[tokio::test]
async fn bundle_layout_data_files_and_rego_versions() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &files(&[
            (
                ".manifest",
                r#"{"revision": "layout-1", "roots": ["app", "legacy"], "file_rego_versions": {"legacy/*.rego": 0}}"#,
            ),
            (
                "app/p.rego",
                "package app\n\nallow if data.app.limits.nested.value == 7\n",
            ),
            ("app/limits/data.json", r#"{"top": 1}"#),
            ("app/limits/nested/data.yaml", "value: 7\n"),
            (
                "legacy/old.rego",
                "package legacy\n\nallow { input.user == \"root\" }\n",
            ),
            ("README.md", "not part of the bundle"),
        ]),
    );
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    assert_eq!(allow(&server).await, json!(true));
    let r = server
        .raw(&request("GET", "/v1/data/app/limits", &[], b""))
        .await;
    assert_eq!(
        r.json(),
        json!({"result": {"nested": {"value": 7}, "top": 1}})
    );
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/legacy/allow",
            &[],
            br#"{"input": {"user": "root"}}"#,
        ))
        .await;
    assert_eq!(
        r.json(),
        json!({"result": true}),
        "a v0 module by file_rego_versions"
    );
    server.stop().await;

    // The same v0 module without the manifest's say-so is refused: Rego v1 needs `if`.
    let v1 = tempfile::tempdir().unwrap();
    write_dir(
        v1.path(),
        &files(&[(
            "legacy/old.rego",
            "package legacy\n\nallow { input.user == \"root\" }\n",
        )]),
    );
    let err = Server::try_start(test_config(), vec![Source::path(v1.path())])
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("rego_parse_error"), "{err:#}");
    let v0 = tempfile::tempdir().unwrap();
    write_dir(
        v0.path(),
        &files(&[
            (".manifest", r#"{"rego_version": 0}"#),
            (
                "legacy/old.rego",
                "package legacy\n\nallow { input.user == \"root\" }\n",
            ),
        ]),
    );
    let server = Server::start(test_config(), vec![Source::path(v0.path())]).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_out_of_a_directory_bundle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    write_dir(&bundle, &simple_bundle("dir-1", "true"));
    let outside = dir.path().join("outside");
    write_dir(
        &outside,
        &files(&[("secret.rego", "package app\n\nleak := true\n")]),
    );
    let mut config = test_config();
    config.verdict.watch = true;
    let server = Server::start(config, vec![Source::path(&bundle)]).await;
    assert_eq!(allow(&server).await, json!(true));

    std::os::unix::fs::symlink(outside.join("secret.rego"), bundle.join("app/secret.rego"))
        .unwrap();
    server.wait_for_error("outside the bundle").await;
    assert_eq!(server.revision(), "dir-1");
    let r = server
        .raw(&request("GET", "/v1/data/app/leak", &[], b""))
        .await;
    assert_eq!(
        r.json(),
        json!({}),
        "nothing from outside the bundle was loaded"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit_applies_to_directory_bundles_too() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &simple_bundle("d-1", "true"));
    std::fs::write(
        dir.path().join("app/data.json"),
        format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20)),
    )
    .unwrap();
    let err = Server::try_start(test_config_with_limit(), vec![Source::path(dir.path())])
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("size limit"), "{err:#}");
}
