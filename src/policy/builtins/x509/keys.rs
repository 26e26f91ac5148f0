//! Private keys for `crypto.parse_private_keys`, `crypto.x509.parse_rsa_private_key` and
//! `crypto.x509.parse_keypair`: PKCS#1, PKCS#8 and SEC 1 PEM blocks, answered as Go marshals
//! its key types (or as a JWK for `parse_rsa_private_key`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use regorus::Value;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, RsaPrivateKey};

use super::pem_blocks;
use crate::policy::builtins::args::{self, object_of, BuiltinError};

enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    /// Curve name as JWK writes it, scalar, public point (uncompressed SEC 1).
    Ec(&'static str, Vec<u8>, Vec<u8>),
    Ed25519(ed25519_dalek::SigningKey),
}

fn parse_error(e: impl std::fmt::Display) -> BuiltinError {
    BuiltinError::invalid(e.to_string())
}

fn ec_key(der: &[u8], sec1: bool) -> Option<PrivateKey> {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    macro_rules! curve {
        ($crate_:ident, $name:literal) => {
            let key = if sec1 {
                $crate_::SecretKey::from_sec1_der(der).ok()
            } else {
                $crate_::SecretKey::from_pkcs8_der(der).ok()
            };
            if let Some(k) = key {
                let point = k.public_key().to_encoded_point(false).as_bytes().to_vec();
                return Some(PrivateKey::Ec($name, k.to_bytes().to_vec(), point));
            }
        };
    }
    curve!(p256, "P-256");
    curve!(p384, "P-384");
    curve!(p521, "P-521");
    None
}

/// OPA's `getPrivateKeysFromPEMData`: base64 of PEM is accepted; blocks of other types are
/// skipped; a key block that does not parse is an error.
fn private_keys(text: &str) -> Result<Vec<PrivateKey>, BuiltinError> {
    let bytes = match args::base64_std(text) {
        Ok(decoded) => decoded,
        Err(_) => text.as_bytes().to_vec(),
    };
    let mut keys = Vec::new();
    for (kind, der) in pem_blocks(&bytes) {
        let key = match kind.as_str() {
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(&der)
                .map(|k| PrivateKey::Rsa(Box::new(k)))
                .map_err(parse_error)?,
            "EC PRIVATE KEY" => ec_key(&der, true)
                .ok_or_else(|| parse_error("x509: failed to parse EC private key"))?,
            "PRIVATE KEY" => {
                if let Ok(k) = RsaPrivateKey::from_pkcs8_der(&der) {
                    PrivateKey::Rsa(Box::new(k))
                } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_der(&der) {
                    PrivateKey::Ed25519(k)
                } else {
                    ec_key(&der, false)
                        .ok_or_else(|| parse_error("x509: failed to parse private key"))?
                }
            }
            _ => continue,
        };
        keys.push(key);
    }
    Ok(keys)
}

fn big(n: &BigUint) -> Value {
    Value::from_numeric_string(&n.to_string()).unwrap_or(Value::Null)
}

fn big_bytes(be: &[u8]) -> Value {
    big(&BigUint::from_bytes_be(be))
}

/// Go's JSON of `*rsa.PrivateKey`, `*ecdsa.PrivateKey` or `ed25519.PrivateKey`.
fn go_json(key: &PrivateKey) -> Value {
    match key {
        PrivateKey::Rsa(k) => object_of([
            ("N", big(k.n())),
            ("E", big(k.e())),
            ("D", big(k.d())),
            (
                "Primes",
                Value::from(k.primes().iter().map(big).collect::<Vec<_>>()),
            ),
            (
                "Precomputed",
                object_of([
                    ("Dp", k.dp().map_or(Value::Null, big)),
                    ("Dq", k.dq().map_or(Value::Null, big)),
                    ("Qinv", Value::Null),
                    ("CRTValues", Value::new_array()),
                ]),
            ),
        ]),
        PrivateKey::Ec(_, d, point) => {
            let half = point.len().saturating_sub(1) / 2;
            let (x, y) = point.get(1..).unwrap_or_default().split_at(half);
            object_of([
                ("Curve", Value::new_object()),
                ("X", big_bytes(x)),
                ("Y", big_bytes(y)),
                ("D", big_bytes(d)),
            ])
        }
        PrivateKey::Ed25519(k) => Value::from(STANDARD.encode(k.to_keypair_bytes())),
    }
}

fn b64url(bytes: &[u8]) -> Value {
    Value::from(URL_SAFE_NO_PAD.encode(bytes))
}

