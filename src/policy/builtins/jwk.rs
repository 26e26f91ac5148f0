//! Key material for `io.jwt.*`: verification keys read from a PEM certificate, a PEM public key
//! or a JWK (set), signing keys read from a JWK, and the JWS algorithms over them.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::{BigUint, RsaPublicKey};
use serde_json::Value as Json;
use sha2::{Sha256, Sha384, Sha512};

use super::args::BuiltinError;

/// The JWS algorithms OPA knows (its `tokenAlgorithms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs(Bits),
    Rs(Bits),
    Ps(Bits),
    Es(Bits),
    EdDsa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bits {
    B256,
    B384,
    B512,
}

impl Alg {
    pub fn parse(name: &str) -> Option<Alg> {
        let bits = |s: &str| match s {
            "256" => Some(Bits::B256),
            "384" => Some(Bits::B384),
            "512" => Some(Bits::B512),
            _ => None,
        };
        if name == "EdDSA" {
            return Some(Alg::EdDsa);
        }
        let (family, size) = name.split_at_checked(2)?;
        let bits = bits(size)?;
        match family {
            "HS" => Some(Alg::Hs(bits)),
            "RS" => Some(Alg::Rs(bits)),
            "PS" => Some(Alg::Ps(bits)),
            "ES" => Some(Alg::Es(bits)),
            _ => None,
        }
    }
}

/// A key a signature can be checked with.
#[derive(Clone)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(p256::PublicKey),
    P384(p384::PublicKey),
    P521(p521::PublicKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    /// A JWK of type `oct`, or a `secret` constraint: HMAC.
    Secret(Vec<u8>),
}

/// A verification key with what a JWK says about it.
#[derive(Clone)]
pub struct VerificationKey {
    pub key: PublicKey,
    /// The key's `alg`, when a JWK names one.
    pub alg: Option<String>,
    pub kid: Option<String>,
}

/// OPA's `getKeysFromCertOrJWK`: a PEM certificate or public key (one block, nothing after
/// it), else a JWK or a JWK set.
pub fn verification_keys(text: &str) -> Result<Vec<VerificationKey>, BuiltinError> {
    if let Some(block) = first_pem_block(text)? {
        let key = match block.tag() {
            "CERTIFICATE" => {
                let (_, cert) =
                    x509_parser::parse_x509_certificate(block.contents()).map_err(|e| {
                        BuiltinError::invalid(format!("failed to parse a PEM certificate: {e}"))
                    })?;
                spki_key(cert.public_key().raw).map_err(|e| {
                    BuiltinError::invalid(format!("failed to parse a PEM certificate: {e}"))
                })?
            }
            "PUBLIC KEY" => spki_key(block.contents()).map_err(|e| {
                BuiltinError::invalid(format!("failed to parse a PEM public key: {e}"))
            })?,
            _ => {
                return Err(BuiltinError::invalid(
                    "failed to extract a Key from the PEM certificate",
                ))
            }
        };
        return Ok(vec![VerificationKey {
            key,
            alg: None,
            kid: None,
        }]);
    }
    let json: Json = serde_json::from_str(text)
        .map_err(|e| BuiltinError::invalid(format!("failed to parse a JWK key (set): {e}")))?;
    let jwks = match json.get("keys") {
        Some(Json::Array(keys)) => keys.clone(),
        Some(_) => {
            return Err(BuiltinError::invalid(
                "failed to parse a JWK key (set): keys must be an array",
            ))
        }
        None => vec![json],
    };
    let mut keys = Vec::with_capacity(jwks.len());
    for jwk in &jwks {
        let alg = text_field(jwk, "alg").map(str::to_string);
        // OPA skips keys whose algorithm it does not know.
        if alg.as_deref().is_some_and(|a| Alg::parse(a).is_none()) {
            continue;
        }
        keys.push(VerificationKey {
            key: jwk_public_key(jwk)?,
            alg,
            kid: text_field(jwk, "kid").map(str::to_string),
        });
    }
    Ok(keys)
}

