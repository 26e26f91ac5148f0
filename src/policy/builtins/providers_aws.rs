//! `providers.aws.sign_req`: AWS Signature Version 4 over an `http.send` request object, as
//! OPA signs it (`topdown/providers.go`, `internal/providers/aws`): `host` and `x-amz-date`
//! signed with the request's own headers (bar `authorization`, `user-agent`,
//! `x-amzn-trace-id`), `x-amz-content-sha256` for `s3` and `glacier` (`UNSIGNED-PAYLOAD` when
//! `disable_payload_signing`), `x-amz-security-token` for a session token. The URL is read as
//! Go reads it, since the signature covers its bytes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use regorus::Value;
use sha2::{Digest, Sha256};

use super::args::{self, BuiltinError};
use super::crypto::hex;
use super::Builtin;

mod gourl;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("providers.aws.sign_req", 3, sign_req)];

/// The config keys OPA requires, in the order it prints a set of them.
const REQUIRED_CONFIG: [&str; 4] = [
    "aws_access_key",
    "aws_region",
    "aws_secret_access_key",
    "aws_service",
];

/// Headers a proxy may rewrite on the way, which AWS's own signers leave unsigned.
const UNSIGNED_HEADERS: [&str; 3] = ["authorization", "user-agent", "x-amzn-trace-id"];

const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

fn sign_req(args: &[Value]) -> Result<Value, BuiltinError> {
    let request = object_operand(args, 0)?;
    // OPA numbers the config "operand 1" too when it is not an object.
    let config = object_operand(args, 1)?;
    let credentials = Credentials::read(config)?;
    let time = timestamp(args::arg(args, 2))?;
    super::http::check_request_keys(request)?;
    let headers = match request.get(&Value::from("headers")) {
        None => BTreeMap::new(),
        Some(Value::Object(headers)) => headers
            .iter_sorted()
            .map(|(k, v)| (text_of(k), text_of(v)))
            .collect(),
        // OPA's words, position included.
        Some(other) => {
            return Err(BuiltinError::Operand {
                position: 0,
                expected: "object",
                actual: args::type_name(other),
            })
        }
    };
    let (url, method) = url_and_method(request)?;
    let url = gourl::parse(url).map_err(BuiltinError::invalid)?;
    let body = body(request);
    let unsigned_payload = match config.get(&Value::from("disable_payload_signing")) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(BuiltinError::invalid(
                "operand 2 invalid value for 'disable_payload_signing' in AWS config",
            ))
        }
    };
    let content_sha256 = if unsigned_payload {
        UNSIGNED_PAYLOAD.to_string()
    } else {
        hex(&Sha256::digest(&body))
    };
    let signed = sign(&Signing {
        method,
        url: &url,
        headers: &headers,
        credentials: &credentials,
        time,
        content_sha256: &content_sha256,
    })?;

    let mut out_headers: BTreeMap<Value, Value> = headers
        .iter()
        .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
        .collect();
    out_headers.insert(
        Value::from("Authorization"),
        Value::from(signed.authorization),
    );
    for (k, v) in signed.aws_headers {
        out_headers.insert(Value::from(k), Value::from(v));
    }
    let mut out: BTreeMap<Value, Value> = request
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.insert(Value::from("headers"), Value::from(out_headers));
    Ok(Value::from(out))
}

/// OPA's `ObjectOperand(v, 1)`: it names both object arguments "operand 1".
fn object_operand(args: &[Value], index: usize) -> Result<&regorus::value::Object, BuiltinError> {
    let value = args::arg(args, index);
    value.as_object().map_err(|_| BuiltinError::Operand {
        position: 1,
        expected: "object",
        actual: args::type_name(value),
    })
}

/// A string's text; OPA reads any other value where it wants a string as "".
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        _ => String::new(),
    }
}

/// A set of keys as OPA prints an `ast.Set`: sorted, `{"a", "b"}`.
pub(super) fn key_set<'a>(keys: impl IntoIterator<Item = &'a Value>) -> String {
    let set: BTreeSet<Value> = keys.into_iter().cloned().collect();
    super::strings::goquote::rego_text(&Value::from(set))
}

struct Credentials {
    access_key: String,
    secret_key: String,
    region: String,
    service: String,
    session_token: String,
}

impl Credentials {
    fn read(config: &regorus::value::Object) -> Result<Credentials, BuiltinError> {
        let required: Vec<Value> = REQUIRED_CONFIG.iter().map(|k| Value::from(*k)).collect();
        let missing: Vec<&Value> = required
            .iter()
            .filter(|k| !config.contains_key(k))
            .collect();
        if !missing.is_empty() {
            return Err(BuiltinError::invalid(format!(
                "operand 2 missing required AWS config parameters(s): {}",
                key_set(missing)
            )));
        }
        let invalid: Vec<&Value> = required
            .iter()
            .filter(|k| !matches!(config.get(k), Some(Value::String(_))))
            .collect();
        if !invalid.is_empty() {
            return Err(BuiltinError::invalid(format!(
                "operand 2 invalid values for required AWS config parameters(s): {}",
                key_set(invalid)
            )));
        }
        let get = |key: &str| {
            config
                .get(&Value::from(key))
                .map(text_of)
                .unwrap_or_default()
        };
        Ok(Credentials {
            access_key: get("aws_access_key"),
            secret_key: get("aws_secret_access_key"),
            region: get("aws_region"),
            service: get("aws_service"),
            session_token: get("aws_session_token"),
        })
    }
}

