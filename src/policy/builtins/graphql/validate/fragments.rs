//! The rules that watch fragments: FragmentsOnCompositeTypes, KnownTypeNames,
//! PossibleFragmentSpreads, KnownFragmentNames, NoUnusedFragments, NoFragmentCycles,
//! UniqueFragmentNames (and OverlappingFieldsCanBeMerged's call on their selections).

use std::collections::HashMap;

use super::super::ast::{
    Definition, FragmentDefinition, FragmentSpread, InlineFragment, Selection, INTERFACE, OBJECT,
    UNION,
};
use super::{suggest, VResult, Validator};

impl<'a> Validator<'a> {
    pub(super) fn on_inline_fragment(
        &mut self,
        inline: &'a InlineFragment,
        parent: Option<&'a Definition>,
        next: Option<&'a Definition>,
    ) -> VResult {
        let condition = &inline.type_condition;
        let ty = self.schema.ty(condition);
        // FragmentsOnCompositeTypes
        if ty.is_some_and(|t| !t.is_composite()) {
            let message =
                format!("Fragment cannot condition on non composite type \"{condition}\".");
            self.error(inline.at, message);
        }
        // KnownTypeNames
        if !condition.is_empty() && ty.is_none() {
            self.error(inline.at, format!("Unknown type \"{condition}\"."));
        }
        // OverlappingFieldsCanBeMerged
        self.overlaps_within(&inline.selection_set, next)?;
        // PossibleFragmentSpreads
        if let Some(parent) = parent {
            if self.never_spreadable(parent, condition) {
                let message = format!(
                    "Fragment cannot be spread here as objects of type \"{}\" can never be of type \"{condition}\".",
                    parent.name
                );
                self.error(inline.at, message);
            }
        }
        Ok(())
    }

    /// PossibleFragmentSpreads: no object type is both `parent` and `condition`.
    fn never_spreadable(&self, parent: &Definition, condition: &str) -> bool {
        let parents = match parent.kind.as_str() {
            OBJECT => vec![parent],
            INTERFACE | UNION => self.schema.possible_types(parent),
            _ => return false,
        };
        let Some(fragment_type) = self.schema.ty(condition) else {
            return false;
        };
        if !fragment_type.is_composite() {
            return false;
        }
        let possible = self.schema.possible_types(fragment_type);
        !possible
            .iter()
            .any(|f| parents.iter().any(|p| p.name == f.name))
    }

    pub(super) fn on_fragment_spread(
        &mut self,
        spread: &'a FragmentSpread,
        fragment: Option<&'a FragmentDefinition>,
        parent: Option<&'a Definition>,
    ) {
        // KnownFragmentNames
        if fragment.is_none() {
            self.error(spread.at, format!("Unknown fragment \"{}\".", spread.name));
        }
        // NoUnusedFragments
        if !self.state.in_fragment_definitions {
            self.state.fragments_used.insert(spread.name.as_str());
        }
        // PossibleFragmentSpreads
        if let (Some(fragment), Some(parent)) = (fragment, parent) {
            if self.never_spreadable(parent, &fragment.type_condition) {
                let message = format!(
                    "Fragment \"{}\" cannot be spread here as objects of type \"{}\" can never be of type \"{}\".",
                    spread.name, parent.name, fragment.type_condition
                );
                self.error(spread.at, message);
            }
        }
    }

    pub(super) fn on_fragment(&mut self, fragment: &'a FragmentDefinition) -> VResult {
        let condition = &fragment.type_condition;
        let def = self.schema.ty(condition);
        // FragmentsOnCompositeTypes
        if def.is_some_and(|d| !d.is_composite()) && !condition.is_empty() {
            let message = format!(
                "Fragment \"{}\" cannot condition on non composite type \"{condition}\".",
                fragment.name
            );
            self.error(fragment.at, message);
        }
        // KnownTypeNames
        if def.is_none() {
            let mut names: Vec<&str> = self.schema.types.keys().map(String::as_str).collect();
            names.sort_unstable();
            let hint = suggest::quoted("Did you mean", condition, &names);
            self.error(fragment.at, format!("Unknown type \"{condition}\".{hint}"));
        }
        // NoFragmentCycles
        let mut path: Vec<&'a FragmentSpread> = Vec::new();
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        self.fragment_cycles(fragment, &mut path, &mut index)?;
        // NoUnusedFragments
        self.state.in_fragment_definitions = true;
        if !self.state.fragments_used.contains(fragment.name.as_str()) {
            let message = format!("Fragment \"{}\" is never used.", fragment.name);
            self.error(fragment.at, message);
        }
        // OverlappingFieldsCanBeMerged
        self.overlaps_within(&fragment.selection_set, def)?;
        // UniqueFragmentNames
        if !self.state.fragment_names.insert(fragment.name.as_str()) {
            let message = format!(
                "There can be only one fragment named \"{}\".",
                fragment.name
            );
            self.error(fragment.at, message);
        }
        Ok(())
    }

    fn fragment_cycles(
        &mut self,
        fragment: &'a FragmentDefinition,
        path: &mut Vec<&'a FragmentSpread>,
        index: &mut HashMap<&'a str, usize>,
    ) -> VResult {
        if !self
            .state
            .fragments_checked_for_cycles
            .insert(fragment.name.as_str())
        {
            return Ok(());
        }
        let spreads = spreads_in(&fragment.selection_set);
        if spreads.is_empty() {
            return Ok(());
        }
        index.insert(fragment.name.as_str(), path.len());
        for spread in spreads {
            self.tick()?;
            let cycle = index.get(spread.name.as_str()).copied();
            path.push(spread);
            match cycle {
                None => {
                    if let Some(next) = self.fragment(&spread.name) {
                        self.nested(|v| v.fragment_cycles(next, path, index))?;
                    }
                }
                Some(start) => {
                    let via: Vec<String> = path[start..path.len() - 1]
                        .iter()
                        .map(|s| format!("\"{}\"", s.name))
                        .collect();
                    let via = if via.is_empty() {
                        String::new()
                    } else {
                        format!(" via {}", via.join(", "))
                    };
                    let message = format!(
                        "Cannot spread fragment \"{}\" within itself{via}.",
                        spread.name
                    );
                    self.error(spread.at, message);
                }
            }
            path.pop();
        }
        index.remove(fragment.name.as_str());
        Ok(())
    }
}

/// The spreads in a selection set, through fields and inline fragments, in gqlparser's
/// (stack) order.
fn spreads_in(set: &[Selection]) -> Vec<&FragmentSpread> {
    let mut spreads = Vec::new();
    let mut stack = vec![set];
    while let Some(set) = stack.pop() {
        for selection in set {
            match selection {
                Selection::Spread(s) => spreads.push(s),
                Selection::Field(f) => stack.push(&f.selection_set),
                Selection::Inline(i) => stack.push(&i.selection_set),
            }
        }
    }
    spreads
}
