//! One decision log event in OPA's shape (`EventV1`), built as a Rego value so that the mask
//! and drop policies read exactly what is logged, and written as JSON with sorted keys (the
//! order OPA's console lines have; an uploaded event is the same object).

use std::collections::BTreeMap;
use std::time::SystemTime;

use regorus::value::Object;
use regorus::Value;

use crate::policy::{json, EvalError, RegoError};

/// What the transport knows about the request behind a decision.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// The client's address; none over a Unix socket. Formatted only when an event is built,
    /// so that a request pays nothing for it while decisions are not logged.
    pub requested_by: Option<std::net::SocketAddr>,
    /// The server's sequence number of the request (OPA's `req_id`).
    pub req_id: u64,
    /// The configured `request_context.http.headers` that the request carried.
    pub http_headers: Vec<(String, Vec<String>)>,
}

/// What is decided, before masking.
pub struct EventParts<'a> {
    pub labels: &'a Value,
    pub decision_id: &'a str,
    pub bundles: Vec<(&'a str, &'a str)>,
    pub path: &'a str,
    /// The text of an ad-hoc query (`/v1/query`), which OPA logs instead of a path.
    pub query: Option<&'a str>,
    pub input: Option<Value>,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub request: &'a RequestInfo,
    pub timestamp: SystemTime,
    pub metrics: &'a BTreeMap<&'static str, u64>,
}

fn s(text: &str) -> Value {
    Value::from(text)
}

/// A Rego object of string keys.
fn object<K: AsRef<str>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
    let map: BTreeMap<Value, Value> = entries
        .into_iter()
        .map(|(k, v)| (s(k.as_ref()), v))
        .collect();
    Value::from(Object::from(map))
}

/// The `labels` object: the configured labels plus `id` and `version`.
pub fn labels(labels: &BTreeMap<String, String>) -> Value {
    object(labels.iter().map(|(k, v)| (k, s(v))))
}

impl EventParts<'_> {
    /// The event as a Rego object, keyed by OPA's field names.
    pub fn build(self) -> Value {
        let mut event: BTreeMap<Value, Value> = BTreeMap::new();
        let mut put = |k: &str, v: Value| {
            event.insert(s(k), v);
        };
        put("labels", self.labels.clone());
        put("decision_id", s(self.decision_id));
        if !self.bundles.is_empty() {
            put(
                "bundles",
                object(
                    self.bundles
                        .iter()
                        .map(|(name, rev)| (*name, object([("revision", s(rev))]))),
                ),
            );
        }
        if !self.path.is_empty() {
            put("path", s(self.path));
        }
        if let Some(query) = self.query {
            put("query", s(query));
        }
        if let Some(input) = self.input {
            put("input", input);
        }
        if let Some(result) = self.result {
            put("result", result);
        }
        if let Some(error) = self.error {
            put("error", error);
        }
        if let Some(peer) = self.request.requested_by {
            put("requested_by", s(&peer.to_string()));
        }
        put("timestamp", s(&go_rfc3339_nano(self.timestamp)));
        put(
            "metrics",
            object(self.metrics.iter().map(|(k, v)| (*k, Value::from(*v)))),
        );
        if self.request.req_id != 0 {
            put("req_id", Value::from(self.request.req_id));
        }
        if !self.request.http_headers.is_empty() {
            let headers = object(self.request.http_headers.iter().map(|(name, values)| {
                (
                    name.as_str(),
                    Value::from(values.iter().map(|v| s(v)).collect::<Vec<_>>()),
                )
            }));
            put(
                "request_context",
                object([("http", object([("headers", headers)]))]),
            );
        }
        Value::from(Object::from(event))
    }
}

fn rego_error(e: &RegoError) -> Value {
    let mut fields = vec![("code", s(e.code)), ("message", s(&e.message))];
    if let Some(l) = &e.location {
        fields.push((
            "location",
            object([
                ("file", s(&l.file)),
                ("row", Value::from(u64::from(l.row))),
                ("col", Value::from(u64::from(l.col))),
            ]),
        ));
    }
    object(fields)
}

