//! Validating an executable document against a schema, as gqlparser's validator does: one
//! walk over operations then fragments (a fragment's selections walked where it is spread,
//! once per operation), each node handed to the rules that watch its kind, in the order of
//! the rules' names, so that errors come out in gqlparser's order.
//!
//! gqlparser annotates the document as it walks (field definitions, expected value types);
//! here those annotations are computed and passed down instead. A document whose walk would
//! go too deep or take too long is refused with an error rather than walked.

mod fragments;
mod operations;
mod overlap;
mod rules;
mod suggest;
mod values;

use std::collections::HashSet;
use std::sync::OnceLock;

use super::ast::{
    Argument, ArgumentDefinition, Definition, Directive, FieldDefinition, FragmentDefinition,
    Operation, QueryDocument, Selection, Type, Value,
};
use super::schema::{GqlError, Schema};

/// How many nodes (and rule steps) one validation may visit.
const MAX_STEPS: usize = 2_000_000;
/// How deep the walk and the rules' own recursion may go.
const MAX_DEPTH: usize = 512;

/// A walk given up: too deep or too long.
#[derive(Debug)]
pub struct Abort;

pub type VResult = Result<(), Abort>;

/// What gqlparser's walker knows about a value: the type its position expects, that type's
/// definition, and whether the position has a default.
#[derive(Clone, Copy, Default)]
pub struct Expect<'a> {
    pub ty: Option<&'a Type>,
    pub def: Option<&'a Definition>,
    pub has_default: bool,
}

pub struct Validator<'a> {
    pub schema: &'a Schema,
    pub doc: &'a QueryDocument,
    pub errors: Vec<GqlError>,
    steps: usize,
    depth: usize,
    /// The operation being walked (none while fragments are walked on their own).
    pub op: Option<&'a Operation>,
    /// Which of the operation's variables a value has used so far.
    pub used: Vec<bool>,
    walked_fragments: HashSet<&'a str>,
    pub state: rules::State<'a>,
}

/// The definition gqlparser gives `__typename` wherever it is selected.
fn typename() -> &'static FieldDefinition {
    static TYPENAME: OnceLock<FieldDefinition> = OnceLock::new();
    TYPENAME.get_or_init(|| FieldDefinition {
        description: String::new(),
        name: "__typename".to_string(),
        arguments: Vec::new(),
        default_value: None,
        ty: Type::named("String", false),
        directives: Vec::new(),
        at: None,
    })
}

/// The definition of field `name` selected on `parent`.
pub fn field_definition<'a>(
    parent: Option<&'a Definition>,
    name: &str,
) -> Option<&'a FieldDefinition> {
    if name == "__typename" {
        return Some(typename());
    }
    parent.and_then(|p| p.field(name))
}

/// gqlparser's errors for `doc` against `schema`, in its order; an empty list when valid.
pub fn validate(schema: &Schema, doc: &QueryDocument) -> Vec<GqlError> {
    let mut v = Validator {
        schema,
        doc,
        errors: Vec::new(),
        steps: 0,
        depth: 0,
        op: None,
        used: Vec::new(),
        walked_fragments: HashSet::new(),
        state: rules::State::default(),
    };
    if v.walk().is_err() {
        v.errors.push(GqlError {
            message: "GraphQL document too large or too deeply nested to validate".to_string(),
            location: None,
        });
    }
    v.errors
}

impl<'a> Validator<'a> {
    pub fn error(&mut self, at: Option<super::ast::Pos>, message: String) {
        self.errors.push(GqlError {
            message,
            location: at.map(|p| (p.line, p.column)),
        });
    }

