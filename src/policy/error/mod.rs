//! Errors of the decision core, in OPA's shape: a code, a message and a source location.
//!
//! regorus reports errors as rendered text (`--> file:row:col`, a source excerpt, then
//! `error: message`); this module recovers the location and classifies the message into
//! OPA's error codes, so clients see `eval_conflict_error` where OPA would say so.

mod builtin;
mod excerpt;
mod parse;

use std::time::Duration;

use serde::Serialize;

use excerpt::{Excerpt, Head};
pub use parse::ParseDetails;

/// A location in a Rego file, as OPA reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub row: u32,
    pub col: u32,
}

/// One error as OPA's `errors[]` entries carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegoError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Parse errors only: the line and where in it, as OPA's parser adds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<ParseDetails>,
}

impl std::fmt::Display for RegoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            // OPA names a place without a file (an ad-hoc query) by its row and column.
            Some(l) if l.file.is_empty() => {
                write!(f, "{}:{}: {}: {}", l.row, l.col, self.code, self.message)?
            }
            Some(l) => write!(f, "{}:{}: {}: {}", l.file, l.row, self.code, self.message)?,
            None => write!(f, "{}: {}", self.code, self.message)?,
        }
        // OPA's text of a parse error shows the line under it, with a caret at the error.
        match &self.details {
            Some(d) => write!(f, "{}", d.lines()),
            None => Ok(()),
        }
    }
}

/// Why a bundle set could not be compiled into a policy set.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Parse, safety and type errors in modules; OPA's status message for these.
    #[error("{}", summarize(.0))]
    Modules(Vec<RegoError>),
    /// Bundles that cannot be active together.
    #[error(transparent)]
    Overlap(#[from] crate::bundle::RootsOverlap),
    /// A data file whose documents collide with data already loaded.
    #[error("bundle {bundle}: bundle load failed on {file}: failed to insert data file from path {path}")]
    DataConflict {
        bundle: String,
        file: String,
        path: String,
    },
    /// A module whose package lies outside its bundle's roots.
    #[error("bundle {bundle}: manifest roots {roots} do not permit 'package {package}' in module '{file}'")]
    PackageOutsideRoots {
        bundle: String,
        roots: String,
        package: String,
        file: String,
    },
    /// Data pushed through the Data API that cannot merge with the bundles' data (a value
    /// where a bundle needs an object to hold its root).
    #[error("pushed data conflicts with bundle data: {0}")]
    PushedData(String),
    /// The engine panicked while preparing the policies.
    #[error("the engine failed while preparing the policies")]
    EngineFault,
    /// Parsing, validating and warming did not finish in time; the policies are refused.
    #[error("compilation did not finish within {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    /// verdict's own builtins could not be added to the engine.
    #[error(transparent)]
    Builtins(#[from] super::builtins::RegisterError),
}

impl CompileError {
    /// The short message OPA puts in a bundle status, with details in `errors()`.
    pub fn status_message(&self) -> String {
        match self {
            CompileError::Modules(_) => "error(s) occurred while compiling module(s)".into(),
            other => other.to_string(),
        }
    }

    pub fn errors(&self) -> &[RegoError] {
        match self {
            CompileError::Modules(errors) => errors,
            _ => &[],
        }
    }
}

/// OPA's `ast.Errors` text: "1 error occurred: file:row: code: message".
pub fn summarize(errors: &[RegoError]) -> String {
    match errors {
        [one] => format!("1 error occurred: {one}"),
        many => {
            let lines: Vec<String> = many.iter().map(ToString::to_string).collect();
            format!("{} errors occurred:\n{}", many.len(), lines.join("\n"))
        }
    }
}

/// Why one evaluation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EvalError {
    /// The data path cannot be turned into a reference (OPA refuses `"` in a segment).
    #[error("invalid path: invalid ref term '{0}'")]
    InvalidPath(String),
    /// Errors raised by the policy itself: conflicts, strict builtin errors, type errors.
    #[error("error(s) occurred while evaluating query")]
    Policy(Vec<RegoError>),
    /// The query itself does not parse.
    #[error("error(s) occurred while parsing query")]
    Parse(Vec<RegoError>),
    /// The evaluation ran past the configured time limit and was stopped.
    #[error("evaluation exceeded the time limit of {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The process crossed its memory ceiling while this evaluation allocated; the evaluation
    /// was stopped instead of the process being killed for memory.
    #[error("evaluation stopped: the process memory limit of {0} bytes was reached")]
    MemoryLimit(u64),
    /// The engine panicked; the panic was contained and nothing else was affected.
    #[error("policy evaluation failed unexpectedly (engine fault contained)")]
    EngineFault,
    /// A function is not a document (OPA's type checker refuses the query); `signature` is the
    /// function's type as OPA's message gives it (`(any) => boolean`).
    #[error("undefined ref: {reference}")]
    FunctionPath {
        reference: String,
        signature: String,
    },
}

impl EvalError {
    /// The message with every underlying error spelled out, for logs and the CLI.
    pub fn detail(&self) -> String {
        match self {
            EvalError::Policy(errors) | EvalError::Parse(errors) => errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        }
    }
}

/// Classifies a regorus error into OPA's vocabulary.
pub fn from_engine(err: &anyhow::Error, timeout: Duration) -> EvalError {
    let text = format!("{err:#}");
    if text.contains("execution exceeded time limit") {
        return EvalError::Timeout(timeout);
    }
    if text.contains("exceeded memory limit") {
        return EvalError::MemoryLimit(regorus::global_memory_limit().unwrap_or(0));
    }
    EvalError::Policy(vec![classify(&text)])
}

