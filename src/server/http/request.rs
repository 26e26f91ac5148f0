//! Reading requests the way OPA reads them: boolean query parameters, bodies under a size
//! limit (gzip included), and the input document from JSON or YAML.

use std::fmt;
use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use regorus::Value;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::error::ApiError;
use crate::config::Config;
use crate::gojson::{go_json_error, is_memory_limit};
use crate::policy::path::percent_decode;

/// Query parameters, with OPA's rules for booleans.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn parse(query: Option<&str>) -> Params {
        let pairs = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        Params { pairs }
    }

    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `?pretty` and `?pretty=` are true, as is any value equal to `true` ignoring case;
    /// anything else (`?pretty=1`) is false.
    pub fn flag(&self, name: &str) -> bool {
        let values: Vec<&str> = self.values(name).collect();
        match values.as_slice() {
            [] => false,
            [""] => true,
            many => many.iter().any(|v| v.eq_ignore_ascii_case("true")),
        }
    }

    pub fn last<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.values(name).last()
    }
}

fn form_decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode(&s).unwrap_or(s)
}

/// Reads the whole body under the configured limits, decompressing gzip bodies. A body that
/// has not arrived within `timeout` is refused with a 408.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    config: &Config,
) -> Result<Bytes, ApiError> {
    let limits = &config.server.decoding;
    let timeout = config.verdict.request_body_timeout();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_length) {
        return Err(ApiError::body_too_large());
    }
    let limit = usize::try_from(limits.max_length).unwrap_or(usize::MAX);
    let bytes = tokio::time::timeout(timeout, axum::body::to_bytes(body, limit))
        .await
        .map_err(|_| ApiError::body_timeout(timeout))?
        .map_err(|_| ApiError::body_too_large())?;
    let gzipped = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    if gzipped {
        let max = limits.gzip.max_length;
        super::offload::cpu(bytes.len(), move || gunzip(&bytes, max))
            .await?
            .map(Bytes::from)
            .map_err(|e| ApiError::bad_request(format!("could not decompress the body: {e}")))
    } else {
        Ok(bytes)
    }
}

/// Decompresses a gzip body, refusing one whose declared or actual size is over `max`.
fn gunzip(bytes: &[u8], max: u64) -> Result<Vec<u8>, String> {
    // Like OPA, trust the gzip trailer's size first: it refuses a bomb before inflating it.
    let declared = bytes
        .len()
        .checked_sub(4)
        .and_then(|at| bytes.get(at..))
        .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as u64);
    if declared.is_none_or(|n| n > max) {
        return Err("gzip payload too large".into());
    }
    let mut out = Vec::new();
    // Concatenated members are one stream, as Go's gzip reader (OPA's) reads them.
    flate2::read::MultiGzDecoder::new(bytes)
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("gzip: {e}"))?;
    if out.len() as u64 > max {
        return Err("gzip payload too large".into());
    }
    Ok(out)
}

/// True when the client sent YAML (OPA looks for "yaml" anywhere in the content type).
pub fn is_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("yaml"))
}

/// Why an input document was not read.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum InputError {
    /// Not a document: Go's words, which OPA passes on to clients.
    #[error("{0}")]
    Malformed(String),
    /// The document may be fine: the process reached its memory ceiling while decoding it,
    /// and the client may try again.
    #[error("the process memory limit was reached while decoding the input document")]
    MemoryLimit,
}

impl InputError {
    pub fn json(e: serde_json::Error, text: &[u8]) -> Self {
        if is_memory_limit(&e) {
            InputError::MemoryLimit
        } else {
            InputError::Malformed(go_json_error(e, text))
        }
    }
}

/// The `{"input": ...}` envelope of a v1 request. `None` is OPA's missing input: no body, no
/// `input` key, or `"input": null`.
pub fn parse_envelope(bytes: &[u8], yaml: bool) -> Result<Option<Value>, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let envelope: Envelope = if yaml {
        yaml_serde::from_slice(bytes).map_err(|e| InputError::Malformed(e.to_string()))?
    } else {
        // Only the first JSON value is read, as Go's decoder does: trailing bytes are ignored.
        let mut de = serde_json::Deserializer::from_slice(bytes);
        Envelope::deserialize_from(&mut de).map_err(|e| InputError::json(e, bytes))?
    };
    Ok(envelope.0.filter(|v| *v != Value::Null))
}

/// A bare input document (the v0 API and the default decision); an empty body is `null`.
pub fn parse_input(bytes: &[u8], yaml: bool) -> Result<Value, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    if yaml {
        yaml_serde::from_slice(bytes).map_err(|e| InputError::Malformed(e.to_string()))
    } else {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde::Deserialize::deserialize(&mut de).map_err(|e| InputError::json(e, bytes))
    }
}

