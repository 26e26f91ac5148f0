//! `io.jwt.decode_verify`: the signature checked against the `cert` or `secret` constraint,
//! then the `alg`, `iss`, `aud`, `exp` and `nbf` claims against the constraints and the clock.
//! A token that does not verify is `[false, {}, {}]`; malformed input is an error.

use std::time::{SystemTime, UNIX_EPOCH};

use regorus::Value;

use super::{field, json_object, parse_header, verify_with_keys, Token};
use crate::policy::builtins::args::{self, array, BuiltinError};
use crate::policy::builtins::jwk::{self, Alg, VerificationKey};

/// The constraints object, read as OPA reads it.
#[derive(Default)]
struct Constraints {
    keys: Option<Vec<VerificationKey>>,
    secret: String,
    alg: String,
    iss: String,
    aud: String,
    /// Nanoseconds since the epoch.
    time: Option<f64>,
}

fn constraint_string(name: &str, value: &Value) -> Result<String, BuiltinError> {
    match value {
        Value::String(s) => Ok(s.to_string()),
        _ => Err(BuiltinError::invalid(format!(
            "{name} constraint: must be a string"
        ))),
    }
}

fn time_constraint(value: &Value) -> Result<f64, BuiltinError> {
    if !matches!(value, Value::Number(_)) {
        return Err(BuiltinError::invalid(
            "token time constraint: must be a number",
        ));
    };
    let t = args::number_f64(value)
        .ok_or_else(|| BuiltinError::invalid("token time constraint: unvalid float64"))?;
    if t < 0.0 {
        return Err(BuiltinError::invalid(
            "token time constraint: must not be negative",
        ));
    }
    Ok(t)
}

fn parse_constraints(object: &regorus::value::Object) -> Result<Constraints, BuiltinError> {
    let mut c = Constraints::default();
    for (key, value) in object.iter() {
        let value = &value;
        match key.as_string().map(|k| &**k) {
            Ok("cert") => {
                let Value::String(text) = value else {
                    return Err(BuiltinError::invalid("cert constraint: must be a string"));
                };
                c.keys = Some(jwk::verification_keys(&text[..])?);
            }
            Ok("secret") => c.secret = constraint_string("secret", value)?,
            Ok("alg") => c.alg = constraint_string("alg", value)?,
            Ok("iss") => c.iss = constraint_string("iss", value)?,
            Ok("aud") => c.aud = constraint_string("aud", value)?,
            Ok("time") => c.time = Some(time_constraint(value)?),
            _ => {
                return Err(BuiltinError::invalid(format!(
                    "unknown token validation constraint: {}",
                    key.as_string().map(|k| k.to_string()).unwrap_or_default()
                )))
            }
        }
    }
    match (c.keys.is_some(), !c.secret.is_empty()) {
        (true, true) => Err(BuiltinError::invalid("duplicate key constraints")),
        (false, false) => Err(BuiltinError::invalid("no key constraint")),
        _ => Ok(c),
    }
}

fn now_nanos() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as f64)
        .unwrap_or_default()
}

pub(super) fn decode_verify(args: &[Value]) -> Result<Value, BuiltinError> {
    let constraints = parse_constraints(args::object(args, 1)?)?;
    let unverified = || {
        Ok(array(vec![
            Value::from(false),
            Value::new_object(),
            Value::new_object(),
        ]))
    };
    let mut text = args::string(args, 0)?.to_string();
    let (header, payload) = loop {
        let token = Token::split(&text)?;
        let header_value = token.decode_header()?;
        let header = parse_header(&header_value)?;
        if !header.valid {
            return unverified();
        }
        if !constraints.alg.is_empty() && constraints.alg != header.alg {
            return unverified();
        }
        let signature = token.decode_signature()?;
        if !signature_holds(&constraints, &header, &token, &signature) {
            return unverified();
        }
        let payload = token.decode_payload()?;
        if header
            .cty
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("JWT"))
        {
            // Nested: the payload is the next token. Each level is shorter than the last.
            text = String::from_utf8_lossy(&payload).into_owned();
            continue;
        }
        break (header_value, payload);
    };
    let payload = json_object(&payload).map_err(BuiltinError::invalid)?;
    if !claims_hold(&constraints, &payload)? {
        return unverified();
    }
    Ok(array(vec![Value::from(true), header, payload]))
}

fn signature_holds(
    constraints: &Constraints,
    header: &super::Header,
    token: &Token<'_>,
    signature: &[u8],
) -> bool {
    let alg = Alg::parse(&header.alg);
    let message = token.signed_part();
    match &constraints.keys {
        Some(keys) => verify_with_keys(keys, header, alg, message.as_bytes(), signature),
        None => {
            let secret = jwk::PublicKey::Secret(constraints.secret.as_bytes().to_vec());
            alg.is_some_and(|alg| jwk::verify(&secret, alg, message.as_bytes(), signature))
        }
    }
}

/// The registered claims against the constraints (RFC 7519 4.1.1, 4.1.3 to 4.1.5).
fn claims_hold(constraints: &Constraints, payload: &Value) -> Result<bool, BuiltinError> {
    if !constraints.iss.is_empty() {
        match field(payload, "iss") {
            Some(Value::String(iss)) if **iss == *constraints.iss => {}
            _ => return Ok(false),
        }
    }
    // A token naming an audience is only valid for a caller that names it too.
    match field(payload, "aud") {
        Some(Value::String(aud)) if **aud != *constraints.aud => return Ok(false),
        Some(Value::Array(auds))
            if !auds
                .iter()
                .any(|a| matches!(a, Value::String(s) if **s == *constraints.aud)) =>
        {
            return Ok(false)
        }
        Some(Value::String(_) | Value::Array(_)) => {}
        Some(_) => return Ok(false),
        None if !constraints.aud.is_empty() => return Ok(false),
        None => {}
    }
    let now = constraints.time.unwrap_or_else(now_nanos) / 1e9;
    if let Some(exp) = field(payload, "exp") {
        let Value::Number(_) = exp else {
            return Err(BuiltinError::invalid("exp value must be a number"));
        };
        if args::number_f64(exp).is_some_and(|exp| now >= exp) {
            return Ok(false);
        }
    }
    if let Some(nbf) = field(payload, "nbf") {
        let Value::Number(_) = nbf else {
            return Err(BuiltinError::invalid("nbf value must be a number"));
        };
        if args::number_f64(nbf).is_some_and(|nbf| now < nbf) {
            return Ok(false);
        }
    }
    Ok(true)
}
