//! `crypto.x509.*` against a PKI generated per run with rcgen and the RSA key and
//! certificate generated for these tests (testdata/).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use regorus::Value;

use crate::policy::builtins::testing::{eval_with_input, fails, json};

const RSA_PEM: &str = include_str!("../testdata/rsa.pem");
const RSA_CERT: &str = include_str!("../testdata/rsa.crt.pem");

struct Pki {
    root: String,
    intermediate: String,
    leaf: String,
    leaf_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
    };
    let root = CertifiedIssuer::self_signed(ca("Test Root"), KeyPair::generate().unwrap()).unwrap();
    let intermediate =
        CertifiedIssuer::signed_by(ca("Test Intermediate"), KeyPair::generate().unwrap(), &root)
            .unwrap();
    let mut leaf = CertificateParams::new(vec!["pay.example".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "pay.example");
    leaf.subject_alt_names
        .push(SanType::URI("spiffe://example.org/pay".try_into().unwrap()));
    let leaf = leaf
        .signed_by(&KeyPair::generate().unwrap(), &intermediate)
        .unwrap();
    Pki {
        root: root.pem(),
        intermediate: intermediate.pem(),
        leaf: leaf.pem(),
        leaf_der: leaf.der().to_vec(),
    }
}

/// Evaluates `expr` with `input` bound to `text`, in lax mode.
fn with(expr: &str, text: &str) -> Option<Value> {
    eval_with_input(expr, Value::from(text), false).unwrap()
}

fn get<'v>(v: &'v Value, path: &[&str]) -> &'v Value {
    path.iter().fold(v, |v, k| &v[&Value::from(*k)])
}

