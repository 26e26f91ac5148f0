//! Text edits at byte ranges of a parsed module, applied together or not at all.

/// Replace `start..end` with `text` (an insertion when the range is empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

impl Edit {
    pub fn replace(start: u32, end: u32, text: impl Into<String>) -> Edit {
        Edit {
            start: start as usize,
            end: end as usize,
            text: text.into(),
        }
    }

    pub fn insert(at: u32, text: impl Into<String>) -> Edit {
        Edit::replace(at, at, text)
    }
}

/// `source` with every edit applied; `None` when there is none, or when two overlap or one
/// falls outside the text (a stage's mistake: the module is then left as written rather
/// than half rewritten). Insertions at one place keep their order.
pub fn apply(source: &str, mut edits: Vec<Edit>) -> Option<String> {
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| (e.start, e.end));
    let mut out = String::with_capacity(source.len() + 64);
    let mut at = 0usize;
    for edit in &edits {
        if edit.start < at || edit.end < edit.start {
            return None;
        }
        out.push_str(source.get(at..edit.start)?);
        out.push_str(&edit.text);
        at = edit.end;
    }
    out.push_str(source.get(at..)?);
    Some(out)
}

/// The newlines of `text`, so that an edit can keep the module's line count.
pub fn newlines(text: &str) -> String {
    "\n".repeat(text.matches('\n').count())
}