    /// Counts one step of work; fails once the budget is spent.
    pub fn tick(&mut self) -> VResult {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(Abort);
        }
        Ok(())
    }

    /// Runs `f` one level deeper, refusing past `MAX_DEPTH`.
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, Abort>) -> Result<T, Abort> {
        self.tick()?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Abort);
        }
        let out = f(self);
        self.depth -= 1;
        out
    }

    pub fn fragment(&self, name: &str) -> Option<&'a FragmentDefinition> {
        self.doc.fragments.iter().find(|f| f.name == name)
    }

    fn walk(&mut self) -> VResult {
        let doc = self.doc;
        for op in &doc.operations {
            self.walked_fragments.clear();
            self.walk_operation(op)?;
        }
        for fragment in &doc.fragments {
            self.walked_fragments.clear();
            let def = self.schema.ty(&fragment.type_condition);
            self.walk_directives(&fragment.directives, "FRAGMENT_DEFINITION")?;
            self.walk_selection_set(def, &fragment.selection_set)?;
            self.on_fragment(fragment)?;
        }
        Ok(())
    }

    fn walk_operation(&mut self, op: &'a Operation) -> VResult {
        self.op = Some(op);
        self.used = op.variable_definitions.iter().map(|d| d.used).collect();
        for var in &op.variable_definitions {
            self.on_variable(var);
        }
        let (root, location) = match op.operation.as_str() {
            "query" | "" => (self.schema.root("query"), "QUERY"),
            "mutation" => (self.schema.root("mutation"), "MUTATION"),
            "subscription" => (self.schema.root("subscription"), "SUBSCRIPTION"),
            _ => (None, ""),
        };
        for var in &op.variable_definitions {
            if let Some(default) = &var.default_value {
                let expect = Expect {
                    ty: Some(&var.ty),
                    def: self.schema.ty(var.ty.name()),
                    has_default: default.expected_type_has_default,
                };
                self.walk_value(default, expect)?;
            }
            self.walk_directives(&var.directives, "VARIABLE_DEFINITION")?;
        }
        self.walk_directives(&op.directives, location)?;
        self.walk_selection_set(root, &op.selection_set)?;
        self.on_operation(op, root)?;
        self.op = None;
        Ok(())
    }

    fn walk_directives(&mut self, directives: &'a [Directive], location: &str) -> VResult {
        for dir in directives {
            let def = self.schema.directives.get(&dir.name);
            let args = def.map(|d| d.arguments.as_slice()).unwrap_or_default();
            self.walk_arguments(args, &dir.arguments)?;
            self.on_directive(dir, def, location);
        }
        self.on_directive_list(directives);
        Ok(())
    }

    fn walk_arguments(&mut self, defs: &'a [ArgumentDefinition], args: &'a [Argument]) -> VResult {
        for arg in args {
            let expect = match defs.iter().find(|d| d.name == arg.name) {
                Some(def) => Expect {
                    ty: Some(&def.ty),
                    def: self.schema.ty(def.ty.name()),
                    has_default: def
                        .default_value
                        .as_ref()
                        .is_some_and(|v| v.kind != super::ast::ValueKind::Null),
                },
                None => Expect {
                    has_default: arg.value.expected_type_has_default,
                    ..Expect::default()
                },
            };
            self.walk_value(&arg.value, expect)?;
        }
        Ok(())
    }

    fn walk_value(&mut self, value: &'a Value, expect: Expect<'a>) -> VResult {
        self.nested(|v| {
            use super::ast::ValueKind::{List, Object, Variable};
            if value.kind == Variable {
                if let Some(op) = v.op {
                    let index = op
                        .variable_definitions
                        .iter()
                        .position(|d| d.variable == value.raw);
                    if let Some(used) = index.and_then(|i| v.used.get_mut(i)) {
                        *used = true;
                    }
                }
            }
            for child in &value.children {
                let mut child_expect = Expect {
                    has_default: child.value.expected_type_has_default,
                    ..Expect::default()
                };
                if value.kind == Object {
                    let field = expect.def.and_then(|d| d.field(&child.name));
                    if let Some(field) = field {
                        child_expect = Expect {
                            ty: Some(&field.ty),
                            def: v.schema.ty(field.ty.name()),
                            has_default: field
                                .default_value
                                .as_ref()
                                .is_some_and(|d| d.kind != super::ast::ValueKind::Null),
                        };
                    }
                } else if value.kind == List {
                    if let Some(elem) = expect.ty.and_then(|t| t.elem.as_deref()) {
                        child_expect.ty = Some(elem);
                        child_expect.def = expect.def;
                    }
                } else {
                    continue;
                }
                v.walk_value(&child.value, child_expect)?;
            }
            v.on_value(value, expect)
        })
    }

    fn walk_selection_set(
        &mut self,
        parent: Option<&'a Definition>,
        set: &'a [Selection],
    ) -> VResult {
        self.nested(|v| {
            for selection in set {
                v.walk_selection(parent, selection)?;
            }
            Ok(())
        })
    }

    fn walk_selection(&mut self, parent: Option<&'a Definition>, sel: &'a Selection) -> VResult {
        self.tick()?;
        match sel {
            Selection::Field(field) => {
                let def = field_definition(parent, &field.name);
                let next = def.and_then(|d| self.schema.ty(d.ty.name()));
                let args = def.map(|d| d.arguments.as_slice()).unwrap_or_default();
                self.walk_arguments(args, &field.arguments)?;
                self.walk_directives(&field.directives, "FIELD")?;
                self.walk_selection_set(next, &field.selection_set)?;
                self.on_field(field, def, parent, next)
            }
            Selection::Inline(inline) => {
                let next = if inline.type_condition.is_empty() {
                    parent
                } else {
                    self.schema.ty(&inline.type_condition)
                };
                self.walk_directives(&inline.directives, "INLINE_FRAGMENT")?;
                self.walk_selection_set(next, &inline.selection_set)?;
                self.on_inline_fragment(inline, parent, next)
            }
            Selection::Spread(spread) => {
                let fragment = self.fragment(&spread.name);
                let next = fragment.and_then(|f| self.schema.ty(&f.type_condition));
                self.walk_directives(&spread.directives, "FRAGMENT_SPREAD")?;
                if let Some(fragment) = fragment {
                    if self.walked_fragments.insert(fragment.name.as_str()) {
                        self.walk_selection_set(next, &fragment.selection_set)?;
                    }
                }
                self.on_fragment_spread(spread, fragment, parent);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
