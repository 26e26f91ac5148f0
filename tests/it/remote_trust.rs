//! Remote bundles and trust, against a real local bundle server: HTTPS with a custom CA, a
//! client certificate and a rotated token; signatures checked as OPA checks them; and a node
//! behind a flapping network that only ever decides with a verified bundle.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::bundle_server::{bundle, BundleServer, Mode};
use common::remote::{signed, start, variant};
use serde_json::{json, Value as Json};
use verdict::config::Config;

#[tokio::test]
async fn https_with_a_custom_ca_a_client_certificate_and_a_rotated_bearer_token() {
    let pki = common::pki::Pki::new();
    let bundles = BundleServer::start(bundle(variant("v1"), "v1"), Some(pki.server_config())).await;
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (ca, cert, key) = (
        file("ca.pem", &pki.ca_pem),
        file("client.pem", &pki.client_cert_pem),
        file("client-key.pem", &pki.client_key_pem),
    );
    let token = file("token", "first-token\n");
    let service = |credentials: Json, ca: Option<&str>| {
        let mut tree = json!({
            "services": {"ctl": {
                "url": bundles.url("https"),
                "response_header_timeout_seconds": 2,
                "credentials": credentials,
            }},
            "bundles": {"payment": {"resource": "bundles/payment.tar.gz",
                "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1}}},
            "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
        });
        if let Some(ca) = ca {
            tree["services"]["ctl"]["tls"] = json!({"ca_cert": ca});
        }
        Config::from_tree(tree).unwrap().0
    };
    let full = json!({
        "client_tls": {"cert": cert, "private_key": key},
        "bearer": {"token_path": token},
    });
    let server = start(service(full.clone(), Some(&ca))).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    assert_eq!(
        bundles.requests()[0].headers["authorization"],
        "Bearer first-token"
    );
    // A rotated token file is used from the next request on.
    std::fs::write(dir.path().join("token"), "rotated-token").unwrap();
    let seen = bundles.request_count();
    bundles.wait_for_requests(seen + 2).await;
    assert_eq!(
        bundles.requests().last().unwrap().headers["authorization"],
        "Bearer rotated-token"
    );
    server.stop().await;

    // No client certificate, or no trust in the server's CA: no bundle, and the status says
    // why.
    let refused = [
        (json!({"bearer": {"token": "t"}}), Some(ca.as_str())),
        (full, None),
    ];
    for (credentials, ca) in refused {
        let server = start(service(credentials, ca)).await;
        server
            .wait_until("a TLS failure in the status", |s| {
                s.bundle_status()[0].code == "bundle_error"
            })
            .await;
        let status = server.state.bundle_status()[0].clone();
        assert!(!status.is_activated(), "{status:?}");
        assert!(
            status.message.contains("certificate") || status.message.contains("alert"),
            "{}",
            status.message
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn only_bundles_signed_with_the_configured_key_activate() {
    let sign = |name: &str| std::fs::read(common::fixture(&format!("sign/{name}"))).unwrap();
    let bundles = BundleServer::start(bundle(sign("signed.tar.gz"), "signed"), None).await;
    let dir = tempfile::tempdir().unwrap();
    // OPA's sign/config-signed.json, pointed at the test server.
    let key = String::from_utf8(sign("public.pem")).unwrap();
    let tree = json!({
        "services": {"ctl": {"url": bundles.url("http")}},
        "keys": {"payments_ci": {"key": key, "algorithm": "RS256"}},
        "bundles": {"payment": {
            "service": "ctl",
            "resource": "bundles/payment.tar.gz",
            "persist": true,
            "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1},
            "signing": {"keyid": "payments_ci", "scope": "write"},
        }},
        "persistence_directory": dir.path().display().to_string(),
        "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
    });
    let config = || Config::from_tree(tree.clone()).unwrap().0;
    let server = start(config()).await;
    server.wait_for_revision("payments-2025-01-01.1").await;

    // OPA's words for each refusal, recorded from OPA 1.9 (E-bundle-signing.txt).
    let refused = [
        (
            bundle(sign("tampered.tar.gz"), "tampered"),
            "data.json: digest mismatch (want: 345aab4c4b59a7ed5da036c284cbb2a9c66d1296ebe244639bd61e9381f31518, got: 69ba2d8fb895fa6f2df1fa05c0c35985ec8298674b9c4a2e4a58bd839edfa411)",
        ),
        (
            bundle(variant("v2"), "unsigned"),
            "bundle missing .signatures.json file",
        ),
    ];
    for (mode, message) in refused {
        bundles.set(mode);
        let status = server.wait_for_error(message).await;
        assert_eq!(status.message, message);
        assert_eq!(status.active_revision, "payments-2025-01-01.1");
    }
    let body: Json = common::get(server.url("/v1/config"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["result"]["keys"]["payments_ci"],
        json!({"algorithm": "RS256"}),
        "key material is not shown"
    );
    server.stop().await;

    // The persisted copy is checked again at start: a tampered file there is not served.
    let persisted = dir.path().join("bundles/payment/bundle.tar.gz");
    assert_eq!(std::fs::read(&persisted).unwrap(), sign("signed.tar.gz"));
    std::fs::write(&persisted, sign("tampered.tar.gz")).unwrap();
    bundles.set(Mode::Status(503));
    let server = start(config()).await;
    assert!(!server.state.bundles_ready());
    assert!(server.state.snapshot().bundles.is_empty());
}

#[tokio::test]
async fn behind_a_flapping_network_every_decision_comes_from_a_verified_bundle() {
    let bundles = BundleServer::start(bundle(signed("v1", false), "v1"), None).await;
    let dir = tempfile::tempdir().unwrap();
    let key = std::fs::read_to_string(common::fixture("sign/rsa-public.pem")).unwrap();
    let mut tree = json!({
        "services": {"ctl": {"url": bundles.url("http"), "response_header_timeout_seconds": 1}},
        "keys": {"ci": {"key": key, "algorithm": "RS256"}},
        "bundles": {"payment": {
            "resource": "bundles/payment.tar.gz",
            "persist": true,
            "polling": {"min_delay_seconds": 1, "max_delay_seconds": 1},
            "signing": {"keyid": "ci", "scope": "write"},
        }},
        "persistence_directory": dir.path().display().to_string(),
        "verdict": {"addr": ["127.0.0.1:0"], "watch_debounce_ms": 20},
    });
    let server = start(Config::from_tree(tree.take()).unwrap().0).await;
    server.wait_for_revision("payments-2025-01-01.1").await;

    // Decisions run without pause for the whole test; every one must come from v1 or v2 as
    // signed (a tampered bundle would allow 1200 for a customer under both).
    let url = server.url("/v1/data/payment/allow?provenance");
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let decisions = tokio::spawn(async move {
        let client = common::http();
        let input = common::remote::payment_1200();
        let mut count = 0u32;
        loop {
            if stopped.try_recv().is_ok() {
                return count;
            }
            let r: Json = client
                .post(&url)
                .json(&input)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let revision = &r["provenance"]["bundles"]["payment"]["revision"];
            match revision.as_str() {
                Some("payments-2025-01-01.1") => assert_eq!(r["result"], json!(false), "{r}"),
                Some("payments-2025-01-02.1") => assert_eq!(r["result"], json!(true), "{r}"),
                _ => panic!("decided by an unexpected bundle: {r}"),
            }
            count += 1;
        }
    });

    for round in 0..2 {
        let steps = [
            (Mode::Status(503), "Service Unavailable"),
            (
                bundle(signed("v2", true), &format!("tampered-{round}")),
                "digest mismatch",
            ),
            (Mode::Hang, "no response from the server"),
            (
                bundle(signed("v2", false), &format!("v2-{round}")),
                "payments-2025-01-02.1",
            ),
            (
                Mode::Truncated(signed("v1", false).into()),
                "bundle download interrupted",
            ),
            (
                bundle(signed("v1", false), &format!("v1-{round}")),
                "payments-2025-01-01.1",
            ),
        ];
        for (mode, outcome) in steps {
            bundles.set(mode);
            if outcome.starts_with("payments-") {
                server.wait_for_revision(outcome).await;
            } else {
                server.wait_for_error(outcome).await;
            }
        }
    }
    stop.send(()).unwrap();
    let count = decisions.await.unwrap();
    assert!(count > 0);
}

#[test]
fn a_signature_covers_files_verdict_does_not_read() {
    use verdict::bundle::{build, reader, signing, Bundle, Location, Source, Verification};
    // A signed tarball with a README, as `opa build` signs every file of a bundle.
    let mut files = reader::read_tarball(variant("v1").as_slice(), u64::MAX).unwrap();
    files.push(reader::RawFile {
        path: "/README.md".into(),
        bytes: b"payment policy\n".to_vec(),
    });
    let key_path = common::fixture("sign/rsa-private.pem");
    let key = signing::SigningKey::new(key_path.to_str().unwrap(), "RS256", None).unwrap();
    let signatures = signing::sign(&files, &key, None).unwrap();
    build::add_signatures(&mut files, signatures);
    let tarball = |files: &[reader::RawFile]| {
        let mut out = Vec::new();
        build::write_tarball(files, &mut out).unwrap();
        out
    };
    let public = std::fs::read_to_string(common::fixture("sign/rsa-public.pem")).unwrap();
    let verification =
        signing::VerificationConfig::from_flags(&public, "default", "RS256", None, Vec::new())
            .unwrap();
    let source = Source {
        location: Location::Remote { persist_dir: None },
        verification: Verification::Keys(std::sync::Arc::new(verification)),
        ..Source::path("payment")
    };
    let options = verdict::bundle::LoadOptions::default();
    let bundle = Bundle::from_download(&source, &tarball(&files), options, None).unwrap();
    assert_eq!(bundle.revision(), "payments-2025-01-01.1");

    // The README changed after signing: refused, as OPA refuses it.
    let readme = files.iter_mut().find(|f| f.path == "/README.md").unwrap();
    readme.bytes = b"tampered\n".to_vec();
    let err = Bundle::from_download(&source, &tarball(&files), options, None).unwrap_err();
    assert!(
        err.to_string().contains("README.md: digest mismatch"),
        "{err}"
    );
}
