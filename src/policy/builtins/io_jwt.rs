//! `io.jwt.*`: decoding, verifying and signing JSON Web Tokens with OPA's semantics (its
//! `topdown/tokens.go`): a malformed token or key is an error, a signature or constraint that
//! does not hold is `false` (or `[false, {}, {}]`), never an error.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use regorus::Value;

use super::args::{self, array, BuiltinError};
use super::jwk::{self, Alg, Bits, PublicKey, VerificationKey};
use super::Builtin;

mod decode_verify;
use decode_verify::decode_verify;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("io.jwt.decode", 1, decode),
    ("io.jwt.decode_verify", 2, decode_verify),
    ("io.jwt.encode_sign", 3, encode_sign),
    ("io.jwt.encode_sign_raw", 3, encode_sign_raw),
    ("io.jwt.verify_rs256", 2, |a| {
        verify_with_key(a, Alg::Rs(Bits::B256))
    }),
    ("io.jwt.verify_rs384", 2, |a| {
        verify_with_key(a, Alg::Rs(Bits::B384))
    }),
    ("io.jwt.verify_rs512", 2, |a| {
        verify_with_key(a, Alg::Rs(Bits::B512))
    }),
    ("io.jwt.verify_ps256", 2, |a| {
        verify_with_key(a, Alg::Ps(Bits::B256))
    }),
    ("io.jwt.verify_ps384", 2, |a| {
        verify_with_key(a, Alg::Ps(Bits::B384))
    }),
    ("io.jwt.verify_ps512", 2, |a| {
        verify_with_key(a, Alg::Ps(Bits::B512))
    }),
    ("io.jwt.verify_es256", 2, |a| {
        verify_with_key(a, Alg::Es(Bits::B256))
    }),
    ("io.jwt.verify_es384", 2, |a| {
        verify_with_key(a, Alg::Es(Bits::B384))
    }),
    ("io.jwt.verify_es512", 2, |a| {
        verify_with_key(a, Alg::Es(Bits::B512))
    }),
    ("io.jwt.verify_eddsa", 2, |a| verify_with_key(a, Alg::EdDsa)),
    ("io.jwt.verify_hs256", 2, |a| verify_hmac(a, Bits::B256)),
    ("io.jwt.verify_hs384", 2, |a| verify_hmac(a, Bits::B384)),
    ("io.jwt.verify_hs512", 2, |a| verify_hmac(a, Bits::B512)),
];

/// The three base64url sections of a compact JWS, still encoded.
struct Token<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Token<'a> {
    fn split(text: &'a str) -> Result<Token<'a>, BuiltinError> {
        if !text.contains('.') {
            return Err(BuiltinError::invalid(
                "encoded JWT had no period separators",
            ));
        }
        let parts: Vec<&str> = text.split('.').collect();
        match parts[..] {
            [header, payload, signature] => Ok(Token {
                header,
                payload,
                signature,
            }),
            _ => Err(BuiltinError::invalid(format!(
                "encoded JWT must have 3 sections, found {}",
                parts.len()
            ))),
        }
    }

    fn signed_part(&self) -> String {
        format!("{}.{}", self.header, self.payload)
    }

    /// The header as an object, refusing JWE as OPA does.
    fn decode_header(&self) -> Result<Value, BuiltinError> {
        let bytes = base64url(self.header)
            .map_err(|e| BuiltinError::invalid(format!("JWT header had invalid encoding: {e}")))?;
        let header = json_object(&bytes)
            .map_err(|e| BuiltinError::invalid(format!("bad JWT header: {e}")))?;
        if field(&header, "enc").is_some() {
            return Err(BuiltinError::invalid(
                "JWT is a JWE object, which is not supported",
            ));
        }
        Ok(header)
    }

    fn decode_payload(&self) -> Result<Vec<u8>, BuiltinError> {
        base64url(self.payload)
            .map_err(|e| BuiltinError::invalid(format!("JWT payload had invalid encoding: {e}")))
    }

    fn decode_signature(&self) -> Result<Vec<u8>, BuiltinError> {
        base64url(self.signature)
            .map_err(|e| BuiltinError::invalid(format!("JWT signature had invalid encoding: {e}")))
    }
}

/// OPA's `base64.url.decode`: padding optional, Go's error text.
fn base64url(text: &str) -> Result<Vec<u8>, String> {
    let padded = if text.ends_with('=') {
        text.to_string()
    } else {
        match text.len() % 4 {
            0 => text.to_string(),
            2 => format!("{text}=="),
            3 => format!("{text}="),
            _ => return Err(format!("illegal base64url string: {text}")),
        }
    };
    // Go's decoder ignores the unused bits of the last symbol.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(&padded).map_err(|e| match e {
        base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _) => {
            format!("illegal base64 data at input byte {at}")
        }
        _ => format!("illegal base64 data at input byte {}", padded.len()),
    })
}

fn json_object(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let value = Value::from_json_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match value {
        Value::Object(_) => Ok(value),
        _ => Err("decoded JSON type was not an Object".into()),
    }
}

fn field<'v>(object: &'v Value, name: &str) -> Option<&'v Value> {
    object.as_object().ok()?.get(&Value::from(name))
}

fn string_field<'v>(object: &'v Value, name: &str) -> Result<Option<&'v str>, BuiltinError> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(BuiltinError::invalid(format!("{name}: must be a string"))),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn decode(args: &[Value]) -> Result<Value, BuiltinError> {
    let mut text = args::string(args, 0)?.to_string();
    // Nested tokens (`cty: JWT`) are followed; each level costs at least the header's bytes,
    // so the depth is bounded by the token's length.
    loop {
        let token = Token::split(&text)?;
        let header = token.decode_header()?;
        let payload = token.decode_payload()?;
        if matches!(field(&header, "cty"), Some(Value::String(c)) if &**c == "JWT") {
            let inner = String::from_utf8_lossy(&payload);
            text = inner.trim_matches(|c| c == '"' || c == '\'').to_string();
            continue;
        }
        let payload = json_object(&payload).map_err(BuiltinError::invalid)?;
        let signature = token.decode_signature()?;
        return Ok(array(vec![header, payload, Value::from(hex(&signature))]));
    }
}

