//! JWS for bundle signatures: the one JWT of `.signatures.json`, signed and verified with the
//! algorithms OPA accepts (HS, RS, PS and ES, 256 to 512 bits).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::EncodingKey;
use serde::Deserialize;

use super::config::{non_empty, read_key};
use super::keys::{public_key, Algorithm, PublicKey};
use super::{FileInfo, SignatureError, VerificationConfig};
use crate::gojson::Json;

#[derive(Deserialize)]
struct DecodedSignature {
    #[serde(default)]
    keyid: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    files: Option<Vec<FileInfo>>,
}

/// Checks the bundle's one JWT against the configured keys and scope; returns the files its
/// payload lists.
pub(super) fn verify_token(
    token: &str,
    config: &VerificationConfig,
) -> Result<Vec<FileInfo>, SignatureError> {
    let segments: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = segments[..] else {
        return Err(SignatureError::MalformedJwt(segments.len()));
    };
    let header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(SignatureError::HeaderBase64)?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(SignatureError::HeaderJson)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(SignatureError::PayloadBase64)?;
    let payload: DecodedSignature =
        serde_json::from_slice(&payload).map_err(SignatureError::PayloadJson)?;
    // OPA's precedence: the configured key id, then the header's `kid`, then the deprecated
    // `keyid` claim.
    let key_id = config
        .key_id
        .clone()
        .or_else(|| {
            non_empty(
                header
                    .get("kid")
                    .and_then(|k| k.as_str())
                    .map(str::to_string),
            )
        })
        .or_else(|| non_empty(payload.keyid.clone()))
        .ok_or(SignatureError::EmptyKeyId)?;
    let key = config
        .keys
        .get(&key_id)
        .ok_or_else(|| SignatureError::KeyNotFound(key_id.clone()))?;
    // The configured algorithm decides, whatever the header claims (so `none` cannot pass).
    let algorithm = Algorithm::parse(&key.algorithm)
        .ok_or_else(|| SignatureError::UnknownAlgorithm(key.algorithm.clone()))?;
    let message = format!("{header_b64}.{payload_b64}");
    verify_jws(
        algorithm,
        &key.algorithm,
        &key.key,
        message.as_bytes(),
        signature_b64,
    )?;
    let scope = config.scope.as_ref().or(key.scope.as_ref());
    if payload.scope.as_deref().unwrap_or_default() != scope.map_or("", |s| s.as_str()) {
        return Err(SignatureError::ScopeMismatch);
    }
    Ok(payload.files.unwrap_or_default())
}

fn verify_jws(
    algorithm: Algorithm,
    name: &str,
    key: &str,
    message: &[u8],
    signature: &str,
) -> Result<(), SignatureError> {
    // OPA reports a key of the wrong kind as a failed verification, in these words.
    let invalid_key = |message: String| {
        SignatureError::BadSignature(format!("the key is not a valid {name} key: {message}"))
    };
    let key = public_key(algorithm, key).map_err(|e| invalid_key(e.to_string()))?;
    let valid = match key {
        PublicKey::P521(public) => {
            use p521::ecdsa::signature::Verifier;
            let verifier = p521::ecdsa::VerifyingKey::from_affine(*public.as_affine())
                .map_err(|e| invalid_key(e.to_string()))?;
            let bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
            p521::ecdsa::Signature::from_slice(&bytes)
                .is_ok_and(|sig| verifier.verify(message, &sig).is_ok())
        }
        PublicKey::Jwt(decoding, alg) => {
            jsonwebtoken::crypto::verify(signature, message, &decoding, alg)
                .map_err(|e| SignatureError::BadSignature(e.to_string()))?
        }
    };
    if valid {
        Ok(())
    } else {
        Err(SignatureError::BadSignature(format!(
            "the signature does not match the {name} key"
        )))
    }
}

/// The plugin name `opa build` writes into `.signatures.json`.
pub const DEFAULT_PLUGIN: &str = "_default";

/// A private key (PEM) or HMAC secret, with its algorithm and the key id for the `kid` header.
pub struct SigningKey {
    algorithm: String,
    key: SignKey,
    key_id: Option<String>,
}

