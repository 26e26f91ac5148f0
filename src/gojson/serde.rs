//! Any serde value (error bodies, status, envelopes' parts) written with Go's escaping and
//! layout, through a serde_json formatter.

use serde::Serialize;

use super::string::write_str;
use super::value::write_f64;

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

#[cfg(test)]
mod tests {
    use crate::gojson::write_str;
    use crate::gojson::{value_to_string, ObjectWriter};
    use regorus::Value;

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
