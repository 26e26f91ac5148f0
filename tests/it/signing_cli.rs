//! `verdict build` and `verdict sign` against OPA's own: the bundle laid out and signed as
//! `opa build` does (byte for byte where OPA is deterministic), directory files named as OPA
//! names them, and flag mistakes exiting 64. The binary runs for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::signing::{file, fixture, flags, jwt_parts, stderr, tarball, verdict};

use std::path::Path;

use serde_json::Value as Json;
use verdict::bundle::reader::{read_dir, read_tarball, RawFile};
use verdict::bundle::signing;
use verdict::bundle::{Bundle, LoadOptions};

const LIMIT: u64 = 1 << 30;

/// The source OPA built the fixture from: `bundle/` with three modules, data and a manifest
/// without `rego_version` (OPA's build adds it).
fn opa_source(dir: &Path) {
    let signed = tarball("signed.tar.gz");
    for f in signed.iter().filter(|f| f.path.ends_with(".rego")) {
        let path = dir.join(f.path.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &f.bytes).unwrap();
    }
    let data: Json = serde_json::from_slice(&file(&signed, "/data.json").bytes).unwrap();
    std::fs::write(
        dir.join("bundle/data.json"),
        serde_json::to_string_pretty(&data).unwrap(),
    )
    .unwrap();
    let mut manifest: Json = serde_json::from_slice(&file(&signed, "/.manifest").bytes).unwrap();
    manifest.as_object_mut().unwrap().remove("rego_version");
    std::fs::write(dir.join("bundle/.manifest"), manifest.to_string()).unwrap();
    std::fs::write(
        dir.join("claims.json"),
        r#"{"scope":"write","iss":"payments-ci"}"#,
    )
    .unwrap();
}

#[test]
fn verdict_build_lays_out_and_signs_the_bundle_as_opa_does() {
    let dir = tempfile::tempdir().unwrap();
    opa_source(dir.path());
    let key = fixture("rsa-private.pem");
    let out = verdict(
        dir.path(),
        &[
            "build",
            "-b",
            "bundle",
            "-o",
            "out.tar.gz",
            "--signing-key",
            key.to_str().unwrap(),
            "--signing-alg",
            "RS256",
            "--claims-file",
            "claims.json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let built = read_tarball(
        std::fs::read(dir.path().join("out.tar.gz"))
            .unwrap()
            .as_slice(),
        LIMIT,
    )
    .unwrap();
    let opa = tarball("signed.tar.gz");
    let names = |files: &[RawFile]| files.iter().map(|f| f.path.clone()).collect::<Vec<_>>();
    assert_eq!(names(&built), names(&opa));
    for f in opa.iter().filter(|f| f.path != "/.signatures.json") {
        assert_eq!(file(&built, &f.path).bytes, f.bytes, "{}", f.path);
    }
    // Same header and payload bytes as OPA's JWT; only the key behind the signature differs.
    let (header, payload) = jwt_parts(&file(&built, "/.signatures.json").bytes);
    assert_eq!(
        jwt_parts(&file(&opa, "/.signatures.json").bytes),
        (header, payload)
    );
    let doc: Json = serde_json::from_slice(&file(&built, "/.signatures.json").bytes).unwrap();
    assert_eq!(doc["plugin"], "_default");
    signing::verify(&built, &flags("rsa-public.pem", "RS256", Some("write"))).unwrap();
    Bundle::from_files("out", "", built, LoadOptions::default()).unwrap();

    // `verdict build -b` verifies a signed input bundle, with OPA's flags.
    let signed = fixture("signed.tar.gz");
    let signed = signed.to_str().unwrap();
    let out = verdict(dir.path(), &["build", "-b", signed, "-o", "again.tar.gz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("verification key not provided"),
        "{}",
        stderr(&out)
    );
    let public = fixture("public.pem");
    let public = public.to_str().unwrap();
    let args = [
        "build",
        "-b",
        signed,
        "-o",
        "again.tar.gz",
        "--verification-key",
        public,
    ];
    let out = verdict(dir.path(), &args);
    assert!(stderr(&out).contains("scope mismatch"), "{}", stderr(&out));
    let out = verdict(dir.path(), &[&args[..], &["--scope", "write"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn verdict_sign_names_directory_files_as_opa_does() {
    let dir = tempfile::tempdir().unwrap();
    opa_source(dir.path());
    let key = fixture("ec256-private.pem");
    let out = verdict(
        dir.path(),
        &[
            "sign",
            "--bundle",
            "bundle",
            "--signing-key",
            key.to_str().unwrap(),
            "--signing-alg",
            "ES256",
            "--claims-file",
            "claims.json",
            "-o",
            "bundle",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let signatures = std::fs::read(dir.path().join("bundle/.signatures.json")).unwrap();
    let doc: Json = serde_json::from_slice(&signatures).unwrap();
    assert!(
        doc.get("plugin").is_none(),
        "opa sign writes no plugin: {doc}"
    );
    let (header, payload) = jwt_parts(&signatures);
    assert_eq!(header, br#"{"alg":"ES256","typ":"JWT"}"#);
    let payload: Json = serde_json::from_slice(&payload).unwrap();
    let names: Vec<&str> = payload["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"bundle/data.json") && names.contains(&"bundle/.manifest"),
        "{names:?}"
    );

    let files = read_dir(&dir.path().join("bundle"), LIMIT).unwrap();
    let config = flags("ec256-public.pem", "ES256", Some("write"));
    signing::verify_in(&files, "bundle", &config).unwrap();
    let err = signing::verify(&files, &config).unwrap_err().to_string();
    assert!(err.starts_with("file .manifest not included"), "{err}");
}

#[test]
fn cli_flag_mistakes_exit_64() {
    let dir = tempfile::tempdir().unwrap();
    opa_source(dir.path());
    let key = fixture("rsa-private.pem");
    let key = key.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["build", "bundle", "--signing-key", key],
            "enable bundle mode (ie. --bundle) to verify or sign",
        ),
        (
            &["build", "-b", "bundle", "--claims-file", "claims.json"],
            "specify the secret (HMAC) or path of the PEM file",
        ),
        (
            &[
                "build",
                "-b",
                "bundle",
                "--signing-key",
                key,
                "--signing-alg",
                "XS256",
            ],
            "unknown signature algorithm: XS256",
        ),
        (
            &["sign", "bundle", "--signing-key", key],
            "enable bundle mode (ie. --bundle) to sign",
        ),
        (
            &["sign", "-b", "bundle"],
            "specify the secret (HMAC) or path of the PEM file",
        ),
    ];
    for (args, want) in cases {
        let out = verdict(dir.path(), args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert!(!dir.path().join("bundle.tar.gz").exists());
}
