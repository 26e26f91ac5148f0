//! `io.jwt.*` against tokens and keys made here: an RSA key generated for these tests
//! (testdata/), P-256 and Ed25519 keys generated per run, HMAC secrets.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use regorus::Value;
use rsa::traits::{PrivateKeyParts, PublicKeyParts};

use crate::policy::builtins::testing::{eval, eval_with_input, fails, json, value};

const RSA_PEM: &str = include_str!("../testdata/rsa.pem");
const RSA_PUBLIC: &str = include_str!("../testdata/rsa.pub.pem");
const RSA_CERT: &str = include_str!("../testdata/rsa.crt.pem");
const SECRET_JWK: &str = r#"{"kty": "oct", "k": "c2VjcmV0"}"#;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A Rego string literal holding `text`.
fn lit(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn rsa_jwk() -> String {
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).unwrap();
    let primes = key.primes();
    serde_json::json!({
        "kty": "RSA",
        "n": b64(&key.n().to_bytes_be()),
        "e": b64(&key.e().to_bytes_be()),
        "d": b64(&key.d().to_bytes_be()),
        "p": b64(&primes[0].to_bytes_be()),
        "q": b64(&primes[1].to_bytes_be()),
    })
    .to_string()
}

fn sign(header: &str, claims: &str, jwk: &str) -> String {
    // Not `value`: RSA-PSS signatures are randomized, two calls differ.
    let call = format!("io.jwt.encode_sign({header}, {claims}, {jwk})");
    match eval(&call, true) {
        Ok(Some(Value::String(s))) => s.to_string(),
        other => panic!("{call}: {other:?}"),
    }
}

fn p256_pair() -> (String, String) {
    use p256::pkcs8::EncodePublicKey;
    let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    let public = secret
        .public_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "d": b64(&secret.to_bytes())});
    (jwk.to_string(), public)
}

