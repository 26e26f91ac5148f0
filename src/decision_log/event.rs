//! One decision log event in OPA's shape (`EventV1`), built as a Rego value so that the mask
//! and drop policies read exactly what is logged, and written as JSON with sorted keys (the
//! order OPA's console lines have; an uploaded event is the same object). Without mask or drop
//! policies the event's JSON is written straight from its parts, the same bytes without the
//! Rego value in between: that value's maps and strings cost more than the writing.

use std::collections::BTreeMap;
use std::time::SystemTime;

use regorus::value::Object;
use regorus::Value;

use crate::gojson::{self, ObjectWriter};
use crate::policy::{EvalError, RegoError};

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

    /// The event's JSON: the same bytes as `to_json(&self.build())`, keys in the same order.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        let mut event = ObjectWriter::new(&mut out, None);
        if !self.bundles.is_empty() {
            let bundles: BTreeMap<&str, &str> = self.bundles.iter().copied().collect();
            event.with("bundles", |out, _| {
                let mut names = ObjectWriter::new(out, None);
                for (name, revision) in bundles {
                    names.with(name, |out, _| {
                        let mut b = ObjectWriter::new(out, None);
                        b.with("revision", |out, _| gojson::write_str(out, revision));
                        b.finish();
                    });
                }
                names.finish();
            });
        }
        event.with("decision_id", |out, _| {
            gojson::write_str(out, self.decision_id)
        });
        if let Some(error) = &self.error {
            event.value("error", error);
        }
        if let Some(input) = &self.input {
            event.value("input", input);
        }
        event.value("labels", self.labels);
        event.with("metrics", |out, _| {
            let mut metrics = ObjectWriter::new(out, None);
            for (name, n) in self.metrics {
                metrics.with(name, |out, _| {
                    out.extend_from_slice(n.to_string().as_bytes())
                });
            }
            metrics.finish();
        });
        if !self.path.is_empty() {
            event.with("path", |out, _| gojson::write_str(out, self.path));
        }
        if let Some(query) = self.query {
            event.with("query", |out, _| gojson::write_str(out, query));
        }
        if self.request.req_id != 0 {
            event.with("req_id", |out, _| {
                out.extend_from_slice(self.request.req_id.to_string().as_bytes())
            });
        }
        if !self.request.http_headers.is_empty() {
            // As in `build`: sorted by name, the last of a name repeated wins.
            let headers: BTreeMap<&str, &Vec<String>> = self
                .request
                .http_headers
                .iter()
                .map(|(name, values)| (name.as_str(), values))
                .collect();
            event.with("request_context", |out, _| {
                let mut context = ObjectWriter::new(out, None);
                context.with("http", |out, _| {
                    let mut http = ObjectWriter::new(out, None);
                    http.with("headers", |out, _| {
                        let mut names = ObjectWriter::new(out, None);
                        for (name, values) in headers {
                            names.with(name, |out, _| {
                                gojson::write_array(out, None, values.len(), |out, _, i| {
                                    gojson::write_str(out, &values[i])
                                })
                            });
                        }
                        names.finish();
                    });
                    http.finish();
                });
                context.finish();
            });
        }
        if let Some(peer) = self.request.requested_by {
            event.with("requested_by", |out, _| {
                gojson::write_str(out, &peer.to_string())
            });
        }
        if let Some(result) = &self.result {
            event.value("result", result);
        }
        event.with("timestamp", |out, _| {
            gojson::write_str(out, &go_rfc3339_nano(self.timestamp))
        });
        event.finish();
        out
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
        EvalError::FunctionPath { .. } => coded("rego_type_error"),
        EvalError::EngineFault => coded("internal_error"),
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
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let t: chrono::DateTime<chrono::Utc> = t.into();
    let mut text = String::with_capacity(32);
    // Written field by field: a format string is parsed anew on every call.
    let _ = write!(
        text,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// The event as one JSON document (keys sorted, as every Rego object is).
pub fn to_json(event: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    gojson::write_value(&mut out, event, None);
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
        let early = UNIX_EPOCH + Duration::new(0, 1);
        assert_eq!(go_rfc3339_nano(early), "1970-01-01T00:00:00.000000001Z");
    }

    /// The JSON written straight from the parts is the JSON of the Rego value, field for field
    /// and byte for byte, whichever fields an event has.
    #[test]
    fn direct_json_is_the_values_json() {
        let labels = labels(&BTreeMap::from([
            ("id".into(), "a<b>".into()),
            ("version".into(), "1.0".into()),
        ]));
        let metrics = BTreeMap::from([("timer_b", 7), ("timer_a", u64::MAX)]);
        let input =
            Value::from_json_str(r#"{"z":[1,2.5,"\u2028\"&<"],"a":{"n":null,"t":true}}"#).unwrap();
        let requests = [
            RequestInfo::default(),
            RequestInfo {
                requested_by: "[::1]:9".parse().ok(),
                req_id: 12,
                http_headers: vec![
                    ("x-b".into(), vec!["2".into(), "3".into()]),
                    ("x-a".into(), vec!["1".into()]),
                    ("x-b".into(), vec!["last".into()]),
                ],
            },
        ];
        for request in &requests {
            for (query, bundles, with) in [
                (None, vec![("zeta", "r2"), ("alpha", "r\\1")], true),
                (Some("data.x = y"), vec![], false),
            ] {
                let parts = || EventParts {
                    labels: &labels,
                    decision_id: "d-1",
                    bundles: bundles.clone(),
                    path: if query.is_some() { "" } else { "a/b" },
                    query,
                    input: with.then(|| input.clone()),
                    result: with.then(|| Value::from(false)),
                    error: (!with).then(|| coded_error("internal_error", "x\\ty")),
                    request,
                    timestamp: UNIX_EPOCH + Duration::new(1_764_002_077, 5),
                    metrics: &metrics,
                };
                let direct = String::from_utf8(parts().to_json()).unwrap();
                assert_eq!(
                    direct,
                    String::from_utf8(to_json(&parts().build())).unwrap()
                );
                serde_json::from_str::<serde_json::Value>(&direct).unwrap();
            }
        }
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
