//! String and block string tokens: escapes resolved, block strings dedented as gqlparser's
//! BlockStringValue does it, refusals worded as gqlparser's lexer words them.

use super::{Kind, Lexer, Token};

impl Lexer<'_> {
    fn bad_character(&self, c: char) -> Token {
        let code = u32::from(c);
        self.invalid(format!(
            "Invalid character within String: \"\\u{code:04}\"."
        ))
    }

    fn unterminated(&self) -> Token {
        self.invalid("Unterminated string.".to_string())
    }

    /// A `"..."` string; its value has the escapes resolved.
    pub(super) fn string(&mut self) -> Token {
        self.advance(1);
        self.start_runes = self.end_runes;
        let mut value = String::new();
        while let Some(c) = self.char_at(self.end) {
            match c {
                '\n' | '\r' => break,
                '"' => {
                    let token = self.token(Kind::String, value);
                    self.advance(1);
                    return token;
                }
                '\\' => match self.escape() {
                    Ok(resolved) => value.push(resolved),
                    Err(refused) => return refused,
                },
                c if c < '\u{20}' && c != '\t' => return self.bad_character(c),
                c => {
                    value.push(c);
                    self.advance(c.len_utf8());
                }
            }
        }
        self.unterminated()
    }

    fn bad_escape(&mut self, shown: String) -> Token {
        self.advance(1);
        self.invalid(format!("Invalid character escape sequence: \\{shown}."))
    }

    /// One escape sequence at the backslash: its character, having advanced past it.
    fn escape(&mut self) -> Result<char, Token> {
        let at = self.end;
        let Some(escape) = self.byte(at + 1) else {
            self.advance(1);
            return Err(self.invalid("Invalid character escape sequence.".to_string()));
        };
        if escape == b'u' {
            // gqlparser wants the closing quote's byte to exist past the four digits.
            if at + 6 >= self.bytes.len() {
                let rest = String::from_utf8_lossy(&self.bytes[at + 1..]).into_owned();
                return Err(self.bad_escape(rest));
            }
            let code = self.input.get(at + 2..at + 6).and_then(|hex| {
                hex.chars()
                    .try_fold(0u32, |acc, c| c.to_digit(16).map(|d| acc << 4 | d))
                    .filter(|_| hex.chars().count() == 4)
            });
            let Some(code) = code else {
                let shown = String::from_utf8_lossy(&self.bytes[at + 1..at + 6]).into_owned();
                return Err(self.bad_escape(shown));
            };
            self.end += 6;
            self.end_runes += 6;
            return Ok(char::from_u32(code).unwrap_or('\u{FFFD}'));
        }
        let resolved = match escape {
            b'"' | b'/' | b'\\' => char::from(escape),
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            other => return Err(self.bad_escape(char::from(other).to_string())),
        };
        self.end += 2;
        self.end_runes += 2;
        Ok(resolved)
    }

    /// A `"""..."""` block string; its value is the spec's BlockStringValue as gqlparser
    /// computes it. Its token sits on the line where it ends, as gqlparser's does.
    pub(super) fn block_string(&mut self) -> Token {
        self.end += 3;
        self.end_runes += 3;
        self.start_runes = self.end_runes;
        let mut raw = String::new();
        while let Some(c) = self.char_at(self.end) {
            if c == '"' {
                let quotes = self.bytes[self.end..]
                    .iter()
                    .take_while(|b| **b == b'"')
                    .count();
                if quotes >= 3 {
                    raw.extend(std::iter::repeat_n('"', quotes - 3));
                    let token = self.token(Kind::BlockString, block_string_value(&raw));
                    self.end += quotes;
                    self.end_runes += quotes;
                    return token;
                }
            }
            if c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r') {
                return self.bad_character(c);
            }
            if c == '\\' && self.bytes.get(self.end..self.end + 4) == Some(b"\\\"\"\"") {
                raw.push_str("\"\"\"");
                self.end += 4;
                self.end_runes += 4;
            } else if c == '\r' {
                if self.byte(self.end + 1) == Some(b'\n') {
                    self.advance(1);
                }
                raw.push('\n');
                self.advance(1);
                self.newline();
            } else {
                raw.push(c);
                self.advance(c.len_utf8());
                if c == '\n' {
                    self.newline();
                }
            }
        }
        self.unterminated()
    }
}

/// Leading spaces and tabs in bytes, `None` for a line that is nothing else.
fn indent(line: &str) -> Option<usize> {
    line.bytes()
        .position(|b| b != b' ' && b != b'\t')
        .filter(|_| !line.is_empty())
}

/// gqlparser's BlockStringValue: common indentation removed (measured over every line,
/// the first included, but not removed from the first), blank first and last lines dropped.
fn block_string_value(raw: &str) -> String {
    let mut lines: Vec<&str> = raw.split('\n').collect();
    let common = lines.iter().filter_map(|l| indent(l)).min();
    if let Some(common) = common {
        for line in lines.iter_mut().skip(1) {
            *line = line.get(common..).unwrap_or("");
        }
    }
    let first = lines.iter().position(|l| indent(l).is_some());
    let last = lines.iter().rposition(|l| indent(l).is_some());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}
