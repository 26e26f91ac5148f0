//! Go's `strconv` quoting (`Quote`, `QuoteToASCII`, `QuoteRune`, `CanBackquote`, `IsPrint`),
//! and a Rego value's text as OPA's `ast.Term.String()` writes it, which is what `sprintf`
//! receives for anything that is not a number or a string.

use regorus::Value;

/// Go's `unicode.IsPrint`, closely: graphic characters and the ASCII space. Other spaces,
/// controls, format characters and private use are not printable.
pub fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    !(c.is_control()
        || c.is_whitespace()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E000}'..='\u{F8FF}'
            | '\u{F0000}'..='\u{10FFFF}'))
}

fn escape(out: &mut String, c: char, quote: char, ascii: bool) {
    match c {
        _ if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        _ if is_print(c) && (!ascii || c.is_ascii()) => out.push(c),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        _ if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        _ => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// `strconv.Quote` (or `QuoteToASCII` when `ascii`).
pub fn quote(s: &str, ascii: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape(&mut out, c, '"', ascii);
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune` (or `QuoteRuneToASCII` when `ascii`).
pub fn quote_rune(c: char, ascii: bool) -> String {
    let mut out = String::from('\'');
    escape(&mut out, c, '\'', ascii);
    out.push('\'');
    out
}

/// `strconv.CanBackquote`: one line, no backquote, no control but tab, no BOM.
pub fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\u{7f}')))
}

/// A value as OPA writes a term: strings quoted as Go quotes them, `, ` between elements,
/// `k: v` in objects, `set()` for the empty set.
pub fn rego_text(value: &Value) -> String {
    let mut out = String::new();
    write_term(&mut out, value);
    out
}

fn write_term(out: &mut String, value: &Value) {
    match value {
        Value::String(s) => out.push_str(&quote(s, false)),
        Value::Array(items) => {
            out.push('[');
            write_list(out, items.iter());
            out.push(']');
        }
        Value::Set(items) if items.is_empty() => out.push_str("set()"),
        Value::Set(items) => {
            out.push('{');
            write_list(out, items.iter());
            out.push('}');
        }
        Value::Object(fields) => {
            out.push('{');
            for (n, (k, v)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                write_term(out, k);
                out.push_str(": ");
                write_term(out, v);
            }
            out.push('}');
        }
        Value::Undefined => out.push_str("undefined"),
        scalar => out.push_str(&crate::gojson::value_to_string(scalar, false)),
    }
}

fn write_list<'a>(out: &mut String, items: impl Iterator<Item = &'a Value>) {
    for (n, item) in items.enumerate() {
        if n > 0 {
            out.push_str(", ");
        }
        write_term(out, item);
    }
}
