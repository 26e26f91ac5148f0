//! OverlappingFieldsCanBeMerged, as gqlparser (after graphql-js) does it: fields answering
//! under one response name must be the same field with the same arguments, unless their
//! parents are distinct object types, and must not return conflicting types; compared within
//! a selection set, between it and the fragments it spreads, and between those fragments.
//! gqlparser's bookkeeping (fragments compared, fragment pairs compared) is kept as it keeps
//! it, resets included, since it decides which conflicts are reported. Its cost is counted.

use std::collections::{HashMap, HashSet};

use super::super::ast::{
    Argument, Definition, Field, FieldDefinition, FragmentSpread, Pos, Selection, Type, ENUM,
    OBJECT, SCALAR,
};
use super::{field_definition, Abort, VResult, Validator};

#[derive(Default)]
pub struct State<'a> {
    /// Fragment pairs compared, and whether under mutually exclusive parents.
    pairs: HashMap<&'a str, HashMap<&'a str, bool>>,
    compared: HashSet<&'a str>,
}

/// A field as gqlparser's walker annotated it: its parent type and its definition there.
#[derive(Clone, Copy)]
struct Sel<'a> {
    field: &'a Field,
    parent: Option<&'a Definition>,
    def: Option<&'a FieldDefinition>,
}

/// Fields by response name, names in order of first appearance.
#[derive(Default)]
struct FieldsMap<'a> {
    names: Vec<&'a str>,
    fields: HashMap<&'a str, Vec<Sel<'a>>>,
}

impl<'a> FieldsMap<'a> {
    fn push(&mut self, sel: Sel<'a>) {
        let name = sel.field.response_name();
        let entry = self.fields.entry(name).or_default();
        if entry.is_empty() {
            self.names.push(name);
        }
        entry.push(sel);
    }

    fn entries(&self) -> impl Iterator<Item = (&'a str, &[Sel<'a>])> + '_ {
        self.names
            .iter()
            .map(|n| (*n, self.fields.get(n).map_or(&[][..], Vec::as_slice)))
    }

    /// Go's `reflect.DeepEqual` on two maps of field pointers: the same fields, alike.
    fn same(&self, other: &FieldsMap) -> bool {
        self.names == other.names
            && self.entries().zip(other.entries()).all(|((_, a), (_, b))| {
                a.len() == b.len()
                    && a.iter().zip(b).all(|(x, y)| {
                        x.field == y.field && x.parent.map(|p| &p.name) == y.parent.map(|p| &p.name)
                    })
            })
    }
}

struct Conflict {
    response: String,
    message: String,
    sub: Vec<Conflict>,
    at: Option<Pos>,
}

impl Conflict {
    fn reason(&self) -> String {
        if self.sub.is_empty() {
            return self.message.clone();
        }
        let parts: Vec<String> = self
            .sub
            .iter()
            .map(|s| {
                format!(
                    "subfields \"{}\" conflict because {}",
                    s.response,
                    s.reason()
                )
            })
            .collect();
        parts.join(" and ")
    }
}

fn same_arguments(a: &[Argument], b: &[Argument]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.name == y.name && x.value.kind == y.value.kind && x.value.raw == y.value.raw
            })
        })
}

type Found = Result<Vec<Conflict>, Abort>;

impl<'a> Validator<'a> {
    /// The rule's check of one selection set, `parent` being its type.
    pub(super) fn overlaps_within(
        &mut self,
        set: &'a [Selection],
        parent: Option<&'a Definition>,
    ) -> VResult {
        if set.is_empty() {
            return Ok(());
        }
        let (map, spreads) = self.collect(set, parent)?;
        let mut found = Vec::new();
        for (_, fields) in map.entries() {
            for (i, a) in fields.iter().enumerate() {
                for b in &fields[i + 1..] {
                    found.extend(self.conflict(false, *a, *b)?);
                }
            }
        }
        self.state.overlap.compared.clear();
        for (i, a) in spreads.iter().enumerate() {
            self.with_fragment(&mut found, false, &map, a)?;
            for b in &spreads[i + 1..] {
                self.between_fragments(&mut found, false, a, b)?;
            }
        }
        for conflict in found {
            let message = format!(
                "Fields \"{}\" conflict because {}. Use different aliases on the fields to fetch both if this was intentional.",
                conflict.response,
                conflict.reason()
            );
            self.error(conflict.at, message);
        }
        Ok(())
    }

