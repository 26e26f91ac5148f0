//! The engine guard: what verdict checks on Rego before and after regorus parses it, so that no
//! text and no policy can stall the parser or overflow the evaluator's stack. `text` bounds
//! the text before parsing; `recursion` refuses recursive rules after it, as OPA's compiler does,
//! and chains too deep for the stack `stack` gives every evaluation.

pub mod recursion;
pub mod stack;
pub mod text;
mod tokens;

use std::num::NonZeroU32;

use regorus::utils::limits::PolicyLengthConfig;

use super::error::{Location, RegoError};

/// regorus refuses lines past 1,024 columns; OPA has no such limit, and real texts pass it: JWT
/// and PEM literals, and the one-line queries generated for data paths with long keys. Lines
/// may be as long as the whole text, which `text::MAX_TEXT_BYTES` bounds before parsing.
pub const MAX_LINE_COLUMNS: NonZeroU32 = match NonZeroU32::new(text::MAX_TEXT_BYTES as u32) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// The length limits every engine of the decision core parses with.
pub fn length_config() -> PolicyLengthConfig {
    PolicyLengthConfig {
        max_col: MAX_LINE_COLUMNS,
        ..PolicyLengthConfig::default()
    }
}

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
            details: None,
        }
    })
}
