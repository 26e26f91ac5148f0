//! Rego's lexical structure, only as far as the pre-parse check needs it: terms, keywords that
//! start or end statements, operators, dots and brackets, with their positions.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An identifier, number or string: a piece of a term.
    Term,
    /// `if`, `else`, `not`: a statement starts after them.
    Starter,
    /// Another keyword, an operator or a separator: ends a term.
    Sep(u8),
    Dot,
    Open(u8),
    Close,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    pub(super) kind: Kind,
    /// A line break came between the previous token and this one.
    pub(super) newline: bool,
    pub(super) row: u32,
    pub(super) col: u32,
    /// Where the token's bytes start and end in the text.
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Rego's lexical structure, only as far as the scan needs it: comments and strings (quoted
/// with escapes, raw in backticks) are skipped whole, so brackets inside them do not count.
pub(super) struct Tokens<'a> {
    bytes: &'a [u8],
    pos: usize,
    row: u32,
    col: u32,
}

impl<'a> Tokens<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Tokens {
            bytes: text.as_bytes(),
            pos: 0,
            row: 1,
            col: 1,
        }
    }

    fn bump(&mut self) {
        if let Some(&b) = self.bytes.get(self.pos) {
            if b == b'\n' {
                self.row += 1;
                self.col = 1;
            } else if b & 0xC0 != 0x80 {
                // Columns count characters: UTF-8 continuation bytes do not start one.
                self.col += 1;
            }
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_string(&mut self, quote: u8) {
        self.bump();
        while let Some(b) = self.peek() {
            self.bump();
            if b == quote {
                return;
            }
            // A quoted string ends at its line; a raw string may span lines.
            if quote == b'"' && b == b'\n' {
                return;
            }
            if quote == b'"' && b == b'\\' {
                self.bump();
            }
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let mut newline = false;
        loop {
            let b = self.peek()?;
            match b {
                b'\n' => {
                    newline = true;
                    self.bump();
                }
                b' ' | b'\t' | b'\r' => self.bump(),
                b'#' => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.bump();
                    }
                }
                _ => break,
            }
        }
        let (row, col) = (self.row, self.col);
        let start = self.pos;
        let b = self.peek()?;
        let kind = match b {
            b'"' | b'`' => {
                self.skip_string(b);
                Kind::Term
            }
            b'[' | b'{' | b'(' => {
                self.bump();
                Kind::Open(b)
            }
            b']' | b'}' | b')' => {
                self.bump();
                Kind::Close
            }
            b'.' => {
                self.bump();
                Kind::Dot
            }
            b if is_word(b) => {
                while self.peek().is_some_and(is_word) {
                    self.bump();
                }
                match &self.bytes[start..self.pos] {
                    b"if" | b"else" | b"not" => Kind::Starter,
                    b"in" | b"with" | b"as" | b"contains" | b"some" | b"every" | b"default"
                    | b"package" | b"import" => Kind::Sep(b'k'),
                    _ => Kind::Term,
                }
            }
            other => {
                self.bump();
                Kind::Sep(other)
            }
        };
        Some(Token {
            kind,
            newline,
            row,
            col,
            start,
            end: self.pos,
        })
    }
}
