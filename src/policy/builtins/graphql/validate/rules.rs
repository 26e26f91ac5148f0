//! gqlparser's default validation rules, by the kind of node they watch: here variables,
//! directives and fields (fragments in `fragments`, operations in `operations`). Within one
//! node the rules run in the order of their names (gqlparser sorts them), which orders the
//! errors.

use std::collections::{HashMap, HashSet};

use super::super::ast::{
    Argument, Definition, Directive, DirectiveDefinition, Field, FieldDefinition, Selection,
    VariableDefinition, INTERFACE, OBJECT,
};
use super::{suggest, VResult, Validator};

/// What the rules remember across nodes.
#[derive(Default)]
pub struct State<'a> {
    directive_misplaced: HashSet<(String, i64, i64)>,
    pub(super) fragments_used: HashSet<&'a str>,
    pub(super) in_fragment_definitions: bool,
    pub(super) fragments_checked_for_cycles: HashSet<&'a str>,
    pub(super) fragment_names: HashSet<&'a str>,
    pub(super) operation_names: HashSet<&'a str>,
    pub(super) overlap: super::overlap::State<'a>,
}

impl<'a> Validator<'a> {
    /// KnownTypeNames.
    pub(super) fn on_variable(&mut self, var: &'a VariableDefinition) {
        if self.schema.ty(var.ty.name()).is_none() {
            self.error(var.at, format!("Unknown type \"{}\".", var.ty.name()));
        }
    }

    pub(super) fn on_directive(
        &mut self,
        dir: &'a Directive,
        def: Option<&'a DirectiveDefinition>,
        location: &str,
    ) {
        // KnownArgumentNames
        if let Some(def) = def {
            let names: Vec<&str> = def.arguments.iter().map(|a| a.name.as_str()).collect();
            for arg in &dir.arguments {
                if !names.contains(&arg.name.as_str()) {
                    let message = format!(
                        "Unknown argument \"{}\" on directive \"@{}\".{}",
                        arg.name,
                        dir.name,
                        suggest::quoted("Did you mean", &arg.name, &names)
                    );
                    self.error(dir.at, message);
                }
            }
        }
        // KnownDirectives
        match def {
            None => self.error(dir.at, format!("Unknown directive \"@{}\".", dir.name)),
            Some(def) if !def.locations.iter().any(|l| l == location) => {
                let (line, column) = dir.at.map_or((-1, -1), |p| (p.line, p.column));
                if self
                    .state
                    .directive_misplaced
                    .insert((dir.name.clone(), line, column))
                {
                    let message =
                        format!("Directive \"@{}\" may not be used on {location}.", dir.name);
                    self.error(dir.at, message);
                }
            }
            Some(_) => {}
        }
        // ProvidedRequiredArguments
        if let Some(def) = def {
            for wanted in &def.arguments {
                if wanted.ty.non_null
                    && wanted.default_value.is_none()
                    && !dir.arguments.iter().any(|a| a.name == wanted.name)
                {
                    let message = format!(
                        "Directive \"@{}\" argument \"{}\" of type \"{}\" is required, but it was not provided.",
                        def.name,
                        wanted.name,
                        wanted.ty.render()
                    );
                    self.error(dir.at, message);
                }
            }
        }
        // UniqueArgumentNames
        self.unique_arguments(&dir.arguments);
    }

