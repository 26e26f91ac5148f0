//! `providers.aws.sign_req` against AWS's published Signature V4 example and the signatures
//! OPA computes, and every refusal in OPA's words.

use regorus::Value;

use crate::policy::builtins::testing::{eval_with_input, json};

const CALL: &str = "providers.aws.sign_req(input.req, input.config, input.ns)";
/// 2015-12-28T14:08:25Z.
const NS: u64 = 1_451_311_705_000_000_000;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn config(extra: &str) -> String {
    format!(
        r#"{{"aws_access_key": "MYAWSACCESSKEYGOESHERE",
            "aws_secret_access_key": "MYAWSSECRETACCESSKEYGOESHERE",
            "aws_service": "s3", "aws_region": "us-east-1"{extra}}}"#
    )
}

fn input(req: &str, config: &str, ns: &str) -> Value {
    json(&format!(
        r#"{{"req": {req}, "config": {config}, "ns": {ns}}}"#
    ))
}

/// The signed request; strict and lax evaluations must agree.
fn signed(req: &str, config: &str) -> Value {
    let input = input(req, config, &NS.to_string());
    let lax = eval_with_input(CALL, input.clone(), false);
    assert_eq!(
        lax,
        eval_with_input(CALL, input, true),
        "strict and lax differ"
    );
    match lax {
        Ok(Some(v)) => v,
        other => panic!("{req}: expected a value, got {other:?}"),
    }
}

fn header(request: &Value, name: &str) -> String {
    match &request["headers"][name] {
        Value::String(s) => s.to_string(),
        other => panic!("header {name}: {other:?}"),
    }
}

fn signature(request: &Value) -> String {
    let auth = header(request, "Authorization");
    auth.rsplit_once("Signature=")
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| panic!("no signature in {auth}"))
}

