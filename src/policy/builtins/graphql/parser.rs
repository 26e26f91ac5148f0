//! Recursive descent over the tokens, step for step as gqlparser's parser goes, so that a
//! document fails at the same token with the same words: the parts every document shares
//! (values, directives, types). Executable documents are in `query_parser`, schema documents
//! in `schema_parser`.
//!
//! Nesting (selection sets, list and object values, list types) is bounded: a deeper document
//! is refused, never a stack overflow.

use super::ast::{Argument, ChildValue, Directive, Pos, Type, Value, ValueKind};
use super::lexer::{Kind, Lexer, Token};

/// How deep selection sets, values and types may nest, together.
pub const MAX_DEPTH: usize = 128;

/// Where and why a document does not parse, in gqlparser's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub line: i64,
    pub column: i64,
}

pub type PResult<T> = Result<T, SyntaxError>;

pub struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    depth: usize,
}

impl<'a> Parser<'a> {
    pub fn new(input: &'a str) -> Parser<'a> {
        Parser {
            lexer: Lexer::new(input),
            peeked: None,
            depth: 0,
        }
    }

    pub fn peek(&mut self) -> &Token {
        let lexer = &mut self.lexer;
        self.peeked.get_or_insert_with(|| lexer.next_token())
    }

    pub fn peek_kind(&mut self) -> Kind {
        self.peek().kind
    }

    /// The next token's value when it is a name.
    pub fn peek_name(&mut self) -> Option<&str> {
        let token = self.peek();
        (token.kind == Kind::Name).then_some(token.value.as_str())
    }

    pub fn pos(&mut self) -> Option<Pos> {
        let token = self.peek();
        Some(Pos {
            line: token.line,
            column: token.column,
        })
    }

    pub fn next(&mut self) -> Token {
        match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token(),
        }
    }

    pub fn error_at(token: &Token, message: String) -> SyntaxError {
        SyntaxError {
            message,
            line: token.line,
            column: token.column,
        }
    }

    pub fn unexpected(&mut self) -> SyntaxError {
        let token = self.peek().clone();
        Parser::error_at(&token, format!("Unexpected {}", token.describe()))
    }

    pub fn expect(&mut self, kind: Kind) -> PResult<Token> {
        let token = self.peek();
        if token.kind == kind {
            return Ok(self.next());
        }
        let token = token.clone();
        let message = format!("Expected {}, found {}", kind.text(), token.kind.text());
        Err(Parser::error_at(&token, message))
    }

    pub fn expect_keyword(&mut self, keyword: &str) -> PResult<Token> {
        if self.peek_name() == Some(keyword) {
            return Ok(self.next());
        }
        let token = self.peek().clone();
        let quoted = super::super::strings::goquote::quote(keyword, false);
        let message = format!("Expected {quoted}, found {}", token.describe());
        Err(Parser::error_at(&token, message))
    }

    pub fn skip(&mut self, kind: Kind) -> bool {
        let matched = self.peek_kind() == kind;
        if matched {
            self.next();
        }
        matched
    }

    pub fn name(&mut self) -> PResult<String> {
        Ok(self.expect(Kind::Name)?.value)
    }

    /// gqlparser's `some`: `start item+ end`, or nothing when `start` is absent.
    pub fn some<T>(
        &mut self,
        start: Kind,
        end: Kind,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.list(start, end, true, &mut item)
    }

    /// gqlparser's `many` (`start item* end`), or `some` when `at_least_one`.
    fn list<T>(
        &mut self,
        start: Kind,
        end: Kind,
        at_least_one: bool,
        item: &mut impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        let mut items = Vec::new();
        if !self.skip(start) {
            return Ok(items);
        }
        while self.peek_kind() != end {
            items.push(item(self)?);
        }
        if at_least_one && items.is_empty() {
            let token = self.peek().clone();
            let message = format!(
                "expected at least one definition, found {}",
                token.kind.text()
            );
            return Err(Parser::error_at(&token, message));
        }
        self.next();
        Ok(items)
    }