    /// The fields of a selection set (inline fragments flattened) and the spreads in it.
    fn collect(
        &mut self,
        set: &'a [Selection],
        parent: Option<&'a Definition>,
    ) -> Result<(FieldsMap<'a>, Vec<&'a FragmentSpread>), Abort> {
        let mut map = FieldsMap::default();
        let mut spreads = Vec::new();
        self.collect_into(set, parent, &mut map, &mut spreads)?;
        Ok((map, spreads))
    }

    fn collect_into(
        &mut self,
        set: &'a [Selection],
        parent: Option<&'a Definition>,
        map: &mut FieldsMap<'a>,
        spreads: &mut Vec<&'a FragmentSpread>,
    ) -> VResult {
        for selection in set {
            self.tick()?;
            match selection {
                Selection::Field(field) => map.push(Sel {
                    field,
                    parent,
                    def: field_definition(parent, &field.name),
                }),
                Selection::Inline(inline) => {
                    let next = if inline.type_condition.is_empty() {
                        parent
                    } else {
                        self.schema.ty(&inline.type_condition)
                    };
                    self.nested(|v| v.collect_into(&inline.selection_set, next, map, spreads))?;
                }
                Selection::Spread(spread) => spreads.push(spread),
            }
        }
        Ok(())
    }

    fn fragment_fields(
        &mut self,
        spread: &FragmentSpread,
    ) -> Result<Option<(FieldsMap<'a>, Vec<&'a FragmentSpread>)>, Abort> {
        let Some(fragment) = self.fragment(&spread.name) else {
            return Ok(None);
        };
        let parent = self.schema.ty(&fragment.type_condition);
        self.collect(&fragment.selection_set, parent).map(Some)
    }

    fn between(
        &mut self,
        found: &mut Vec<Conflict>,
        exclusive: bool,
        a: &FieldsMap<'a>,
        b: &FieldsMap<'a>,
    ) -> VResult {
        for (name, fields_a) in a.entries() {
            let Some(fields_b) = b.fields.get(name) else {
                continue;
            };
            for x in fields_a {
                for y in fields_b {
                    found.extend(self.conflict(exclusive, *x, *y)?);
                }
            }
        }
        Ok(())
    }

    fn with_fragment(
        &mut self,
        found: &mut Vec<Conflict>,
        exclusive: bool,
        map: &FieldsMap<'a>,
        spread: &'a FragmentSpread,
    ) -> VResult {
        if !self.state.overlap.compared.insert(spread.name.as_str()) {
            return Ok(());
        }
        let Some((other, spreads)) = self.fragment_fields(spread)? else {
            return Ok(());
        };
        if map.same(&other) {
            return Ok(());
        }
        self.between(found, exclusive, map, &other)?;
        for next in spreads {
            if next.name != spread.name {
                self.nested(|v| v.with_fragment(found, exclusive, map, next))?;
            }
        }
        Ok(())
    }

    fn between_fragments(
        &mut self,
        found: &mut Vec<Conflict>,
        exclusive: bool,
        a: &'a FragmentSpread,
        b: &'a FragmentSpread,
    ) -> VResult {
        if a.name == b.name {
            return Ok(());
        }
        let pairs = &mut self.state.overlap.pairs;
        let known = pairs
            .get(a.name.as_str())
            .and_then(|m| m.get(b.name.as_str()));
        if let Some(was_exclusive) = known {
            if exclusive || !was_exclusive {
                return Ok(());
            }
        }
        pairs
            .entry(a.name.as_str())
            .or_default()
            .insert(b.name.as_str(), exclusive);
        pairs
            .entry(b.name.as_str())
            .or_default()
            .insert(a.name.as_str(), exclusive);
        let (Some((map_a, spreads_a)), Some((map_b, spreads_b))) =
            (self.fragment_fields(a)?, self.fragment_fields(b)?)
        else {
            return Ok(());
        };
        self.between(found, exclusive, &map_a, &map_b)?;
        for next in spreads_b {
            self.nested(|v| v.between_fragments(found, exclusive, a, next))?;
        }
        for next in spreads_a {
            self.nested(|v| v.between_fragments(found, exclusive, next, b))?;
        }
        Ok(())
    }

