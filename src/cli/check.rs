//! `verdict check`: parses and compiles policies without evaluating a query, reporting errors
//! as `opa check` does: nothing and exit 0 when they compile; otherwise OPA's error text
//! (`1 error occurred: file:row: code: message`) or `--format json`'s `{"errors": [...]}` on
//! stderr, and exit 1.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::errors::Failure;

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

pub fn main(args: CheckArgs) -> ExitCode {
    let (errors, message) = match super::load_paths(&args.paths, args.v0_compatible) {
        Err(e) => (Vec::new(), e.to_string()),
        Ok(bundles) => match super::compile_paths(&bundles) {
            Ok(_) => return ExitCode::SUCCESS,
            Err(e) => (e.errors().to_vec(), e.to_string()),
        },
    };
    let failure = Failure {
        errors: &errors,
        message,
    };
    let json = matches!(args.format, Format::Json);
    let _ = std::io::stderr().write_all(&failure.bytes(json));
    ExitCode::FAILURE
}
