//! Go's `encoding/json` as OPA's clients meet it: the first JSON value of a body is decoded
//! (trailing bytes ignored, as `json.Decoder.Decode` does), and syntax errors are worded as
//! Go words them, since OPA and opa-envoy-plugin pass those messages through to clients.

use regorus::Value;

/// Decodes the first JSON value of `bytes`, as Go's `json.Decoder.Decode` does: an empty or
/// blank body is Go's `EOF` error.
pub fn decode_first(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("EOF".into());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde::Deserialize::deserialize(&mut de).map_err(|e| go_json_error(e, bytes))
}

/// serde_json's words where Go's differ in a way clients see: OPA passes Go's decoder errors
/// through, so the common syntax errors are reworded to Go's text, naming the offending byte.
pub fn go_json_error(e: serde_json::Error, text: &[u8]) -> String {
    if e.is_eof() {
        return "unexpected EOF".into();
    }
    let message = e.to_string();
    let bare = message
        .rfind(" at line ")
        .map_or(message.as_str(), |at| &message[..at]);
    if e.is_data() {
        // Our own messages (Go's wording) carry no position in Go.
        return bare.to_string();
    }
    let context = match bare {
        "expected value" => "looking for beginning of value",
        "key must be a string" => "looking for beginning of object key string",
        "expected `:`" => "after object key",
        "expected `,` or `}`" => "after object key:value pair",
        "expected `,` or `]`" => "after array element",
        "invalid escape" => "in string escape code",
        "invalid number" => "in numeric literal",
        _ if bare.starts_with("control character") => "in string literal",
        _ => return message,
    };
    match byte_at(text, e.line(), e.column()) {
        Some(b) => format!("invalid character {} {context}", go_quote_byte(b)),
        None => message,
    }
}

/// The byte at serde_json's 1-based line and column.
fn byte_at(text: &[u8], line: usize, column: usize) -> Option<u8> {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map(|(i, _)| i + 1)?
    };
    text.get(line_start + column.checked_sub(1)?).copied()
}

/// Go's `quoteChar`: 'x', with escapes for quotes and unprintable bytes.
fn go_quote_byte(b: u8) -> String {
    match b {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        b'\n' => "'\\n'".into(),
        b'\r' => "'\\r'".into(),
        b'\t' => "'\\t'".into(),
        0x20..=0x7e => format!("'{}'", b as char),
        other => format!("'\\x{other:02x}'"),
    }
}