/// The first PEM block of `text`, if it has one; an error when more follows it, as OPA's.
fn first_pem_block(text: &str) -> Result<Option<pem::Pem>, BuiltinError> {
    if !text.contains("-----BEGIN") {
        return Ok(None);
    }
    let Ok(blocks) = pem::parse_many(text) else {
        return Ok(None);
    };
    let Some(first) = blocks.into_iter().next() else {
        return Ok(None);
    };
    if !after_first_block(text).is_empty() {
        return Err(BuiltinError::invalid(
            "extra data after a PEM certificate block",
        ));
    }
    Ok(Some(first))
}

/// What follows the line that ends the first PEM block, as Go's `pem.Decode` leaves it.
fn after_first_block(text: &str) -> &str {
    let Some(end) = text.find("-----END ") else {
        return "";
    };
    let rest = &text[end..];
    match rest.find('\n') {
        Some(newline) => &rest[newline + 1..],
        None => "",
    }
}

/// A DER SubjectPublicKeyInfo of any kind a JWS can be checked with.
pub fn spki_key(der: &[u8]) -> Result<PublicKey, String> {
    if let Ok(k) = RsaPublicKey::from_public_key_der(der) {
        return Ok(PublicKey::Rsa(k));
    }
    if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
        return Ok(PublicKey::P256(k));
    }
    if let Ok(k) = p384::PublicKey::from_public_key_der(der) {
        return Ok(PublicKey::P384(k));
    }
    if let Ok(k) = p521::PublicKey::from_public_key_der(der) {
        return Ok(PublicKey::P521(k));
    }
    ed25519_dalek::VerifyingKey::from_public_key_der(der)
        .map(PublicKey::Ed25519)
        .map_err(|_| "unsupported or malformed public key".to_string())
}

fn text_field<'a>(jwk: &'a Json, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Json::as_str)
}

/// A base64url field of a JWK (padding tolerated).
fn bytes_field(jwk: &Json, name: &str) -> Result<Vec<u8>, BuiltinError> {
    let text = text_field(jwk, name)
        .ok_or_else(|| BuiltinError::invalid(format!("JWK is missing the {name} parameter")))?;
    let decoded = if text.ends_with('=') {
        URL_SAFE.decode(text)
    } else {
        URL_SAFE_NO_PAD.decode(text)
    };
    decoded.map_err(|e| BuiltinError::invalid(format!("JWK parameter {name}: {e}")))
}

fn big_field(jwk: &Json, name: &str) -> Result<BigUint, BuiltinError> {
    Ok(BigUint::from_bytes_be(&bytes_field(jwk, name)?))
}

fn jwk_error(e: impl std::fmt::Display) -> BuiltinError {
    BuiltinError::invalid(format!("failed to parse a JWK key (set): {e}"))
}

fn jwk_public_key(jwk: &Json) -> Result<PublicKey, BuiltinError> {
    match text_field(jwk, "kty") {
        Some("RSA") => RsaPublicKey::new(big_field(jwk, "n")?, big_field(jwk, "e")?)
            .map(PublicKey::Rsa)
            .map_err(jwk_error),
        Some("EC") => {
            let mut point = vec![4u8];
            point.extend(bytes_field(jwk, "x")?);
            point.extend(bytes_field(jwk, "y")?);
            match text_field(jwk, "crv") {
                Some("P-256") => p256::PublicKey::from_sec1_bytes(&point).map(PublicKey::P256),
                Some("P-384") => p384::PublicKey::from_sec1_bytes(&point).map(PublicKey::P384),
                Some("P-521") => p521::PublicKey::from_sec1_bytes(&point).map(PublicKey::P521),
                other => return Err(jwk_error(format!("unsupported curve {other:?}"))),
            }
            .map_err(jwk_error)
        }
        Some("OKP") => {
            let x: [u8; 32] = bytes_field(jwk, "x")?
                .try_into()
                .map_err(|_| jwk_error("Ed25519 key must be 32 bytes"))?;
            ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map(PublicKey::Ed25519)
                .map_err(jwk_error)
        }
        Some("oct") => Ok(PublicKey::Secret(bytes_field(jwk, "k")?)),
        other => Err(jwk_error(format!("unsupported key type {other:?}"))),
    }
}

