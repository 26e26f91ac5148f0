//! A static reference into the document of a generic ref head, where a rule is also written
//! with a literal path inside that document (`p.b.r contains "foo"` beside `p[q].r contains
//! s`): regorus evaluates only the rules at the longest literal prefix of a reference, so
//! `data.test.p.b.r` saw `"foo"` and lost the generic rule's members (compliance case
//! `refheads/general, set leaf, deep query`). In OPA both rules make one document.
//!
//! The key after the generic prefix is written as a raw string (`` data.test.p[`b`].r ``),
//! which regorus evaluates as a computed key: it then evaluates the whole generic document and
//! indexes it, as OPA does. Rule heads are left as written: a dynamic reference (`data[x].p.b`)
//! finds a rule only by its exact path, so moving rules under the generic prefix would lose them.

use std::borrow::Cow;
use std::collections::BTreeSet;

use regorus::unstable::{Expr, Module, Parser, Query, Ref, Rule, RuleHead, Source};

use super::edits::{self, Edit};
use super::walk;
use crate::policy::guard;
use crate::policy::rules::{ref_prefix, ModuleIndex};

/// The generic documents that also hold rules written with a literal path.
#[derive(Debug, Default, Clone)]
pub struct Documents {
    /// Generic documents (`test.p` for `p[q].r` in `package test`), `data` left out.
    generic: BTreeSet<Vec<String>>,
    /// A generic document's path and the key after it, where a literal rule lies
    /// (`test.p.b` for `p.b.r`).
    mixed: BTreeSet<Vec<String>>,
}

impl Documents {
    /// From the modules compiled together, as the engine parsed them.
    pub fn of(modules: &[Ref<Module>]) -> Documents {
        let indexes: Vec<ModuleIndex> = modules.iter().map(|m| ModuleIndex::of(m)).collect();
        let generic: BTreeSet<Vec<String>> = indexes
            .iter()
            .flat_map(|i| i.generic.iter().cloned())
            .collect();
        let mut mixed = BTreeSet::new();
        for rule in indexes.iter().flat_map(|i| &i.rules) {
            if let Some(g) = outermost(&generic, rule) {
                mixed.insert(rule[..=g].to_vec());
            }
        }
        Documents { generic, mixed }
    }

    pub fn is_empty(&self) -> bool {
        self.mixed.is_empty()
    }

    /// Where a reference to `path` (under `data`) must compute its key: the index, in `path`,
    /// of the key after the generic document.
    fn cut(&self, path: &[String]) -> Option<usize> {
        let g = outermost(&self.generic, path)?;
        self.mixed.contains(&path[..=g]).then_some(g)
    }
}

/// The length of the shortest generic document strictly above `path`.
fn outermost(generic: &BTreeSet<Vec<String>>, path: &[String]) -> Option<usize> {
    generic
        .iter()
        .filter(|g| g.len() < path.len() && path.starts_with(g))
        .map(Vec::len)
        .min()
}

/// The edits that make `module`'s references into mixed documents compute their key.
pub fn edits(module: &Module, documents: &Documents) -> Vec<Edit> {
    if documents.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for rule in walk::rules(module) {
        let Rule::Spec { head, bodies, .. } = rule else {
            continue;
        };
        // The head's reference names the rule; its key and value are read like a body.
        match head {
            RuleHead::Compr {
                assign: Some(a), ..
            } => walk::exprs(&a.value, &mut |e| reference(e, documents, &mut out)),
            RuleHead::Set { key: Some(k), .. } => {
                walk::exprs(k, &mut |e| reference(e, documents, &mut out))
            }
            _ => {}
        }
        for body in bodies {
            if let Some(a) = &body.assign {
                walk::exprs(&a.value, &mut |e| reference(e, documents, &mut out));
            }
        }
        walk::queries_of_rule(rule, &mut |query, _| statements(query, documents, &mut out));
    }
    dedup(out)
}

/// `text`, an ad-hoc query, with its references into mixed documents computing their key.
pub fn query<'a>(text: &'a str, documents: &Documents) -> Cow<'a, str> {
    if documents.is_empty() {
        return Cow::Borrowed(text);
    }
    let parsed = Source::from_contents("<query.rego>".into(), text.to_string()).and_then(|s| {
        let mut parser = Parser::new(&s)?;
        parser.set_max_col(guard::MAX_LINE_COLUMNS);
        parser.enable_rego_v1()?;
        parser.parse_user_query()
    });
    let Ok(parsed) = parsed else {
        return Cow::Borrowed(text);
    };
    let mut out = Vec::new();
    statements(&parsed, documents, &mut out);
    match edits::apply(text, dedup(out)) {
        Some(edited) => Cow::Owned(edited),
        None => Cow::Borrowed(text),
    }
}

/// The references of `query`'s statements (nested queries come on their own).
fn statements(query: &Query, documents: &Documents, out: &mut Vec<Edit>) {
    for stmt in &query.stmts {
        walk::literal_exprs(&stmt.literal, &mut |e| reference(e, documents, out));
    }
}

/// The edit for `e` when it is a reference under `data` into a mixed document. Every prefix of
/// a reference is visited too: they give the same edit, removed by `dedup`.
fn reference(e: &Expr, documents: &Documents, out: &mut Vec<Edit>) {
    if !matches!(e, Expr::RefDot { .. } | Expr::RefBrack { .. }) {
        return;
    }
    let path = ref_prefix(e);
    let Some(("data", path)) = path.split_first().map(|(h, t)| (h.as_str(), t)) else {
        return;
    };
    let Some(g) = documents.cut(path) else {
        return;
    };
    // Segment 0 of the reference is `data`.
    if let Some((start, end, key)) = segment_at(e, g + 1) {
        if !key.contains('`') {
            out.push(Edit::replace(start, end, format!("[`{key}`]")));
        }
    }
}

fn dedup(mut out: Vec<Edit>) -> Vec<Edit> {
    out.sort_by_key(|e| (e.start, e.end));
    out.dedup();
    out
}

/// Where segment `index` of a reference is written (`.b` or `["b"]`, the brackets or the dot
/// included) and its text.
fn segment_at(refr: &Expr, index: usize) -> Option<(u32, u32, String)> {
    let mut chain = Vec::new();
    let mut at = refr;
    while let Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } = at {
        chain.push(at);
        at = refr;
    }
    chain.reverse();
    let segment = *chain.get(index.checked_sub(1)?)?;
    let (Expr::RefDot { refr: parent, .. } | Expr::RefBrack { refr: parent, .. }) = segment else {
        return None;
    };
    let (_, parent_end) = walk::range(parent);
    let (_, mut end) = walk::range(segment);
    let key = match segment {
        Expr::RefDot { field, .. } => field.1.as_string().ok()?.to_string(),
        Expr::RefBrack { index, .. } => {
            // regorus ends a bracket's span at its index: the `]` is found in the text.
            let text = segment.span().source.contents();
            if !text.get(..end as usize)?.ends_with(']') {
                let rest = text.get(end as usize..)?;
                let gap = rest.len() - rest.trim_start().len();
                if !rest[gap..].starts_with(']') {
                    return None;
                }
                end += u32::try_from(gap + 1).ok()?;
            }
            match index.as_ref() {
                Expr::String { value, .. } => value.as_string().ok()?.to_string(),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some((parent_end, end, key))
}
