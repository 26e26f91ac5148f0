//! Forwarding an allowed request: the message framing checked first (a request two parsers
//! could read two ways is refused, never passed on), the upstream request built with the
//! policy's changes and the forwarding headers, the response streamed back, and a protocol
//! switch (WebSocket) spliced through once the upstream accepts it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use envoy_types::pb::envoy::service::auth::v3::{CheckResponse, OkHttpResponse};
use envoy_types::pb::google::protobuf::value::Kind;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::apply;
use super::body::{idle_stream, Prefix};
use super::upstream::{Upstream, UpstreamError};
use super::DECISION_ID_HEADER;

/// Refuses the framing shapes request smuggling is made of, if the HTTP/1 parser let them
/// through: both Content-Length and Transfer-Encoding, more than one Content-Length, and a
/// Transfer-Encoding other than a final `chunked`.
pub fn check_framing(headers: &HeaderMap) -> Result<(), String> {
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    let encodings: Vec<&HeaderValue> = headers.get_all(header::TRANSFER_ENCODING).iter().collect();
    if lengths > 1 {
        return Err("more than one Content-Length".into());
    }
    if lengths == 1 && !encodings.is_empty() {
        return Err("both Content-Length and Transfer-Encoding".into());
    }
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let digits = length.as_bytes();
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err("a Content-Length that is not a number".into());
        }
    }
    if !encodings.is_empty() {
        let all: Vec<String> = encodings
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .collect();
        if all.len() != 1 || all[0] != "chunked" {
            return Err("a Transfer-Encoding other than chunked".into());
        }
    }
    Ok(())
}

/// True for an HTTP/1.1 request asking to switch protocols (WebSocket and the like).
pub fn upgrade_requested(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// The decision id the adapter put in the dynamic metadata, as opa-envoy-plugin does.
pub fn decision_id(answer: &CheckResponse) -> Option<String> {
    let field = answer
        .dynamic_metadata
        .as_ref()?
        .fields
        .get("decision_id")?;
    match &field.kind {
        Some(Kind::StringValue(id)) => Some(id.clone()),
        _ => None,
    }
}

/// An allowed request on its way upstream.
pub struct Forward {
    pub parts: Parts,
    /// Normalised, as the policy saw it.
    pub path: String,
    pub body: Prefix,
    pub ok: Option<OkHttpResponse>,
    pub peer: Option<SocketAddr>,
    pub scheme: &'static str,
    pub request_id: String,
    pub decision_id: Option<String>,
    pub upgrade: Option<OnUpgrade>,
}

impl Forward {
    /// Sends the request and returns the upstream's response, its body streamed.
    pub async fn send(
        self,
        upstream: &Upstream,
        idle: Duration,
    ) -> Result<Response<Body>, UpstreamError> {
        let Forward {
            parts,
            path,
            body,
            ok,
            peer,
            scheme,
            request_id,
            decision_id,
            upgrade,
        } = self;
        let host = super::check::authority(&parts);
        let mut headers = parts.headers;
        apply::strip_hop_by_hop(&mut headers, upgrade.is_some());
        let path = match &ok {
            Some(ok) => {
                apply::request_headers(&mut headers, ok);
                apply::rewrite_query(
                    &path,
                    &ok.query_parameters_to_remove,
                    &ok.query_parameters_to_set,
                )
            }
            None => path,
        };
        forwarding_headers(&mut headers, peer, scheme, &host);
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", id);
        }
        if let Some(id) = decision_id
            .as_deref()
            .and_then(|d| HeaderValue::from_str(d).ok())
        {
            headers.insert(DECISION_ID_HEADER, id);
        }
        if let Ok(host) = HeaderValue::from_str(&host) {
            headers.insert(header::HOST, host);
        }
        let mut request = Request::new(body.into_body(idle));
        *request.method_mut() = parts.method;
        *request.uri_mut() = upstream.uri(&path)?;
        *request.version_mut() = upstream.version();
        *request.headers_mut() = headers;
        let mut response = upstream.send(request).await?;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client) = upgrade {
                let server = hyper::upgrade::on(&mut response);
                tokio::spawn(splice(client, server));
                let (head, _) = response.into_parts();
                return Ok(Response::from_parts(head, Body::empty()));
            }
        }
        let (mut head, incoming) = response.into_parts();
        apply::strip_hop_by_hop(&mut head.headers, false);
        if let Some(ok) = &ok {
            apply::apply_headers(&mut head.headers, &ok.response_headers_to_add);
        }
        Ok(Response::from_parts(
            head,
            Body::from_stream(idle_stream(incoming, idle)),
        ))
    }
}

/// X-Forwarded-For (appended), X-Forwarded-Proto, X-Forwarded-Host and RFC 7239 Forwarded
/// (appended), as a reverse proxy adds them.
fn forwarding_headers(
    headers: &mut HeaderMap,
    peer: Option<SocketAddr>,
    scheme: &'static str,
    host: &str,
) {
    let client = peer.map(|p| p.ip().to_string());
    if let Some(ip) = &client {
        let chain = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {ip}"),
            None => ip.clone(),
        };
        if let Ok(v) = HeaderValue::from_str(&chain) {
            headers.insert("x-forwarded-for", v);
        }
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(scheme));
    if let Ok(v) = HeaderValue::from_str(host) {
        headers.insert("x-forwarded-host", v);
    }
    let node = match peer.map(|p| p.ip()) {
        Some(std::net::IpAddr::V6(ip)) => format!("\"[{ip}]\""),
        Some(ip) => ip.to_string(),
        None => "unknown".into(),
    };
    let mut element = format!("for={node};proto={scheme}");
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && b != b'"') {
        element.push_str(&format!(";host=\"{host}\""));
    }
    let forwarded = match headers.get("forwarded").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {element}"),
        None => element,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert("forwarded", v);
    }
}

/// Copies bytes both ways between the client and the upstream after a protocol switch.
async fn splice(client: OnUpgrade, server: OnUpgrade) {
    let (client, server) = match tokio::try_join!(client, server) {
        Ok(both) => both,
        Err(error) => {
            tracing::debug!(%error, "protocol switch failed");
            return;
        }
    };
    let (mut client, mut server) = (TokioIo::new(client), TokioIo::new(server));
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
        tracing::debug!(%error, "upgraded connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        assert!(check_framing(&headers(&[("content-length", "5")])).is_ok());
        assert!(check_framing(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        for bad in [
            vec![("content-length", "5"), ("transfer-encoding", "chunked")],
            vec![("content-length", "5"), ("content-length", "5")],
            vec![("content-length", "5, 5")],
            vec![("content-length", "+5")],
            vec![("transfer-encoding", "gzip, chunked")],
            vec![
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            vec![("transfer-encoding", "xchunked")],
        ] {
            assert!(check_framing(&headers(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn forwarding_headers_append_to_what_came_before() {
        let mut h = headers(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("forwarded", "for=203.0.113.7"),
        ]);
        let peer: SocketAddr = "10.0.0.2:5555".parse().unwrap();
        forwarding_headers(&mut h, Some(peer), "https", "pay.example");
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.0.0.2");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.7, for=10.0.0.2;proto=https;host=\"pay.example\""
        );
        let mut h = HeaderMap::new();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        forwarding_headers(&mut h, Some(v6), "http", "");
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http");
    }
}
