//! The engine guard: what verdict checks on Rego before and after regorus parses it, so that no
//! text and no policy can stall the parser or overflow the evaluator's stack. `text` bounds
//! the text before parsing; `recursion` refuses recursive rules after it, as OPA's compiler does.

pub mod recursion;
pub mod text;

use super::error::{Location, RegoError};

/// Checks a Rego text before regorus parses it. `file` names it in the error as OPA would (empty
/// for an ad-hoc query); the refusal is OPA's `rego_parse_error` at the place the limit was
/// passed.
pub fn check_text(file: &str, source: &str) -> Result<(), RegoError> {
    text::check(source).map_err(|e| {
        let (row, col) = e.position();
        RegoError {
            code: "rego_parse_error",
            message: e.to_string(),
            location: Some(Location {
                file: file.to_string(),
                row,
                col,
            }),
        }
    })
}