/// Turns one rendered regorus error into an OPA-shaped error.
pub fn classify(text: &str) -> RegoError {
    let (location, message) = split_rendered(text);
    let excerpt = Excerpt::of(text);
    if let Some(first) = message
        .strip_prefix("rule conflicts with rule at ")
        .and_then(parse_location)
    {
        // OPA points at the first of the conflicting rules; regorus names it in its message.
        return RegoError {
            code: CONFLICT_ERROR,
            message: rule_conflict(excerpt.as_ref()).into(),
            location: Some(first),
            details: None,
        };
    }
    let (code, message) = if let Some(conflict) = conflict(message, excerpt.as_ref()) {
        (CONFLICT_ERROR, conflict.to_string())
    } else if let Some(var) = message
        .strip_prefix("use of undefined variable `")
        .and_then(|rest| rest.strip_suffix("` is unsafe"))
    {
        ("rego_unsafe_var_error", format!("var {var} is unsafe"))
    } else if let Some(func) = message.strip_prefix("could not find function ") {
        ("rego_type_error", format!("undefined function {func}"))
    } else if message.contains("recursion") {
        ("rego_recursion_error", message.to_string())
    } else if let Some(t) = builtin::translate(message, excerpt.as_ref()) {
        (t.code, t.message)
    } else if message.contains("expects") && message.contains("argument") {
        // A call with the wrong number of arguments, which OPA's compiler refuses.
        ("rego_type_error", message.to_string())
    } else if message.contains("conflict") {
        (CONFLICT_ERROR, message.to_string())
    } else {
        (builtin::BUILTIN_ERROR, message.to_string())
    };
    RegoError {
        code,
        message,
        location,
        details: None,
    }
}

const CONFLICT_ERROR: &str = "eval_conflict_error";
const COMPLETE_CONFLICT: &str = "complete rules must not produce multiple outputs";
const FUNCTION_CONFLICT: &str = "functions must not produce multiple outputs for same inputs";
const KEY_CONFLICT: &str = "object keys must be unique";

/// OPA's text for two values at one place. regorus does not say which kind of rule produced
/// them; the head it quotes does: a key that is a variable builds an object, whose keys
/// must be unique, a parenthesis makes a function, anything else is one complete value.
fn conflict(message: &str, excerpt: Option<&Excerpt<'_>>) -> Option<&'static str> {
    if message.starts_with("function produced multiple outputs") || message == FUNCTION_CONFLICT {
        Some(FUNCTION_CONFLICT)
    } else if message.starts_with("value for key `") && message.contains("generated multiple times")
    {
        // Two values for one key of an object comprehension.
        Some(KEY_CONFLICT)
    } else if message.contains("multiple outputs") {
        Some(match excerpt.and_then(Excerpt::head) {
            Some(Head::VariableKey) => KEY_CONFLICT,
            Some(Head::Function) => FUNCTION_CONFLICT,
            _ => COMPLETE_CONFLICT,
        })
    } else {
        None
    }
}

/// regorus quotes the later of two conflicting rules. When that one has a variable key the
/// two build one object; when it has none, the earlier one may still have had one, which
/// the excerpt cannot show, and OPA's complete-rule text is the likelier.
fn rule_conflict(excerpt: Option<&Excerpt<'_>>) -> &'static str {
    match excerpt.and_then(Excerpt::head) {
        Some(Head::VariableKey) => KEY_CONFLICT,
        _ => COMPLETE_CONFLICT,
    }
}

/// A parse error while adding a module.
pub fn parse_error(text: &str) -> RegoError {
    let (mut location, message) = split_rendered(text);
    let excerpt = Excerpt::of(text);
    // A v0 rule in v1 syntax: OPA points at the rule, regorus at its body.
    if message.contains("keyword is required") {
        if let (Some(at), Some(excerpt)) = (location.as_mut(), excerpt.as_ref()) {
            at.col = excerpt.first_column();
        }
    }
    let (message, details) = parse::explain(message, excerpt.as_ref());
    RegoError {
        code: "rego_parse_error",
        message,
        location,
        details,
    }
}

/// True for errors that no input can fix: a bundle carrying them is refused at load, where
/// OPA's compiler would refuse it, rather than failing every request later.
pub fn is_static(error: &RegoError) -> bool {
    matches!(
        error.code,
        "rego_unsafe_var_error" | "rego_type_error" | "rego_recursion_error" | "rego_parse_error"
    )
}

/// Splits regorus's rendered error into its location and its one-line message.
fn split_rendered(text: &str) -> (Option<Location>, &str) {
    let location = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .and_then(parse_location);
    let message = text
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text))
        .trim();
    (location, message)
}

/// Parses `file:row:col`; the file itself may contain colons.
fn parse_location(text: &str) -> Option<Location> {
    let mut parts = text.trim().rsplitn(3, ':');
    let col = parts.next()?.parse().ok()?;
    let row = parts.next()?.parse().ok()?;
    let file = match parts.next()? {
        // An ad-hoc query has no file; OPA reports an empty one.
        "<query.rego>" => String::new(),
        other => other.to_string(),
    };
    Some(Location { file, row, col })
}

#[cfg(test)]
mod tests;
