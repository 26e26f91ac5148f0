//! Rego values as OPA writes them (Go's `encoding/json`): object keys sorted, sets as arrays
//! in Rego term order, non-string keys written as their JSON text, integral numbers without a
//! fraction, two-space indentation; and the pieces (`ObjectWriter`, `write_array`) that write
//! OPA's response envelopes field by field in Go's struct order.

use regorus::Value;
use serde::Serialize;

use super::string::write_str;
use super::write_serde;

/// Writes a float as Go's encoding/json does: plain decimal inside [1e-6, 1e21), else an
/// exponent without leading zeros.
pub(super) fn write_f64(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        out.extend_from_slice(format!("{f}").as_bytes());
    } else {
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => {
                out.extend_from_slice(format!("{m}e+{e}").as_bytes())
            }
            _ => out.extend_from_slice(s.as_bytes()),
        }
    }
}

fn write_number(out: &mut Vec<u8>, n: &regorus::Value) {
    let Value::Number(n) = n else { return };
    // Integers keep every digit (BigInt included); floats take Go's float formatting.
    let text = n.format_decimal();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    let integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    // Past 20 digits the text may be a huge integral float (1.5e300), which Go writes with an
    // exponent; a BigInt that large has no exact f64, a float does.
    let huge_float = integer && digits.len() > 20 && n.as_f64().is_some();
    if integer && !huge_float {
        out.extend_from_slice(text.as_bytes());
    } else {
        write_f64(out, text.parse().unwrap_or(f64::NAN));
    }
}

fn newline(out: &mut Vec<u8>, indent: Option<usize>) {
    if let Some(level) = indent {
        out.push(b'\n');
        out.resize(out.len() + 2 * level, b' ');
    }
}

/// Writes a Rego value. `indent` is `None` for compact output, else the current depth.
pub fn write_value(out: &mut Vec<u8>, v: &Value, indent: Option<usize>) {
    let inner = indent.map(|l| l + 1);
    match v {
        Value::Null | Value::Undefined => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(_) => write_number(out, v),
        Value::String(s) => write_str(out, s),
        Value::Array(a) => write_seq(out, a.iter(), a.is_empty(), indent, inner),
        Value::Set(s) => write_seq(out, s.iter_sorted(), s.is_empty(), indent, inner),
        Value::Object(o) => {
            if o.is_empty() {
                out.extend_from_slice(b"{}");
                return;
            }
            out.push(b'{');
            if o.keys().all(|k| matches!(k, Value::String(_))) {
                for (i, (k, val)) in o.iter_sorted().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    newline(out, inner);
                    write_value(out, k, None);
                    write_colon(out, indent);
                    write_value(out, val, inner);
                }
            } else {
                // Go marshals a map with non-string keys by their text, sorted by that text.
                let mut entries: Vec<(String, &Value)> =
                    o.iter().map(|(k, val)| (key_text(k), val)).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                for (i, (k, val)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    newline(out, inner);
                    write_str(out, k);
                    write_colon(out, indent);
                    write_value(out, val, inner);
                }
            }
            newline(out, indent);
            out.push(b'}');
        }
    }
}

fn write_colon(out: &mut Vec<u8>, indent: Option<usize>) {
    out.push(b':');
    if indent.is_some() {
        out.push(b' ');
    }
}

fn write_seq<'a>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = &'a Value>,
    empty: bool,
    indent: Option<usize>,
    inner: Option<usize>,
) {
    if empty {
        out.extend_from_slice(b"[]");
        return;
    }
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        newline(out, inner);
        write_value(out, item, inner);
    }
    newline(out, indent);
    out.push(b']');
}

/// The text a non-string object key takes in JSON output: the key's own compact JSON.
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.to_string(),
        other => {
            let mut buf = Vec::new();
            write_value(&mut buf, other, None);
            String::from_utf8(buf).unwrap_or_default()
        }
    }
}

/// Builds a JSON object field by field in a fixed order, as Go writes a struct.
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    indent: Option<usize>,
    fields: usize,
}

impl<'a> ObjectWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>, indent: Option<usize>) -> Self {
        out.push(b'{');
        ObjectWriter {
            out,
            indent,
            fields: 0,
        }
    }

    fn key(&mut self, key: &str) -> Option<usize> {
        if self.fields > 0 {
            self.out.push(b',');
        }
        self.fields += 1;
        let inner = self.indent.map(|l| l + 1);
        newline(self.out, inner);
        write_str(self.out, key);
        write_colon(self.out, self.indent);
        inner
    }

    pub fn value(&mut self, key: &str, v: &Value) {
        let inner = self.key(key);
        write_value(self.out, v, inner);
    }

    /// A field whose value the closure writes at the given depth.
    pub fn with(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>, Option<usize>)) {
        let inner = self.key(key);
        write(self.out, inner);
    }

    pub fn serde<T: Serialize + ?Sized>(&mut self, key: &str, v: &T) {
        let inner = self.key(key);
        write_serde(self.out, v, inner);
    }

    pub fn finish(self) {
        if self.fields > 0 {
            newline(self.out, self.indent);
        }
        self.out.push(b'}');
    }
}

/// Writes an array of `len` items, each written by `item(out, depth, index)`.
pub fn write_array(
    out: &mut Vec<u8>,
    indent: Option<usize>,
    len: usize,
    mut item: impl FnMut(&mut Vec<u8>, Option<usize>, usize),
) {
    if len == 0 {
        out.extend_from_slice(b"[]");
        return;
    }
    let inner = indent.map(|l| l + 1);
    out.push(b'[');
    for i in 0..len {
        if i > 0 {
            out.push(b',');
        }
        newline(out, inner);
        item(out, inner, i);
    }
    newline(out, indent);
    out.push(b']');
}

/// Convenience: a Rego value as one line of JSON (the CLI's and logs' form).
pub fn value_to_string(v: &Value, pretty: bool) -> String {
    let mut out = Vec::new();
    write_value(&mut out, v, pretty.then_some(0));
    String::from_utf8(out).unwrap_or_default()
}
