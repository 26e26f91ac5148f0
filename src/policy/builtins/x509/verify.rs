//! Chain verification for `crypto.x509.parse_and_verify_certificates*`, as OPA asks Go's
//! `Certificate.Verify`: the first certificate is the root, the last the leaf, the ones between
//! intermediates; each link's signature, validity period, CA flag and extended key usage are
//! checked, and the leaf's DNS name when one is asked for.

use regorus::Value;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::policy::builtins::args::BuiltinError;

/// Go's `ExtKeyUsage` numbers of the usages OPA accepts by name.
const KEY_USAGES: [(&str, u8); 14] = [
    ("KeyUsageAny", 0),
    ("KeyUsageServerAuth", 1),
    ("KeyUsageClientAuth", 2),
    ("KeyUsageCodeSigning", 3),
    ("KeyUsageEmailProtection", 4),
    ("KeyUsageIPSECEndSystem", 5),
    ("KeyUsageIPSECTunnel", 6),
    ("KeyUsageIPSECUser", 7),
    ("KeyUsageTimeStamping", 8),
    ("KeyUsageOCSPSigning", 9),
    ("KeyUsageMicrosoftServerGatedCrypto", 10),
    ("KeyUsageNetscapeServerGatedCrypto", 11),
    ("KeyUsageMicrosoftCommercialCodeSigning", 12),
    ("KeyUsageMicrosoftKernelCodeSigning", 13),
];

#[derive(Debug, Default)]
pub struct Options {
    dns_name: Option<String>,
    /// Seconds since the epoch; now when absent.
    current_time: Option<i64>,
    /// Server authentication when empty, as Go.
    key_usages: Vec<u8>,
    given: bool,
}

impl Options {
    /// OPA's `extractVerifyOpts`, with its error texts.
    pub fn from_object(object: &regorus::value::Object) -> Result<Options, BuiltinError> {
        let mut options = Options {
            given: true,
            ..Options::default()
        };
        for (key, value) in object.iter() {
            let Value::String(key) = key else { continue };
            match &**key {
                "DNSName" => match value {
                    Value::String(s) => options.dns_name = Some(s.trim_matches('"').to_string()),
                    _ => return Err(BuiltinError::invalid("'DNSName' should be a string")),
                },
                "CurrentTime" => {
                    let Value::Number(n) = value else {
                        return Err(BuiltinError::invalid("'CurrentTime' should be a number"));
                    };
                    let nanos = n.as_i64().ok_or_else(|| {
                        BuiltinError::invalid("'CurrentTime' should be a valid int64 number")
                    })?;
                    options.current_time = Some(nanos.div_euclid(1_000_000_000));
                }
                "MaxConstraintComparisons" => {
                    if !matches!(value, Value::Number(_)) {
                        return Err(BuiltinError::invalid(
                            "'MaxConstraintComparisons' should be a number",
                        ));
                    }
                }
                "KeyUsages" => {
                    let items: Vec<&Value> = match value {
                        Value::Array(a) => a.iter().collect(),
                        Value::Set(s) => s.iter().collect(),
                        _ => {
                            return Err(BuiltinError::invalid(
                                "'KeyUsages' should be an Array or Set",
                            ))
                        }
                    };
                    let mut unknown = Vec::new();
                    for item in items {
                        let Value::String(name) = item else { continue };
                        let name = name.trim_matches('"');
                        match KEY_USAGES.iter().find(|(n, _)| *n == name) {
                            Some((_, usage)) => options.key_usages.push(*usage),
                            None => unknown.push(name.to_string()),
                        }
                    }
                    if !unknown.is_empty() {
                        return Err(BuiltinError::invalid(format!(
                            "invalid entries for 'KeyUsages' found: [{}]",
                            unknown.join(" ")
                        )));
                    }
                }
                _ => return Err(BuiltinError::invalid("invalid key option")),
            }
        }
        Ok(options)
    }

    pub fn is_default(&self) -> bool {
        !self.given
    }
}

/// Indexes into `certs` of the verified chain, leaf first; `None` when it does not verify.
pub fn chain(certs: &[(&[u8], X509Certificate<'_>)], options: &Options) -> Option<Vec<usize>> {
    if certs.len() < 2 {
        return None;
    }
    let now = options
        .current_time
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let leaf = certs.len() - 1;
    let usages = if options.key_usages.is_empty() {
        vec![1]
    } else {
        options.key_usages.clone()
    };
    let cert = |i: usize| certs.get(i).map(|(_, c)| c);
    let leaf_cert = cert(leaf)?;
    if let Some(name) = &options.dns_name {
        if !matches_host(leaf_cert, name) {
            return None;
        }
    }
    let mut path = vec![leaf];
    // Depth-first over candidate issuers; each certificate appears at most once in a path.
    fn extend(
        path: &mut Vec<usize>,
        certs: &[(&[u8], X509Certificate<'_>)],
        now: i64,
        usages: &[u8],
    ) -> bool {
        let Some(&current) = path.last() else {
            return false;
        };
        let Some((_, child)) = certs.get(current) else {
            return false;
        };
        if !usable(child, now, usages) {
            return false;
        }
        if current == 0 {
            return true;
        }
        let leaf = certs.len() - 1;
        for (i, (_, parent)) in certs.iter().enumerate() {
            if i == leaf || path.contains(&i) {
                continue;
            }
            let signs = parent.subject().as_raw() == child.issuer().as_raw()
                && is_ca(parent)
                && child.verify_signature(Some(parent.public_key())).is_ok();
            if signs {
                path.push(i);
                if extend(path, certs, now, usages) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    extend(&mut path, certs, now, &usages).then_some(path)
}

fn usable(cert: &X509Certificate<'_>, now: i64, usages: &[u8]) -> bool {
    let validity = cert.validity();
    if now < validity.not_before.timestamp() || now > validity.not_after.timestamp() {
        return false;
    }
    if usages.contains(&0) {
        return true;
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) => {
            let eku = &eku.value;
            let has = |u: u8| match u {
                1 => eku.server_auth,
                2 => eku.client_auth,
                3 => eku.code_signing,
                4 => eku.email_protection,
                8 => eku.time_stamping,
                9 => eku.ocsp_signing,
                _ => false,
            };
            eku.any || usages.iter().any(|u| has(*u))
        }
        _ => true,
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    cert.extensions()
        .iter()
        .any(|e| matches!(e.parsed_extension(), ParsedExtension::BasicConstraints(bc) if bc.ca))
}

/// Go's `VerifyHostname` for DNS names: exact or one leftmost wildcard label, any case.
fn matches_host(cert: &X509Certificate<'_>, host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    san.value.general_names.iter().any(|n| match n {
        GeneralName::DNSName(pattern) => {
            let pattern = pattern.to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                Some(suffix) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
                None => pattern == host,
            }
        }
        _ => false,
    })
}
