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
//! - `generic`: a reference into the document of a generic ref head that also holds literal
//!   rules (`p.b.r` beside `p[q].r`) computes the key after the generic prefix, so that regorus
//!   evaluates the whole document, not only the rules at the reference's longest literal path;
//! - `with`: a builtin named as the replacement in `with f as count` is called through a
//!   function of the module (regorus read it as an unsafe variable);
//! - `mocks`: where a module set mocks one of verdict's own builtins (`with io.jwt.decode_verify
//!   as m`), its calls and the `with` go through a function regorus accepts as a target.

mod bodies;
mod edits;
pub mod generic;
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

use regorus::unstable::{Module, Parser, Ref, Source};

use super::guard;

/// What the rewrites of one module need to know of the others compiled with it.
#[derive(Debug, Default)]
pub struct Context {
    /// verdict's builtins mocked with `with` somewhere (`mocks`).
    mocked: BTreeSet<String>,
    /// Generic documents that also hold literal rules (`generic`).
    documents: generic::Documents,
}

impl Context {
    /// The context of the module texts compiled together. Their generic documents are known
    /// only once parsed: see `learn_documents`.
    pub fn of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Context {
        Context {
            mocked: mocks::mocked(texts),
            documents: generic::Documents::default(),
        }
    }

    /// Learns the generic documents of `modules`, the modules added with this context as the
    /// engine parsed them. `true` when some also hold literal rules: the modules must then be
    /// added again with this context (rare, and only then is anything parsed twice).
    pub fn learn_documents(&mut self, modules: &[Ref<Module>]) -> bool {
        self.documents = generic::Documents::of(modules);
        !self.documents.is_empty()
    }

    /// What `generic` needs to rewrite ad-hoc queries against these modules.
    pub fn documents(&self) -> &generic::Documents {
        &self.documents
    }

    pub fn mocked(&self) -> &BTreeSet<String> {
        &self.mocked
    }
}

/// The text regorus should parse for `source`, compiled alone (the rewrites' tests).
#[cfg(test)]
pub fn module<'a>(file: &str, source: &'a str, rego_v0: bool) -> Cow<'a, str> {
    let mut context = Context::of([source]);
    if let Some((_, parsed)) = parsed(file, source, rego_v0) {
        context.learn_documents(&[Ref::new(parsed)]);
    }
    module_in(file, source, rego_v0, &context)
}

/// The text regorus should parse for `source`, or `source` itself when nothing differs, knowing
/// the other modules compiled with it. A text that does not parse is returned as it is: the
/// engine reports the error where it is.
pub fn module_in<'a>(
    file: &str,
    source: &'a str,
    rego_v0: bool,
    context: &Context,
) -> Cow<'a, str> {
    let Some((mut text, mut current)) = parsed(file, source, rego_v0) else {
        return Cow::Borrowed(source);
    };
    let stages: [&Stage; 7] = [
        &|m| newline::edits(m),
        &|m| imports::edits(m),
        &|m| outform::edits(m),
        &|m| negation::edits(m),
        &|m| heads::edits(m, rego_v0),
        &|m| generic::edits(m, &context.documents),
        &|m| with::edits(m),
    ];
    // One parse for the text as it stands: a stage with nothing to edit costs no other.
    for stage in stages {
        let changes = stage(&current);
        // A stage's edits that do not parse are its mistake: the module keeps the text before
        // it rather than failing to load.
        if let Some(edited) = edits::apply(&text, changes) {
            if let Some(module) = parse(file, &edited, rego_v0) {
                text = Cow::Owned(edited);
                current = module;
            }
        }
    }
    if let Some(edited) = edits::apply(&text, mocks::edits(&current, &context.mocked)) {
        if parse(file, &edited, rego_v0).is_some() {
            text = Cow::Owned(edited);
        }
    }
    text
}

/// One stage of `module_in`: the edits it makes to a parsed module.
type Stage<'c> = dyn Fn(&Module) -> Vec<edits::Edit> + 'c;

/// `source` parsed, Rego v0 rules with several bodies first made one definition per body
/// (regorus cannot parse them before); `None` when it does not parse.
fn parsed<'a>(file: &str, source: &'a str, rego_v0: bool) -> Option<(Cow<'a, str>, Module)> {
    if rego_v0 {
        if let Some(edited) = edits::apply(source, bodies::edits(source)) {
            if let Some(module) = parse(file, &edited, rego_v0) {
                return Some((Cow::Owned(edited), module));
            }
        }
    }
    parse(file, source, rego_v0).map(|module| (Cow::Borrowed(source), module))
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
