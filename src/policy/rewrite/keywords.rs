//! Rego keywords that start a reference (`in.foo == 1`, `true.foo := 1`): OPA 1.x reads them
//! as rules of the module's package, regorus 0.14 refuses them. In a body the keyword becomes
//! `data.<package>.<keyword>`; a rule whose head starts with one moves, rows and columns kept,
//! to a module of its own, `package <package>.<keyword>`, with the head less the keyword.
//! regorus already reads a keyword after a dot (`input.in`, `package a.in`): left as written.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use regorus::unstable::{Expr, Parser, Rule, RuleHead};
use regorus::Source;

use crate::policy::error::{Location, RegoError};
use crate::policy::guard;

/// Keywords in every Rego version.
const KEYWORDS: [&str; 11] = [
    "as", "default", "else", "false", "import", "not", "null", "package", "some", "true", "with",
];

/// Keywords of Rego v1 that v0 modules only have when they import them: in v0 these can be
/// plain variables, so they are left alone there.
const V1_KEYWORDS: [&str; 4] = ["contains", "every", "if", "in"];

/// A module as regorus can parse it: its own text, and a module per keyword that starts rule
/// heads in it. All of them are added to the engine under the original file's name.
#[derive(Debug)]
pub struct Rewritten<'a> {
    pub module: Cow<'a, str>,
    pub split: Vec<String>,
}

/// A rule verdict cannot move out of its package without changing what it means.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordRefError {
    /// Once moved, a bare name in the rule would no longer find the rule of its package.
    #[error(
        "rule `{head}` starts with the keyword `{keyword}` and refers to `{name}`, another rule \
         of its package: verdict cannot load such a rule (write `data.{package}.{name}`)"
    )]
    SiblingName {
        row: u32,
        col: u32,
        head: String,
        keyword: String,
        package: String,
        name: String,
    },
}

impl KeywordRefError {
    /// The error as OPA's error list carries it, located in `file`.
    pub fn rego_error(&self, file: &str) -> RegoError {
        let KeywordRefError::SiblingName { row, col, .. } = self;
        RegoError {
            code: "rego_parse_error",
            message: self.to_string(),
            location: Some(Location {
                file: file.to_string(),
                row: *row,
                col: *col,
            }),
            details: None,
        }
    }
}

/// Rewrites the leading keywords of references in a module (`rego_v0`: the module is Rego v0).
/// A text with none comes back borrowed; so does one regorus cannot parse even rewritten, or
/// whose keyword sits in its package or imports, so that regorus reports the original text.
pub fn rewrite_keyword_refs(source: &str, rego_v0: bool) -> Result<Rewritten<'_>, KeywordRefError> {
    let unchanged = || Rewritten {
        module: Cow::Borrowed(source),
        split: Vec::new(),
    };
    let words = words(source);
    let leading: BTreeMap<usize, &str> = words
        .iter()
        .filter(|w| w.leads_ref(source) && is_keyword(w.text(source), rego_v0))
        .map(|w| (w.start, w.text(source)))
        .collect();
    if leading.is_empty() {
        return Ok(unchanged());
    }
    let Some(layout) = Layout::parse(source, &words, &leading, rego_v0) else {
        return Ok(unchanged());
    };
    let package = &source[layout.package_path.clone()];
    layout.check_names(source, &words, package)?;

    // A leading keyword left visible is in a rule body: it reads the package's rule.
    let body_ref = format!("data.{package}.");
    let body_refs = |blank: &[bool]| {
        leading
            .keys()
            .filter(|at| !blank[**at])
            .map(|at| (*at, body_ref.as_str()))
            .collect::<Vec<_>>()
    };
    let mut blank = vec![false; source.len()];
    for m in &layout.moved {
        blank[m.span.clone()].fill(true);
    }
    let module = Cow::Owned(render(source, &blank, &body_refs(&blank)));

    let keywords: BTreeSet<&str> = layout.moved.iter().map(|m| m.keyword).collect();
    let mut split = Vec::new();
    for keyword in keywords {
        let mut blank = vec![true; source.len()];
        for kept in &layout.kept {
            blank[kept.clone()].fill(false);
        }
        for m in layout.moved.iter().filter(|m| m.keyword == keyword) {
            blank[m.span.clone()].fill(false);
            // The keyword and its dot: the rest of the head names the rule in the new package.
            blank[m.root..m.root + keyword.len() + 1].fill(true);
        }
        let suffix = format!(".{keyword}");
        let mut inserts = body_refs(&blank);
        inserts.push((layout.package_path.end, suffix.as_str()));
        inserts.sort_by_key(|(at, _)| *at);
        split.push(render(source, &blank, &inserts));
    }
    Ok(Rewritten { module, split })
}

