//! `verdict check`: parses and compiles policies without evaluating a query, reporting errors
//! as `opa check` does: nothing and exit 0 when they compile; otherwise OPA's error text
//! (`1 error occurred: file:row: code: message`) or `--format json`'s `{"errors": [...]}` on
//! stderr, and exit 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::gojson;
use crate::policy::{CompileError, Location, ParseDetails, RegoError};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Policy and data files, directories or bundles.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// pretty (OPA's error text) or json.
    #[arg(short = 'f', long = "format", value_enum, default_value = "pretty")]
    format: Format,
    /// Read the paths as bundles (accepted for OPA compatibility: directories are always read
    /// with their manifest).
    #[arg(short = 'b', long = "bundle")]
    bundle: bool,
    /// Treat modules without a declared Rego version as v0.
    #[arg(long)]
    v0_compatible: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Pretty,
    Json,
}

/// One entry of `opa check --format json`'s `errors`, in OPA's field order.
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

pub fn main(args: CheckArgs) -> ExitCode {
    let failure = match super::load_paths(&args.paths, args.v0_compatible) {
        Err(e) => Failure::Other(e.to_string()),
        Ok(bundles) => match super::compile_paths(&bundles) {
            Ok(_) => return ExitCode::SUCCESS,
            Err(e) => Failure::Compile(e),
        },
    };
    let text = match args.format {
        Format::Pretty => format!("{}\n", failure.text()).into_bytes(),
        Format::Json => {
            let mut out = gojson::to_body(&failure.output(), true);
            out.push(b'\n');
            out
        }
    };
    let _ = std::io::stderr().write_all(&text);
    ExitCode::FAILURE
}

enum Failure {
    Compile(CompileError),
    Other(String),
}

impl Failure {
    fn text(&self) -> String {
        match self {
            Failure::Compile(e) => e.to_string(),
            Failure::Other(text) => text.clone(),
        }
    }

    /// Module errors one by one with their locations; any other failure as one message.
    fn output(&self) -> Output {
        let errors: Vec<OutputError> = match self {
            Failure::Compile(e) => e.errors().iter().map(output_error).collect(),
            Failure::Other(_) => Vec::new(),
        };
        if !errors.is_empty() {
            return Output { errors };
        }
        Output {
            errors: vec![OutputError {
                message: self.text(),
                code: "",
                location: None,
                details: None,
            }],
        }
    }
}

fn output_error(e: &RegoError) -> OutputError {
    OutputError {
        message: e.message.clone(),
        code: e.code,
        location: e.location.clone(),
        details: e.details.clone(),
    }
}
