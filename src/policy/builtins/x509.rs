//! `crypto.x509.*` and `crypto.parse_private_keys` (OPA's `topdown/crypto.go`): certificates,
//! chains, certificate requests, key pairs and private keys, given as PEM, as base64 of PEM or
//! as base64 of DER, and answered in the JSON shape of Go's `crypto/x509` types.

use regorus::Value;
use x509_parser::certificate::X509Certificate;

use super::args::{self, object_of, BuiltinError};
use super::Builtin;

mod json;
mod keys;
mod verify;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("crypto.x509.parse_certificates", 1, parse_certificates),
    ("crypto.x509.parse_and_verify_certificates", 1, |a| {
        parse_and_verify(a, None)
    }),
    (
        "crypto.x509.parse_and_verify_certificates_with_options",
        2,
        |a| parse_and_verify(a, Some(args::object(a, 1)?)),
    ),
    (
        "crypto.x509.parse_certificate_request",
        1,
        parse_certificate_request,
    ),
    ("crypto.x509.parse_keypair", 2, keys::parse_keypair),
    (
        "crypto.x509.parse_rsa_private_key",
        1,
        keys::parse_rsa_private_key,
    ),
    ("crypto.parse_private_keys", 1, keys::parse_private_keys),
];

/// PEM blocks as Go's `pem.Decode` finds them one after another: (type, DER).
pub(super) fn pem_blocks(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    pem::parse_many(text)
        .map(|blocks| {
            blocks
                .into_iter()
                .map(|b| (b.tag().to_string(), b.into_contents()))
                .collect()
        })
        .unwrap_or_default()
}

fn starts_pem(bytes: &[u8]) -> bool {
    bytes.starts_with(b"-----BEGIN")
}

/// The DER of every certificate in `text` (OPA's `getX509CertsFromString`).
fn certificate_ders(text: &str) -> Result<Vec<u8>, BuiltinError> {
    let bytes = if starts_pem(text.as_bytes()) {
        text.as_bytes().to_vec()
    } else {
        args::base64_std(text)?
    };
    if !starts_pem(&bytes) {
        return Ok(bytes);
    }
    let mut der = Vec::new();
    for (kind, contents) in pem_blocks(&bytes) {
        if kind != "CERTIFICATE" {
            return Err(BuiltinError::invalid(format!(
                "PEM block type is '{kind}', expected CERTIFICATE"
            )));
        }
        der.extend(contents);
    }
    Ok(der)
}

/// Parses concatenated DER certificates, as Go's `x509.ParseCertificates`.
fn parse_all(mut der: &[u8]) -> Result<Vec<(&[u8], X509Certificate<'_>)>, BuiltinError> {
    let mut certs = Vec::new();
    while !der.is_empty() {
        let (rest, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| BuiltinError::invalid(format!("x509: malformed certificate: {e}")))?;
        certs.push((&der[..der.len() - rest.len()], cert));
        der = rest;
    }
    Ok(certs)
}

fn parse_certificates(args: &[Value]) -> Result<Value, BuiltinError> {
    let der = certificate_ders(args::string(args, 0)?)?;
    let certs = parse_all(&der)?;
    Ok(Value::from(
        certs
            .iter()
            .map(|(raw, cert)| json::certificate(raw, cert))
            .collect::<Vec<_>>(),
    ))
}

/// `[true, chain]` from leaf to root, or `[false, []]` for anything that does not verify.
fn parse_and_verify(
    args: &[Value],
    options: Option<&regorus::value::Object>,
) -> Result<Value, BuiltinError> {
    let text = args::string(args, 0)?;
    let invalid = || Ok(args::array(vec![Value::from(false), Value::new_array()]));
    let Ok(der) = certificate_ders(text) else {
        return invalid();
    };
    let Ok(certs) = parse_all(&der) else {
        return invalid();
    };
    let options = match options {
        Some(o) => verify::Options::from_object(o)?,
        None => verify::Options::default(),
    };
    let Some(chain) = verify::chain(&certs, &options) else {
        return invalid();
    };
    let with_uri_strings = options.is_default();
    let chain: Vec<Value> = chain
        .into_iter()
        .filter_map(|i| certs.get(i))
        .map(|(raw, cert)| {
            let value = json::certificate(raw, cert);
            if with_uri_strings {
                return value;
            }
            // OPA marshals the plain Go type here, without its URIStrings addition.
            let mut value = value;
            if let Ok(o) = value.as_object_mut() {
                o.remove(&Value::from("URIStrings"));
            }
            value
        })
        .collect();
    Ok(args::array(vec![Value::from(true), Value::from(chain)]))
}

fn parse_certificate_request(args: &[Value]) -> Result<Value, BuiltinError> {
    let text = args::string(args, 0)?;
    let bytes = if text.starts_with("-----BEGIN CERTIFICATE REQUEST-----") {
        text.as_bytes().to_vec()
    } else {
        args::base64_std(text)?
    };
    let der = match pem_blocks(&bytes).into_iter().next() {
        Some((kind, _)) if kind != "CERTIFICATE REQUEST" => {
            return Err(BuiltinError::invalid(
                "invalid PEM-encoded certificate signing request",
            ))
        }
        Some((_, der)) => der,
        None => bytes,
    };
    use x509_parser::prelude::FromDer;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|e| BuiltinError::invalid(format!("asn1: structure error: {e}")))?;
    let info = &csr.certification_request_info;
    let (key_algorithm, key) = json::public_key(&info.subject_pki);
    use base64::Engine;
    let b64 = |b: &[u8]| Value::from(base64::engine::general_purpose::STANDARD.encode(b));
    Ok(object_of([
        ("Raw", b64(&der)),
        ("RawTBSCertificateRequest", b64(info.raw)),
        ("RawSubjectPublicKeyInfo", b64(info.subject_pki.raw)),
        ("RawSubject", b64(info.subject.as_raw())),
        ("Version", Value::from(i64::from(info.version.0))),
        ("Signature", b64(&csr.signature_value.data)),
        ("PublicKeyAlgorithm", Value::from(key_algorithm)),
        ("PublicKey", key),
        ("Subject", json::name(&info.subject)),
        ("Attributes", Value::Null),
        ("Extensions", Value::Null),
        ("ExtraExtensions", Value::Null),
        ("DNSNames", Value::Null),
        ("EmailAddresses", Value::Null),
        ("IPAddresses", Value::Null),
        ("URIs", Value::Null),
    ]))
}

/// Go's `url.URL` marshalled, for the `URIs` of a certificate.
fn uri_object(text: &str) -> Value {
    let parsed = url::Url::parse(text).ok();
    let part = |f: fn(&url::Url) -> String| Value::from(parsed.as_ref().map(f).unwrap_or_default());
    object_of([
        ("Scheme", part(|u| u.scheme().to_string())),
        ("Opaque", Value::from("")),
        ("User", Value::Null),
        (
            "Host",
            part(|u| u.host_str().unwrap_or_default().to_string()),
        ),
        ("Path", part(|u| u.path().to_string())),
        ("RawPath", Value::from("")),
        ("OmitHost", Value::from(false)),
        ("ForceQuery", Value::from(false)),
        (
            "RawQuery",
            part(|u| u.query().unwrap_or_default().to_string()),
        ),
        (
            "Fragment",
            part(|u| u.fragment().unwrap_or_default().to_string()),
        ),
        ("RawFragment", Value::from("")),
    ])
}

#[cfg(test)]
mod tests;
