//! The cost of verifying a bearer token in a policy: `io.jwt.decode_verify` with an RS256 and
//! an ES256 token, through a verdict-compiled bundle (the issuer key in bundle data, the token
//! in the input), beside `io.jwt.decode` (no signature check) for the share of the signature.
//!
//! Run: cargo bench --bench builtins

// A benchmark that cannot set up has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used)]

mod common;

use std::sync::Arc;

use criterion::{criterion_group, Criterion};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use regorus::Value;
use verdict::bundle::{Bundle, LoadOptions, RawFile};
use verdict::policy::vm::{EngineChoice, VmOptions};
use verdict::policy::{compile, CompileOptions, DataPath, PolicySet, Query};

/// The RSA key generated for the unit tests; its certificate carries the public half.
const RSA_KEY: &str = include_str!("../src/policy/builtins/testdata/rsa.pem");
const RSA_CERT: &str = include_str!("../src/policy/builtins/testdata/rsa.crt.pem");

const POLICY: &str = r#"package jwt

valid if {
	[ok, _, _] := io.jwt.decode_verify(input.token, {"cert": data.jwt.key, "aud": "payments"})
	ok
}

decoded := io.jwt.decode(input.token)
"#;

fn policy(key: &str) -> PolicySet {
    let files = vec![
        RawFile {
            path: "/jwt/policy.rego".into(),
            bytes: POLICY.as_bytes().to_vec(),
        },
        RawFile {
            path: "/jwt/data.json".into(),
            bytes: serde_json::json!({ "key": key }).to_string().into_bytes(),
        },
    ];
    let bundle = Bundle::from_files("bench", "", files, LoadOptions::default()).expect("bundle");
    // The interpreter, as before the VM became the default: the figure is the builtin's, and
    // a fast path verified part-way through the samples would mix two engines in one figure.
    let options = CompileOptions {
        vm: VmOptions {
            engine: EngineChoice::Interpreter,
            ..VmOptions::default()
        },
        ..CompileOptions::default()
    };
    compile(&[Arc::new(bundle)], options).expect("bundle compiles")
}

fn token(algorithm: Algorithm, key: &EncodingKey) -> Value {
    let claims = serde_json::json!({
        "iss": "https://issuer.example",
        "aud": "payments",
        "sub": "merchant-7",
        "exp": 4_102_444_800u64,
    });
    let token = jsonwebtoken::encode(&Header::new(algorithm), &claims, key).expect("token");
    let mut input = std::collections::BTreeMap::new();
    input.insert(Value::from("token"), Value::from(token));
    Value::from(input)
}

fn decide(set: &PolicySet, path: &DataPath, input: &Value) -> Option<Value> {
    set.evaluate(Query {
        path,
        input: Some(input.clone()),
        strict_builtin_errors: false,
    })
    .expect("decision")
    .result
}

fn jwt(c: &mut Criterion) {
    let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    let es_private = secret.to_pkcs8_pem(LineEnding::LF).expect("pkcs8");
    let es_public = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("spki");
    let cases = [
        (
            "RS256",
            policy(RSA_CERT),
            token(
                Algorithm::RS256,
                &EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).expect("rsa key"),
            ),
        ),
        (
            "ES256",
            policy(&es_public),
            token(
                Algorithm::ES256,
                &EncodingKey::from_ec_pem(es_private.as_bytes()).expect("ec key"),
            ),
        ),
    ];
    let valid = DataPath::parse("data.jwt.valid").expect("path");
    let decoded = DataPath::parse("data.jwt.decoded").expect("path");
    let mut group = c.benchmark_group("io.jwt");
    for (name, set, input) in &cases {
        assert_eq!(
            decide(set, &valid, input),
            Some(Value::from(true)),
            "{name} verifies"
        );
        group.bench_function(format!("decode_verify {name}"), |b| {
            b.iter(|| decide(set, &valid, input))
        });
        group.bench_function(format!("decode {name}"), |b| {
            b.iter(|| decide(set, &decoded, input))
        });
    }
    group.finish();
}

criterion_group!(benches, jwt);

fn main() {
    common::main_on_eval_stack(benches);
}