/// The signing time, nanoseconds since the epoch. OPA refuses a number that is not written as
/// an int64; regorus keeps no spelling (`-1e9` arrives as the integer -1000000000), so the
/// integers before the epoch, which no AWS service accepts a signature for, are refused too.
fn timestamp(value: &Value) -> Result<DateTime<Utc>, BuiltinError> {
    let Value::Number(n) = value else {
        return Err(BuiltinError::Operand {
            position: 1,
            expected: "number",
            actual: args::type_name(value),
        });
    };
    n.as_i64()
        .filter(|ns| *ns >= 0 && n.is_integer())
        .map(DateTime::from_timestamp_nanos)
        .ok_or_else(|| {
            BuiltinError::invalid("operand 3 could not convert time_ns value into a unix timestamp")
        })
}

fn url_and_method(request: &regorus::value::Object) -> Result<(&str, &str), BuiltinError> {
    let url = request.get(&Value::from("url"));
    let method = request.get(&Value::from("method"));
    match (url, method) {
        (Some(Value::String(url)), Some(Value::String(method))) => Ok((url, method)),
        _ => {
            let names = [("url", url), ("method", method)];
            let invalid: Vec<Value> = names
                .iter()
                .filter(|(_, v)| !matches!(v, Some(Value::String(_))))
                .map(|(name, _)| Value::from(*name))
                .collect();
            Err(BuiltinError::invalid(format!(
                "operand 1 invalid values for required request parameters(s): {}",
                key_set(&invalid)
            )))
        }
    }
}

/// `raw_body` as it is (a non-string as nothing), else `body` as Go's JSON, else nothing.
fn body(request: &regorus::value::Object) -> Vec<u8> {
    if let Some(raw) = request.get(&Value::from("raw_body")) {
        return text_of(raw).into_bytes();
    }
    request
        .get(&Value::from("body"))
        .map(|b| args::to_json(b).into_bytes())
        .unwrap_or_default()
}

struct Signing<'a> {
    method: &'a str,
    url: &'a gourl::GoUrl,
    headers: &'a BTreeMap<String, String>,
    credentials: &'a Credentials,
    time: DateTime<Utc>,
    content_sha256: &'a str,
}

struct Signed {
    authorization: String,
    /// The headers signing adds to the request.
    aws_headers: BTreeMap<String, String>,
}

fn hmac_sha256(key: &[u8], message: &str) -> Result<Vec<u8>, BuiltinError> {
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| BuiltinError::fault())?;
    Ok(mac.chain_update(message).finalize().into_bytes().to_vec())
}

fn sign(s: &Signing<'_>) -> Result<Signed, BuiltinError> {
    let creds = s.credentials;
    let date = s.time.format("%Y%m%d").to_string();
    let stamp = s.time.format("%Y%m%dT%H%M%SZ").to_string();
    let mut aws_headers = BTreeMap::from([
        ("host".to_string(), s.url.host.clone()),
        ("x-amz-date".to_string(), stamp.clone()),
    ]);
    if creds.service == "s3" || creds.service == "glacier" {
        aws_headers.insert("x-amz-content-sha256".into(), s.content_sha256.into());
    }
    if !creds.session_token.is_empty() {
        aws_headers.insert("x-amz-security-token".into(), creds.session_token.clone());
    }
    // The request's own headers win over the ones signing adds, as in OPA's map.
    let mut signed_headers = aws_headers.clone();
    for (name, value) in s.headers {
        let lower = name.to_lowercase();
        if !UNSIGNED_HEADERS.contains(&lower.as_str()) {
            signed_headers.insert(lower, value.clone());
        }
    }
    let names = signed_headers
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = format!(
        "{}\n{}\n{}\n",
        s.method, s.url.escaped_path, s.url.raw_query
    );
    for (name, value) in &signed_headers {
        canonical.push_str(&format!("{name}:{value}\n"));
    }
    canonical.push_str(&format!("\n{names}\n{}", s.content_sha256));

    let scope = format!("{date}/{}/{}/aws4_request", creds.region, creds.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{}", creds.secret_key).as_bytes(), &date)?;
    for part in [
        creds.region.as_str(),
        creds.service.as_str(),
        "aws4_request",
    ] {
        key = hmac_sha256(&key, part)?;
    }
    let signature = hex(&hmac_sha256(&key, &to_sign)?);
    Ok(Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={names},Signature={signature}",
            creds.access_key
        ),
        aws_headers,
    })
}

#[cfg(test)]
mod tests;