enum SignKey {
    Jwt(jsonwebtoken::Algorithm, EncodingKey),
    Es512(p521::ecdsa::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// As OPA's `--signing-key`: PEM text, the path of a PEM file, or an HMAC secret.
    pub fn new(key: &str, algorithm: &str, key_id: Option<String>) -> Result<Self, SignatureError> {
        let alg = Algorithm::parse(algorithm)
            .ok_or_else(|| SignatureError::UnknownAlgorithm(algorithm.into()))?;
        let pem = read_key(key)?;
        let invalid = |message: String| SignatureError::InvalidKey {
            algorithm: algorithm.into(),
            message,
        };
        let sec1 = pem.contains("-----BEGIN EC PRIVATE KEY-----");
        let key = match alg {
            Algorithm::Es512 => {
                use p521::pkcs8::DecodePrivateKey;
                let secret = if sec1 {
                    p521::SecretKey::from_sec1_pem(&pem).map_err(|e| invalid(e.to_string()))?
                } else {
                    p521::SecretKey::from_pkcs8_pem(&pem).map_err(|e| invalid(e.to_string()))?
                };
                let signer = p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes())
                    .map_err(|e| invalid(e.to_string()))?;
                SignKey::Es512(signer)
            }
            Algorithm::Jwt(a) => {
                use jsonwebtoken::{Algorithm as A, AlgorithmFamily as Family};
                use p256::pkcs8::EncodePrivateKey;
                let encoding = match a.family() {
                    Family::Hmac => Ok(EncodingKey::from_secret(pem.as_bytes())),
                    Family::Rsa => EncodingKey::from_rsa_pem(pem.as_bytes()),
                    // jsonwebtoken reads PKCS#8 only; `openssl ecparam` writes SEC1, as OPA reads.
                    _ if sec1 => {
                        let der = match a {
                            A::ES256 => p256::SecretKey::from_sec1_pem(&pem)
                                .and_then(|k| k.to_pkcs8_der().map_err(Into::into)),
                            _ => p384::SecretKey::from_sec1_pem(&pem)
                                .and_then(|k| k.to_pkcs8_der().map_err(Into::into)),
                        }
                        .map_err(|e| invalid(e.to_string()))?;
                        Ok(EncodingKey::from_ec_der(der.as_bytes()))
                    }
                    _ => EncodingKey::from_ec_pem(pem.as_bytes()),
                }
                .map_err(|e| invalid(e.to_string()))?;
                SignKey::Jwt(a, encoding)
            }
        };
        Ok(SigningKey {
            algorithm: algorithm.into(),
            key,
            key_id: non_empty(key_id),
        })
    }

    fn sign(&self, message: &[u8]) -> Result<String, SignatureError> {
        match &self.key {
            SignKey::Jwt(alg, key) => jsonwebtoken::crypto::sign(message, key, *alg)
                .map_err(|e| SignatureError::Sign(e.to_string())),
            SignKey::Es512(key) => {
                use p521::ecdsa::signature::Signer;
                let signature: p521::ecdsa::Signature = key.sign(message);
                Ok(URL_SAFE_NO_PAD.encode(signature.to_bytes()))
            }
        }
    }
}

/// The JWT: header `{"alg":..,"kid":..,"typ":"JWT"}` (keys sorted, as OPA's JWS library writes
/// them) and a payload of `files` plus the claims, which may replace any field, as in OPA.
/// Without claims, a key id also goes in the deprecated `keyid` claim, as `opa build` does.
pub fn sign_token(
    files: &[FileInfo],
    key: &SigningKey,
    claims: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<String, SignatureError> {
    let string = |s: &str| {
        let mut out = Vec::new();
        Json::String(s.into()).write(&mut out, true);
        out
    };
    let mut header = format!("{{\"alg\":\"{}\"", key.algorithm).into_bytes();
    if let Some(kid) = &key.key_id {
        header.extend_from_slice(b",\"kid\":");
        header.extend_from_slice(&string(kid));
    }
    header.extend_from_slice(b",\"typ\":\"JWT\"}");
    let mut fields: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut list = b"[".to_vec();
    for (i, f) in files.iter().enumerate() {
        list.extend_from_slice(if i == 0 {
            b"{\"name\":"
        } else {
            b",{\"name\":"
        });
        list.extend_from_slice(&string(&f.name));
        list.extend_from_slice(b",\"hash\":");
        list.extend_from_slice(&string(&f.hash));
        list.extend_from_slice(b",\"algorithm\":");
        list.extend_from_slice(&string(&f.algorithm));
        list.push(b'}');
    }
    list.push(b']');
    fields.insert("files".into(), list);
    match (claims, &key.key_id) {
        (Some(claims), _) => {
            for (name, value) in claims {
                let mut out = Vec::new();
                Json::from_serde(value).write(&mut out, true);
                fields.insert(name.clone(), out);
            }
        }
        (None, Some(kid)) => {
            fields.insert("keyid".into(), string(kid));
        }
        (None, None) => {}
    }
    let mut payload = b"{".to_vec();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            payload.push(b',');
        }
        payload.extend_from_slice(&string(name));
        payload.push(b':');
        payload.extend_from_slice(value);
    }
    payload.push(b'}');
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&header),
        URL_SAFE_NO_PAD.encode(&payload)
    );
    let signature = key.sign(message.as_bytes())?;
    Ok(format!("{message}.{signature}"))
}

/// `.signatures.json` as OPA indents it: `opa build` adds `"plugin": "_default"`, `opa sign`
/// writes the signatures alone.
pub fn signatures_json(token: &str, plugin: Option<&str>) -> Vec<u8> {
    let mut out = format!("{{\n \"signatures\": [\n  \"{token}\"\n ]").into_bytes();
    if let Some(plugin) = plugin {
        out.extend_from_slice(b",\n \"plugin\": ");
        Json::String(plugin.into()).write(&mut out, true);
    }
    out.extend_from_slice(b"\n}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_file_is_indented_as_opa_writes_it() {
        let built = signatures_json("a.b.c", Some(DEFAULT_PLUGIN));
        let want = "{\n \"signatures\": [\n  \"a.b.c\"\n ],\n \"plugin\": \"_default\"\n}";
        assert_eq!(String::from_utf8(built).unwrap(), want);
        let signed = signatures_json("a.b.c", None);
        let want = "{\n \"signatures\": [\n  \"a.b.c\"\n ]\n}";
        assert_eq!(String::from_utf8(signed).unwrap(), want);
    }
}
