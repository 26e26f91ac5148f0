//! Verification keys and the JWS algorithms OPA accepts for bundle signatures: reading a key
//! as its algorithm needs it, when the config is read and when a signature is checked.

use jsonwebtoken::DecodingKey;

/// The JWS algorithms OPA accepts for bundle signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Algorithm {
    Jwt(jsonwebtoken::Algorithm),
    /// jsonwebtoken has no ES512, so P-521 is done with RustCrypto's `p521` directly.
    Es512,
}

impl Algorithm {
    pub(super) fn parse(name: &str) -> Option<Algorithm> {
        use jsonwebtoken::Algorithm::*;
        Some(Algorithm::Jwt(match name {
            "HS256" => HS256,
            "HS384" => HS384,
            "HS512" => HS512,
            "RS256" => RS256,
            "RS384" => RS384,
            "RS512" => RS512,
            "PS256" => PS256,
            "PS384" => PS384,
            "PS512" => PS512,
            "ES256" => ES256,
            "ES384" => ES384,
            "ES512" => return Some(Algorithm::Es512),
            _ => return None,
        }))
    }
}

/// Why a verification key could not be read, in its library's words.
#[derive(Debug, thiserror::Error)]
pub(super) enum KeyError {
    #[error("{0}")]
    P521(#[from] p521::pkcs8::spki::Error),
    #[error("{0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// A verification key, read.
pub(super) enum PublicKey {
    P521(p521::PublicKey),
    Jwt(DecodingKey, jsonwebtoken::Algorithm),
}

/// Reads `key` as the verification key of `algorithm`: a public key PEM, or any secret for
/// HMAC.
pub(super) fn public_key(algorithm: Algorithm, key: &str) -> Result<PublicKey, KeyError> {
    match algorithm {
        Algorithm::Es512 => {
            use p521::pkcs8::DecodePublicKey;
            p521::PublicKey::from_public_key_pem(key)
                .map(PublicKey::P521)
                .map_err(KeyError::from)
        }
        Algorithm::Jwt(alg) => {
            use jsonwebtoken::AlgorithmFamily as Family;
            match alg.family() {
                Family::Hmac => Ok(DecodingKey::from_secret(key.as_bytes())),
                Family::Rsa => DecodingKey::from_rsa_pem(key.as_bytes()),
                _ => DecodingKey::from_ec_pem(key.as_bytes()),
            }
            .map(|decoding| PublicKey::Jwt(decoding, alg))
            .map_err(KeyError::from)
        }
    }
}

/// Reads `key` as verifying would, so that a key no signature could ever be checked with is
/// refused when the config is read, not when the first bundle arrives.
pub(super) fn check_public_key(algorithm: Algorithm, key: &str) -> Result<(), KeyError> {
    public_key(algorithm, key).map(drop)
}