#[test]
fn signs_aws_published_get_vanilla_example() {
    // AWS's Signature V4 test suite, "get-vanilla": 2015-08-30T12:36:00Z.
    let input = input(
        r#"{"method": "GET", "url": "https://example.amazonaws.com/"}"#,
        r#"{"aws_access_key": "AKIDEXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "aws_service": "service", "aws_region": "us-east-1"}"#,
        "1440938160000000000",
    );
    let Ok(Some(out)) = eval_with_input(CALL, input, true) else {
        panic!("no value");
    };
    assert_eq!(
        header(&out, "Authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,\
         SignedHeaders=host;x-amz-date,\
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(header(&out, "x-amz-date"), "20150830T123600Z");
    assert_eq!(header(&out, "host"), "example.amazonaws.com");
    // Only s3 and glacier carry the payload hash.
    assert_eq!(out["headers"]["x-amz-content-sha256"], Value::Undefined);
}

#[test]
fn adds_the_signing_headers_and_keeps_the_request() {
    let req = r#"{"method": "get", "url": "http://example.com", "headers": {"foo": "bar"}}"#;
    let out = signed(req, &config(""));
    assert_eq!(out["method"], Value::from("get"));
    assert_eq!(out["url"], Value::from("http://example.com"));
    assert_eq!(header(&out, "foo"), "bar");
    assert_eq!(header(&out, "host"), "example.com");
    assert_eq!(header(&out, "x-amz-date"), "20151228T140825Z");
    assert_eq!(header(&out, "x-amz-content-sha256"), EMPTY_SHA256);
    // OPA's signature for this request (its compliance case "with headers no body").
    assert_eq!(
        header(&out, "Authorization"),
        "AWS4-HMAC-SHA256 Credential=MYAWSACCESSKEYGOESHERE/20151228/us-east-1/s3/aws4_request,\
         SignedHeaders=foo;host;x-amz-content-sha256;x-amz-date,\
         Signature=8f1dc7c9b9978356a0d0989fd26a95307f4f8a4aa264d8220647b7097d839952"
    );
}

#[test]
fn a_session_token_is_sent_and_signed() {
    let req = r#"{"method": "get", "url": "http://example.com"}"#;
    let out = signed(req, &config(r#", "aws_session_token": "TOKEN""#));
    assert_eq!(header(&out, "x-amz-security-token"), "TOKEN");
    assert!(header(&out, "Authorization")
        .contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"));
}

#[test]
fn the_payload_is_the_raw_body_else_the_body_as_json() {
    let hash = |req: &str| header(&signed(req, &config("")), "x-amz-content-sha256");
    let json_body = r#"{"method": "get", "url": "http://e", "body": {"b": [2, 1], "a": "<"}}"#;
    // Go's JSON: sorted keys, HTML characters escaped.
    let raw =
        r#"{"method": "get", "url": "http://e", "raw_body": "{\"a\":\"\\u003c\",\"b\":[2,1]}"}"#;
    assert_eq!(hash(json_body), hash(raw));
    let both = r#"{"method": "get", "url": "http://e", "body": {"x": 1}, "raw_body": ""}"#;
    assert_eq!(hash(both), EMPTY_SHA256);
}

#[test]
fn disable_payload_signing_signs_unsigned_payload() {
    let req = r#"{"method": "get", "url": "https://example.com", "headers": {"foo": "bar"}, "body": {"x": 1}}"#;
    let out = signed(req, &config(r#", "disable_payload_signing": true"#));
    assert_eq!(header(&out, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    // OPA's signature for an unsigned payload (compliance case "no-payload-signing").
    assert_eq!(
        signature(&out),
        "c6e6db654e92172f71e18c714c123711de069ac6fd7df1348e5b28fd05532028"
    );
    let signed_payload = signed(req, &config(r#", "disable_payload_signing": false"#));
    assert_ne!(signature(&signed_payload), signature(&out));
}

#[test]
fn a_request_header_is_signed_as_given_but_sent_as_computed() {
    let with =
        r#"{"method": "get", "url": "http://e", "headers": {"X-Amz-Content-Sha256": "mine"}}"#;
    let without = r#"{"method": "get", "url": "http://e"}"#;
    let a = signed(with, &config(""));
    let b = signed(without, &config(""));
    assert_eq!(header(&a, "x-amz-content-sha256"), EMPTY_SHA256);
    assert_eq!(header(&a, "X-Amz-Content-Sha256"), "mine");
    assert_ne!(signature(&a), signature(&b));
    // Headers proxies rewrite are sent but not signed.
    let agent = r#"{"method": "get", "url": "http://e", "headers": {"User-Agent": "x"}}"#;
    assert_eq!(signature(&signed(agent, &config(""))), signature(&b));
}

#[test]
fn path_and_query_are_signed_as_go_escapes_them() {
    let sig = |url: &str| {
        let req = format!(r#"{{"method": "get", "url": "{url}"}}"#);
        signature(&signed(&req, &config("")))
    };
    assert_eq!(sig("http://e/a%20b?x=1"), sig("http://e/a b?x=1"));
    assert_ne!(sig("http://e/a?x=1"), sig("http://e/a?x=2"));
    assert_eq!(sig("http://e/a#fragment"), sig("http://e/a"));
}

/// OPA's error for these arguments: undefined by default, a type error when strict.
fn refused(req: &str, config: &str, ns: &str, message: &str) {
    let input = input(req, config, ns);
    assert_eq!(
        eval_with_input(CALL, input.clone(), false),
        Ok(None),
        "{message}"
    );
    match eval_with_input(CALL, input, true) {
        Err(e) => assert!(e.contains(message), "{e}\nwanted: {message}"),
        other => panic!("expected {message}, got {other:?}"),
    }
}

#[test]
fn refuses_bad_arguments_in_opas_words() {
    let ok_req = r#"{"method": "get", "url": "http://example.com"}"#;
    let ns = &NS.to_string();
    refused(
        "{}",
        &config(""),
        ns,
        r#"providers.aws.sign_req: operand 1 missing required request parameters(s): {"method", "url"}"#,
    );
    refused(
        r#"{"method": [], "url": 1}"#,
        &config(""),
        ns,
        r#"operand 1 invalid values for required request parameters(s): {"method", "url"}"#,
    );
    refused(
        r#"{"method": "get", "url": "http://e", "bogus": 1}"#,
        &config(""),
        ns,
        r#"operand 1 invalid request parameters(s): {"bogus"}"#,
    );
    refused(
        ok_req,
        r#"{"example": "example"}"#,
        ns,
        r#"operand 2 missing required AWS config parameters(s): {"aws_access_key", "aws_region", "aws_secret_access_key", "aws_service"}"#,
    );
    refused(
        ok_req,
        r#"{"aws_access_key": 1, "aws_secret_access_key": "s", "aws_service": 4, "aws_region": "r"}"#,
        ns,
        r#"operand 2 invalid values for required AWS config parameters(s): {"aws_access_key", "aws_service"}"#,
    );
    refused(
        ok_req,
        &config(r#", "disable_payload_signing": "false""#),
        ns,
        "operand 2 invalid value for 'disable_payload_signing' in AWS config",
    );
    for bad in ["-1000000000", "1.5", "1e30"] {
        refused(
            ok_req,
            &config(""),
            bad,
            "operand 3 could not convert time_ns value into a unix timestamp",
        );
    }
    refused(
        ok_req,
        &config(""),
        r#""now""#,
        "operand 1 must be number but got string",
    );
    refused(
        "[]",
        &config(""),
        ns,
        "operand 1 must be object but got array",
    );
    refused(ok_req, "null", ns, "operand 1 must be object but got null");
    refused(
        r#"{"method": "get", "url": "http://e", "headers": "h"}"#,
        &config(""),
        ns,
        "operand 0 must be object but got string",
    );
    refused(
        r#"{"method": "get", "url": "http://e/%zz"}"#,
        &config(""),
        ns,
        r#"providers.aws.sign_req: parse "http://e/%zz": invalid URL escape "%zz""#,
    );
}

#[test]
fn a_large_body_is_hashed_not_copied_into_the_signature() {
    let body = "x".repeat(1 << 20);
    let req = format!(r#"{{"method": "put", "url": "http://e", "raw_body": "{body}"}}"#);
    let out = signed(&req, &config(""));
    assert_eq!(header(&out, "x-amz-content-sha256").len(), 64);
    assert!(header(&out, "Authorization").len() < 300);
}
