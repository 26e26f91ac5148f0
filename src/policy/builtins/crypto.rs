//! `crypto.*` hashes and HMACs (OPA's `topdown/crypto.go`): lowercase hex digests of a
//! string's UTF-8 bytes, and `crypto.hmac.equal`, which compares in constant time.

use hmac::digest::core_api::BlockSizeUser;
use hmac::digest::KeyInit;
use hmac::{Mac, SimpleHmac};
use md5::Md5;
use regorus::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("crypto.md5", 1, |a| digest::<Md5>(a)),
    ("crypto.sha1", 1, |a| digest::<Sha1>(a)),
    ("crypto.sha256", 1, |a| digest::<Sha256>(a)),
    ("crypto.hmac.md5", 2, |a| hmac::<Md5>(a)),
    ("crypto.hmac.sha1", 2, |a| hmac::<Sha1>(a)),
    ("crypto.hmac.sha256", 2, |a| hmac::<Sha256>(a)),
    ("crypto.hmac.sha512", 2, |a| hmac::<Sha512>(a)),
    ("crypto.hmac.equal", 2, equal),
];

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn digest<D: Digest>(args: &[Value]) -> Result<Value, BuiltinError> {
    let text = args::string(args, 0)?;
    Ok(Value::from(hex(&D::digest(text.as_bytes()))))
}

fn hmac<D: Digest + BlockSizeUser>(args: &[Value]) -> Result<Value, BuiltinError> {
    let message = args::string(args, 0)?;
    let key = args::string(args, 1)?;
    // HMAC accepts keys of any length; the error arm is unreachable but costs nothing.
    let mac = <SimpleHmac<D> as KeyInit>::new_from_slice(key.as_bytes())
        .map_err(|e| BuiltinError::invalid(e.to_string()))?;
    Ok(Value::from(hex(&mac
        .chain_update(message)
        .finalize()
        .into_bytes())))
}

/// Constant time in the length of the shorter operand: a MAC check must not tell an attacker
/// how many leading characters of a forged MAC were right.
fn equal(args: &[Value]) -> Result<Value, BuiltinError> {
    use subtle::ConstantTimeEq;
    let a = args::string(args, 0)?;
    let b = args::string(args, 1)?;
    Ok(Value::from(bool::from(a.as_bytes().ct_eq(b.as_bytes()))))
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use crate::policy::builtins::testing::{fails, value};

    #[test]
    fn digests_are_lowercase_hex_of_the_utf8_bytes() {
        // Reference digests of "abc" (FIPS 180 and RFC 1321 test vectors).
        let cases = [
            ("crypto.md5", "900150983cd24fb0d6963f7d28e17f72"),
            ("crypto.sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                "crypto.sha256",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (name, want) in cases {
            assert_eq!(
                value(&format!(r#"{name}("abc")"#)),
                Value::from(want),
                "{name}"
            );
        }
    }

    #[test]
    fn hmacs_match_rfc_4231_and_2202() {
        // RFC 4231 test case 2 and RFC 2202 test case 2: key "Jefe".
        let message = "what do ya want for nothing?";
        let cases = [
            ("md5", "750c783e6ab0b503eaa86e310a5db738"),
            ("sha1", "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
            (
                "sha256",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
        ];
        for (name, want) in cases {
            let call = format!(r#"crypto.hmac.{name}("{message}", "Jefe")"#);
            assert_eq!(value(&call), Value::from(want), "{name}");
        }
        let sha512 = value(&format!(r#"crypto.hmac.sha512("{message}", "Jefe")"#));
        assert!(sha512
            .as_string()
            .is_ok_and(|s| s.starts_with("164b7a7bfcf819e2")));
    }

    #[test]
    fn hmac_equal_compares_whole_strings() {
        assert_eq!(
            value(r#"crypto.hmac.equal("abc", "abc")"#),
            Value::from(true)
        );
        assert_eq!(
            value(r#"crypto.hmac.equal("abc", "abd")"#),
            Value::from(false)
        );
        assert_eq!(
            value(r#"crypto.hmac.equal("abc", "ab")"#),
            Value::from(false)
        );
        assert_eq!(value(r#"crypto.hmac.equal("", "")"#), Value::from(true));
    }

    #[test]
    fn non_strings_are_type_errors() {
        fails(
            "crypto.sha256(1)",
            "operand 1 must be string but got number",
        );
        fails(
            r#"crypto.hmac.sha256("m", ["k"])"#,
            "operand 2 must be string but got array",
        );
        fails(
            r#"crypto.hmac.equal(null, "x")"#,
            "operand 1 must be string but got null",
        );
    }
}
