//! Carrying out a CheckResponse as Envoy's ext_authz filter does: a denial becomes the
//! response (the policy's status, headers and body); an allowed request goes upstream with the
//! policy's header and query changes, and the upstream's response gets the headers the policy
//! asked for. A policy cannot set hop-by-hop or framing headers: those would let a decision
//! change how the next hop reads the byte stream.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use envoy_types::pb::envoy::config::core::v3::{HeaderValueOption, QueryParameter};
use envoy_types::pb::envoy::service::auth::v3::{DeniedHttpResponse, OkHttpResponse};

/// Headers that belong to one connection (RFC 9110 section 7.6.1) or say how a message is
/// framed: never forwarded as received, never set by a policy.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// True for a header a policy may not set: hop-by-hop, framing, `host` and pseudo-headers.
pub fn is_protected(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    HOP_BY_HOP.contains(&name.as_str())
        || name == "content-length"
        || name == "host"
        || name.starts_with(':')
}

/// Removes the hop-by-hop headers, and those the Connection header names. `keep_upgrade`
/// keeps `connection: upgrade` and `upgrade` for a protocol switch the policy allowed.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    let upgrade = headers.get("upgrade").cloned();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    if keep_upgrade {
        if let Some(protocol) = upgrade {
            headers.insert("connection", HeaderValue::from_static("upgrade"));
            headers.insert("upgrade", protocol);
        }
    }
}

/// The response for a denial.
pub fn denied(denied: Option<&DeniedHttpResponse>) -> Response<Body> {
    let Some(denied) = denied else {
        return plain(StatusCode::FORBIDDEN, Body::empty());
    };
    let code = denied
        .status
        .as_ref()
        .and_then(|s| u16::try_from(s.code).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::FORBIDDEN);
    let mut response = plain(code, Body::from(denied.body.clone()));
    apply_headers(response.headers_mut(), &denied.headers);
    response
}

fn plain(code: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = code;
    response
}

/// The policy's changes to the request going upstream: headers removed, then set.
pub fn request_headers(headers: &mut HeaderMap, ok: &OkHttpResponse) {
    for name in &ok.headers_to_remove {
        if is_protected(name) {
            tracing::debug!(header = %name, "a policy may not remove this header; kept");
            continue;
        }
        headers.remove(name.as_str());
    }
    apply_headers(headers, &ok.headers);
}

/// Sets `options` on `headers`: a header's first value replaces what was there (Envoy's
/// default for ext_authz, `append: false`), further values of the same name, or any with
/// `append: true`, are added.
pub fn apply_headers(headers: &mut HeaderMap, options: &[HeaderValueOption]) {
    let mut set: Vec<HeaderName> = Vec::new();
    for option in options {
        let Some(header) = &option.header else {
            continue;
        };
        if is_protected(&header.key) {
            tracing::debug!(header = %header.key, "a policy may not set this header; ignored");
            continue;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.key.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) else {
            tracing::debug!(header = %header.key, "not a valid header; ignored");
            continue;
        };
        #[allow(deprecated)] // Envoy's `append` is deprecated but opa-envoy-plugin's to set.
        let append = option.append.as_ref().is_some_and(|a| a.value);
        if append || set.contains(&name) {
            headers.append(name, value);
        } else {
            headers.insert(name.clone(), value);
            set.push(name);
        }
    }
}

/// The path and query with the policy's query changes: parameters removed, then set.
pub fn rewrite_query(path_and_query: &str, remove: &[String], set: &[QueryParameter]) -> String {
    if remove.is_empty() && set.is_empty() {
        return path_and_query.to_string();
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let encode = |s: &str| form_urlencoded_component(s);
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            let key = decode_component(key);
            !remove.contains(&key) && !set.iter().any(|s| s.key == key)
        })
        .map(str::to_string)
        .collect();
    for parameter in set {
        pairs.push(format!(
            "{}={}",
            encode(&parameter.key),
            encode(&parameter.value)
        ));
    }
    match pairs.is_empty() {
        true => path.to_string(),
        false => format!("{path}?{}", pairs.join("&")),
    }
}

fn form_urlencoded_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn decode_component(s: &str) -> String {
    url::form_urlencoded::parse(format!("{s}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::HeaderValue as EnvoyHeader;

    fn option(key: &str, value: &str) -> HeaderValueOption {
        HeaderValueOption {
            header: Some(EnvoyHeader {
                key: key.into(),
                value: value.into(),
                raw_value: Vec::new(),
            }),
            ..HeaderValueOption::default()
        }
    }

    #[test]
    fn policies_set_headers_but_never_framing_ones() {
        let mut headers = HeaderMap::new();
        headers.insert("x-role", HeaderValue::from_static("admin"));
        headers.insert("content-length", HeaderValue::from_static("10"));
        let options = [
            option("x-role", "teller"),
            option("x-tag", "a"),
            option("x-tag", "b"),
            option("transfer-encoding", "chunked"),
            option("Content-Length", "0"),
            option("connection", "close"),
            option(":path", "/admin"),
            option("host", "evil"),
            option("x-bad", "line\nbreak"),
        ];
        apply_headers(&mut headers, &options);
        assert_eq!(headers["x-role"], "teller");
        let tags: Vec<_> = headers.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b"]);
        assert_eq!(headers["content-length"], "10");
        assert!(headers.get("transfer-encoding").is_none());
        assert!(headers.get("connection").is_none());
        assert!(headers.get("host").is_none());
        assert!(headers.get("x-bad").is_none());
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        headers.insert("x-secret", HeaderValue::from_static("s"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("k"));
        strip_hop_by_hop(&mut headers, false);
        let names: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-kept"]);
    }

    #[test]
    fn query_parameters_are_removed_then_set() {
        let set = [QueryParameter {
            key: "currency".into(),
            value: "EUR €".into(),
        }];
        let out = rewrite_query(
            "/pay?token=abc&currency=USD&x=1",
            &["token".to_string()],
            &set,
        );
        assert_eq!(out, "/pay?x=1&currency=EUR+%E2%82%AC");
        assert_eq!(
            rewrite_query("/pay?token=a", &["token".into()], &[]),
            "/pay"
        );
        assert_eq!(rewrite_query("/pay?a=1", &[], &[]), "/pay?a=1");
    }
}
