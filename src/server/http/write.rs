//! OPA's Data API writes: `PUT /v1/data/{path}`, `PATCH /v1/data/{path}` and `DELETE
//! /v1/data/{path}`. Thin adapters: read the path and body as OPA's handlers read them, hand
//! the write to the single writer (`AppState::write`), and answer once it is stored and live.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use regorus::Value;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::error::ApiError;
use super::request::{self, Params};
use super::response;
use crate::gojson;
use crate::gojson::go_json_error;
use crate::policy::path::percent_decode;
use crate::policy::CompileError;
use crate::runtime::decision::opa_metrics;
use crate::runtime::pushed::{Patch, PatchKind, StoragePath, WriteError, WriteOp, Written};
use crate::runtime::AppState;

/// `PUT /v1/data/{path}`: creates or replaces the document, and the objects above it.
pub async fn put_data(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let bytes = request::read_body(&headers, body, &state.config).await?;
    let parse_started = Instant::now();
    let value = request::parse_document(&bytes).map_err(|e| ApiError::input("", e))?;
    let parse_ns = parse_started.elapsed().as_nanos();
    // OPA compares the first value exactly: only `*` means "if nothing is there yet".
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == b"*");
    let op = WriteOp::Put {
        path: storage_path(&uri),
        value,
        if_none_match,
    };
    let written = state.write(op).await.map_err(refused)?;
    Ok(answer(written, &uri, Some(parse_ns), started))
}

/// `PATCH /v1/data/{path}`: JSON-Patch `add`, `remove` and `replace`, their paths relative to
/// the URL's, applied all or none.
pub async fn patch_data(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let bytes = request::read_body(&headers, body, &state.config).await?;
    let parse_started = Instant::now();
    let ops = parse_patches(&bytes).map_err(ApiError::bad_request)?;
    let parse_ns = parse_started.elapsed().as_nanos();
    let patches = prepare(url_path(&uri), ops).map_err(ApiError::bad_request)?;
    let written = state
        .write(WriteOp::Patch(patches))
        .await
        .map_err(refused)?;
    Ok(answer(written, &uri, Some(parse_ns), started))
}

/// `DELETE /v1/data/{path}`: removes the document; a missing one is a 404.
pub async fn delete_data(
    State(state): State<Arc<AppState>>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let op = WriteOp::Delete {
        path: storage_path(&uri),
    };
    let written = state.write(op).await.map_err(refused)?;
    Ok(answer(written, &uri, None, started))
}

