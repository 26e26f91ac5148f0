//! Errors as OPA's CLI presents them: `{"errors": [...]}` for JSON output, OPA's
//! `N error(s) occurred: ...` text otherwise.

use serde::Serialize;

use crate::gojson;
use crate::policy::{summarize, Location, ParseDetails, RegoError};

/// One entry of OPA's `errors`, in OPA's field order.
#[derive(Serialize)]
struct OutputError {
    message: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<ParseDetails>,
}

#[derive(Serialize)]
struct Output {
    errors: Vec<OutputError>,
}

/// What failed: errors with their places, or one message (`errors` empty).
pub struct Failure<'a> {
    pub errors: &'a [RegoError],
    pub message: String,
}

impl Failure<'_> {
    /// OPA's text: the errors one per line under their count, or the message.
    pub fn text(&self) -> String {
        match self.errors {
            [] => self.message.clone(),
            errors => summarize(errors),
        }
    }

    /// `{"errors": [...]}`, indented and ended with a newline as OPA's JSON presentation.
    pub fn json(&self) -> Vec<u8> {
        let errors = match self.errors {
            [] => vec![OutputError {
                message: self.message.clone(),
                code: "",
                location: None,
                details: None,
            }],
            errors => errors
                .iter()
                .map(|e| OutputError {
                    message: e.message.clone(),
                    code: e.code,
                    location: e.location.clone(),
                    details: e.details.clone(),
                })
                .collect(),
        };
        gojson::to_body(&Output { errors }, true)
    }

    /// The JSON form, or the text with a final newline.
    pub fn bytes(&self, json: bool) -> Vec<u8> {
        match json {
            true => self.json(),
            false => format!("{}\n", self.text()).into_bytes(),
        }
    }
}
