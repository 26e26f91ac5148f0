//! OPA's file digests: MD5, SHA-1 and the SHA-2 family, and which files are hashed by value.

use super::SignatureError;
use crate::gojson::Json;

/// OPA's `IsStructuredDoc`, by base name; `data.yml` is not one of them.
fn is_structured(name: &str) -> bool {
    matches!(
        name.rsplit('/').next(),
        Some("data.json" | "data.yaml" | "signatures.json" | ".manifest")
    )
}

/// A file's digest by OPA's rule. A structured file is parsed and hashed as compact JSON with
/// sorted keys, numbers as written and no HTML escaping, so whitespace and key order do not
/// matter.
pub fn hash_file(name: &str, bytes: &[u8], algorithm: &str) -> Result<Vec<u8>, SignatureError> {
    if !is_structured(name) {
        return digest(algorithm, bytes);
    }
    let value = Json::parse_json_or_yaml(bytes).map_err(|message| SignatureError::FileParse {
        path: name.into(),
        message,
    })?;
    let mut canonical = Vec::with_capacity(bytes.len());
    value.write(&mut canonical, false);
    digest(algorithm, &canonical)
}

fn digest(algorithm: &str, data: &[u8]) -> Result<Vec<u8>, SignatureError> {
    use sha2::Digest;
    Ok(match algorithm {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-224" => sha2::Sha224::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        "SHA-512-224" => sha2::Sha512_224::digest(data).to_vec(),
        "SHA-512-256" => sha2::Sha512_256::digest(data).to_vec(),
        other => return Err(SignatureError::UnsupportedHash(other.into())),
    })
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}
