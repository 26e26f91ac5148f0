//! The `input` document of an ext_authz Check, built as opa-envoy-plugin builds it, so that
//! existing `envoy.authz` policies see the same document:
//!
//! - `attributes`: the CheckRequest's AttributeContext with proto JSON names (`socketAddress`,
//!   `contextExtensions`), fields at their zero value left out, 64-bit integers and enums as
//!   numbers, Timestamps as `{seconds, nanos}`, bytes as base64 text.
//! - `parsed_path`, `parsed_query`, `parsed_body`, `truncated_body`, `source_principal`,
//!   `version`.
//!
//! Every message is taken apart without `..`: when envoy-types adds a field, this stops
//! compiling instead of silently leaving the field out of the input.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use envoy_types::pb::envoy::config::core::v3::{
    address, envoy_internal_address, socket_address, Address, EnvoyInternalAddress, HeaderMap,
    HeaderValue, Metadata, Pipe, SocketAddress,
};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Peer, Request, TlsSession,
};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use envoy_types::pb::google::protobuf::{value::Kind, Any, Struct, Timestamp};
use regorus::Value;

use super::{body, url, ExtAuthzError};

/// Builds the input for `request`. An error is opa-envoy-plugin's `request_parse_error`: a
/// path, query or body that cannot be parsed.
pub async fn from_check_request(
    request: &CheckRequest,
    skip_body: bool,
) -> Result<Value, ExtAuthzError> {
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let empty = HashMap::new();
    let (path, text_body, raw_body, headers) = match http {
        Some(h) => (
            h.path.as_str(),
            h.body.as_str(),
            h.raw_body.as_slice(),
            &h.headers,
        ),
        None => ("", "", &[][..], &empty),
    };
    let mut input = Obj::default();
    if let Some(attributes) = &request.attributes {
        input.put("attributes", attribute_context(attributes));
    }
    input.put("version", version());
    let (parsed_path, parsed_query) = url::parse_path_and_query(path)?;
    input.put("parsed_path", parsed_path);
    input.put("parsed_query", parsed_query);
    if !skip_body {
        let parsed = body::parse_body(headers, text_body, raw_body).await?;
        input.put("parsed_body", parsed.value);
        input.put("truncated_body", Value::Bool(parsed.truncated));
    }
    let principal = request
        .attributes
        .as_ref()
        .and_then(|a| a.source.as_ref())
        .map_or("", |s| s.principal.as_str());
    input.string("source_principal", principal);
    Ok(input.done())
}

/// `input.version` of the v3 API.
fn version() -> Value {
    let mut v = Obj::default();
    v.string("ext_authz", "v3");
    v.string("encoding", "protojson");
    v.done()
}

/// An object under construction that, like proto3's JSON, leaves zero values out.
#[derive(Default)]
struct Obj(BTreeMap<Value, Value>);

impl Obj {
    fn put(&mut self, key: &str, value: Value) {
        self.0.insert(Value::from(key), value);
    }

    fn string(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.put(key, Value::from(value));
        }
    }

    fn int(&mut self, key: &str, value: i64) {
        if value != 0 {
            self.put(key, Value::from(value));
        }
    }

    fn flag(&mut self, key: &str, value: bool) {
        if value {
            self.put(key, Value::Bool(true));
        }
    }

    fn bytes(&mut self, key: &str, value: &[u8]) {
        if !value.is_empty() {
            self.put(key, base64_text(value));
        }
    }

    fn message<T>(&mut self, key: &str, value: Option<&T>, convert: impl Fn(&T) -> Value) {
        if let Some(v) = value {
            self.put(key, convert(v));
        }
    }

    fn string_map(&mut self, key: &str, map: &HashMap<String, String>) {
        if !map.is_empty() {
            let entries = map
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                .collect::<BTreeMap<_, _>>();
            self.put(key, Value::from(entries));
        }
    }

    fn done(self) -> Value {
        Value::from(self.0)
    }
}

