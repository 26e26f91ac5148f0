//! OPA's compile-stage rules applied to Rego text before regorus sees it, so that a module
//! means what it means in OPA and the rest of verdict never sees the difference.
//!
//! Each stage parses the text with regorus's own parser, finds where regorus would read the
//! module differently from OPA's compiler, and edits the text at exactly those places; an edit
//! never adds or removes a line, so every error still points at the author's row. In order:
//! - `bodies` (Rego v0, on the text, since regorus cannot parse it before): a rule with several
//!   bodies is one definition per body, not `else` bodies;
//! - `newline`: a line starting with `(` starts a new statement, it does not call the
//!   reference that ended the line before;
//! - `imports`: an import is visible in its own file only (regorus shares one file's imports
//!   with every file of the package); uses are written out as the imported path;
//! - `outform`: `f(x, out)`, OPA's output-argument form, for the builtins verdict adds (regorus
//!   knows it for its own builtins only): `f(x) = out`;
//! - `negation`: references and calls in a call's arguments are evaluated before `not`, as
//!   OPA's `RewriteDynamicTerms` stage hoists them: `not f(input.x)` is undefined when
//!   `input.x` is;
//! - `heads`: a partial set's key that is a reference is evaluated in the body, as OPA's
//!   `RewriteRefsInHead` does: a missing path makes the set empty, not the document an error;
//! - `with`: a builtin named as the replacement in `with f as count` is called through a
//!   function of the module (regorus read it as an unsafe variable);
//! - `mocks`: where a module set mocks one of verdict's own builtins (`with io.jwt.decode_verify
//!   as m`), its calls and the `with` go through a function regorus accepts as a target.

mod bodies;
mod edits;
mod heads;
mod imports;
pub mod mocks;
mod negation;
mod newline;
mod outform;
mod scan;
#[cfg(test)]
mod tests;
pub(crate) mod walk;
mod with;
// Leading keywords in references; runs before the stages above, which need a text regorus
// parses, and may split a module in several.
pub mod keywords;

use std::borrow::Cow;
use std::collections::BTreeSet;

use regorus::unstable::{Module, Parser, Source};

use super::guard;

/// The text regorus should parse for `source`, or `source` itself when nothing differs. A text
/// that does not parse is returned as it is: the engine reports the error where it is.
pub fn module<'a>(file: &str, source: &'a str, rego_v0: bool) -> Cow<'a, str> {
    module_with_mocks(file, source, rego_v0, &BTreeSet::new())
}

/// `module`, with the calls of the builtins in `mocked` sent through `mocks`' functions.
pub fn module_with_mocks<'a>(
    file: &str,
    source: &'a str,
    rego_v0: bool,
    mocked: &BTreeSet<String>,
) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(source);
    let mut parsed = None;
    if rego_v0 {
        if let Some(edited) = edits::apply(&text, bodies::edits(&text)) {
            if let Some(module) = parse(file, &edited, rego_v0) {
                text = Cow::Owned(edited);
                parsed = Some(module);
            }
        }
    }
    let Some(mut current) = parsed.or_else(|| parse(file, &text, rego_v0)) else {
        return text;
    };
    let stages: [fn(&Module, bool) -> Vec<edits::Edit>; 6] = [
        |m, _| newline::edits(m),
        |m, _| imports::edits(m),
        |m, _| outform::edits(m),
        |m, _| negation::edits(m),
        heads::edits,
        |m, _| with::edits(m),
    ];
    // One parse for the text as it stands: a stage with nothing to edit costs no other.
    for stage in stages {
        let changes = stage(&current, rego_v0);
        // A stage's edits that do not parse are its mistake: the module keeps the text before
        // it rather than failing to load.
        if let Some(edited) = edits::apply(&text, changes) {
            if let Some(module) = parse(file, &edited, rego_v0) {
                text = Cow::Owned(edited);
                current = module;
            }
        }
    }
    if let Some(edited) = edits::apply(&text, mocks::edits(&current, mocked)) {
        if parse(file, &edited, rego_v0).is_some() {
            text = Cow::Owned(edited);
        }
    }
    text
}

fn parse(file: &str, text: &str, rego_v0: bool) -> Option<Module> {
    let source = Source::from_contents(file.to_string(), text.to_string()).ok()?;
    let mut parser = Parser::new(&source).ok()?;
    parser.set_max_col(guard::MAX_LINE_COLUMNS);
    if !rego_v0 {
        parser.enable_rego_v1().ok()?;
    }
    parser.parse().ok()
}
