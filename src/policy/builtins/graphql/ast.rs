//! The GraphQL documents the `graphql.*` builtins work on, shaped as gqlparser's `ast`
//! package shapes them (OPA hands policies that package's structs, field by field), minus what
//! OPA prunes from them: source positions are kept for error messages only.

/// Where a node starts: line and column in runes, 1-based. `None` for nodes decoded from a
/// policy's AST object, which carries no positions (OPA reports those errors at -1:-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: i64,
    pub column: i64,
}

pub type At = Option<Pos>;

/// gqlparser's `ValueKind`, whose numbers are what policies see in `"Kind"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Variable,
    Int,
    Float,
    String,
    Block,
    Boolean,
    Null,
    Enum,
    List,
    Object,
}

impl ValueKind {
    pub const ALL: [ValueKind; 10] = [
        ValueKind::Variable,
        ValueKind::Int,
        ValueKind::Float,
        ValueKind::String,
        ValueKind::Block,
        ValueKind::Boolean,
        ValueKind::Null,
        ValueKind::Enum,
        ValueKind::List,
        ValueKind::Object,
    ];

    pub fn number(self) -> i64 {
        ValueKind::ALL
            .iter()
            .position(|k| *k == self)
            .map_or(0, |i| i as i64)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub raw: String,
    pub children: Vec<ChildValue>,
    pub kind: ValueKind,
    /// Set by gqlparser's validator; a parsed document always says false.
    pub expected_type_has_default: bool,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChildValue {
    pub name: String,
    pub value: Value,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    pub named_type: String,
    pub elem: Option<Box<Type>>,
    pub non_null: bool,
    pub at: At,
}

impl Type {
    pub fn named(name: &str, non_null: bool) -> Type {
        Type {
            named_type: name.to_string(),
            elem: None,
            non_null,
            at: None,
        }
    }

    /// The innermost named type.
    pub fn name(&self) -> &str {
        let mut t = self;
        while t.named_type.is_empty() {
            match &t.elem {
                Some(elem) => t = elem,
                None => return "",
            }
        }
        &t.named_type
    }

    /// GraphQL's notation: `[Int!]!`.
    pub fn render(&self) -> String {
        let bang = if self.non_null { "!" } else { "" };
        match &self.elem {
            _ if !self.named_type.is_empty() => format!("{}{bang}", self.named_type),
            Some(elem) => format!("[{}]{bang}", elem.render()),
            None => bang.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    pub name: String,
    pub value: Value,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub name: String,
    pub arguments: Vec<Argument>,
    /// Filled in by gqlparser's validator only; kept as given.
    pub location: String,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryDocument {
    pub operations: Vec<Operation>,
    pub fragments: Vec<FragmentDefinition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// `query`, `mutation` or `subscription` (anything, when decoded from an object).
    pub operation: String,
    pub name: String,
    pub variable_definitions: Vec<VariableDefinition>,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariableDefinition {
    pub variable: String,
    pub ty: Type,
    pub default_value: Option<Value>,
    pub directives: Vec<Directive>,
    /// Set by gqlparser's validator; a parsed document always says false.
    pub used: bool,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Field(Field),
    Spread(FragmentSpread),
    Inline(InlineFragment),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub alias: String,
    pub name: String,
    pub arguments: Vec<Argument>,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub at: At,
}

impl Field {
    /// The key this field's result has in a response.
    pub fn response_name(&self) -> &str {
        if self.alias.is_empty() {
            &self.name
        } else {
            &self.alias
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FragmentSpread {
    pub name: String,
    pub directives: Vec<Directive>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InlineFragment {
    pub type_condition: String,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FragmentDefinition {
    pub name: String,
    /// Experimental fragment variables; gqlparser names the list in the singular.
    pub variable_definition: Vec<VariableDefinition>,
    pub type_condition: String,
    pub directives: Vec<Directive>,
    pub selection_set: Vec<Selection>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaDocument {
    pub schema: Vec<SchemaDefinition>,
    pub schema_extension: Vec<SchemaDefinition>,
    pub directives: Vec<DirectiveDefinition>,
    pub definitions: Vec<Definition>,
    pub extensions: Vec<Definition>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SchemaDefinition {
    pub description: String,
    pub directives: Vec<Directive>,
    pub operation_types: Vec<OperationTypeDefinition>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperationTypeDefinition {
    pub operation: String,
    pub ty: String,
    pub at: At,
}

/// A type definition or extension. `kind` is one of gqlparser's `DefinitionKind` strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Definition {
    pub kind: String,
    pub description: String,
    pub name: String,
    pub directives: Vec<Directive>,
    pub interfaces: Vec<String>,
    pub fields: Vec<FieldDefinition>,
    pub types: Vec<String>,
    pub enum_values: Vec<EnumValueDefinition>,
    pub built_in: bool,
    pub at: At,
}

pub const SCALAR: &str = "SCALAR";
pub const OBJECT: &str = "OBJECT";
pub const INTERFACE: &str = "INTERFACE";
pub const UNION: &str = "UNION";
pub const ENUM: &str = "ENUM";
pub const INPUT_OBJECT: &str = "INPUT_OBJECT";

impl Definition {
    pub fn field(&self, name: &str) -> Option<&FieldDefinition> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn is_leaf(&self) -> bool {
        self.kind == ENUM || self.kind == SCALAR
    }

    pub fn is_abstract(&self) -> bool {
        self.kind == INTERFACE || self.kind == UNION
    }

    pub fn is_composite(&self) -> bool {
        self.kind == OBJECT || self.is_abstract()
    }

    pub fn is_input(&self) -> bool {
        self.kind == SCALAR || self.kind == ENUM || self.kind == INPUT_OBJECT
    }
}

/// A field of an object, interface or input object (`default_value` for the latter only).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDefinition {
    pub description: String,
    pub name: String,
    pub arguments: Vec<ArgumentDefinition>,
    pub default_value: Option<Value>,
    pub ty: Type,
    pub directives: Vec<Directive>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentDefinition {
    pub description: String,
    pub name: String,
    pub default_value: Option<Value>,
    pub ty: Type,
    pub directives: Vec<Directive>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnumValueDefinition {
    pub description: String,
    pub name: String,
    pub directives: Vec<Directive>,
    pub at: At,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DirectiveDefinition {
    pub description: String,
    pub name: String,
    pub arguments: Vec<ArgumentDefinition>,
    pub locations: Vec<String>,
    pub is_repeatable: bool,
    pub at: At,
}
