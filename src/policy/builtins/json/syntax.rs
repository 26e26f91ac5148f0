//! Go's `json.Valid`: the grammar of RFC 8259 and nothing more (no number range, no surrogate
//! pairing), nesting up to Go's 10,000 levels, checked without recursion.

/// Go's `maxNestingDepth`.
const MAX_DEPTH: usize = 10_000;

/// Whether `text` is one JSON value, optionally surrounded by whitespace.
pub fn valid(text: &str) -> bool {
    Scanner {
        b: text.as_bytes(),
        i: 0,
    }
    .document()
    .is_some()
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(c)).then(|| self.i += 1)
    }

    /// Values until the document ends; `None` at the first error.
    fn document(&mut self) -> Option<()> {
        // Open containers, innermost last: `[` or `{`.
        let mut open: Vec<u8> = Vec::new();
        loop {
            // A value starts here.
            self.ws();
            match self.peek()? {
                c @ (b'[' | b'{') => {
                    // Go counts an empty container's level too.
                    if open.len() >= MAX_DEPTH {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    let close = if c == b'[' { b']' } else { b'}' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        open.push(c);
                        if c == b'{' {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => self.string()?,
                b't' => self.word(b"true")?,
                b'f' => self.word(b"false")?,
                b'n' => self.word(b"null")?,
                _ => self.number()?,
            }
            // A value ended: close containers until one wants another element.
            loop {
                self.ws();
                match (open.last(), self.peek()) {
                    (None, None) => return Some(()),
                    (None, Some(_)) => return None,
                    (Some(b'['), Some(b']')) | (Some(b'{'), Some(b'}')) => {
                        open.pop();
                        self.i += 1;
                    }
                    (Some(b'['), Some(b',')) => {
                        self.i += 1;
                        break;
                    }
                    (Some(b'{'), Some(b',')) => {
                        self.i += 1;
                        self.key()?;
                        break;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// An object key and its colon.
    fn key(&mut self) -> Option<()> {
        self.ws();
        if self.peek() != Some(b'"') {
            return None;
        }
        self.string()?;
        self.eat(b':')
    }

    fn word(&mut self, w: &[u8]) -> Option<()> {
        let end = self.i + w.len();
        (self.b.get(self.i..end) == Some(w)).then(|| self.i = end)
    }

    fn string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn accepts_json_as_go_does() {
        for text in [
            "1",
            " -0.5e+10 ",
            r#""\ud800""#,
            "1e400",
            r#"{"a": [1, {"b": null}], "c": "\u00e9\n"}"#,
            "[[], {}, true, false]",
        ] {
            assert!(valid(text), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for text in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "+1",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "[1] [2]",
            "'a'",
            "\"\t\"",
            "\"\\x\"",
            "tru",
            "nul",
            "{1: 2}",
            "[",
            "\"abc",
        ] {
            assert!(!valid(text), "{text:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(valid(&deep(10_000)));
        assert!(!valid(&deep(10_001)));
        assert!(!valid(&"[".repeat(1_000_000)));
    }
}
