//! A bundle whose policy verifies bearer tokens with `io.jwt.decode_verify` (a builtin regorus
//! lacks, added by verdict) activates and serves real decisions over HTTP: a token signed by
//! the configured key is allowed, a forged, expired or malformed one is not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{request, test_config, write_dir, Server};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value as Json};
use verdict::bundle::Source;

const POLICY: &str = r#"package payments

default allow := false

bearer := t if {
	header := input.headers.authorization
	startswith(header, "Bearer ")
	t := substring(header, 7, -1)
}

claims := payload if {
	constraints := {"cert": data.payments.issuer_key, "iss": "https://issuer.example", "aud": "payments"}
	[valid, _, payload] := io.jwt.decode_verify(bearer, constraints)
	valid
}

allow if claims.scope == "payments:write"
"#;

struct Keys {
    private_pem: String,
    public_pem: String,
}

fn keys() -> Keys {
    let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    Keys {
        private_pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        public_pem: secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(keys: &Keys, exp: u64) -> String {
    let claims = json!({
        "iss": "https://issuer.example",
        "aud": "payments",
        "sub": "merchant-7",
        "scope": "payments:write",
        "exp": exp,
    });
    let key = EncodingKey::from_ec_pem(keys.private_pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).unwrap()
}

async fn start(issuer: &Keys) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let data = json!({"issuer_key": issuer.public_pem}).to_string();
    write_dir(
        dir.path(),
        &[
            (
                ".manifest".into(),
                br#"{"revision": "jwt-1", "roots": ["payments"]}"#.to_vec(),
            ),
            ("payments/policy.rego".into(), POLICY.as_bytes().to_vec()),
            ("payments/data.json".into(), data.into_bytes()),
        ],
    );
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    (dir, server)
}

async fn decide(server: &Server, path: &str, authorization: &str) -> (u16, Json) {
    let body = json!({"input": {"headers": {"authorization": authorization}}}).to_string();
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
async fn a_bundle_verifying_bearer_tokens_serves_decisions() {
    let issuer = keys();
    let (_dir, server) = start(&issuer).await;
    let allow = "/v1/data/payments/allow";

    let good = format!("Bearer {}", token(&issuer, now() + 600));
    assert_eq!(
        decide(&server, allow, &good).await,
        (200, json!({"result": true}))
    );
    let (status, claims) = decide(&server, "/v1/data/payments/claims", &good).await;
    assert_eq!(status, 200);
    assert_eq!(claims["result"]["sub"], json!("merchant-7"));

    let forged = format!("Bearer {}", token(&keys(), now() + 600));
    let expired = format!("Bearer {}", token(&issuer, now() - 600));
    for (what, header) in [
        ("forged", forged.as_str()),
        ("expired", expired.as_str()),
        ("malformed", "Bearer not.a.token"),
        ("missing", "Basic dXNlcjpwYXNz"),
    ] {
        let got = decide(&server, allow, header).await;
        assert_eq!(got, (200, json!({"result": false})), "{what}");
    }
    server.stop().await;
}

#[tokio::test]
async fn strict_builtin_errors_report_a_malformed_token_instead_of_hiding_it() {
    let issuer = keys();
    let (_dir, server) = start(&issuer).await;
    let path = "/v1/data/payments/claims";
    let (status, body) = decide(&server, path, "Bearer abc").await;
    assert_eq!((status, body), (200, json!({})), "undefined by default");
    let (status, body) = decide(
        &server,
        &format!("{path}?strict-builtin-errors=true"),
        "Bearer abc",
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.to_string()
            .contains("encoded JWT had no period separators"),
        "{body}"
    );
    server.stop().await;
}

/// Issue 15's runaway builtin: regorus's `sprintf` padded to a billion columns for seconds and
/// past the memory ceiling. verdict's is Go's, which stops reading a width past a million;
/// `%-40s`, which regorus printed as `40s`, pads as in OPA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sprintf_is_go_sprintf_huge_widths_included() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(
        dir.path(),
        &[(
            "app/policy.rego".into(),
            b"package app\n\nline := sprintf(\"%-8s|%05d|%s\", [input.name, input.n])\n".to_vec(),
        )],
    );
    let server = Server::start(test_config(), vec![Source::path(dir.path())]).await;
    let r = server
        .raw(&request(
            "POST",
            "/v1/data/app/line",
            &[],
            br#"{"input": {"name": "ab", "n": 42}}"#,
        ))
        .await;
    assert_eq!(r.json(), json!({"result": "ab      |00042|%!s(MISSING)"}));

    let r = server
        .raw(&request(
            "POST",
            "/v1/query",
            &[],
            br#"{"query": "x := sprintf(\"%0999999999d\", [1])"}"#,
        ))
        .await;
    assert_eq!(
        r.json(),
        json!({"result": [{"x": "%!(NOVERB)%!(EXTRA int=1)"}]}),
        "{}",
        r.text()
    );
    server.stop().await;
}

/// A single builtin call that would build an array of a trillion numbers is stopped by the
/// evaluation time limit (regorus's own ran to its end, for minutes, past the limit), and the
/// server answers the next query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_huge_range_is_stopped_by_the_time_limit() {
    let mut config = test_config();
    config.verdict.eval_timeout_ms = 200;
    let server = Server::start(config, Vec::new()).await;
    let r = server
        .raw(&request(
            "POST",
            "/v1/query",
            &[],
            br#"{"query": "x := count(numbers.range(1, 1000000000000))"}"#,
        ))
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    let body = r.json();
    assert_eq!(
        body["errors"][0]["code"],
        json!("eval_cancel_error"),
        "{body}"
    );
    let r = server
        .raw(&request(
            "POST",
            "/v1/query",
            &[],
            br#"{"query": "x := count(numbers.range(1, 10))"}"#,
        ))
        .await;
    assert_eq!(r.json(), json!({"result": [{"x": 10}]}));
    server.stop().await;
}
