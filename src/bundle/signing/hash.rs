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

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(name: &str, bytes: &[u8], algorithm: &str) -> String {
        hex(&hash_file(name, bytes, algorithm).unwrap())
    }

    #[test]
    fn structured_files_hash_by_their_canonical_encoding() {
        let doc = br#"{ "b": 1.50, "a": "<&>\u2028\u0001", "c": [true, null, 1e3] }"#;
        let mut canonical = Vec::new();
        Json::parse(doc).unwrap().write(&mut canonical, false);
        let want = r#"{"a":"<&>\u2028\u0001","b":1.50,"c":[true,null,1e3]}"#;
        assert_eq!(String::from_utf8(canonical).unwrap(), want);
        assert_eq!(
            sha("data.json", doc, "SHA-256"),
            sha("x.rego", want.as_bytes(), "SHA-256")
        );
        // The same value as YAML hashes the same; `data.yml` is not structured in OPA.
        let yaml = b"a: 1\nb: [x]\n";
        let json = br#"{"a":1,"b":["x"]}"#;
        assert_eq!(sha("dir/data.yaml", yaml, "MD5"), sha("x", json, "MD5"));
        assert_eq!(sha("data.yml", yaml, "MD5"), sha("x", yaml, "MD5"));
        let err = hash_file("data.json", b"{", "SHA-256")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("data.json: "), "{err}");
    }

    #[test]
    fn opas_hash_algorithms() {
        for (alg, want) in [
            ("MD5", "900150983cd24fb0d6963f7d28e17f72"),
            ("SHA-1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                "SHA-224",
                "23097d223405d8228642a477bda255b32aadbce4bda0b3f7e36c9da7",
            ),
            (
                "SHA-512-256",
                "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23",
            ),
        ] {
            assert_eq!(sha("policy.rego", b"abc", alg), want, "{alg}");
        }
        for alg in ["SHA-384", "SHA-512", "SHA-512-224"] {
            assert!(hash_file("x", b"abc", alg).is_ok(), "{alg}");
        }
        let err = hash_file("x", b"abc", "SHA3-256").unwrap_err();
        assert_eq!(err.to_string(), "unsupported hashing algorithm: SHA3-256");
        assert_eq!(decode_hex("0aFF"), Some(vec![10, 255]));
        assert_eq!(decode_hex("0g"), None);
        assert_eq!(decode_hex("abc"), None);
    }
}
