//! JSON output byte-compatible with OPA's (Go's `encoding/json`).
//!
//! Clients diff and hash OPA's responses, so verdict writes the same bytes: `<`, `>`, `&`,
//! U+2028 and U+2029 escaped, object keys sorted, sets as arrays in Rego term order, non-string
//! keys written as their JSON text, integral numbers without a fraction, two-space indentation.

use regorus::Value;
use serde::Serialize;

/// The bytes that end a run copied as it is: control characters, `"`, `\`, `<`, `>`, `&`, and
/// 0xE2, which leads U+2028 and U+2029.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xe2] = true;
    table
};

/// Writes `s` as a JSON string the way Go does.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !SPECIAL[b as usize] {
            i += 1;
            continue;
        }
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            _ => None,
        };
        if let Some(e) = escape {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(e);
            i += 1;
            start = i;
        } else if b != 0xe2 {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
            i += 1;
            start = i;
        } else if i + 2 < bytes.len() && bytes[i + 1] == 0x80 && (bytes[i + 2] | 1) == 0xa9 {
            // U+2028 / U+2029 break JavaScript string literals; Go escapes them.
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(if bytes[i + 2] == 0xa8 {
                b"\\u2028"
            } else {
                b"\\u2029"
            });
            i += 3;
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes a float as Go's encoding/json does: plain decimal inside [1e-6, 1e21), else an
/// exponent without leading zeros.
fn write_f64(out: &mut Vec<u8>, f: f64) {
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

/// Writes any serde value (error bodies, status, envelopes' parts) with Go's escaping and
/// layout: struct fields in declaration order, maps in their (sorted) iteration order.
pub fn write_serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T, indent: Option<usize>) {
    let formatter = GoFormatter {
        indent,
        has_value: false,
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, formatter);
    if v.serialize(&mut ser).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// serde_json formatter producing Go's bytes; `indent` is the current depth when pretty.
struct GoFormatter {
    indent: Option<usize>,
    has_value: bool,
}

impl GoFormatter {
    fn open<W: ?Sized + std::io::Write>(&mut self, w: &mut W, c: &[u8]) -> std::io::Result<()> {
        self.indent = self.indent.map(|l| l + 1);
        self.has_value = false;
        w.write_all(c)
    }

    fn close<W: ?Sized + std::io::Write>(&mut self, w: &mut W, c: &[u8]) -> std::io::Result<()> {
        self.indent = self.indent.map(|l| l.saturating_sub(1));
        if self.has_value {
            self.line(w)?;
        }
        w.write_all(c)
    }

    fn line<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        if let Some(level) = self.indent {
            w.write_all(b"\n")?;
            for _ in 0..level {
                w.write_all(b"  ")?;
            }
        }
        Ok(())
    }

    fn item<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.line(w)
    }
}

impl serde_json::ser::Formatter for GoFormatter {
    fn write_f64<W: ?Sized + std::io::Write>(&mut self, w: &mut W, v: f64) -> std::io::Result<()> {
        let mut buf = Vec::new();
        write_f64(&mut buf, v);
        w.write_all(&buf)
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json has already escaped quotes, backslashes and control characters; the
        // fragment is written through Go's escaping for the rest (<, >, &, U+2028, U+2029).
        let mut buf = Vec::with_capacity(fragment.len() + 2);
        write_str(&mut buf, fragment);
        w.write_all(&buf[1..buf.len() - 1])
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(if self.indent.is_some() { b": " } else { b":" })
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// Convenience: the whole body for one serde value, with OPA's trailing newline.
pub fn to_body<T: Serialize + ?Sized>(v: &T, pretty: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_serde(&mut out, v, pretty.then_some(0));
    out.push(b'\n');
    out
}

/// Convenience: a Rego value as one line of JSON (the CLI's and logs' form).
pub fn value_to_string(v: &Value, pretty: bool) -> String {
    let mut out = Vec::new();
    write_value(&mut out, v, pretty.then_some(0));
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(json: &str) -> String {
        let v: Value = serde_json::from_str(json).unwrap();
        value_to_string(&v, false)
    }

    #[test]
    fn strings_are_escaped_like_go() {
        let mut out = Vec::new();
        write_str(&mut out, "é✓<b>&\u{2028}\u{1}\"\\\n\u{8}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""é✓\u003cb\u003e\u0026\u2028\u0001\"\\\n\b""#
        );
    }

    #[test]
    fn numbers_are_written_like_go() {
        assert_eq!(
            compact("[1.0, 1e3, 0.1, -0, 2.50, 1E-7, 1.5e300, 18446744073709551615]"),
            "[1,1000,0.1,-0,2.5,1e-7,1.5e+300,18446744073709551615]"
        );
    }

    #[test]
    fn pretty_output_matches_marshal_indent() {
        let v: Value =
            serde_json::from_str(r#"{"b": [1, {}], "a": [], "c": {"d": null}}"#).unwrap();
        assert_eq!(
            value_to_string(&v, true),
            "{\n  \"a\": [],\n  \"b\": [\n    1,\n    {}\n  ],\n  \"c\": {\n    \"d\": null\n  }\n}"
        );
    }

    #[test]
    fn envelope_fields_keep_their_order() {
        let mut out = Vec::new();
        let mut obj = ObjectWriter::new(&mut out, None);
        obj.serde("z", "first");
        obj.value("a", &Value::from(true));
        obj.finish();
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"z":"first","a":true}"#);
    }
}
