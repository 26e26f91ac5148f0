//! What a case's Rego uses that regorus lacks, read from its text where regorus's errors do
//! not say it: functions it does not have (some are reported as an unsafe variable, when the
//! result is bound as an extra argument) and keywords inside references.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use crate::suite::Case;

static STRING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#""(?:[^"\\]|\\.)*"|`[^`]*`"#).expect("valid pattern"));
static CALL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(").expect("valid pattern")
});
static IMPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^import\s+[\w.]*?(\w+)(?:\s+as\s+(\w+))?\s*$").expect("valid pattern")
});

static KEYWORD_IN_REF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\.(as|contains|default|else|every|false|if|import|in|not|null|package|some|true|with)\b",
    )
    .expect("valid pattern")
});

/// True when a keyword follows a dot in a reference or rule name (`p.if`, `input.in`).
pub fn keyword_in_ref(case: &Case) -> bool {
    case.modules
        .iter()
        .chain([&case.query])
        .any(|t| KEYWORD_IN_REF.is_match(&STRING.replace_all(t, "\"\"")))
}

/// Words that may stand before `(` without being a call.
const NOT_CALLS: &[&str] = &[
    "data", "input", "not", "if", "in", "some", "every", "with", "else", "contains", "as", "set",
];

/// Functions the case calls that are neither regorus builtins nor defined by its modules,
/// sorted; empty when none.
pub fn missing(case: &Case) -> Vec<String> {
    let texts: Vec<String> = case
        .modules
        .iter()
        .chain([&case.query])
        .map(|t| STRING.replace_all(t, "\"\"").into_owned())
        .collect();
    // Rule and function heads start a line; imports name what may be called through them.
    let mut local = BTreeSet::new();
    for text in &texts {
        for line in text.lines() {
            if let Some(c) = CALL.captures(line).filter(|c| c[0].starts_with(&c[1])) {
                local.insert(c[1].to_string());
            }
        }
        for c in IMPORT.captures_iter(text) {
            local.insert(
                c.get(2)
                    .unwrap_or_else(|| c.get(1).unwrap())
                    .as_str()
                    .to_string(),
            );
        }
    }
    let mut missing = BTreeSet::new();
    for text in &texts {
        for c in CALL.captures_iter(text) {
            let name = &c[1];
            let root = name.split('.').next().unwrap_or(name);
            let known = regorus::unstable::BUILTINS.contains_key(name)
                || local.contains(name)
                || local.contains(root)
                || NOT_CALLS.contains(&root);
            if !known {
                missing.insert(name.to_string());
            }
        }
    }
    missing.into_iter().collect()
}
