//! JSON strings as Go's `encoding/json` writes them: the one string writer behind every Go
//! compatible output of verdict (responses, logs, bundle manifests and signatures).

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

/// Writes `s` as a JSON string the way Go's encoder does with HTML escaping on (as OPA
/// writes its responses).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    write_string(out, s, true);
}

/// Writes `s` as Go's encoder does: `\b \f \n \r \t`, other controls as `\u00XX`, U+2028
/// and U+2029 always escaped, `< > &` only when `escape_html`.
pub fn write_string(out: &mut Vec<u8>, s: &str, escape_html: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !SPECIAL[b as usize] || (!escape_html && matches!(b, b'<' | b'>' | b'&')) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_is_a_choice_and_the_rest_is_not() {
        let text = "<a>&\u{2029}\u{1f}\"é";
        let mut escaped = Vec::new();
        write_string(&mut escaped, text, true);
        assert_eq!(
            String::from_utf8(escaped).unwrap(),
            r#""\u003ca\u003e\u0026\u2029\u001f\"é""#
        );
        let mut plain = Vec::new();
        write_string(&mut plain, text, false);
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            r#""<a>&\u2029\u001f\"é""#
        );
    }
}
