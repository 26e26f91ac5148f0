//! `http.send` as far as verdict runs it: the request is checked as OPA checks it (no unknown
//! keys, `method` and `url` present: an `eval_type_error` naming them), and then refused,
//! since a sidecar in the payment path does not call out to the network from a policy
//! (undefined by default, the reason with `strict-builtin-errors`). regorus's own `http.send`
//! answered undefined whatever the request.

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("http.send", 1, send)];

/// The keys of an `http.send` request object: OPA checks the request against them.
const REQUEST_KEYS: [&str; 28] = [
    "method",
    "url",
    "body",
    "enable_redirect",
    "force_json_decode",
    "force_yaml_decode",
    "headers",
    "raw_body",
    "tls_use_system_certs",
    "tls_ca_cert",
    "tls_ca_cert_file",
    "tls_ca_cert_env_variable",
    "tls_client_cert",
    "tls_client_cert_file",
    "tls_client_cert_env_variable",
    "tls_client_key",
    "tls_client_key_file",
    "tls_client_key_env_variable",
    "tls_insecure_skip_verify",
    "tls_server_name",
    "timeout",
    "cache",
    "force_cache",
    "force_cache_duration_seconds",
    "raise_error",
    "caching_mode",
    "max_retry_attempts",
    "cache_ignored_headers",
];

fn send(args: &[Value]) -> Result<Value, BuiltinError> {
    let request = args::object(args, 0)?;
    check_request_keys(request)?;
    Err(BuiltinError::invalid(
        "network access from policies is disabled in verdict",
    ))
}

/// OPA checks the request as `http.send` does: no unknown keys, `method` and `url` present.
pub(super) fn check_request_keys(request: &regorus::value::Object) -> Result<(), BuiltinError> {
    let unknown: Vec<&Value> = request
        .keys()
        .filter(|k| !matches!(k, Value::String(s) if REQUEST_KEYS.contains(&&**s)))
        .collect();
    if !unknown.is_empty() {
        return Err(BuiltinError::invalid(format!(
            "operand 1 invalid request parameters(s): {}",
            super::providers_aws::key_set(unknown)
        )));
    }
    let required = [Value::from("method"), Value::from("url")];
    let missing: Vec<&Value> = required
        .iter()
        .filter(|k| !request.contains_key(k))
        .collect();
    if !missing.is_empty() {
        return Err(BuiltinError::invalid(format!(
            "operand 1 missing required request parameters(s): {}",
            super::providers_aws::key_set(missing)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::policy::builtins::testing::fails;

    #[test]
    fn requests_are_checked_as_opa_checks_them_then_refused() {
        fails(
            r#"http.send({"bad_key": 1, "method": "get", "url": "http://127.0.0.1:9"})"#,
            r#"operand 1 invalid request parameters(s): {"bad_key"}"#,
        );
        fails(
            r#"http.send({"method": "get"})"#,
            r#"operand 1 missing required request parameters(s): {"url"}"#,
        );
        fails(
            r#"http.send({"method": "get", "url": "http://127.0.0.1:9"})"#,
            "network access from policies is disabled",
        );
        fails(
            r#"http.send("x")"#,
            "operand 1 must be object but got string",
        );
    }
}
