//! The pre-parse check on Rego text: size, and how much re-reading nested literals will cost
//! regorus's parser, decided by a lexical scan before the parser ever sees the text.
//!
//! regorus 0.14.1 parses a term at some positions speculatively (as a comprehension, as an
//! assignment's left side), and on failure rewinds and parses it again. A term that holds
//! another such position is re-read twice per level, so the time is exponential in how many of
//! those positions are nested: measured (release build), `x := [[…]]` 14 deep 8.6 ms, 18 deep
//! 0.26 s, 22 deep 4.5 s. Positions the parser retries, read from its source:
//! - the first element of an array, set or object literal (tried as a comprehension head);
//! - the first value of an object (tried as an object comprehension head);
//! - the start of a statement (tried as the left side of an assignment): the first token of a
//!   query or body, after `|`, `;`, `if`, `else`, `not`, and on a new line after a term.
//!
//! A retried term runs until the next operator or separator at its own level. The scan gives
//! every token a weight of 2^d, d being how many retried terms enclose it, and bounds both the
//! deepest d and the sum of the weights beyond one per token (the re-reading done).
//!
//! The parser and the evaluator also recurse once per unary minus, operator and reference
//! segment: `x := ----…1` with 5,000 signs overflowed an 8 MiB stack while parsing (release),
//! and verdict compiles on threads of 2 MiB. Runs of those are bounded too.

use super::tokens::{Kind, Token, Tokens};

/// Text larger than this is refused: regorus's own default for one module, applied to queries
/// and templates as well.
pub const MAX_TEXT_BYTES: usize = 1_048_576;

/// The deepest nesting of retried terms accepted, counted at the innermost token. OPA's
/// compliance suite reaches 11 (a GraphQL AST literal, parsed in ~6 ms), as does `x := [[…]]`
/// 11 deep. Deeper is what only generated or hostile text has.
pub const MAX_RETRY_DEPTH: u32 = 11;

/// The most re-reading accepted in one text, in units of one token read once more. The largest
/// in OPA's compliance suite is 32,684 (the same GraphQL case); at this bound the worst shapes
/// measured parse in 10-20 ms on a loaded 2-core machine.
pub const MAX_REREAD_COST: u64 = 40_000;

/// Unary minus signs in a row (`- -1` is two); real text has one.
pub const MAX_UNARY_RUN: u32 = 8;

/// Operators on one path of an expression tree, counted through the brackets around them and
/// reset at the end of a statement, an element or an assignment's left side.
pub const MAX_OPERATORS: u32 = 128;

/// Segments of one reference (`a.b[c]` has two).
pub const MAX_REF_SEGMENTS: u32 = 128;

/// Digits of a number literal's exponent: regorus builds `1e<exponent>` as an exact big integer
/// while lexing, in time that grows with the exponent's value (`0e17555555` took 31 s, a
/// 12-byte query minutes). Four digits (10^9999) still parse in well under a millisecond.
pub const MAX_EXPONENT_DIGITS: usize = 4;

/// Digits of a number literal: exact big integers cost more than linear time to build.
pub const MAX_NUMBER_DIGITS: usize = 1_000;

/// Brackets of any kind nested deeper than this are refused: regorus refuses expressions past
/// 32 levels anyway, and the scan keeps one frame per open bracket.
pub const MAX_BRACKET_DEPTH: usize = 64;

/// Why a Rego text is refused before parsing; `row` and `col` are 1-based, like regorus's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("policy text of {bytes} bytes exceeds the limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
    #[error("more than {limit} unary minus signs in a row")]
    UnaryRun { row: u32, col: u32, limit: u32 },
    #[error("expression with more than {limit} operators in one term")]
    Operators { row: u32, col: u32, limit: u32 },
    #[error("reference with more than {limit} segments")]
    LongReference { row: u32, col: u32, limit: u32 },
    #[error("number literal with more than {limit} digits in its {part}")]
    Number {
        row: u32,
        col: u32,
        part: &'static str,
        limit: usize,
    },
    #[error("brackets nested more than {limit} deep")]
    TooDeep { row: u32, col: u32, limit: usize },
    #[error(
        "literal nested too deeply to parse safely: {depth} levels of terms the parser must \
         re-read (limit {limit})"
    )]
    NestedLiteral {
        row: u32,
        col: u32,
        depth: u32,
        limit: u32,
    },
    #[error(
        "nested literals too costly to parse safely: re-reading cost passed the limit of {limit} \
         tokens"
    )]
    Cost { row: u32, col: u32, limit: u64 },
}

