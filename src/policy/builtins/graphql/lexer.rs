//! GraphQL source text into tokens, positioned as gqlparser's lexer positions them (lines,
//! and columns counted in runes), so that OPA's error locations come out the same.
//!
//! A character gqlparser's lexer refuses becomes an `Invalid` token carrying the lexer's
//! message: gqlparser's parser mostly reports "Unexpected <Invalid>" at the place the lexer
//! stopped, and the lexer's own words only where it consumes a token unseen.

mod strings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invalid,
    Eof,
    Bang,
    Dollar,
    Amp,
    ParenL,
    ParenR,
    Spread,
    Colon,
    Equals,
    At,
    BracketL,
    BracketR,
    BraceL,
    BraceR,
    Pipe,
    Name,
    Int,
    Float,
    String,
    BlockString,
}

impl Kind {
    /// How gqlparser's messages name a kind of token.
    pub fn text(self) -> &'static str {
        match self {
            Kind::Invalid => "<Invalid>",
            Kind::Eof => "<EOF>",
            Kind::Bang => "!",
            Kind::Dollar => "$",
            Kind::Amp => "&",
            Kind::ParenL => "(",
            Kind::ParenR => ")",
            Kind::Spread => "...",
            Kind::Colon => ":",
            Kind::Equals => "=",
            Kind::At => "@",
            Kind::BracketL => "[",
            Kind::BracketR => "]",
            Kind::BraceL => "{",
            Kind::BraceR => "}",
            Kind::Pipe => "|",
            Kind::Name => "Name",
            Kind::Int => "Int",
            Kind::Float => "Float",
            Kind::String => "String",
            Kind::BlockString => "BlockString",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub value: String,
    pub line: i64,
    pub column: i64,
    /// For an `Invalid` token, the lexer's message.
    pub refusal: Option<String>,
}

impl Token {
    /// The token as gqlparser's messages show it: its kind, then its quoted value if any.
    pub fn describe(&self) -> String {
        if self.value.is_empty() {
            self.kind.text().to_string()
        } else {
            format!(
                "{} {}",
                self.kind.text(),
                crate::policy::builtins::strings::goquote::quote(&self.value, false)
            )
        }
    }
}

pub struct Lexer<'a> {
    input: &'a str,
    bytes: &'a [u8],
    start_runes: usize,
    end: usize,
    end_runes: usize,
    line: i64,
    line_start_runes: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(input: &'a str) -> Lexer<'a> {
        Lexer {
            input,
            bytes: input.as_bytes(),
            start_runes: 0,
            end: 0,
            end_runes: 0,
            line: 1,
            line_start_runes: 0,
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.bytes.get(at).copied()
    }

    fn char_at(&self, at: usize) -> Option<char> {
        self.input.get(at..).and_then(|rest| rest.chars().next())
    }

    fn advance(&mut self, bytes: usize) {
        self.end += bytes;
        self.end_runes += 1;
    }

    fn token(&self, kind: Kind, value: String) -> Token {
        Token {
            kind,
            value,
            line: self.line,
            column: self.start_runes as i64 - self.line_start_runes as i64 + 1,
            refusal: None,
        }
    }

    /// Where gqlparser's lexer reports a refusal: the rune it stopped at.
    fn invalid(&self, message: String) -> Token {
        Token {
            kind: Kind::Invalid,
            value: String::new(),
            line: self.line,
            column: self.end_runes as i64 - self.line_start_runes as i64 + 1,
            refusal: Some(message),
        }
    }

    /// gqlparser names a byte by the code point of its value.
    fn describe_next(&self) -> String {
        match self.byte(self.end) {
            Some(b) => format!("\"{}\"", char::from(b)),
            None => "<EOF>".to_string(),
        }
    }

    fn newline(&mut self) {
        self.line += 1;
        self.line_start_runes = self.end_runes;
    }

    /// The next token, skipping white space, commas and comments.
    pub fn next_token(&mut self) -> Token {
        self.skip_ignored();
        let start = self.end;
        self.start_runes = self.end_runes;
        let Some(b) = self.byte(start) else {
            return self.token(Kind::Eof, String::new());
        };
        let punct = match b {
            b'!' => Some(Kind::Bang),
            b'$' => Some(Kind::Dollar),
            b'&' => Some(Kind::Amp),
            b'(' => Some(Kind::ParenL),
            b')' => Some(Kind::ParenR),
            b':' => Some(Kind::Colon),
            b'=' => Some(Kind::Equals),
            b'@' => Some(Kind::At),
            b'[' => Some(Kind::BracketL),
            b']' => Some(Kind::BracketR),
            b'{' => Some(Kind::BraceL),
            b'}' => Some(Kind::BraceR),
            b'|' => Some(Kind::Pipe),
            _ => None,
        };
        if let Some(kind) = punct {
            self.advance(1);
            return self.token(kind, String::new());
        }
        match b {
            b'.' if self.bytes.get(start..start + 3) == Some(b"...") => {
                self.end += 3;
                self.end_runes += 3;
                self.token(Kind::Spread, String::new())
            }
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => self.name(start),
            b'-' | b'0'..=b'9' => self.number(start),
            b'"' if self.bytes.get(start..start + 3) == Some(b"\"\"\"") => self.block_string(),
            b'"' => self.string(),
            // gqlparser prints the byte in decimal after `\\u`.
            b if b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r') => self.invalid(format!(
                "Cannot contain the invalid character \"\\u{b:04}\""
            )),
            b'\'' => self.invalid(
                "Unexpected single quote character ('), did you mean to use a double quote (\")?"
                    .to_string(),
            ),
            b => self.invalid(format!(
                "Cannot parse the unexpected character \"{}\".",
                char::from(b)
            )),
        }
    }

