//! JSON as OPA holds and writes it: Go's decoder with `UseNumber` (number literals kept as
//! written) and Go's encoder (sorted keys, Go's string escapes, optional HTML escaping).

use std::collections::BTreeMap;

use super::string::write_string;

/// A JSON value as OPA holds it (Go's decoder with `UseNumber`): numbers keep their literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(BTreeMap<String, Json>),
}

/// Go's decoder has no depth limit but a stack; this keeps a hostile file from exhausting ours.
const MAX_DEPTH: usize = 1000;

impl Json {
    /// Parses one JSON document; a repeated key keeps its last value, as in Go.
    pub fn parse(bytes: &[u8]) -> Result<Json, String> {
        // serde_json checks the syntax (with its own positions in the message); the scanner
        // below then only walks a document known to be well formed.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| e.to_string())?;
        let mut scanner = Scanner { s: bytes, i: 0 };
        scanner.value(0)
    }

    /// Parses as OPA's `util.Unmarshal`: JSON when it is valid JSON, else YAML.
    pub fn parse_json_or_yaml(bytes: &[u8]) -> Result<Json, String> {
        match Json::parse(bytes) {
            Ok(value) => Ok(value),
            Err(json_error) => yaml_serde::from_slice::<serde_json::Value>(bytes)
                .map(|v| Json::from_serde(&v))
                .map_err(|_| json_error),
        }
    }

    pub fn from_serde(value: &serde_json::Value) -> Json {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Bool(*b),
            serde_json::Value::Number(n) => Json::Number(match n.as_f64() {
                // Go prints a whole float without a fraction (YAML `1.0` becomes `1`).
                Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
                _ => n.to_string(),
            }),
            serde_json::Value::String(s) => Json::String(s.clone()),
            serde_json::Value::Array(a) => Json::Array(a.iter().map(Json::from_serde).collect()),
            serde_json::Value::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), Json::from_serde(v)))
                    .collect(),
            ),
        }
    }

    /// Compact, keys sorted, as Go's `encoding/json`; `escape_html` as `json.Marshal` (true)
    /// or as OPA's signature hasher (false).
    pub fn write(&self, out: &mut Vec<u8>, escape_html: bool) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Json::Number(n) => out.extend_from_slice(n.as_bytes()),
            Json::String(s) => write_string(out, s, escape_html),
            Json::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out, escape_html);
                }
                out.push(b']');
            }
            Json::Object(map) => {
                out.push(b'{');
                for (i, (key, value)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_string(out, key, escape_html);
                    out.push(b':');
                    value.write(out, escape_html);
                }
                out.push(b'}');
            }
        }
    }

    /// Deep-merges `other` into `self` as OPA's `merge.InterfaceMaps`: objects merge, any
    /// other value met twice is a conflict, reported with its path.
    pub fn merge(&mut self, other: Json, path: &mut Vec<String>) -> Result<(), String> {
        match (self, other) {
            (Json::Object(a), Json::Object(b)) => {
                for (key, value) in b {
                    path.push(key.clone());
                    match a.get_mut(&key) {
                        Some(existing) => existing.merge(value, path)?,
                        None => {
                            a.insert(key, value);
                        }
                    }
                    path.pop();
                }
                Ok(())
            }
            _ => Err(path.join("/")),
        }
    }
}

/// Walks a document that serde_json has already accepted.
struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.s.get(self.i) {
            self.i += 1;
        }
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(format!("exceeded max depth of {MAX_DEPTH}"));
        }
        let value = match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut map = BTreeMap::new();
                while self.peek() == Some(b'"') {
                    let key = self.string()?;
                    self.peek();
                    self.i += 1; // the ':'
                    map.insert(key, self.value(depth + 1)?);
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
                self.i += 1; // the '}'
                Json::Object(map)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                while !matches!(self.peek(), Some(b']') | None) {
                    items.push(self.value(depth + 1)?);
                    if self.peek() == Some(b',') {
                        self.i += 1;
                    }
                }
                self.i += 1; // the ']'
                Json::Array(items)
            }
            Some(b'"') => Json::String(self.string()?),
            Some(b't') => self.word(4, Json::Bool(true)),
            Some(b'f') => self.word(5, Json::Bool(false)),
            Some(b'n') => self.word(4, Json::Null),
            Some(_) => {
                let start = self.i;
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.s.get(self.i)
                {
                    self.i += 1;
                }
                let literal = self.s.get(start..self.i).unwrap_or_default();
                Json::Number(String::from_utf8_lossy(literal).into_owned())
            }
            None => return Err("unexpected end of JSON input".into()),
        };
        Ok(value)
    }

    fn word(&mut self, len: usize, value: Json) -> Json {
        self.i += len;
        value
    }

    fn string(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.s.get(self.i) {
                Some(b'\\') => self.i += 2,
                Some(b'"') => break,
                Some(_) => self.i += 1,
                None => return Err("unexpected end of JSON input".into()),
            }
        }
        self.i += 1;
        let token = self.s.get(start..self.i).unwrap_or_default();
        serde_json::from_slice(token).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_semantics_without_panics() {
        let v = Json::parse(br#"{"a": 1, "a": 2.0}"#).unwrap();
        let mut out = Vec::new();
        v.write(&mut out, true);
        assert_eq!(out, br#"{"a":2.0}"#, "the last key wins, literals kept");
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(Json::parse(deep.as_bytes()).is_err());
        assert!(Json::parse(b"[1,]").is_err());
        let _ = Json::parse(b"\"\\ud800\""); // a lone surrogate: an error or a value, not a panic
        let mut a = Json::parse(br#"{"x": {"y": 1}}"#).unwrap();
        let b = Json::parse(br#"{"x": {"y": 2}}"#).unwrap();
        assert_eq!(a.merge(b, &mut Vec::new()), Err("x/y".to_string()));
        let mut html = Vec::new();
        Json::String("<a & b>".into()).write(&mut html, true);
        assert_eq!(html, br#""\u003ca \u0026 b\u003e""#);
    }
}
