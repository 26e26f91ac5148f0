//! Go's `encoding/json` as OPA's clients meet it: syntax errors worded as Go words them, since
//! OPA and opa-envoy-plugin pass those messages through to clients, and OPA's whole-document
//! decoding for ext_authz bodies.

use regorus::Value;

/// Decodes one JSON document as OPA's `util.UnmarshalJSON` does: the first value, then
/// nothing but whitespace (opa-envoy-plugin parses request bodies this way).
pub fn decode_whole(bytes: &[u8]) -> Result<Value, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("EOF".into());
    }
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    let first = match values.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => return Err(go_json_error(e, bytes)),
        None => return Err("EOF".into()),
    };
    let rest = &bytes[values.byte_offset()..];
    let Some(at) = rest.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Ok(first);
    };
    let rest = &rest[at..];
    // Go reads the next token: a value's first token is named, anything else is a syntax error.
    let token = match rest[0] {
        b'{' | b'}' | b'[' | b']' => Some((rest[0] as char).to_string()),
        b'"' | b'-' | b'0'..=b'9' => serde_json::Deserializer::from_slice(rest)
            .into_iter::<serde_json::Value>()
            .next()
            .and_then(Result::ok)
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }),
        _ => None,
    };
    Err(match token {
        Some(token) => format!("error: invalid character '{token}' after top-level value"),
        None => format!(
            "invalid character {} looking for beginning of value",
            go_quote_byte(rest[0])
        ),
    })
}

/// True when decoding stopped because regorus's allocator reached the process memory ceiling:
/// its values refuse to grow with a serde error carrying regorus's limit text, the only trace
/// of the limit that survives serde.
pub fn is_memory_limit(e: &serde_json::Error) -> bool {
    e.is_data() && e.to_string().contains("exceeded memory limit")
}

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
