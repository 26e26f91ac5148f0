//! Signing keys read from a JWK (the first key of a set, as OPA signs with), and signing.

use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde_json::Value as Json;
use sha2::{Sha256, Sha384, Sha512};

use super::{big_field, bytes_field, hmac_sign, jwk_error, text_field, Alg, Bits};
use crate::policy::builtins::args::BuiltinError;

/// A private key read from a JWK, for `io.jwt.encode_sign*`.
pub enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
    Secret(Vec<u8>),
}

/// The first key of a JWK or JWK set, as OPA signs with.
pub fn signing_key(text: &str) -> Result<PrivateKey, BuiltinError> {
    let json: Json = serde_json::from_str(text).map_err(jwk_error)?;
    let jwk = match json.get("keys") {
        Some(Json::Array(keys)) => keys
            .first()
            .cloned()
            .ok_or_else(|| BuiltinError::invalid("no keys found in JWK set"))?,
        _ => json,
    };
    let invalid = |e: String| BuiltinError::invalid(format!("failed to read the JWK: {e}"));
    match text_field(&jwk, "kty") {
        Some("RSA") => {
            let primes = vec![big_field(&jwk, "p")?, big_field(&jwk, "q")?];
            RsaPrivateKey::from_components(
                big_field(&jwk, "n")?,
                big_field(&jwk, "e")?,
                big_field(&jwk, "d")?,
                primes,
            )
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .map_err(|e| invalid(e.to_string()))
        }
        Some("EC") => {
            let d = bytes_field(&jwk, "d")?;
            match text_field(&jwk, "crv") {
                Some("P-256") => p256::ecdsa::SigningKey::from_slice(&d).map(PrivateKey::P256),
                Some("P-384") => p384::ecdsa::SigningKey::from_slice(&d).map(PrivateKey::P384),
                Some("P-521") => p521::ecdsa::SigningKey::from_slice(&d).map(PrivateKey::P521),
                other => return Err(invalid(format!("unsupported curve {other:?}"))),
            }
            .map_err(|e| invalid(e.to_string()))
        }
        Some("OKP") => {
            let d: [u8; 32] = bytes_field(&jwk, "d")?
                .try_into()
                .map_err(|_| invalid("Ed25519 key must be 32 bytes".into()))?;
            Ok(PrivateKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                &d,
            )))
        }
        Some("oct") => Ok(PrivateKey::Secret(bytes_field(&jwk, "k")?)),
        other => Err(invalid(format!("unsupported key type {other:?}"))),
    }
}

/// Signs `message` with `key` under `alg`.
pub fn sign(key: &PrivateKey, alg: Alg, message: &[u8]) -> Result<Vec<u8>, BuiltinError> {
    use rsa::{pkcs1v15, pss};
    let mut rng = rsa::rand_core::OsRng;
    let mismatch = || BuiltinError::invalid(format!("the key cannot sign with {alg:?}"));
    Ok(match (alg, key) {
        (Alg::Hs(bits), PrivateKey::Secret(secret)) => hmac_sign(bits, secret, message),
        (Alg::Rs(bits), PrivateKey::Rsa(k)) => {
            let k = (**k).clone();
            match bits {
                Bits::B256 => pkcs1v15::SigningKey::<Sha256>::new(k).try_sign(message),
                Bits::B384 => pkcs1v15::SigningKey::<Sha384>::new(k).try_sign(message),
                Bits::B512 => pkcs1v15::SigningKey::<Sha512>::new(k).try_sign(message),
            }
            .map(|s| s.to_vec())
            .map_err(|e| BuiltinError::invalid(e.to_string()))?
        }
        (Alg::Ps(bits), PrivateKey::Rsa(k)) => {
            let k = (**k).clone();
            match bits {
                Bits::B256 => {
                    pss::SigningKey::<Sha256>::new(k).try_sign_with_rng(&mut rng, message)
                }
                Bits::B384 => {
                    pss::SigningKey::<Sha384>::new(k).try_sign_with_rng(&mut rng, message)
                }
                Bits::B512 => {
                    pss::SigningKey::<Sha512>::new(k).try_sign_with_rng(&mut rng, message)
                }
            }
            .map(|s| s.to_vec())
            .map_err(|e| BuiltinError::invalid(e.to_string()))?
        }
        (Alg::Es(Bits::B256), PrivateKey::P256(k)) => {
            Signer::<p256::ecdsa::Signature>::sign(k, message).to_vec()
        }
        (Alg::Es(Bits::B384), PrivateKey::P384(k)) => {
            Signer::<p384::ecdsa::Signature>::sign(k, message).to_vec()
        }
        (Alg::Es(Bits::B512), PrivateKey::P521(k)) => {
            Signer::<p521::ecdsa::Signature>::sign(k, message).to_vec()
        }
        (Alg::EdDsa, PrivateKey::Ed25519(k)) => k.sign(message).to_vec(),
        _ => return Err(mismatch()),
    })
}