/// The header parameters OPA reads before verifying (`parseTokenHeader`).
struct Header {
    alg: String,
    kid: Option<String>,
    cty: Option<String>,
    valid: bool,
}

fn parse_header(header: &Value) -> Result<Header, BuiltinError> {
    let alg = string_field(header, "alg")?.unwrap_or_default().to_string();
    let kid = string_field(header, "kid")?.map(str::to_string);
    let cty = string_field(header, "cty")?.map(str::to_string);
    string_field(header, "typ")?;
    let mut critical = Vec::new();
    if let Some(crit) = field(header, "crit") {
        let Value::Array(items) = crit else {
            return Err(BuiltinError::invalid("crit: must be a list"));
        };
        critical = items
            .iter()
            .filter_map(|i| i.as_string().ok().map(|s| s.to_string()))
            .collect();
        if critical.is_empty() {
            return Err(BuiltinError::invalid("crit: must be a nonempty list"));
        }
    }
    const KNOWN: [&str; 5] = ["alg", "kid", "typ", "cty", "crit"];
    // RFC 7515 4.1.11: a critical parameter OPA does not understand invalidates the token.
    let valid = !alg.is_empty() && critical.iter().all(|c| KNOWN.contains(&c.as_str()));
    Ok(Header {
        alg,
        kid,
        cty,
        valid,
    })
}

/// OPA's key selection: the key whose `kid` the header names, else every key whose `alg`
/// agrees with the header's (or that names none).
fn verify_with_keys(
    keys: &[VerificationKey],
    header: &Header,
    alg: Option<Alg>,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Some(alg) = alg else { return false };
    if let Some(kid) = &header.kid {
        if let Some(key) = keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            return jwk::verify(&key.key, alg, message, signature);
        }
    }
    keys.iter()
        .filter(|k| k.alg.as_deref().is_none_or(|a| a == header.alg))
        .any(|k| jwk::verify(&k.key, alg, message, signature))
}

fn verify_with_key(args: &[Value], alg: Alg) -> Result<Value, BuiltinError> {
    let token = Token::split(args::string(args, 0)?)?;
    let keys = jwk::verification_keys(args::string(args, 1)?)?;
    let signature = token.decode_signature()?;
    let header = parse_header(&token.decode_header()?)?;
    let valid = verify_with_keys(
        &keys,
        &header,
        Some(alg),
        token.signed_part().as_bytes(),
        &signature,
    );
    Ok(Value::from(valid))
}

fn verify_hmac(args: &[Value], bits: Bits) -> Result<Value, BuiltinError> {
    let token = Token::split(args::string(args, 0)?)?;
    let secret = args::string(args, 1)?;
    let signature = token.decode_signature()?;
    let key = PublicKey::Secret(secret.as_bytes().to_vec());
    let valid = jwk::verify(
        &key,
        Alg::Hs(bits),
        token.signed_part().as_bytes(),
        &signature,
    );
    Ok(Value::from(valid))
}

fn encode_sign(args: &[Value]) -> Result<Value, BuiltinError> {
    let header = args::to_json(args::arg(args, 0));
    let payload = args::to_json(args::arg(args, 1));
    let key = args::to_json(args::arg(args, 2));
    sign_compact(&header, &payload, &key)
}

fn encode_sign_raw(args: &[Value]) -> Result<Value, BuiltinError> {
    let key = args::string(args, 2)?;
    let header = args::string(args, 0)?;
    let payload = args::string(args, 1)?;
    sign_compact(header, payload, key)
}

/// OPA's `commonBuiltinJWTEncodeSign`: the first key of the JWK (set), the header's `alg`,
/// and a JSON payload unless the header's `typ` says otherwise.
fn sign_compact(header: &str, payload: &str, key: &str) -> Result<Value, BuiltinError> {
    let key = jwk::signing_key(key)?;
    // OPA's words: its JWS library reads a header that is not an object as one without `alg`.
    let no_alg = || {
        BuiltinError::invalid("missing or invalid 'alg' header: jwsbb: header \"alg\" not found")
    };
    let parsed: serde_json::Value = match serde_json::from_str(header) {
        Ok(parsed) => parsed,
        Err(_) if header.trim().is_empty() => {
            return Err(BuiltinError::invalid(
                "missing or invalid 'alg' header: cannot parse JSON: cannot parse empty string",
            ))
        }
        Err(_) if header.trim_start().starts_with('{') => {
            return Err(BuiltinError::invalid(
                "missing or invalid 'alg' header: cannot parse JSON",
            ))
        }
        Err(_) => return Err(no_alg()),
    };
    let alg_name = parsed
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or_else(no_alg)?;
    let alg = Alg::parse(alg_name)
        .ok_or_else(|| BuiltinError::invalid(format!("unknown JWS algorithm: {alg_name}")))?;
    let typ = parsed.get("typ").and_then(|t| t.as_str());
    if typ.is_none_or(|t| t == "JWT")
        && serde_json::from_str::<serde::de::IgnoredAny>(payload).is_err()
    {
        return Err(BuiltinError::invalid("type is JWT but payload is not JSON"));
    }
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = jwk::sign(&key, alg, signed.as_bytes())?;
    Ok(Value::from(format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    )))
}

#[cfg(test)]
mod tests;