    fn unique_arguments(&mut self, args: &[Argument]) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for arg in args {
            let count = seen.entry(arg.name.as_str()).or_default();
            if *count == 1 {
                let message = format!("There can be only one argument named \"{}\".", arg.name);
                self.error(arg.at, message);
            }
            *count += 1;
        }
    }

    /// UniqueDirectivesPerLocation.
    pub(super) fn on_directive_list(&mut self, directives: &[Directive]) {
        let mut seen: HashSet<&str> = HashSet::new();
        for dir in directives {
            if !seen.insert(dir.name.as_str()) && dir.name != "repeatable" {
                let message = format!(
                    "The directive \"@{}\" can only be used once at this location.",
                    dir.name
                );
                self.error(dir.at, message);
            }
        }
    }

    pub(super) fn on_field(
        &mut self,
        field: &'a Field,
        def: Option<&'a FieldDefinition>,
        parent: Option<&'a Definition>,
        next: Option<&'a Definition>,
    ) -> VResult {
        // FieldsOnCorrectType
        if let (Some(parent), None) = (parent, def) {
            let message = format!(
                "Cannot query field \"{}\" on type \"{}\".{}",
                field.name,
                parent.name,
                self.field_suggestions(parent, &field.name)
            );
            self.error(field.at, message);
        }
        // KnownArgumentNames
        if let (Some(def), Some(parent)) = (def, parent) {
            let names: Vec<&str> = def.arguments.iter().map(|a| a.name.as_str()).collect();
            for arg in &field.arguments {
                if !names.contains(&arg.name.as_str()) {
                    let message = format!(
                        "Unknown argument \"{}\" on field \"{}.{}\".{}",
                        arg.name,
                        parent.name,
                        field.name,
                        suggest::quoted("Did you mean", &arg.name, &names)
                    );
                    self.error(field.at, message);
                }
            }
        }
        // MaxIntrospectionDepth
        if field.name == "__schema" || field.name == "__type" {
            let mut visited = HashSet::new();
            if self.introspection_too_deep(field, &mut visited, 0)? {
                self.error(field.at, "Maximum introspection depth exceeded".to_string());
            }
        }
        // OverlappingFieldsCanBeMerged
        if self.op.is_some() {
            self.overlaps_within(&field.selection_set, next)?;
        }
        if let Some(def) = def {
            // ProvidedRequiredArguments
            for wanted in &def.arguments {
                if wanted.ty.non_null
                    && wanted.default_value.is_none()
                    && !field.arguments.iter().any(|a| a.name == wanted.name)
                {
                    let message = format!(
                        "Field \"{}\" argument \"{}\" of type \"{}\" is required, but it was not provided.",
                        field.name,
                        wanted.name,
                        wanted.ty.render()
                    );
                    self.error(field.at, message);
                }
            }
            // ScalarLeafs
            if let Some(ty) = self.schema.ty(def.ty.name()) {
                if ty.is_leaf() && !field.selection_set.is_empty() {
                    let message = format!(
                        "Field \"{}\" must not have a selection since type \"{}\" has no subfields.",
                        field.name, ty.name
                    );
                    self.error(field.at, message);
                }
                if !ty.is_leaf() && field.selection_set.is_empty() {
                    let message = format!(
                        "Field \"{0}\" of type \"{1}\" must have a selection of subfields. Did you mean \"{0} {{ ... }}\"?",
                        field.name,
                        def.ty.render()
                    );
                    self.error(field.at, message);
                }
            }
        }
        // UniqueArgumentNames
        self.unique_arguments(&field.arguments);
        Ok(())
    }

    /// FieldsOnCorrectType's hint: types where the field exists, else similar field names.
    fn field_suggestions(&self, parent: &Definition, name: &str) -> String {
        if parent.is_abstract() {
            let mut objects: Vec<String> = Vec::new();
            let mut interfaces: Vec<String> = Vec::new();
            let mut usage: HashMap<String, usize> = HashMap::new();
            for possible in self.schema.possible_types(parent) {
                if possible.field(name).is_none() {
                    continue;
                }
                objects.push(possible.name.clone());
                for interface in &possible.interfaces {
                    let has = self.schema.ty(interface).and_then(|i| i.field(name));
                    if has.is_some() {
                        let count = usage.entry(interface.clone()).or_default();
                        if *count == 0 {
                            interfaces.push(interface.clone());
                        }
                        *count += 1;
                    }
                }
            }
            interfaces.extend(objects);
            if !interfaces.is_empty() {
                let count = |t: &String| usage.get(t).copied().unwrap_or(0);
                interfaces.sort_by(|a, b| count(b).cmp(&count(a)).then_with(|| a.cmp(b)));
                return format!(
                    " Did you mean to use an inline fragment on {}?",
                    suggest::quoted_or_list(&interfaces)
                );
            }
        }
        if parent.kind != OBJECT && parent.kind != INTERFACE {
            return String::new();
        }
        let names: Vec<&str> = parent.fields.iter().map(|f| f.name.as_str()).collect();
        suggest::quoted("Did you mean", name, &names)
    }

    /// MaxIntrospectionDepth: list fields of `__Type` nested three deep.
    fn introspection_too_deep(
        &mut self,
        field: &'a Field,
        visited: &mut HashSet<&'a str>,
        mut depth: usize,
    ) -> Result<bool, super::Abort> {
        if matches!(
            field.name.as_str(),
            "fields" | "interfaces" | "possibleTypes" | "inputFields"
        ) {
            depth += 1;
            if depth >= 3 {
                return Ok(true);
            }
        }
        self.nested(|v| v.introspection_set_too_deep(&field.selection_set, visited, depth))
    }

    fn introspection_set_too_deep(
        &mut self,
        set: &'a [Selection],
        visited: &mut HashSet<&'a str>,
        depth: usize,
    ) -> Result<bool, super::Abort> {
        for selection in set {
            let deep = match selection {
                Selection::Field(f) => self.introspection_too_deep(f, visited, depth)?,
                Selection::Inline(i) => {
                    self.nested(|v| v.introspection_set_too_deep(&i.selection_set, visited, depth))?
                }
                Selection::Spread(s) => match self.fragment(&s.name) {
                    Some(fragment) if !visited.contains(s.name.as_str()) => {
                        visited.insert(s.name.as_str());
                        let deep = self.nested(|v| {
                            v.introspection_set_too_deep(&fragment.selection_set, visited, depth)
                        })?;
                        visited.remove(s.name.as_str());
                        deep
                    }
                    _ => false,
                },
            };
            if deep {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