/// Whether `signature` over `message` verifies with `key` under `alg`; a key of another kind
/// than the algorithm needs never verifies.
pub fn verify(key: &PublicKey, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
    use rsa::{pkcs1v15, pss};
    match (alg, key) {
        (Alg::Hs(bits), PublicKey::Secret(secret)) => hmac_verify(bits, secret, message, signature),
        (Alg::Rs(bits), PublicKey::Rsa(k)) => {
            let Ok(sig) = pkcs1v15::Signature::try_from(signature) else {
                return false;
            };
            match bits {
                Bits::B256 => {
                    pkcs1v15::VerifyingKey::<Sha256>::new(k.clone()).verify(message, &sig)
                }
                Bits::B384 => {
                    pkcs1v15::VerifyingKey::<Sha384>::new(k.clone()).verify(message, &sig)
                }
                Bits::B512 => {
                    pkcs1v15::VerifyingKey::<Sha512>::new(k.clone()).verify(message, &sig)
                }
            }
            .is_ok()
        }
        (Alg::Ps(bits), PublicKey::Rsa(k)) => {
            let Ok(sig) = pss::Signature::try_from(signature) else {
                return false;
            };
            match bits {
                Bits::B256 => pss::VerifyingKey::<Sha256>::new(k.clone()).verify(message, &sig),
                Bits::B384 => pss::VerifyingKey::<Sha384>::new(k.clone()).verify(message, &sig),
                Bits::B512 => pss::VerifyingKey::<Sha512>::new(k.clone()).verify(message, &sig),
            }
            .is_ok()
        }
        (Alg::Es(Bits::B256), PublicKey::P256(k)) => p256::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|sig| {
                p256::ecdsa::VerifyingKey::from(k)
                    .verify(message, &sig)
                    .is_ok()
            }),
        (Alg::Es(Bits::B384), PublicKey::P384(k)) => p384::ecdsa::Signature::from_slice(signature)
            .is_ok_and(|sig| {
                p384::ecdsa::VerifyingKey::from(k)
                    .verify(message, &sig)
                    .is_ok()
            }),
        (Alg::Es(Bits::B512), PublicKey::P521(k)) => {
            let Ok(verifier) = p521::ecdsa::VerifyingKey::from_affine(*k.as_affine()) else {
                return false;
            };
            p521::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| verifier.verify(message, &sig).is_ok())
        }
        (Alg::EdDsa, PublicKey::Ed25519(k)) => ed25519_dalek::Signature::from_slice(signature)
            .is_ok_and(|sig| k.verify(message, &sig).is_ok()),
        _ => false,
    }
}

fn hmac_verify(bits: Bits, secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
    // `verify_slice` compares in constant time.
    match bits {
        Bits::B256 => Hmac::<Sha256>::new_from_slice(secret)
            .is_ok_and(|m| m.chain_update(message).verify_slice(signature).is_ok()),
        Bits::B384 => Hmac::<Sha384>::new_from_slice(secret)
            .is_ok_and(|m| m.chain_update(message).verify_slice(signature).is_ok()),
        Bits::B512 => Hmac::<Sha512>::new_from_slice(secret)
            .is_ok_and(|m| m.chain_update(message).verify_slice(signature).is_ok()),
    }
}

pub fn hmac_sign(bits: Bits, secret: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail.
    match bits {
        Bits::B256 => Hmac::<Sha256>::new_from_slice(secret)
            .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
        Bits::B384 => Hmac::<Sha384>::new_from_slice(secret)
            .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
        Bits::B512 => Hmac::<Sha512>::new_from_slice(secret)
            .map(|m| m.chain_update(message).finalize().into_bytes().to_vec()),
    }
    .unwrap_or_default()
}

mod signing;
pub use signing::{sign, signing_key};
