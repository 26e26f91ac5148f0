//! The suite on disk: OPA's case files (`<topic>/<file>.json`, `{"cases": [...]}`) read in a
//! fixed order, each case with an id that names its file and note, as the ledger does.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// One case, with the fields OPA's own runner reads (v1/test/cases/cases.go).
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub note: String,
    pub query: String,
    #[serde(default)]
    pub modules: Vec<String>,
    pub data: Option<serde_json::Value>,
    pub input: Option<serde_json::Value>,
    /// The input as Rego text, for values JSON cannot hold (sets, non-string keys).
    pub input_term: Option<String>,
    pub want_result: Option<Vec<serde_json::Map<String, serde_json::Value>>>,
    pub want_error: Option<String>,
    pub want_error_code: Option<String>,
    pub want_defined: Option<bool>,
    #[serde(default)]
    pub sort_bindings: bool,
    #[serde(default)]
    pub strict_error: bool,
    #[serde(default)]
    pub skip: bool,
    /// Set by template-string cases (OPA 1.12+), whose queries bind `$`-vars of OPA's own.
    #[serde(default)]
    pub ignore_generated_vars: bool,
}

#[derive(Deserialize)]
struct CaseFile {
    cases: Vec<Case>,
}

/// A case and where it comes from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `<topic>/<file>.json`, relative to the suite directory.
    pub file: String,
    /// The note, with `#n` added to the n-th repeat of a note within one file (some files
    /// repeat a note for several cases).
    pub note: String,
    pub case: Case,
}

impl Entry {
    pub fn id(&self) -> String {
        format!("{}\t{}", self.file, self.note)
    }
}

/// Every case under `dir`, files in path order, cases in file order.
pub fn load(dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut files = Vec::new();
    for topic in read_dir_sorted(dir)? {
        if topic.is_dir() {
            files.extend(
                read_dir_sorted(&topic)?
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "json")),
            );
        }
    }
    let mut entries = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let parsed: CaseFile =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let file = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let mut seen: Vec<&str> = Vec::new();
        let mut file_entries = Vec::new();
        for case in &parsed.cases {
            let repeats = seen.iter().filter(|n| **n == case.note).count();
            seen.push(&case.note);
            let note = match repeats {
                0 => case.note.clone(),
                n => format!("{}#{}", case.note, n + 1),
            };
            file_entries.push(Entry {
                file: file.clone(),
                note: one_line(&note),
                case: case.clone(),
            });
        }
        entries.extend(file_entries);
    }
    Ok(entries)
}

fn read_dir_sorted(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut paths = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    paths.sort();
    Ok(paths)
}

/// Text fit for one ledger field: no tabs or line breaks.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Why OPA 1.9 itself does not pass a case: it tests a feature newer than 1.9. These are
/// the misses the suite's README names; the figure "of the cases OPA 1.9 passes" leaves them
/// out whether or not verdict passes them.
pub fn newer_than_opa_1_9(case: &Case) -> Option<&'static str> {
    let texts = || {
        case.modules
            .iter()
            .map(String::as_str)
            .chain([case.query.as_str()])
    };
    // Template strings `$"..."` arrived in OPA 1.12. A regex pattern may end in `$"`, so only
    // a `$` that opens a string counts.
    if texts().any(opens_template_string) {
        return Some("template string (OPA 1.12)");
    }
    if texts().any(|t| t.contains("array.flatten")) {
        return Some("array.flatten (after OPA 1.9)");
    }
    // gqlparser 2.5.31 (OPA pull request 8027, November 2025) added this field to the ASTs
    // the graphql builtins return.
    let wanted = serde_json::to_string(&case.want_result).unwrap_or_default();
    if texts()
        .chain([wanted.as_str()])
        .any(|t| t.contains("ExpectedTypeHasDefault"))
    {
        return Some("graphql AST of gqlparser 2.5.31");
    }
    None
}

fn opens_template_string(text: &str) -> bool {
    text.match_indices("$\"")
        .chain(text.match_indices("$`"))
        .any(|(i, _)| !inside_string(&text[..i]))
}

/// True when the end of `prefix` lies inside a double-quoted string (so a `$"` there is a
/// regex anchor closing the string, not a template opening).
fn inside_string(prefix: &str) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for c in prefix.chars() {
        match c {
            '\\' if inside && !escaped => escaped = true,
            '"' if !escaped => inside = !inside,
            _ => escaped = false,
        }
    }
    inside
}
