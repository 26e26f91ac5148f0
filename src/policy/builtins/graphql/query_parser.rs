//! Executable documents (operations and fragments), parsed as gqlparser parses them.

use super::ast::{
    Field, FragmentDefinition, FragmentSpread, InlineFragment, Operation, QueryDocument, Selection,
    VariableDefinition,
};
use super::lexer::Kind;
use super::parser::{PResult, Parser};

/// Parses an executable document.
pub fn parse_query(input: &str) -> PResult<QueryDocument> {
    Parser::new(input).query_document()
}

impl Parser<'_> {
    pub fn query_document(&mut self) -> PResult<QueryDocument> {
        let mut doc = QueryDocument::default();
        while self.peek_kind() != Kind::Eof {
            match self.peek_kind() {
                Kind::Name => match self.peek_name() {
                    Some("query" | "mutation" | "subscription") => {
                        doc.operations.push(self.operation()?)
                    }
                    Some("fragment") => doc.fragments.push(self.fragment_definition()?),
                    _ => return Err(self.unexpected()),
                },
                Kind::BraceL => doc.operations.push(self.operation()?),
                _ => return Err(self.unexpected()),
            }
        }
        Ok(doc)
    }

    fn operation(&mut self) -> PResult<Operation> {
        let at = self.pos();
        if self.peek_kind() == Kind::BraceL {
            return Ok(Operation {
                operation: "query".to_string(),
                name: String::new(),
                variable_definitions: Vec::new(),
                directives: Vec::new(),
                selection_set: self.required_selection_set()?,
                at,
            });
        }
        let operation = self.operation_type()?;
        let name = match self.peek_kind() {
            Kind::Name => self.next().value,
            _ => String::new(),
        };
        Ok(Operation {
            operation,
            name,
            variable_definitions: self.variable_definitions()?,
            directives: self.directives(false)?,
            selection_set: self.required_selection_set()?,
            at,
        })
    }

    fn variable_definitions(&mut self) -> PResult<Vec<VariableDefinition>> {
        self.some(Kind::ParenL, Kind::ParenR, Parser::variable_definition)
    }

    fn variable_definition(&mut self) -> PResult<VariableDefinition> {
        let at = self.pos();
        let variable = self.variable()?;
        self.expect(Kind::Colon)?;
        let ty = self.type_reference()?;
        let default_value = if self.skip(Kind::Equals) {
            Some(self.value(true)?)
        } else {
            None
        };
        Ok(VariableDefinition {
            variable,
            ty,
            default_value,
            directives: self.directives(false)?,
            used: false,
            at,
        })
    }

    fn required_selection_set(&mut self) -> PResult<Vec<Selection>> {
        if self.peek_kind() != Kind::BraceL {
            let token = self.peek().clone();
            let message = format!("Expected {{, found {}", token.kind.text());
            return Err(Parser::error_at(&token, message));
        }
        self.selection_set()
    }

    fn selection_set(&mut self) -> PResult<Vec<Selection>> {
        self.descend()?;
        let set = self.some(Kind::BraceL, Kind::BraceR, Parser::selection)?;
        self.ascend();
        Ok(set)
    }

    fn selection(&mut self) -> PResult<Selection> {
        if self.peek_kind() == Kind::Spread {
            return self.fragment();
        }
        let at = self.pos();
        let alias = self.name()?;
        let name = if self.skip(Kind::Colon) {
            self.name()?
        } else {
            alias.clone()
        };
        let arguments = self.arguments(false)?;
        let directives = self.directives(false)?;
        let selection_set = if self.peek_kind() == Kind::BraceL {
            self.selection_set()?
        } else {
            Vec::new()
        };
        Ok(Selection::Field(Field {
            alias,
            name,
            arguments,
            directives,
            selection_set,
            at,
        }))
    }

    fn fragment(&mut self) -> PResult<Selection> {
        self.expect(Kind::Spread)?;
        let on = self.peek_name() == Some("on");
        if self.peek_kind() == Kind::Name && !on {
            let at = self.pos();
            return Ok(Selection::Spread(FragmentSpread {
                name: self.fragment_name()?,
                directives: self.directives(false)?,
                at,
            }));
        }
        let at = self.pos();
        // gqlparser compares the token's value only, whatever its kind.
        let type_condition = if self.peek().value == "on" {
            self.next();
            self.name()?
        } else {
            String::new()
        };
        Ok(Selection::Inline(InlineFragment {
            type_condition,
            directives: self.directives(false)?,
            selection_set: self.required_selection_set()?,
            at,
        }))
    }

    fn fragment_definition(&mut self) -> PResult<FragmentDefinition> {
        let at = self.pos();
        self.expect_keyword("fragment")?;
        let name = self.fragment_name()?;
        let variable_definition = self.variable_definitions()?;
        self.expect_keyword("on")?;
        Ok(FragmentDefinition {
            name,
            variable_definition,
            type_condition: self.name()?,
            directives: self.directives(false)?,
            selection_set: self.required_selection_set()?,
            at,
        })
    }

    fn fragment_name(&mut self) -> PResult<String> {
        if self.peek().value == "on" {
            return Err(self.unexpected());
        }
        self.name()
    }
}