/// Go's JSON form of bytes: standard base64 with padding.
fn base64_text(bytes: &[u8]) -> Value {
    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn attribute_context(a: &AttributeContext) -> Value {
    let AttributeContext {
        source,
        destination,
        request,
        context_extensions,
        metadata_context,
        route_metadata_context,
        tls_session,
    } = a;
    let mut o = Obj::default();
    o.message("source", source.as_ref(), peer);
    o.message("destination", destination.as_ref(), peer);
    o.message("request", request.as_ref(), request_attributes);
    o.string_map("contextExtensions", context_extensions);
    o.message("metadataContext", metadata_context.as_ref(), metadata);
    o.message(
        "routeMetadataContext",
        route_metadata_context.as_ref(),
        metadata,
    );
    o.message("tlsSession", tls_session.as_ref(), tls);
    o.done()
}

fn peer(p: &Peer) -> Value {
    let Peer {
        address,
        service,
        labels,
        principal,
        certificate,
    } = p;
    let mut o = Obj::default();
    o.message("address", address.as_ref(), address_value);
    o.string("service", service);
    o.string_map("labels", labels);
    o.string("principal", principal);
    o.string("certificate", certificate);
    o.done()
}

fn address_value(a: &Address) -> Value {
    let Address { address } = a;
    let mut o = Obj::default();
    match address {
        Some(address::Address::SocketAddress(s)) => o.put("socketAddress", socket(s)),
        Some(address::Address::Pipe(p)) => o.put("pipe", pipe(p)),
        Some(address::Address::EnvoyInternalAddress(e)) => {
            o.put("envoyInternalAddress", internal_address(e))
        }
        None => {}
    }
    o.done()
}

fn socket(s: &SocketAddress) -> Value {
    let SocketAddress {
        protocol,
        address,
        resolver_name,
        ipv4_compat,
        network_namespace_filepath,
        port_specifier,
    } = s;
    let mut o = Obj::default();
    o.int("protocol", i64::from(*protocol));
    o.string("address", address);
    // A oneof member is present once set, even at its zero value.
    match port_specifier {
        Some(socket_address::PortSpecifier::PortValue(port)) => {
            o.put("portValue", Value::from(u64::from(*port)))
        }
        Some(socket_address::PortSpecifier::NamedPort(name)) => {
            o.put("namedPort", Value::from(name.as_str()))
        }
        None => {}
    }
    o.string("resolverName", resolver_name);
    o.flag("ipv4Compat", *ipv4_compat);
    o.string("networkNamespaceFilepath", network_namespace_filepath);
    o.done()
}

fn pipe(p: &Pipe) -> Value {
    let Pipe { path, mode } = p;
    let mut o = Obj::default();
    o.string("path", path);
    o.int("mode", i64::from(*mode));
    o.done()
}

fn internal_address(e: &EnvoyInternalAddress) -> Value {
    let EnvoyInternalAddress {
        endpoint_id,
        address_name_specifier,
    } = e;
    let mut o = Obj::default();
    match address_name_specifier {
        Some(envoy_internal_address::AddressNameSpecifier::ServerListenerName(name)) => {
            o.put("serverListenerName", Value::from(name.as_str()))
        }
        None => {}
    }
    o.string("endpointId", endpoint_id);
    o.done()
}

fn request_attributes(r: &Request) -> Value {
    let Request { time, http } = r;
    let mut o = Obj::default();
    o.message("time", time.as_ref(), timestamp);
    o.message("http", http.as_ref(), http_request);
    o.done()
}

/// opa-envoy-plugin maps the Timestamp message field by field, not to RFC 3339 text.
fn timestamp(t: &Timestamp) -> Value {
    let Timestamp { seconds, nanos } = t;
    let mut o = Obj::default();
    o.int("seconds", *seconds);
    o.int("nanos", i64::from(*nanos));
    o.done()
}

fn http_request(h: &HttpRequest) -> Value {
    let HttpRequest {
        id,
        method,
        headers,
        header_map,
        path,
        host,
        scheme,
        query,
        fragment,
        size,
        protocol,
        body,
        raw_body,
    } = h;
    let mut o = Obj::default();
    o.string("id", id);
    o.string("method", method);
    o.string_map("headers", headers);
    o.message("headerMap", header_map.as_ref(), header_map_value);
    o.string("path", path);
    o.string("host", host);
    o.string("scheme", scheme);
    o.string("query", query);
    o.string("fragment", fragment);
    o.int("size", *size);
    o.string("protocol", protocol);
    o.string("body", body);
    o.bytes("rawBody", raw_body);
    o.done()
}

fn header_map_value(m: &HeaderMap) -> Value {
    let HeaderMap { headers } = m;
    let mut o = Obj::default();
    if !headers.is_empty() {
        o.put(
            "headers",
            Value::from(headers.iter().map(header_value).collect::<Vec<_>>()),
        );
    }
    o.done()
}

fn header_value(h: &HeaderValue) -> Value {
    let HeaderValue {
        key,
        value,
        raw_value,
    } = h;
    let mut o = Obj::default();
    o.string("key", key);
    o.string("value", value);
    o.bytes("rawValue", raw_value);
    o.done()
}

fn metadata(m: &Metadata) -> Value {
    let Metadata {
        filter_metadata,
        typed_filter_metadata,
    } = m;
    let mut o = Obj::default();
    if !filter_metadata.is_empty() {
        let entries = filter_metadata
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), struct_value(v)))
            .collect::<BTreeMap<_, _>>();
        o.put("filterMetadata", Value::from(entries));
    }
    if !typed_filter_metadata.is_empty() {
        let entries = typed_filter_metadata
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), any_value(v)))
            .collect::<BTreeMap<_, _>>();
        o.put("typedFilterMetadata", Value::from(entries));
    }
    o.done()
}

fn tls(t: &TlsSession) -> Value {
    let TlsSession { sni } = t;
    let mut o = Obj::default();
    o.string("sni", sni);
    o.done()
}

/// An Any stays a message: its type URL and its packed bytes.
fn any_value(a: &Any) -> Value {
    let Any { type_url, value } = a;
    let mut o = Obj::default();
    o.string("typeUrl", type_url);
    o.bytes("value", value);
    o.done()
}

/// A Struct is plain JSON, as its `AsMap` gives it in Go.
pub fn struct_value(s: &Struct) -> Value {
    let entries = s
        .fields
        .iter()
        .map(|(k, v)| (Value::from(k.as_str()), json_value(v.kind.as_ref())))
        .collect::<BTreeMap<_, _>>();
    Value::from(entries)
}

fn json_value(kind: Option<&Kind>) -> Value {
    match kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Value::from(s.as_str()),
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::StructValue(s)) => struct_value(s),
        Some(Kind::ListValue(l)) => Value::from(
            l.values
                .iter()
                .map(|v| json_value(v.kind.as_ref()))
                .collect::<Vec<_>>(),
        ),
    }
}

/// A Struct number is a double; a whole one reads as an integer, as Go prints it. JSON has
/// no NaN or infinity: those become null rather than a number no policy can compare.
fn number(n: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact
    if !n.is_finite() {
        Value::Null
    } else if n.fract() == 0.0 && n.abs() < EXACT {
        Value::from(n as i64)
    } else {
        Value::from(n)
    }
}
