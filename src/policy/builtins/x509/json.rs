//! A parsed certificate as OPA returns it: Go's `x509.Certificate` marshalled to JSON (field
//! names, enum numbers, base64 byte strings, `null` for absent lists), plus OPA's `URIStrings`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use regorus::Value;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::Oid;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

use crate::policy::builtins::args::object_of;

fn bytes(b: &[u8]) -> Value {
    Value::from(STANDARD.encode(b))
}

fn strings(items: &[String]) -> Value {
    if items.is_empty() {
        return Value::Null;
    }
    Value::from(
        items
            .iter()
            .map(|s| Value::from(s.as_str()))
            .collect::<Vec<_>>(),
    )
}

fn oid(o: &Oid<'_>) -> Value {
    match o.iter() {
        Some(arcs) => Value::from(arcs.map(Value::from).collect::<Vec<_>>()),
        None => Value::Null,
    }
}

fn big(be: &[u8]) -> Value {
    let n = x509_parser::num_bigint::BigUint::from_bytes_be(be);
    Value::from_numeric_string(&n.to_string()).unwrap_or(Value::Null)
}

/// Go's `pkix.Name`.
pub fn name(n: &X509Name<'_>) -> Value {
    use x509_parser::oid_registry as oids;
    let mut fields: Vec<(Oid<'static>, &str, Vec<String>)> = vec![
        (oids::OID_X509_COUNTRY_NAME, "Country", vec![]),
        (oids::OID_X509_ORGANIZATION_NAME, "Organization", vec![]),
        (
            oids::OID_X509_ORGANIZATIONAL_UNIT,
            "OrganizationalUnit",
            vec![],
        ),
        (oids::OID_X509_LOCALITY_NAME, "Locality", vec![]),
        (oids::OID_X509_STATE_OR_PROVINCE_NAME, "Province", vec![]),
        (oids::OID_X509_STREET_ADDRESS, "StreetAddress", vec![]),
        (oids::OID_X509_POSTAL_CODE, "PostalCode", vec![]),
    ];
    let mut common_name = String::new();
    let mut serial = String::new();
    let mut names = Vec::new();
    for attr in n.iter_attributes() {
        let text = attr.as_str().unwrap_or_default().to_string();
        names.push(object_of([
            ("Type", oid(attr.attr_type())),
            ("Value", Value::from(text.as_str())),
        ]));
        if attr.attr_type() == &oids::OID_X509_COMMON_NAME {
            common_name = text;
        } else if attr.attr_type() == &oids::OID_X509_SERIALNUMBER {
            serial = text;
        } else if let Some(f) = fields.iter_mut().find(|f| &f.0 == attr.attr_type()) {
            f.2.push(text);
        }
    }
    let mut entries: Vec<(&str, Value)> = fields
        .iter()
        .map(|(_, key, v)| (*key, strings(v)))
        .collect();
    entries.push(("SerialNumber", Value::from(serial)));
    entries.push(("CommonName", Value::from(common_name)));
    entries.push(("Names", Value::from(names)));
    entries.push(("ExtraNames", Value::Null));
    object_of(entries)
}

/// Go's `x509.SignatureAlgorithm` number.
fn signature_algorithm(alg: &AlgorithmIdentifier<'_>) -> i64 {
    match alg.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.2" => 1,
        "1.2.840.113549.1.1.4" => 2,
        "1.2.840.113549.1.1.5" => 3,
        "1.2.840.113549.1.1.11" => 4,
        "1.2.840.113549.1.1.12" => 5,
        "1.2.840.113549.1.1.13" => 6,
        "1.2.840.10040.4.3" => 7,
        "2.16.840.1.101.3.4.3.2" => 8,
        "1.2.840.10045.4.1" => 9,
        "1.2.840.10045.4.3.2" => 10,
        "1.2.840.10045.4.3.3" => 11,
        "1.2.840.10045.4.3.4" => 12,
        // RSASSA-PSS: Go tells the hash from the parameters; SHA-256 is by far the commonest.
        "1.2.840.113549.1.1.10" => 13,
        "1.3.101.112" => 16,
        _ => 0,
    }
}