fn is_keyword(word: &str, rego_v0: bool) -> bool {
    KEYWORDS.contains(&word) || (!rego_v0 && V1_KEYWORDS.contains(&word))
}

/// An identifier or number outside strings and comments, as byte offsets.
struct Word {
    start: usize,
    end: usize,
    after_dot: bool,
}

impl Word {
    fn text<'s>(&self, source: &'s str) -> &'s str {
        &source[self.start..self.end]
    }

    /// Directly followed by a dot and a field name: the word starts a reference.
    fn leads_ref(&self, source: &str) -> bool {
        let bytes = source.as_bytes();
        !self.after_dot
            && bytes.get(self.end) == Some(&b'.')
            && bytes
                .get(self.end + 1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b >= 0x80)
    }

    /// A name a rule body could use for a rule: not a field, a number or a keyword.
    fn is_bare_name(&self, source: &str) -> bool {
        let text = self.text(source);
        !self.after_dot
            && !text.starts_with(|c: char| c.is_ascii_digit())
            && !is_keyword(text, false)
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// The words of a Rego text, skipping comments, quoted strings (which end at their line) and
/// raw strings.
fn words(source: &str) -> Vec<Word> {
    let bytes = source.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'#' => {
                while bytes.get(i).is_some_and(|b| *b != b'\n') {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while let Some(&b) = bytes.get(i) {
                    i += if b == b'\\' { 2 } else { 1 };
                    if b == b'"' || b == b'\n' {
                        break;
                    }
                }
            }
            b'`' => {
                i += 1;
                while bytes.get(i).is_some_and(|b| *b != b'`') {
                    i += 1;
                }
                i += 1;
            }
            b if is_word(b) => {
                let start = i;
                while bytes.get(i).copied().is_some_and(is_word) {
                    i += 1;
                }
                let after_dot = start > 0 && bytes[start - 1] == b'.';
                words.push(Word {
                    start,
                    end: i,
                    after_dot,
                });
            }
            _ => i += 1,
        }
    }
    words
}

/// A rule whose head starts with a keyword.
struct Moved<'s> {
    keyword: &'s str,
    /// Where the keyword starts.
    root: usize,
    span: std::ops::Range<usize>,
}

/// What regorus's parser finds in the module once its leading keywords are replaced by
/// identifiers of the same length.
struct Layout<'s> {
    package_path: std::ops::Range<usize>,
    /// The package and import statements, which every split module repeats.
    kept: Vec<std::ops::Range<usize>>,
    moved: Vec<Moved<'s>>,
    /// The first names of the rules that stay in the package.
    staying: BTreeSet<&'s str>,
}