    fn conflict(
        &mut self,
        parents_exclusive: bool,
        a: Sel<'a>,
        b: Sel<'a>,
    ) -> Result<Option<Conflict>, Abort> {
        self.tick()?;
        let (Some(parent_a), Some(parent_b)) = (a.parent, b.parent) else {
            return Ok(None);
        };
        let exclusive = parents_exclusive
            || (parent_a.name != parent_b.name
                && parent_a.kind == OBJECT
                && parent_b.kind == OBJECT
                && a.def.is_some()
                && b.def.is_some());
        let response = a.field.response_name().to_string();
        let simple = |message: String| Conflict {
            response: response.clone(),
            message,
            sub: Vec::new(),
            at: b.field.at,
        };
        if !exclusive {
            if a.field.name != b.field.name {
                let message = format!(
                    "\"{}\" and \"{}\" are different fields",
                    a.field.name, b.field.name
                );
                return Ok(Some(simple(message)));
            }
            if !same_arguments(&a.field.arguments, &b.field.arguments) {
                return Ok(Some(simple("they have differing arguments".to_string())));
            }
        }
        if let (Some(def_a), Some(def_b)) = (a.def, b.def) {
            if self.types_conflict(&def_a.ty, &def_b.ty) {
                let message = format!(
                    "they return conflicting types \"{}\" and \"{}\"",
                    def_a.ty.render(),
                    def_b.ty.render()
                );
                return Ok(Some(simple(message)));
            }
        }
        let next_a = a.def.and_then(|d| self.schema.ty(d.ty.name()));
        let next_b = b.def.and_then(|d| self.schema.ty(d.ty.name()));
        let (set_a, set_b) = (&a.field.selection_set, &b.field.selection_set);
        let sub = self.nested(|v| v.between_sets(exclusive, set_a, next_a, set_b, next_b))?;
        if sub.is_empty() {
            return Ok(None);
        }
        Ok(Some(Conflict {
            response,
            message: String::new(),
            sub,
            at: b.field.at,
        }))
    }

    fn between_sets(
        &mut self,
        exclusive: bool,
        set_a: &'a [Selection],
        parent_a: Option<&'a Definition>,
        set_b: &'a [Selection],
        parent_b: Option<&'a Definition>,
    ) -> Found {
        let mut found = Vec::new();
        let (map_a, spreads_a) = self.collect(set_a, parent_a)?;
        let (map_b, spreads_b) = self.collect(set_b, parent_b)?;
        self.between(&mut found, exclusive, &map_a, &map_b)?;
        for spread in &spreads_b {
            self.state.overlap.compared.clear();
            self.with_fragment(&mut found, exclusive, &map_a, spread)?;
        }
        for spread in &spreads_a {
            self.state.overlap.compared.clear();
            self.with_fragment(&mut found, exclusive, &map_b, spread)?;
        }
        for a in &spreads_a {
            for b in &spreads_b {
                self.between_fragments(&mut found, exclusive, a, b)?;
            }
        }
        Ok(found)
    }

    fn types_conflict(&self, a: &Type, b: &Type) -> bool {
        match (&a.elem, &b.elem) {
            (Some(x), Some(y)) => return self.types_conflict(x, y),
            (Some(_), None) | (None, Some(_)) => return true,
            (None, None) => {}
        }
        if a.non_null != b.non_null {
            return true;
        }
        let leaf = |d: &Definition| d.kind == SCALAR || d.kind == ENUM;
        match (self.schema.ty(&a.named_type), self.schema.ty(&b.named_type)) {
            (Some(x), Some(y)) if leaf(x) && leaf(y) => x.name != y.name,
            _ => false,
        }
    }
}