impl TextError {
    /// Where the limit was passed (the text's start for its size).
    pub fn position(&self) -> (u32, u32) {
        match *self {
            TextError::TooLarge { .. } => (1, 1),
            TextError::TooDeep { row, col, .. }
            | TextError::Number { row, col, .. }
            | TextError::UnaryRun { row, col, .. }
            | TextError::Operators { row, col, .. }
            | TextError::LongReference { row, col, .. }
            | TextError::NestedLiteral { row, col, .. }
            | TextError::Cost { row, col, .. } => (row, col),
        }
    }
}

/// Checks one Rego text (a module, a query, a template's source) before regorus parses it.
pub fn check(text: &str) -> Result<(), TextError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(TextError::TooLarge {
            bytes: text.len(),
            limit: MAX_TEXT_BYTES,
        });
    }
    let mut scan = Scan::new();
    for token in Tokens::new(text) {
        if token.kind == Kind::Term {
            check_number(text.as_bytes(), &token)?;
        }
        scan.step(token)?;
    }
    Ok(())
}

/// Bounds a number literal's digits and its exponent's. The lexer reads `1e5` as one word and
/// `1e+5` as a word, a sign and a word: the exponent's digits are looked for in both.
fn check_number(text: &[u8], token: &Token) -> Result<(), TextError> {
    let word = &text[token.start..token.end];
    if !word.first().is_some_and(u8::is_ascii_digit) {
        return Ok(());
    }
    let refuse = |part, limit| TextError::Number {
        row: token.row,
        col: token.col,
        part,
        limit,
    };
    let (mantissa, exponent) = match word.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(e) if e + 1 < word.len() => (&word[..e], word[e + 1..].len()),
        Some(e) => {
            let after = &text[token.end..];
            let signed = after.first().is_some_and(|b| matches!(b, b'+' | b'-'));
            // regorus reads `_` inside a number's digits: it counts like a digit here.
            let digits = after[usize::from(signed)..]
                .iter()
                .take_while(|b| b.is_ascii_digit() || **b == b'_')
                .count();
            (&word[..e], digits)
        }
        None => (word, 0),
    };
    if mantissa.len() > MAX_NUMBER_DIGITS {
        return Err(refuse("digits", MAX_NUMBER_DIGITS));
    }
    if exponent > MAX_EXPONENT_DIGITS {
        return Err(refuse("exponent", MAX_EXPONENT_DIGITS));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    /// The text itself: a query, or a module's top level.
    Top,
    /// An array, set or object literal, a comprehension, or a rule body.
    Literal(u8),
    /// Parentheses, call arguments and reference indexes: nothing in them is retried first.
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prev {
    Nothing,
    TermEnd,
    Starter,
    Sep(u8),
    Dot,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: FrameKind,
    /// Retried terms enclosing this frame.
    depth: u32,
    /// A retried term is being read at this level.
    retried: bool,
    first: bool,
    colons: u32,
    prev: Prev,
    /// Operators on the path from the enclosing statement to here; `ops_base` is the part
    /// counted in the frames around this one.
    ops: u32,
    ops_base: u32,
    unary: u32,
    segments: u32,
}

impl Frame {
    fn new(kind: FrameKind, depth: u32, ops_base: u32) -> Self {
        Frame {
            kind,
            depth,
            retried: false,
            first: true,
            colons: 0,
            prev: Prev::Nothing,
            ops: ops_base,
            ops_base,
            unary: 0,
            segments: 0,
        }
    }

    /// Counts the runs the parser and evaluator recurse over.
    fn chains(&mut self, token: &Token, after_term: bool) -> Result<(), TextError> {
        let (row, col) = (token.row, token.col);
        let statement = token.newline && self.prev == Prev::TermEnd;
        match token.kind {
            Kind::Sep(
                b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'|' | b'<' | b'>' | b'=' | b'!',
            ) => {
                self.ops += 1;
                if self.ops > MAX_OPERATORS {
                    return Err(TextError::Operators {
                        row,
                        col,
                        limit: MAX_OPERATORS,
                    });
                }
                // A minus after anything but a term is unary: `x := - -1`.
                self.unary = match (token.kind, self.prev) {
                    (_, Prev::TermEnd) => 0,
                    (Kind::Sep(b'-'), _) => self.unary + 1,
                    _ => 0,
                };
                if self.unary > MAX_UNARY_RUN {
                    return Err(TextError::UnaryRun {
                        row,
                        col,
                        limit: MAX_UNARY_RUN,
                    });
                }
                self.segments = 0;
            }
            Kind::Sep(_) | Kind::Starter => {
                self.ops = self.ops_base;
                self.unary = 0;
                self.segments = 0;
            }
            Kind::Dot => self.segments += 1,
            Kind::Open(b'[') if after_term => self.segments += 1,
            Kind::Term | Kind::Open(_) => {
                if statement {
                    self.ops = self.ops_base;
                }
                if self.prev != Prev::Dot || statement {
                    self.segments = 0;
                }
                self.unary = 0;
            }
            Kind::Close => {}
        }
        if self.segments > MAX_REF_SEGMENTS {
            return Err(TextError::LongReference {
                row,
                col,
                limit: MAX_REF_SEGMENTS,
            });
        }
        Ok(())
    }

    /// True when a term starting with `token` here is one the parser tries and may rewind.
    fn retries(&self, token: &Token) -> bool {
        let first = self.first && matches!(self.kind, FrameKind::Top | FrameKind::Literal(_));
        let first_value = self.kind == FrameKind::Literal(b'{')
            && self.prev == Prev::Sep(b':')
            && self.colons == 1;
        let statement = matches!(self.prev, Prev::Sep(b'|' | b';') | Prev::Starter)
            || (token.newline && self.prev == Prev::TermEnd);
        first || first_value || statement
    }
}

struct Scan {
    frames: Vec<Frame>,
    cost: u64,
}

impl Scan {
    fn new() -> Self {
        Scan {
            frames: vec![Frame::new(FrameKind::Top, 0, 0)],
            cost: 0,
        }
    }

    fn step(&mut self, token: Token) -> Result<(), TextError> {
        if token.kind == Kind::Close {
            if self.frames.len() > 1 {
                self.frames.pop();
            }
            if let Some(f) = self.frames.last_mut() {
                f.prev = Prev::TermEnd;
                f.first = false;
            }
            return Ok(());
        }
        let Some(frame) = self.frames.last_mut() else {
            return Ok(());
        };
        match token.kind {
            Kind::Term | Kind::Open(_) if !frame.retried => frame.retried = frame.retries(&token),
            Kind::Sep(b) => {
                frame.retried = false;
                if b == b':' {
                    frame.colons += 1;
                }
            }
            Kind::Starter => frame.retried = false,
            _ => {}
        }
        let depth = frame.depth + u32::from(frame.retried);
        let after_term = frame.prev == Prev::TermEnd && !token.newline;
        frame.chains(&token, after_term)?;
        let ops = frame.ops;
        frame.first = false;
        frame.prev = match token.kind {
            Kind::Term => Prev::TermEnd,
            Kind::Starter => Prev::Starter,
            Kind::Sep(b) => Prev::Sep(b),
            Kind::Dot | Kind::Open(_) | Kind::Close => Prev::Dot,
        };
        if depth > MAX_RETRY_DEPTH {
            return Err(TextError::NestedLiteral {
                row: token.row,
                col: token.col,
                depth,
                limit: MAX_RETRY_DEPTH,
            });
        }
        self.cost += (1u64 << depth) - 1;
        if self.cost > MAX_REREAD_COST {
            return Err(TextError::Cost {
                row: token.row,
                col: token.col,
                limit: MAX_REREAD_COST,
            });
        }
        if let Kind::Open(b) = token.kind {
            if self.frames.len() > MAX_BRACKET_DEPTH {
                return Err(TextError::TooDeep {
                    row: token.row,
                    col: token.col,
                    limit: MAX_BRACKET_DEPTH,
                });
            }
            // `a[i]` and `f(x)`: an index or call arguments, never a literal.
            let kind = match b {
                b'[' | b'{' if !(after_term && b == b'[') => FrameKind::Literal(b),
                _ => FrameKind::Plain,
            };
            self.frames.push(Frame::new(kind, depth, ops));
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
