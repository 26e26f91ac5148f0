//! The ext_authz CheckRequest for a request arriving at the proxy, filled as Envoy's ext_authz
//! filter fills it (header names in lower case with its pseudo-headers, repeated headers
//! joined by commas, the body up to the limit with Envoy's partial-body marker, the peer's
//! address and certificate), so that one `envoy.authz` policy decides alike behind Envoy and
//! behind verdict.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Version};
use envoy_types::pb::envoy::config::core::v3::{address, socket_address, Address, SocketAddress};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request, TlsSession,
};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use envoy_types::pb::google::protobuf::Timestamp;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::server::conn::TlsPeer;

/// Envoy URL-encodes the peer certificate's PEM; these stay as they are.
const PEM_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'+')
    .remove(b'/')
    .remove(b'=');

/// What the proxy knows of one request beyond its head.
pub struct Facts<'a> {
    /// The normalised path with its query: what the upstream will be sent.
    pub path: &'a str,
    pub body: &'a [u8],
    pub truncated: bool,
    pub peer: Option<SocketAddr>,
    pub tls: Option<&'a TlsPeer>,
    pub request_id: &'a str,
}

/// The CheckRequest Envoy would send for this request.
pub fn check_request(parts: &Parts, facts: &Facts<'_>) -> CheckRequest {
    let scheme = if facts.tls.is_some() { "https" } else { "http" };
    let host = authority(parts);
    let mut headers = joined_headers(&parts.headers);
    headers.insert(":authority".into(), host.clone());
    headers.insert(":method".into(), parts.method.to_string());
    headers.insert(":path".into(), facts.path.to_string());
    headers.insert(":scheme".into(), scheme.into());
    headers.insert("x-forwarded-proto".into(), scheme.into());
    headers.insert("x-request-id".into(), facts.request_id.to_string());
    if facts.truncated {
        headers.insert("x-envoy-auth-partial-body".into(), "true".into());
    }
    let (body, raw_body) = match std::str::from_utf8(facts.body) {
        Ok(text) => (text.to_string(), Vec::new()),
        Err(_) => (String::new(), facts.body.to_vec()),
    };
    let size = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(if facts.truncated {
            -1
        } else {
            facts.body.len() as i64
        });
    let (query, fragment) = (
        facts.path.split_once('?').map_or("", |(_, q)| q),
        String::new(),
    );
    let http = HttpRequest {
        id: facts.request_id.to_string(),
        method: parts.method.to_string(),
        headers,
        header_map: None,
        path: facts.path.to_string(),
        host,
        scheme: scheme.into(),
        query: query.to_string(),
        fragment,
        size,
        protocol: protocol(parts.version).into(),
        body,
        raw_body,
    };
    let source = Peer {
        address: facts.peer.map(socket_address),
        service: String::new(),
        labels: HashMap::new(),
        principal: facts
            .tls
            .and_then(|t| t.principal.clone())
            .unwrap_or_default(),
        certificate: facts
            .tls
            .and_then(|t| t.certificate_pem.as_deref())
            .map(|pem| utf8_percent_encode(pem, PEM_KEEP).to_string())
            .unwrap_or_default(),
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(source),
            destination: None,
            request: Some(Request {
                time: Some(now()),
                http: Some(http),
            }),
            context_extensions: HashMap::new(),
            metadata_context: None,
            route_metadata_context: None,
            tls_session: facts.tls.map(|t| TlsSession {
                sni: t.sni.clone().unwrap_or_default(),
            }),
        }),
    }
}

/// The request's authority: HTTP/2's `:authority`, else the Host header.
pub fn authority(parts: &Parts) -> String {
    parts
        .uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// Envoy's header map as ext_authz sends it: one entry per name, repeated values joined.
fn joined_headers(headers: &HeaderMap) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::with_capacity(headers.keys_len() + 6);
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    out
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

fn socket_address(peer: SocketAddr) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            protocol: 0,
            address: peer.ip().to_string(),
            resolver_name: String::new(),
            ipv4_compat: false,
            network_namespace_filepath: String::new(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                peer.port(),
            ))),
        })),
    }
}

fn now() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}