/// Go's `x509.PublicKeyAlgorithm` number and its marshalled public key.
pub fn public_key(spki: &SubjectPublicKeyInfo<'_>) -> (i64, Value) {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => (
            1,
            object_of([("N", big(rsa.modulus)), ("E", big(rsa.exponent))]),
        ),
        Ok(PublicKey::DSA(_)) => (2, Value::new_object()),
        Ok(PublicKey::EC(point)) => {
            let data = point.data();
            let half = data.len().saturating_sub(1) / 2;
            let (x, y) = data.get(1..).unwrap_or_default().split_at(half);
            let curve = object_of([]);
            (
                3,
                object_of([("Curve", curve), ("X", big(x)), ("Y", big(y))]),
            )
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            (4, bytes(&spki.subject_public_key.data))
        }
        _ => (0, Value::Null),
    }
}

/// Go's `x509.ExtKeyUsage` numbers of the standard usages.
fn ext_key_usages(eku: &x509_parser::extensions::ExtendedKeyUsage<'_>) -> Vec<Value> {
    let flags = [
        (eku.any, 0),
        (eku.server_auth, 1),
        (eku.client_auth, 2),
        (eku.code_signing, 3),
        (eku.email_protection, 4),
        (eku.time_stamping, 8),
        (eku.ocsp_signing, 9),
    ];
    flags
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| Value::from(*n as i64))
        .collect()
}

