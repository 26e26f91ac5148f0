//! The rules that watch operations, once walked: KnownRootType, LoneAnonymousOperation,
//! NoUnusedVariables, OverlappingFieldsCanBeMerged, SingleFieldSubscriptions,
//! UniqueOperationNames, UniqueVariableNames, VariablesAreInputTypes.

use std::collections::{HashMap, HashSet};

use super::super::ast::{Definition, Operation, Pos, Selection};
use super::{VResult, Validator};
use crate::policy::builtins::strings::goquote::quote;

impl<'a> Validator<'a> {
    pub(super) fn on_operation(
        &mut self,
        op: &'a Operation,
        root: Option<&'a Definition>,
    ) -> VResult {
        // KnownRootType
        if !matches!(
            op.operation.as_str(),
            "query" | "" | "mutation" | "subscription"
        ) {
            let message = format!("got unknown operation type \"{}\"", op.operation);
            self.error(op.at, message);
        } else if root.is_none() {
            let message = format!(
                "Schema does not support operation type \"{}\"",
                op.operation
            );
            self.error(op.at, message);
        }
        // LoneAnonymousOperation
        if op.name.is_empty() && self.doc.operations.len() > 1 {
            let message = "This anonymous operation must be the only defined operation.";
            self.error(op.at, message.to_string());
        }
        // NoUnusedVariables
        for (i, var) in op.variable_definitions.iter().enumerate() {
            if self.used.get(i).copied().unwrap_or(false) {
                continue;
            }
            let message = if op.name.is_empty() {
                format!("Variable \"${}\" is never used.", var.variable)
            } else {
                format!(
                    "Variable \"${}\" is never used in operation \"{}\".",
                    var.variable, op.name
                )
            };
            self.error(var.at, message);
        }
        // OverlappingFieldsCanBeMerged
        self.overlaps_within(&op.selection_set, root)?;
        // SingleFieldSubscriptions
        if self.schema.root("subscription").is_some() && op.operation == "subscription" {
            self.single_field_subscription(op);
        }
        // UniqueOperationNames
        if !self.state.operation_names.insert(op.name.as_str()) {
            let message = format!("There can be only one operation named \"{}\".", op.name);
            self.error(op.at, message);
        }
        // UniqueVariableNames
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for var in &op.variable_definitions {
            let count = seen.entry(var.variable.as_str()).or_default();
            if *count == 1 {
                let message = format!(
                    "There can be only one variable named \"${}\".",
                    var.variable
                );
                self.error(var.at, message);
            }
            *count += 1;
        }
        // VariablesAreInputTypes
        for var in &op.variable_definitions {
            if self.schema.ty(var.ty.name()).is_some_and(|d| !d.is_input()) {
                let message = format!(
                    "Variable \"${}\" cannot be non-input type \"{}\".",
                    var.variable,
                    var.ty.render()
                );
                self.error(var.at, message);
            }
        }
        Ok(())
    }

    fn single_field_subscription(&mut self, op: &'a Operation) {
        let mut fields: Vec<(&'a str, Option<Pos>)> = Vec::new();
        let mut entered: HashSet<&'a str> = HashSet::new();
        self.top_fields(&op.selection_set, &mut fields, &mut entered, 0);
        let mut seen = HashSet::new();
        fields.retain(|(name, _)| seen.insert(*name));
        let name = if op.name.is_empty() {
            "Anonymous Subscription".to_string()
        } else {
            format!("Subscription {}", quote(&op.name, false))
        };
        if let Some((_, at)) = fields.get(1) {
            self.error(*at, format!("{name} must select only one top level field."));
        }
        for (field, at) in fields {
            if field.starts_with("__") {
                let message = format!("{name} must not select an introspection top level field.");
                self.error(at, message);
            }
        }
    }

    /// The fields an operation selects at its top level, through fragments; gqlparser stops
    /// looking at a selection set when it meets a spread of an unknown fragment. (Past the
    /// walk's depth bound, deeper fragments are not looked into.)
    fn top_fields(
        &self,
        set: &'a [Selection],
        fields: &mut Vec<(&'a str, Option<Pos>)>,
        entered: &mut HashSet<&'a str>,
        depth: usize,
    ) {
        if depth > super::MAX_DEPTH {
            return;
        }
        for selection in set {
            match selection {
                Selection::Field(f) => fields.push((f.name.as_str(), f.at)),
                Selection::Inline(i) => {
                    self.top_fields(&i.selection_set, fields, entered, depth + 1)
                }
                Selection::Spread(s) => {
                    let Some(fragment) = self.fragment(&s.name) else {
                        return;
                    };
                    if entered.insert(fragment.name.as_str()) {
                        self.top_fields(&fragment.selection_set, fields, entered, depth + 1);
                    }
                }
            }
        }
    }
}