#[test]
fn decode_returns_header_payload_and_the_signature_in_hex() {
    let token = sign(r#"{"alg": "HS256"}"#, r#"{"sub": "alice"}"#, SECRET_JWK);
    let decoded = value(&format!("io.jwt.decode({})", lit(&token)));
    let signature = token.rsplit('.').next().unwrap();
    let hex: String = URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let want = format!(r#"[{{"alg": "HS256"}}, {{"sub": "alice"}}, "{hex}"]"#);
    assert_eq!(decoded, json(&want));
}

#[test]
fn malformed_tokens_are_errors_in_opas_words() {
    fails(
        r#"io.jwt.decode("abc")"#,
        "encoded JWT had no period separators",
    );
    fails(
        r#"io.jwt.decode("a.b")"#,
        "encoded JWT must have 3 sections, found 2",
    );
    fails(
        r#"io.jwt.decode("e%.e30.c2ln")"#,
        "JWT header had invalid encoding",
    );
    fails(
        r#"io.jwt.decode("e30.WzFd.c2ln")"#,
        "decoded JSON type was not an Object",
    );
    fails(
        r#"io.jwt.decode("eyJlbmMiOiAiQSJ9.e30.c2ln")"#,
        "JWT is a JWE object",
    );
    assert_eq!(
        value(r#"io.jwt.decode("e30.e30.c2ln")"#),
        json(r#"[{}, {}, "736967"]"#)
    );
}

#[test]
fn wrong_argument_types_are_undefined_or_a_type_error_when_strict() {
    fails(
        "io.jwt.decode(1)",
        "operand 1 must be string but got number",
    );
    fails(
        r#"io.jwt.verify_hs256("a.b.c", {})"#,
        "operand 2 must be string but got object",
    );
    fails(
        r#"io.jwt.decode_verify("a.b.c", "k")"#,
        "operand 2 must be object but got string",
    );
}

#[test]
fn a_huge_token_is_refused_quickly_without_a_panic() {
    let started = std::time::Instant::now();
    let huge = Value::from(format!("{}.e30.e30", "A".repeat(16 << 20)));
    let lax = eval_with_input("io.jwt.decode(input)", huge.clone(), false);
    assert_eq!(lax, Ok(None));
    let strict = eval_with_input("io.jwt.decode(input)", huge, true);
    assert!(strict.is_err_and(|e| e.contains("bad JWT header: invalid JSON")));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn hmac_tokens_verify_with_their_secret_only() {
    let token = lit(&sign(r#"{"alg": "HS256"}"#, "{}", SECRET_JWK));
    assert_eq!(
        value(&format!(r#"io.jwt.verify_hs256({token}, "secret")"#)),
        Value::from(true)
    );
    assert_eq!(
        value(&format!(r#"io.jwt.verify_hs256({token}, "other")"#)),
        Value::from(false)
    );
    assert_eq!(
        value(&format!(r#"io.jwt.verify_hs512({token}, "secret")"#)),
        Value::from(false)
    );
}

#[test]
fn rsa_tokens_verify_with_a_public_key_a_certificate_or_a_jwk() {
    let jwk = rsa_jwk();
    for (alg, verify) in [("RS256", "verify_rs256"), ("PS384", "verify_ps384")] {
        let token = lit(&sign(&format!(r#"{{"alg": "{alg}"}}"#), "{}", &jwk));
        for key in [RSA_PUBLIC, RSA_CERT] {
            let call = format!("io.jwt.{verify}({token}, {})", lit(key));
            assert_eq!(value(&call), Value::from(true), "{alg} with {key}");
        }
        let public_jwk: serde_json::Value = serde_json::from_str(&jwk).unwrap();
        let public_jwk = serde_json::json!({"keys": [{"kty": "RSA", "n": public_jwk["n"], "e": public_jwk["e"]}]});
        let call = format!("io.jwt.{verify}({token}, {})", lit(&public_jwk.to_string()));
        assert_eq!(value(&call), Value::from(true), "{alg} with a JWKS");
        // Another algorithm's verifier, or another key, says false.
        let (_, other) = p256_pair();
        assert_eq!(
            value(&format!("io.jwt.{verify}({token}, {})", lit(&other))),
            Value::from(false)
        );
        assert_eq!(
            value(&format!(
                "io.jwt.verify_rs512({token}, {})",
                lit(RSA_PUBLIC)
            )),
            Value::from(false)
        );
    }
}

#[test]
fn ecdsa_and_eddsa_tokens_verify() {
    let (jwk, public) = p256_pair();
    let token = lit(&sign(r#"{"alg": "ES256"}"#, r#"{"a": 1}"#, &jwk));
    assert_eq!(
        value(&format!("io.jwt.verify_es256({token}, {})", lit(&public))),
        Value::from(true)
    );
    assert_eq!(
        value(&format!("io.jwt.verify_es384({token}, {})", lit(&public))),
        Value::from(false)
    );

    let ed = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "d": b64(&ed.to_bytes()), "x": b64(ed.verifying_key().as_bytes())});
    let token = lit(&sign(r#"{"alg": "EdDSA"}"#, "{}", &jwk.to_string()));
    let public = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(ed.verifying_key().as_bytes())});
    let call = format!("io.jwt.verify_eddsa({token}, {})", lit(&public.to_string()));
    assert_eq!(value(&call), Value::from(true));
}

#[test]
fn malformed_keys_are_errors() {
    let token = lit(&sign(r#"{"alg": "RS256"}"#, "{}", &rsa_jwk()));
    let broken_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    fails(
        &format!("io.jwt.verify_rs256({token}, {})", lit(broken_pem)),
        "failed to parse a PEM public key",
    );
    let trailing = format!("{RSA_PUBLIC}junk");
    fails(
        &format!("io.jwt.verify_rs256({token}, {})", lit(&trailing)),
        "extra data after a PEM certificate block",
    );
    fails(
        &format!(r#"io.jwt.verify_rs256({token}, "not a key")"#),
        "failed to parse a JWK key (set)",
    );
    fails(
        &format!(r#"io.jwt.verify_rs256({token}, "{{\"kty\": \"RSA\"}}")"#),
        "JWK is missing the n parameter",
    );
}

fn decode_verify(token: &str, constraints: &str) -> Value {
    value(&format!(
        "io.jwt.decode_verify({}, {constraints})",
        lit(token)
    ))
}

fn unverified() -> Value {
    json("[false, {}, {}]")
}

#[test]
fn decode_verify_checks_signature_then_claims() {
    let claims = r#"{"iss": "bank", "aud": ["pay", "refund"], "nbf": 1000, "exp": 2000}"#;
    let token = sign(r#"{"alg": "RS256", "typ": "JWT"}"#, claims, &rsa_jwk());
    let cert = lit(RSA_CERT);
    let at = |t: u64| format!(r#"{{"cert": {cert}, "time": {t}}}"#);
    let want = json(&format!(
        r#"[true, {{"alg": "RS256", "typ": "JWT"}}, {claims}]"#
    ));
    let constraints = format!(
        r#"{{"cert": {cert}, "time": 1500000000000, "iss": "bank", "aud": "pay", "alg": "RS256"}}"#
    );
    assert_eq!(decode_verify(&token, &constraints), want);
    // An audience in the token binds the caller to name it.
    assert_eq!(decode_verify(&token, &at(1_500_000_000_000)), unverified());
    let no_aud = sign(r#"{"alg": "RS256"}"#, r#"{"exp": 2000}"#, &rsa_jwk());
    assert_eq!(
        decode_verify(&no_aud, &at(1_999_000_000_000))[0],
        Value::from(true)
    );
    assert_eq!(
        decode_verify(&no_aud, &at(2_000_000_000_000)),
        unverified(),
        "expired"
    );
    let checks = [
        r#""iss": "other", "aud": "pay""#,
        r#""aud": "other""#,
        r#""aud": "pay", "alg": "ES256""#,
    ];
    for extra in checks {
        let c = format!(r#"{{"cert": {cert}, "time": 1500000000000, {extra}}}"#);
        assert_eq!(decode_verify(&token, &c), unverified(), "{extra}");
    }
    let early = format!(r#"{{"cert": {cert}, "time": 999000000000, "aud": "pay"}}"#);
    assert_eq!(decode_verify(&token, &early), unverified(), "before nbf");
    assert_eq!(
        decode_verify(&token, r#"{"secret": "secret", "aud": "pay"}"#),
        unverified(),
        "wrong key kind"
    );
}

#[test]
fn decode_verify_refuses_bad_constraints() {
    let token = lit(&sign(r#"{"alg": "HS256"}"#, "{}", SECRET_JWK));
    fails(
        &format!("io.jwt.decode_verify({token}, {{}})"),
        "no key constraint",
    );
    let both = format!(
        r#"io.jwt.decode_verify({token}, {{"secret": "s", "cert": {}}})"#,
        lit(RSA_CERT)
    );
    fails(&both, "duplicate key constraints");
    fails(
        &format!(r#"io.jwt.decode_verify({token}, {{"secret": "s", "color": 1}})"#),
        "unknown token validation constraint: color",
    );
    fails(
        &format!(r#"io.jwt.decode_verify({token}, {{"secret": "s", "time": "now"}})"#),
        "token time constraint: must be a number",
    );
    fails(
        &format!(r#"io.jwt.decode_verify({token}, {{"secret": "s", "time": -1}})"#),
        "must not be negative",
    );
}

#[test]
fn encode_sign_refuses_unknown_algorithms_and_non_json_payloads() {
    fails(
        &format!(r#"io.jwt.encode_sign({{"alg": "none"}}, {{}}, {SECRET_JWK})"#),
        "unknown JWS algorithm: none",
    );
    fails(
        &format!(r#"io.jwt.encode_sign_raw(`{{"alg": "HS256"}}`, "x", `{SECRET_JWK}`)"#),
        "type is JWT but payload is not JSON",
    );
    fails(
        &format!(r#"io.jwt.encode_sign({{"alg": "RS256"}}, {{}}, {SECRET_JWK})"#),
        "cannot sign",
    );
    fails(
        r#"io.jwt.encode_sign_raw(`{"alg": "HS256"}`, "{}", "not a jwk")"#,
        "failed to parse a JWK key (set)",
    );
}

#[test]
fn encode_sign_raw_reproduces_rfc_7515_appendix_a1() {
    // RFC 7515 A.1: the header and payload bytes as the RFC writes them, CR LF included.
    let header = lit("{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}");
    let payload =
        lit("{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}");
    let key = lit(
        r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#,
    );
    assert_eq!(
        value(&format!("io.jwt.encode_sign_raw({header}, {payload}, {key})")),
        Value::from(
            "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
             .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
             .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        )
    );
}