#[test]
fn certificates_parse_from_pem_base64_pem_and_base64_der() {
    let p = pki();
    let chain = format!("{}{}", p.leaf, p.intermediate);
    let inputs = [
        chain.clone(),
        STANDARD.encode(&chain),
        STANDARD.encode(&p.leaf_der),
    ];
    for text in inputs {
        let certs = with("crypto.x509.parse_certificates(input)", &text).unwrap();
        let leaf = &certs[0];
        assert_eq!(
            get(leaf, &["Subject", "CommonName"]),
            &Value::from("pay.example")
        );
        assert_eq!(
            get(leaf, &["Issuer", "CommonName"]),
            &Value::from("Test Intermediate")
        );
        assert_eq!(get(leaf, &["DNSNames"]), &json(r#"["pay.example"]"#));
        assert_eq!(
            get(leaf, &["URIStrings"]),
            &json(r#"["spiffe://example.org/pay"]"#)
        );
        assert_eq!(
            get(leaf, &["URIs"])[0][&Value::from("Host")],
            Value::from("example.org")
        );
        assert_eq!(get(leaf, &["Version"]), &Value::from(3));
        assert_eq!(get(leaf, &["IsCA"]), &Value::from(false));
        assert_eq!(get(leaf, &["PublicKeyAlgorithm"]), &Value::from(3), "ECDSA");
        let raw = get(leaf, &["Raw"]).as_string().unwrap();
        assert_eq!(STANDARD.decode(&**raw).unwrap(), p.leaf_der);
        let not_after = get(leaf, &["NotAfter"]).as_string().unwrap().to_string();
        assert!(
            not_after.ends_with('Z') && not_after.contains('T'),
            "{not_after}"
        );
    }
    let chain = with("crypto.x509.parse_certificates(input)", &chain).unwrap();
    assert_eq!(get(&chain[1], &["IsCA"]), &Value::from(true));
    assert_eq!(get(&chain[1], &["DNSNames"]), &Value::Null);
}

#[test]
fn malformed_certificates_are_errors() {
    fails(
        r#"crypto.x509.parse_certificates("foobar")"#,
        "illegal base64 data at input byte 4",
    );
    fails(
        r#"crypto.x509.parse_certificates("YmFkc3RyaW5n")"#,
        "x509: malformed certificate",
    );
    let key_block = RSA_PEM.replace('\n', "\\n");
    fails(
        &format!(r#"crypto.x509.parse_certificates("{key_block}")"#),
        "PEM block type is 'PRIVATE KEY', expected CERTIFICATE",
    );
    fails(
        "crypto.x509.parse_certificates(1)",
        "operand 1 must be string",
    );
}

#[test]
fn chains_verify_from_root_to_leaf_and_come_back_leaf_first() {
    let p = pki();
    let ordered = format!("{}{}{}", p.root, p.intermediate, p.leaf);
    let result = with("crypto.x509.parse_and_verify_certificates(input)", &ordered).unwrap();
    assert_eq!(result[0], Value::from(true));
    let names: Vec<Value> = (0..3)
        .map(|i| get(&result[1][i], &["Subject", "CommonName"]).clone())
        .collect();
    assert_eq!(
        Value::from(names),
        json(r#"["pay.example", "Test Intermediate", "Test Root"]"#)
    );

    let unverified = json("[false, []]");
    let reversed = format!("{}{}{}", p.leaf, p.intermediate, p.root);
    let missing = format!("{}{}", p.root, p.leaf);
    let other_root = format!("{}{}{}", pki().root, p.intermediate, p.leaf);
    for (what, text) in [
        ("reversed", reversed),
        ("no intermediate", missing),
        ("other root", other_root),
        ("one cert", p.leaf.clone()),
        ("junk", "junk".into()),
    ] {
        let got = with("crypto.x509.parse_and_verify_certificates(input)", &text);
        assert_eq!(got, Some(unverified.clone()), "{what}");
    }
}

#[test]
fn verify_options_check_names_times_and_refuse_unknown_keys() {
    let p = pki();
    let chain = format!("{}{}{}", p.root, p.intermediate, p.leaf);
    let call = |options: &str| {
        with(
            &format!("crypto.x509.parse_and_verify_certificates_with_options(input, {options})"),
            &chain,
        )
    };
    assert_eq!(
        call(r#"{"DNSName": "pay.example"}"#).unwrap()[0],
        Value::from(true)
    );
    assert_eq!(
        call(r#"{"DNSName": "other.example"}"#).unwrap()[0],
        Value::from(false)
    );
    assert_eq!(
        call(r#"{"KeyUsages": ["KeyUsageClientAuth"]}"#).unwrap()[0],
        Value::from(true),
        "no EKU allows any"
    );
    // rcgen certificates start at 1975: 1970 is before every one of them.
    assert_eq!(
        call(r#"{"CurrentTime": 1000000000}"#).unwrap()[0],
        Value::from(false)
    );
    assert_eq!(call(r#"{"Color": 1}"#), None);
    assert!(eval_with_input(
        r#"crypto.x509.parse_and_verify_certificates_with_options(input, {"KeyUsages": ["Nope"]})"#,
        Value::from(chain.as_str()),
        true
    )
    .is_err_and(|e| e.contains("invalid entries for 'KeyUsages' found: [Nope]")));
}

#[test]
fn certificate_requests_parse() {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["csr.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "csr.example");
    let csr = params.serialize_request(&key).unwrap();
    let pem = csr.pem().unwrap();
    for text in [
        pem.clone(),
        STANDARD.encode(&pem),
        STANDARD.encode(csr.der()),
    ] {
        let parsed = with("crypto.x509.parse_certificate_request(input)", &text).unwrap();
        assert_eq!(
            get(&parsed, &["Subject", "CommonName"]),
            &Value::from("csr.example")
        );
    }
    fails(
        r#"crypto.x509.parse_certificate_request("YmFkc3RyaW5n")"#,
        "asn1: structure error",
    );
}

#[test]
fn key_pairs_and_private_keys_parse() {
    let pair = eval_with_input(
        "crypto.x509.parse_keypair(input.cert, input.key)",
        json(&serde_json::json!({"cert": RSA_CERT, "key": RSA_PEM}).to_string()),
        true,
    )
    .unwrap()
    .unwrap();
    let der = pem::parse(RSA_CERT).unwrap().into_contents();
    assert_eq!(
        pair[&Value::from("Certificate")][0],
        Value::from(STANDARD.encode(der))
    );
    let other_key = KeyPair::generate().unwrap().serialize_pem();
    let mismatch = eval_with_input(
        "crypto.x509.parse_keypair(input.cert, input.key)",
        json(&serde_json::json!({"cert": RSA_CERT, "key": other_key}).to_string()),
        true,
    );
    assert!(mismatch.is_err_and(|e| e.contains("private key does not match public key")));

    let jwk = with("crypto.x509.parse_rsa_private_key(input)", RSA_PEM).unwrap();
    assert_eq!(jwk[&Value::from("kty")], Value::from("RSA"));
    assert_eq!(jwk[&Value::from("e")], Value::from("AQAB"));
    fails(
        r#"crypto.x509.parse_rsa_private_key("invalid")"#,
        "illegal base64",
    );

    assert_eq!(
        with("count(crypto.parse_private_keys(input))", RSA_PEM),
        Some(Value::from(1))
    );
    assert_eq!(
        with("crypto.parse_private_keys(input)", "nope"),
        Some(json("[]"))
    );
    assert_eq!(
        with("crypto.parse_private_keys(input)", ""),
        Some(Value::Null)
    );
}