    fn skip_ignored(&mut self) {
        while let Some(b) = self.byte(self.end) {
            match b {
                b'\t' | b' ' | b',' => self.advance(1),
                b'\n' => {
                    self.advance(1);
                    self.newline();
                }
                b'\r' => {
                    self.advance(1);
                    self.newline();
                    if self.byte(self.end) == Some(b'\n') {
                        self.advance(1);
                    }
                }
                0xEF if self.bytes.get(self.end..self.end + 3) == Some(&[0xEF, 0xBB, 0xBF]) => {
                    self.advance(3)
                }
                b'#' => self.skip_comment(),
                _ => return,
            }
        }
    }

    /// `#` up to the end of the line (or the first control character but tab).
    fn skip_comment(&mut self) {
        self.advance(1);
        while let Some(c) = self.char_at(self.end) {
            if c > '\u{1f}' || c == '\t' {
                self.advance(c.len_utf8());
            } else {
                break;
            }
        }
    }

    fn name(&mut self, start: usize) -> Token {
        while let Some(b'_' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z') = self.byte(self.end) {
            self.advance(1);
        }
        let value = self.input.get(start..self.end).unwrap_or_default();
        self.token(Kind::Name, value.to_string())
    }

    fn accept(&mut self, wanted: &[u8]) -> bool {
        match self.byte(self.end) {
            Some(b) if wanted.contains(&b) => {
                self.advance(1);
                true
            }
            _ => false,
        }
    }

    fn digits(&mut self) -> usize {
        let mut n = 0;
        while let Some(b'0'..=b'9') = self.byte(self.end) {
            self.advance(1);
            n += 1;
        }
        n
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`: an Int, or a Float with a fraction
    /// or an exponent.
    fn number(&mut self, start: usize) -> Token {
        let mut float = false;
        self.accept(b"-");
        if self.accept(b"0") {
            let extra = self.digits();
            if extra != 0 {
                self.end -= extra;
                self.end_runes -= extra;
                let next = self.describe_next();
                return self.invalid(format!("Invalid number, unexpected digit after 0: {next}."));
            }
        } else if self.digits() == 0 {
            return self.no_digit();
        }
        if self.accept(b".") {
            float = true;
            if self.digits() == 0 {
                return self.no_digit();
            }
        }
        if self.accept(b"eE") {
            float = true;
            self.accept(b"+-");
            if self.digits() == 0 {
                return self.no_digit();
            }
        }
        let value = self.input.get(start..self.end).unwrap_or_default();
        let kind = if float { Kind::Float } else { Kind::Int };
        self.token(kind, value.to_string())
    }

    fn no_digit(&self) -> Token {
        let next = self.describe_next();
        self.invalid(format!("Invalid number, expected digit but got: {next}."))
    }
}