impl<'s> Layout<'s> {
    fn parse(
        source: &'s str,
        words: &[Word],
        leading: &BTreeMap<usize, &'s str>,
        rego_v0: bool,
    ) -> Option<Layout<'s>> {
        let mut stand_in = source.to_string();
        for (at, keyword) in leading {
            let name = stand_in_name(keyword.len(), words, source)?;
            stand_in.replace_range(*at..*at + keyword.len(), &name);
        }
        let file = Source::from_contents("<keywords>".into(), stand_in).ok()?;
        let mut parser = Parser::new(&file).ok()?;
        parser.set_max_col(guard::MAX_LINE_COLUMNS);
        if !rego_v0 {
            parser.enable_rego_v1().ok()?;
        }
        let module = parser.parse().ok()?;
        let range = |span: &regorus::unstable::Span| span.start as usize..span.end as usize;
        let mut kept = vec![range(&module.package.span)];
        kept.extend(module.imports.iter().map(|i| range(&i.span)));
        // A keyword in the package path or an import is not one regorus can be given.
        if leading.keys().any(|at| kept.iter().any(|k| k.contains(at))) {
            return None;
        }
        let mut moved = Vec::new();
        let mut staying = BTreeSet::new();
        for rule in &module.policy {
            let Some(root) = head_root(rule) else {
                continue;
            };
            let root = range(root);
            match leading.get(&root.start) {
                Some(keyword) => {
                    // regorus's spans end where a last string's text ends, before its quote.
                    let mut span = range(rule.span());
                    if matches!(source.as_bytes().get(span.end), Some(b'"' | b'`')) {
                        span.end += 1;
                    }
                    moved.push(Moved {
                        keyword,
                        root: root.start,
                        span,
                    })
                }
                None => {
                    staying.insert(&source[root]);
                }
            }
        }
        Some(Layout {
            package_path: range(module.package.refr.span()),
            kept,
            moved,
            staying,
        })
    }

    /// Refuses a moved rule that names a rule by a bare name its new package would resolve
    /// differently: one staying in the package, or one moving beside it.
    fn check_names(
        &self,
        source: &str,
        words: &[Word],
        package: &str,
    ) -> Result<(), KeywordRefError> {
        for m in &self.moved {
            let beside: BTreeSet<&str> = self
                .moved
                .iter()
                .filter(|o| o.keyword == m.keyword)
                .filter_map(|o| {
                    words
                        .iter()
                        .find(|w| w.start == o.root + o.keyword.len() + 1)
                })
                .map(|w| w.text(source))
                .collect();
            let clash = words
                .iter()
                .filter(|w| m.span.contains(&w.start) && w.is_bare_name(source))
                .find(|w| self.staying.contains(w.text(source)) || beside.contains(w.text(source)));
            if let Some(name) = clash {
                let (row, col) = position(source, m.span.start);
                let head_end = source[m.root..]
                    .find(|c: char| !(c == '.' || c == '_' || c.is_alphanumeric()))
                    .map_or(source.len(), |n| m.root + n);
                return Err(KeywordRefError::SiblingName {
                    row,
                    col,
                    head: source[m.root..head_end].to_string(),
                    keyword: m.keyword.to_string(),
                    package: package.to_string(),
                    name: name.text(source).to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The keyword a rule's head starts with: the variable at the root of its reference.
fn head_root(rule: &Rule) -> Option<&regorus::unstable::Span> {
    let mut expr: &Expr = match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    loop {
        match expr {
            Expr::Var { span, .. } => return Some(span),
            Expr::RefDot { refr, .. } | Expr::RefBrack { refr, .. } => expr = refr,
            _ => return None,
        }
    }
}

/// An identifier of `len` bytes the text does not use: it stands in for a keyword while
/// regorus finds the rules, so every offset stays where it was.
fn stand_in_name(len: usize, words: &[Word], source: &str) -> Option<String> {
    let used = |name: &str| words.iter().any(|w| w.text(source) == name);
    let base = "_".repeat(len.saturating_sub(1));
    std::iter::once("_".repeat(len))
        .chain((0..10).map(|d| format!("{base}{d}")))
        .find(|name| !used(name))
}

/// Row and column (both from 1, columns in characters) of a byte offset.
fn position(source: &str, at: usize) -> (u32, u32) {
    let before = &source[..at];
    let row = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    let col = before[line_start..].chars().count() + 1;
    (
        u32::try_from(row).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// The text with the `blank` bytes turned into spaces (line breaks stay, one space per
/// character, so rows and columns do not move) and each insert placed before its offset.
fn render(source: &str, blank: &[bool], inserts: &[(usize, &str)]) -> String {
    let extra: usize = inserts.iter().map(|(_, s)| s.len()).sum();
    let mut out = String::with_capacity(source.len() + extra);
    let mut pending = inserts.iter().peekable();
    for (at, c) in source.char_indices() {
        while let Some((_, text)) = pending.next_if(|(i, _)| *i <= at) {
            out.push_str(text);
        }
        if blank.get(at).copied().unwrap_or(false) && c != '\n' && c != '\r' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    for (_, text) in pending {
        out.push_str(text);
    }
    out
}

#[cfg(test)]
#[path = "keywords_tests.rs"]
mod tests;