/// A whole document written with the Data API (`PUT`): OPA decodes the first JSON value and
/// ignores what follows, and an empty body is Go's `EOF`. Never YAML, whatever the content type.
pub fn parse_document(bytes: &[u8]) -> Result<Value, InputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(InputError::Malformed("EOF".into()));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde::Deserialize::deserialize(&mut de).map_err(|e| InputError::json(e, bytes))
}

/// Parses JSON text from a query parameter (`GET ?input=`).
pub fn parse_json_param(text: &str) -> Result<Value, InputError> {
    serde_json::from_str(text).map_err(|e| InputError::json(e, text.as_bytes()))
}

/// The v1 request envelope: only `input` matters; when it repeats, the last one wins.
struct Envelope(Option<Value>);

impl Envelope {
    fn deserialize_from<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EnvelopeVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Envelope::deserialize_from(d)
    }
}

struct EnvelopeVisitor;

impl EnvelopeVisitor {
    /// Go's message for a body of the wrong JSON type, which OPA passes through verbatim.
    fn wrong<E: de::Error>(kind: &str) -> E {
        E::custom(format!(
            "json: cannot unmarshal {kind} into Go value of type types.DataRequestV1"
        ))
    }
}

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an \"input\" key")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let mut input = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "input" {
                input = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Envelope(input))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Envelope, E> {
        Ok(Envelope(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Envelope, E> {
        Ok(Envelope(None))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Envelope, A::Error> {
        Err(Self::wrong("array"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Envelope, E> {
        Err(Self::wrong("string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Envelope, E> {
        Err(Self::wrong("bool"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Envelope, E> {
        Err(Self::wrong("number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Envelope, E> {
        Err(Self::wrong("number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Envelope, E> {
        Err(Self::wrong("number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boolean_params_follow_opa() {
        let p = Params::parse(Some("pretty&metrics=TRUE&provenance=1&x=true&x=no"));
        assert!(p.flag("pretty"));
        assert!(p.flag("metrics"));
        assert!(!p.flag("provenance"));
        assert!(p.flag("x"));
        assert!(!p.flag("missing"));
        assert!(Params::parse(Some("pretty=")).flag("pretty"));
    }

    #[test]
    fn envelope_reads_like_go() {
        assert_eq!(parse_envelope(b"", false), Ok(None));
        assert_eq!(parse_envelope(b"{\"input\": null}", false), Ok(None));
        assert_eq!(parse_envelope(b"{\"inputs\": 1}", false), Ok(None));
        let last = parse_envelope(b"{\"input\": 1, \"input\": 2} trailing", false).unwrap();
        assert_eq!(last, Some(Value::from(2u64)));
        assert_eq!(
            parse_envelope(b"[1,2,3]", false).unwrap_err().to_string(),
            "json: cannot unmarshal array into Go value of type types.DataRequestV1"
        );
        assert_eq!(
            parse_envelope(b"{\"input\": {\"role\": \"customer\",", false)
                .unwrap_err()
                .to_string(),
            "unexpected EOF"
        );
        assert_eq!(
            parse_json_param("{bad").unwrap_err().to_string(),
            "invalid character 'b' looking for beginning of object key string"
        );
        assert_eq!(
            parse_envelope(b"{\"input\": [1 2]}", false)
                .unwrap_err()
                .to_string(),
            "invalid character '2' after array element"
        );
        let yaml = parse_envelope(b"input:\n  role: customer\n", true).unwrap();
        assert!(yaml.is_some());
    }

    #[test]
    fn gzip_bodies_are_bounded() {
        assert_eq!(
            gunzip(b"not gzip at all", 1 << 20).unwrap_err(),
            "gzip payload too large"
        );
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip(&gz, 1 << 20).unwrap().len(), 10_000);
        assert_eq!(gunzip(&gz, 100).unwrap_err(), "gzip payload too large");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn every_member_of_a_multi_member_gzip_body_is_read() {
        // Go's gzip reader (OPA's) reads concatenated members as one stream.
        let mut body = gzip(br#"{"input": {"role": "#);
        body.extend(gzip(br#""admin", "amount": 5}}"#));
        let text = gunzip(&body, 1 << 20).unwrap();
        assert_eq!(text, br#"{"input": {"role": "admin", "amount": 5}}"#);
        // The bound covers all members together.
        let mut big = gzip(&[b' '; 600]);
        big.extend(gzip(&[b' '; 10]));
        assert_eq!(gunzip(&big, 100).unwrap_err(), "gzip payload too large");
    }
}