/// 204, or 304 when nothing was written; with `?metrics`, 200 and OPA's timers instead.
fn answer(written: Written, uri: &Uri, parse_ns: Option<u128>, started: Instant) -> Response {
    if written == Written::NotModified {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    if !Params::parse(uri.query()).flag("metrics") {
        return StatusCode::NO_CONTENT.into_response();
    }
    let body = BTreeMap::from([("metrics", opa_metrics(None, parse_ns, started))]);
    response::json(StatusCode::OK, gojson::to_body(&body, false))
}

/// OPA's status and code for each refusal; verdict's own failures say nothing of their cause
/// (the reloader logged it).
fn refused(e: WriteError) -> ApiError {
    match e {
        WriteError::NotFound { .. } => ApiError::not_found(e.to_string()),
        WriteError::Conflict { .. } => ApiError::conflict(e.to_string()),
        WriteError::Store(_)
        | WriteError::Unavailable
        | WriteError::Rules(CompileError::EngineFault) => {
            ApiError::internal("the data write could not be completed; nothing was changed")
        }
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// The path after `/v1/data`, still percent-escaped.
fn url_path(uri: &Uri) -> &str {
    uri.path().strip_prefix("/v1/data").unwrap_or("")
}

/// OPA's `storage.ParsePathEscaped("/" + strings.Trim(path, "/"))`: segments unescaped one by
/// one, a segment that does not unescape kept as written.
fn storage_path(uri: &Uri) -> StoragePath {
    parse_path(url_path(uri).trim_matches('/'))
}

fn parse_path(trimmed: &str) -> StoragePath {
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split('/')
        .map(|s| percent_decode(s).unwrap_or_else(|| s.to_string()))
        .collect()
}

/// OPA's `prepareV1PatchSlice`: each op's path joined to the URL's, then read as a JSON
/// Pointer (`~1` is `/`, `~0` is `~`) after URL unescaping.
fn prepare(url: &str, ops: Vec<PatchV1>) -> Result<Vec<Patch>, String> {
    let root = url.trim_matches('/');
    ops.into_iter()
        .map(|op| {
            let kind = match op.op.as_str() {
                "add" => PatchKind::Add,
                "remove" => PatchKind::Remove,
                "replace" => PatchKind::Replace,
                other => return Err(format!("bad patch operation: {other}")),
            };
            let relative = op.path.trim_matches('/');
            let joined = match (root.is_empty(), relative.is_empty()) {
                (_, true) => root.to_string(),
                (true, false) => relative.to_string(),
                (false, false) => format!("{root}/{relative}"),
            };
            let path = parse_path(&joined)
                .into_iter()
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect();
            Ok(Patch {
                kind,
                path,
                value: op.value,
            })
        })
        .collect()
}

/// One element of OPA's `[]types.PatchV1`.
#[derive(Debug)]
struct PatchV1 {
    op: String,
    path: String,
    value: Value,
}

impl Default for PatchV1 {
    /// Go's zero value; a missing `value` is JSON `null`.
    fn default() -> Self {
        PatchV1 {
            op: String::new(),
            path: String::new(),
            value: Value::Null,
        }
    }
}

/// Decodes the PATCH body as Go's `json.Decoder` decodes `[]types.PatchV1`: the first JSON
/// value, syntax errors before type errors, type errors in Go's words, `null` as no ops.
fn parse_patches(bytes: &[u8]) -> Result<Vec<PatchV1>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("EOF".into());
    }
    let mut syntax = serde_json::Deserializer::from_slice(bytes);
    serde::Deserialize::deserialize(&mut syntax)
        .map(|_: IgnoredAny| ())
        .map_err(|e| go_json_error(e, bytes))?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_any(ListVisitor)
        .map_err(|e| go_json_error(e, bytes))
}

/// Go's `UnmarshalTypeError` text.
fn wrong<E: de::Error>(kind: &str, into: &str) -> E {
    E::custom(format!("json: cannot unmarshal {kind} into {into}"))
}

/// Answers every JSON kind but the expected one with Go's message for `$into`.
macro_rules! refuse_other_kinds {
    ($into:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(wrong("bool", $into))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(wrong("number", $into))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(wrong("number", $into))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(wrong("number", $into))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(wrong("string", $into))
        }
    };
}

struct ListVisitor;

impl<'de> Visitor<'de> for ListVisitor {
    type Value = Vec<PatchV1>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of patch operations")
    }

    refuse_other_kinds!("Go value of type []types.PatchV1");

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(wrong("object", "Go value of type []types.PatchV1"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ops = Vec::new();
        while let Some(op) = seq.next_element_seed(PatchSeed)? {
            ops.push(op);
        }
        Ok(ops)
    }
}

struct PatchSeed;

impl<'de> de::DeserializeSeed<'de> for PatchSeed {
    type Value = PatchV1;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PatchV1, D::Error> {
        d.deserialize_any(PatchVisitor)
    }
}

struct PatchVisitor;

impl<'de> Visitor<'de> for PatchVisitor {
    type Value = PatchV1;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a patch operation")
    }

    refuse_other_kinds!("Go value of type types.PatchV1");

    /// `null` leaves Go's zero value: an op named "" that `prepare` refuses.
    fn visit_unit<E: de::Error>(self) -> Result<PatchV1, E> {
        Ok(PatchV1::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<PatchV1, A::Error> {
        Err(wrong("array", "Go value of type types.PatchV1"))
    }

    /// Go matches field names ignoring case; the last of repeated keys wins.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PatchV1, A::Error> {
        let mut patch = PatchV1::default();
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case("op") {
                if let Some(op) = map.next_value_seed(GoString("op"))? {
                    patch.op = op;
                }
            } else if key.eq_ignore_ascii_case("path") {
                if let Some(path) = map.next_value_seed(GoString("path"))? {
                    patch.path = path;
                }
            } else if key.eq_ignore_ascii_case("value") {
                patch.value = map.next_value::<Value>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(patch)
    }
}

/// A string field of `PatchV1`; `null` leaves it as it was.
struct GoString(&'static str);

impl<'de> de::DeserializeSeed<'de> for GoString {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for GoString {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(self.wrong("bool"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(self.wrong("number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(self.wrong("number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(self.wrong("number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.wrong("object"))
    }
}

impl GoString {
    fn wrong<E: de::Error>(&self, kind: &str) -> E {
        wrong(
            kind,
            &format!("Go struct field PatchV1.{} of type string", self.0),
        )
    }
}