fn ip_text(raw: &[u8]) -> String {
    match raw.len() {
        4 => <[u8; 4]>::try_from(raw)
            .map(|b| std::net::Ipv4Addr::from(b).to_string())
            .unwrap_or_default(),
        16 => <[u8; 16]>::try_from(raw)
            .map(|b| std::net::Ipv6Addr::from(b).to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

fn time(t: &x509_parser::time::ASN1Time) -> Value {
    let text = chrono::DateTime::from_timestamp(t.timestamp(), 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    Value::from(text)
}

/// The whole certificate; `der` is the certificate's own encoding.
pub fn certificate(der: &[u8], cert: &X509Certificate<'_>) -> Value {
    let tbs = &cert.tbs_certificate;
    let (key_algorithm, key) = public_key(tbs.public_key());
    let mut dns = Vec::new();
    let mut emails = Vec::new();
    let mut ips = Vec::new();
    let mut uris = Vec::new();
    let mut ocsp = Vec::new();
    let mut issuers = Vec::new();
    let mut crls = Vec::new();
    let mut policies = Vec::new();
    let mut key_usage = 0i64;
    let mut ext_usage = Vec::new();
    let mut unknown_usage = Vec::new();
    let (mut constraints_valid, mut is_ca, mut max_path, mut path_zero) =
        (false, false, 0i64, false);
    let (mut subject_key_id, mut authority_key_id) = (Value::Null, Value::Null);
    let mut extensions = Vec::new();
    for ext in tbs.extensions() {
        extensions.push(object_of([
            ("Id", oid(&ext.oid)),
            ("Critical", Value::from(ext.critical)),
            ("Value", bytes(ext.value)),
        ]));
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    match n {
                        GeneralName::DNSName(s) => dns.push(s.to_string()),
                        GeneralName::RFC822Name(s) => emails.push(s.to_string()),
                        GeneralName::URI(s) => uris.push(s.to_string()),
                        GeneralName::IPAddress(raw) => ips.push(ip_text(raw)),
                        _ => {}
                    }
                }
            }
            ParsedExtension::KeyUsage(ku) => key_usage = i64::from(ku.flags),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                ext_usage = ext_key_usages(eku);
                unknown_usage = eku.other.iter().map(oid).collect();
            }
            ParsedExtension::BasicConstraints(bc) => {
                constraints_valid = true;
                is_ca = bc.ca;
                max_path = bc.path_len_constraint.map_or(-1, i64::from);
                path_zero = bc.path_len_constraint == Some(0);
            }
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = bytes(id.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                if let Some(id) = &aki.key_identifier {
                    authority_key_id = bytes(id.0);
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    if let GeneralName::URI(uri) = desc.access_location {
                        match desc.access_method.to_id_string().as_str() {
                            "1.3.6.1.5.5.7.48.1" => ocsp.push(uri.to_string()),
                            "1.3.6.1.5.5.7.48.2" => issuers.push(uri.to_string()),
                            _ => {}
                        }
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
                        crls.extend(names.iter().filter_map(|n| match n {
                            GeneralName::URI(u) => Some(u.to_string()),
                            _ => None,
                        }));
                    }
                }
            }
            ParsedExtension::CertificatePolicies(ps) => {
                policies.extend(ps.iter().map(|p| p.policy_id.clone()));
            }
            _ => {}
        }
    }
    let list = |v: Vec<Value>| {
        if v.is_empty() {
            Value::Null
        } else {
            Value::from(v)
        }
    };
    let uri_strings = strings(&uris);
    let uri_values = uris
        .iter()
        .map(|u| super::uri_object(u))
        .collect::<Vec<_>>();
    object_of([
        ("Raw", bytes(der)),
        ("RawTBSCertificate", bytes(tbs.as_ref())),
        ("RawSubjectPublicKeyInfo", bytes(tbs.subject_pki.raw)),
        ("RawSubject", bytes(tbs.subject.as_raw())),
        ("RawIssuer", bytes(tbs.issuer.as_raw())),
        ("Signature", bytes(&cert.signature_value.data)),
        (
            "SignatureAlgorithm",
            Value::from(signature_algorithm(&cert.signature_algorithm)),
        ),
        ("PublicKeyAlgorithm", Value::from(key_algorithm)),
        ("PublicKey", key),
        ("Version", Value::from(i64::from(tbs.version.0) + 1)),
        ("SerialNumber", big(&tbs.serial.to_bytes_be())),
        ("Issuer", name(&tbs.issuer)),
        ("Subject", name(&tbs.subject)),
        ("NotBefore", time(&tbs.validity.not_before)),
        ("NotAfter", time(&tbs.validity.not_after)),
        ("KeyUsage", Value::from(key_usage)),
        ("Extensions", list(extensions)),
        ("ExtraExtensions", Value::Null),
        ("UnhandledCriticalExtensions", Value::Null),
        ("ExtKeyUsage", list(ext_usage)),
        ("UnknownExtKeyUsage", list(unknown_usage)),
        ("BasicConstraintsValid", Value::from(constraints_valid)),
        ("IsCA", Value::from(is_ca)),
        ("MaxPathLen", Value::from(max_path)),
        ("MaxPathLenZero", Value::from(path_zero)),
        ("SubjectKeyId", subject_key_id),
        ("AuthorityKeyId", authority_key_id),
        ("OCSPServer", strings(&ocsp)),
        ("IssuingCertificateURL", strings(&issuers)),
        ("DNSNames", strings(&dns)),
        ("EmailAddresses", strings(&emails)),
        ("IPAddresses", strings(&ips)),
        ("URIs", list(uri_values)),
        ("PermittedDNSDomainsCritical", Value::from(false)),
        ("PermittedDNSDomains", Value::Null),
        ("ExcludedDNSDomains", Value::Null),
        ("PermittedIPRanges", Value::Null),
        ("ExcludedIPRanges", Value::Null),
        ("PermittedEmailAddresses", Value::Null),
        ("ExcludedEmailAddresses", Value::Null),
        ("PermittedURIDomains", Value::Null),
        ("ExcludedURIDomains", Value::Null),
        ("CRLDistributionPoints", strings(&crls)),
        (
            "PolicyIdentifiers",
            list(policies.iter().map(oid).collect()),
        ),
        ("URIStrings", uri_strings),
    ])
}