/// The event's `error`: one evaluation error as an object, several (or a query's parse errors)
/// as an array, as OPA logs them.
pub fn error_value(e: &EvalError) -> Value {
    let coded = |code: &'static str| object([("code", s(code)), ("message", s(&e.to_string()))]);
    match e {
        EvalError::Policy(errors) if errors.len() == 1 => rego_error(&errors[0]),
        EvalError::Policy(errors) | EvalError::Parse(errors) => {
            Value::from(errors.iter().map(rego_error).collect::<Vec<_>>())
        }
        EvalError::InvalidPath(_) => coded("invalid_parameter"),
        EvalError::Timeout(_) | EvalError::MemoryLimit(_) => coded("eval_cancel_error"),
        EvalError::FunctionPath(_) => coded("rego_type_error"),
        EvalError::EngineFault | EvalError::Refused(_) => coded("internal_error"),
    }
}

/// The error of a decision that is undefined where a value is required (the v0 API).
pub fn undefined(message: &str) -> Value {
    coded_error("undefined_document", message)
}

/// An event's `error` in OPA's shape: a code and a message.
pub fn coded_error(code: &str, message: &str) -> Value {
    object([("code", s(code)), ("message", s(message))])
}

/// Go's `time.RFC3339Nano` in UTC: nanoseconds with trailing zeros trimmed.
pub fn go_rfc3339_nano(t: SystemTime) -> String {
    let t: chrono::DateTime<chrono::Utc> = t.into();
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let fraction = format!("{nanos:09}");
    format!("{base}.{}Z", fraction.trim_end_matches('0'))
}

/// The event as one JSON document (keys sorted, as every Rego object is).
pub fn to_json(event: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    json::write_value(&mut out, event, None);
    out
}

/// OPA's console line: the event's fields beside logrus' `level`, `msg`, `time` and `type`.
pub fn console_line(event: &Value, now: SystemTime) -> Vec<u8> {
    let mut line = match event {
        Value::Object(map) => map.as_ref().clone(),
        _ => Object::default(),
    };
    let t: chrono::DateTime<chrono::Utc> = now.into();
    line.insert(s("level"), s("info"));
    line.insert(s("msg"), s("Decision Log"));
    line.insert(s("time"), s(&t.format("%Y-%m-%dT%H:%M:%SZ").to_string()));
    line.insert(s("type"), s("openpolicyagent.org/decision_logs"));
    let mut out = to_json(&Value::from(line));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_gos() {
        let t = UNIX_EPOCH + Duration::new(1_764_002_077, 484_858_600);
        assert_eq!(go_rfc3339_nano(t), "2025-11-24T16:34:37.4848586Z");
        let whole = UNIX_EPOCH + Duration::from_secs(1_764_002_077);
        assert_eq!(go_rfc3339_nano(whole), "2025-11-24T16:34:37Z");
    }

    #[test]
    fn builds_opas_fields_and_leaves_out_the_empty_ones() {
        let labels = labels(&BTreeMap::from([("id".into(), "x".into())]));
        let metrics = BTreeMap::from([("timer_server_handler_ns", 5)]);
        let request = RequestInfo {
            requested_by: "127.0.0.1:4000".parse().ok(),
            req_id: 3,
            http_headers: vec![("X-Request-Id".into(), vec!["r1".into()])],
        };
        let event = EventParts {
            labels: &labels,
            decision_id: "d1",
            bundles: vec![("payment", "v1")],
            path: "payment/allow",
            query: None,
            input: None,
            result: Some(Value::from(true)),
            error: None,
            request: &request,
            timestamp: UNIX_EPOCH,
            metrics: &metrics,
        }
        .build();
        let text = String::from_utf8(to_json(&event)).unwrap();
        assert_eq!(
            text,
            r#"{"bundles":{"payment":{"revision":"v1"}},"decision_id":"d1","labels":{"id":"x"},"metrics":{"timer_server_handler_ns":5},"path":"payment/allow","req_id":3,"request_context":{"http":{"headers":{"X-Request-Id":["r1"]}}},"requested_by":"127.0.0.1:4000","result":true,"timestamp":"1970-01-01T00:00:00Z"}"#
        );
    }
}