    /// Enters one level of nesting, refusing past `MAX_DEPTH`.
    pub fn descend(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let token = self.peek().clone();
            let message = format!("nesting deeper than {MAX_DEPTH} levels");
            return Err(Parser::error_at(&token, message));
        }
        Ok(())
    }

    pub fn ascend(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Consumes a token unseen, as gqlparser does here: only its value counts, and a token
    /// the lexer refused fails with the lexer's own message.
    pub fn operation_type(&mut self) -> PResult<String> {
        let token = self.next();
        if let Some(refusal) = &token.refusal {
            return Err(Parser::error_at(&token, refusal.clone()));
        }
        match token.value.as_str() {
            "query" | "mutation" | "subscription" => Ok(token.value),
            _ => Err(Parser::error_at(
                &token,
                format!("Unexpected {}", token.describe()),
            )),
        }
    }

    pub fn variable(&mut self) -> PResult<String> {
        self.expect(Kind::Dollar)?;
        self.name()
    }

    pub fn arguments(&mut self, constant: bool) -> PResult<Vec<Argument>> {
        self.some(Kind::ParenL, Kind::ParenR, |p| {
            let at = p.pos();
            let name = p.name()?;
            p.expect(Kind::Colon)?;
            let value = p.value(constant)?;
            Ok(Argument { name, value, at })
        })
    }

    /// A value literal; `constant` refuses variables (default values, schema documents).
    pub fn value(&mut self, constant: bool) -> PResult<Value> {
        let token = self.peek().clone();
        let at = self.pos();
        let kind = match token.kind {
            Kind::BracketL | Kind::BraceL => return self.composite(constant),
            Kind::Dollar if constant => return Err(self.unexpected()),
            Kind::Dollar => {
                let raw = self.variable()?;
                return Ok(Value::scalar(ValueKind::Variable, raw, at));
            }
            Kind::Int => ValueKind::Int,
            Kind::Float => ValueKind::Float,
            Kind::String => ValueKind::String,
            Kind::BlockString => ValueKind::Block,
            Kind::Name => match token.value.as_str() {
                "true" | "false" => ValueKind::Boolean,
                "null" => ValueKind::Null,
                _ => ValueKind::Enum,
            },
            _ => return Err(self.unexpected()),
        };
        self.next();
        Ok(Value::scalar(kind, token.value, at))
    }

    /// `[value*]` or `{name: value*}`.
    fn composite(&mut self, constant: bool) -> PResult<Value> {
        let at = self.pos();
        self.descend()?;
        let list = self.peek_kind() == Kind::BracketL;
        let children = if list {
            self.list(Kind::BracketL, Kind::BracketR, false, &mut |p| {
                let value = p.value(constant)?;
                Ok(ChildValue {
                    name: String::new(),
                    value,
                    at: None,
                })
            })?
        } else {
            self.list(Kind::BraceL, Kind::BraceR, false, &mut |p| {
                let at = p.pos();
                let name = p.name()?;
                p.expect(Kind::Colon)?;
                let value = p.value(constant)?;
                Ok(ChildValue { name, value, at })
            })?
        };
        self.ascend();
        Ok(Value {
            raw: String::new(),
            children,
            kind: if list {
                ValueKind::List
            } else {
                ValueKind::Object
            },
            expected_type_has_default: false,
            at,
        })
    }

    pub fn directives(&mut self, constant: bool) -> PResult<Vec<Directive>> {
        let mut directives = Vec::new();
        while self.peek_kind() == Kind::At {
            self.next();
            let at = self.pos();
            directives.push(Directive {
                name: self.name()?,
                arguments: self.arguments(constant)?,
                location: String::new(),
                at,
            });
        }
        Ok(directives)
    }

    pub fn type_reference(&mut self) -> PResult<Type> {
        let mut ty = if self.skip(Kind::BracketL) {
            self.descend()?;
            let at = self.pos();
            let elem = self.type_reference()?;
            self.expect(Kind::BracketR)?;
            self.ascend();
            Type {
                named_type: String::new(),
                elem: Some(Box::new(elem)),
                non_null: false,
                at,
            }
        } else {
            let at = self.pos();
            Type {
                named_type: self.name()?,
                elem: None,
                non_null: false,
                at,
            }
        };
        ty.non_null = self.skip(Kind::Bang);
        Ok(ty)
    }
}

impl Value {
    pub fn scalar(kind: ValueKind, raw: String, at: Option<Pos>) -> Value {
        Value {
            raw,
            children: Vec::new(),
            kind,
            expected_type_has_default: false,
            at,
        }
    }
}