fn jwk(key: &PrivateKey) -> Value {
    match key {
        PrivateKey::Rsa(k) => {
            let primes = k.primes();
            let part = |n: Option<&BigUint>| n.map_or(Value::Null, |n| b64url(&n.to_bytes_be()));
            let qi = k.crt_coefficient();
            object_of([
                ("kty", Value::from("RSA")),
                ("n", b64url(&k.n().to_bytes_be())),
                ("e", b64url(&k.e().to_bytes_be())),
                ("d", b64url(&k.d().to_bytes_be())),
                ("p", part(primes.first())),
                ("q", part(primes.get(1))),
                ("dp", part(k.dp())),
                ("dq", part(k.dq())),
                ("qi", part(qi.as_ref())),
            ])
        }
        PrivateKey::Ec(curve, d, point) => {
            let half = point.len().saturating_sub(1) / 2;
            let (x, y) = point.get(1..).unwrap_or_default().split_at(half);
            object_of([
                ("kty", Value::from("EC")),
                ("crv", Value::from(*curve)),
                ("x", b64url(x)),
                ("y", b64url(y)),
                ("d", b64url(d)),
            ])
        }
        PrivateKey::Ed25519(k) => object_of([
            ("kty", Value::from("OKP")),
            ("crv", Value::from("Ed25519")),
            ("x", b64url(k.verifying_key().as_bytes())),
            ("d", b64url(&k.to_bytes())),
        ]),
    }
}

pub fn parse_private_keys(args: &[Value]) -> Result<Value, BuiltinError> {
    let text = args::string(args, 0)?;
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let keys = private_keys(text)?;
    Ok(Value::from(keys.iter().map(go_json).collect::<Vec<_>>()))
}

pub fn parse_rsa_private_key(args: &[Value]) -> Result<Value, BuiltinError> {
    let text = args::string(args, 0)?;
    if text.is_empty() {
        return Err(BuiltinError::invalid("input PEM data was empty"));
    }
    let pem = if text.starts_with("-----BEGIN") {
        text.to_string()
    } else {
        String::from_utf8_lossy(&args::base64_std(text)?).into_owned()
    };
    Ok(private_keys(&pem)?.first().map_or(Value::Null, jwk))
}

/// The SubjectPublicKeyInfo DER of a private key's public half, to match it to a certificate.
fn public_spki(key: &PrivateKey) -> Option<Vec<u8>> {
    match key {
        PrivateKey::Rsa(k) => k
            .to_public_key()
            .to_public_key_der()
            .ok()
            .map(|d| d.into_vec()),
        PrivateKey::Ec("P-256", _, point) => p256::PublicKey::from_sec1_bytes(point)
            .ok()?
            .to_public_key_der()
            .ok()
            .map(|d| d.into_vec()),
        PrivateKey::Ec("P-384", _, point) => p384::PublicKey::from_sec1_bytes(point)
            .ok()?
            .to_public_key_der()
            .ok()
            .map(|d| d.into_vec()),
        PrivateKey::Ec(..) => None,
        PrivateKey::Ed25519(k) => k
            .verifying_key()
            .to_public_key_der()
            .ok()
            .map(|d| d.into_vec()),
    }
}

/// Go's `tls.X509KeyPair` as JSON: the certificate chain (DER, base64), the key, the leaf.
pub fn parse_keypair(args: &[Value]) -> Result<Value, BuiltinError> {
    let pem_or_base64 = |text: &str| -> Result<Vec<u8>, BuiltinError> {
        if text.starts_with("-----BEGIN") {
            Ok(text.as_bytes().to_vec())
        } else {
            args::base64_std(text)
        }
    };
    let certs = pem_or_base64(args::string(args, 0)?)?;
    let key = pem_or_base64(args::string(args, 1)?)?;
    let chain: Vec<Vec<u8>> = pem_blocks(&certs)
        .into_iter()
        .filter(|(kind, _)| kind == "CERTIFICATE")
        .map(|(_, der)| der)
        .collect();
    let Some(leaf_der) = chain.first() else {
        return Err(BuiltinError::invalid(
            "tls: failed to find any PEM data in certificate input",
        ));
    };
    let keys = private_keys(&String::from_utf8_lossy(&key))?;
    let Some(key) = keys.first() else {
        return Err(BuiltinError::invalid(
            "tls: failed to find any PEM data in key input",
        ));
    };
    let (_, leaf) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|e| BuiltinError::invalid(format!("x509: malformed certificate: {e}")))?;
    if public_spki(key).as_deref() != Some(leaf.public_key().raw) {
        return Err(BuiltinError::invalid(
            "tls: private key does not match public key",
        ));
    }
    Ok(object_of([
        (
            "Certificate",
            Value::from(
                chain
                    .iter()
                    .map(|d| Value::from(STANDARD.encode(d)))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("PrivateKey", go_json(key)),
        ("SupportedSignatureAlgorithms", Value::Null),
        ("OCSPStaple", Value::Null),
        ("SignedCertificateTimestamps", Value::Null),
        ("Leaf", super::json::certificate(leaf_der, &leaf)),
    ]))
}
