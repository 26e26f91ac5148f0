//! `verdict eval`: one query against policies and data, printed as `opa eval` prints it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use regorus::Value;

use super::errors::Failure;
use super::pretty;
use crate::gojson::{self, ObjectWriter};
use crate::policy::{EvalError, QueryOptions, RegoError};

/// OPA's code for a policy or query that does not parse.
const PARSE_ERROR: &str = "rego_parse_error";

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Policy or data files and directories (repeatable).
    #[arg(short = 'd', long = "data", value_name = "PATH")]
    data: Vec<PathBuf>,
    /// Bundles (directories or .tar.gz), loaded like -d (repeatable).
    #[arg(short = 'b', long = "bundle", value_name = "PATH")]
    bundles: Vec<PathBuf>,
    /// The input document, a JSON or YAML file.
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Read the input document from stdin (JSON or YAML).
    #[arg(short = 'I', long = "stdin-input", conflicts_with = "input")]
    stdin_input: bool,
    /// json (OPA's result set), raw (values only, one per line) or pretty (a value as indented
    /// JSON, bindings as a table, `undefined` when there is no result).
    #[arg(short = 'f', long = "format", default_value = "json")]
    format: Format,
    /// Exit 1 when the result is undefined (or empty).
    #[arg(long, conflicts_with = "fail_defined")]
    fail: bool,
    /// Exit 1 when the result is defined (not empty).
    #[arg(long)]
    fail_defined: bool,
    /// A failing builtin fails the query instead of making its expression undefined.
    #[arg(long)]
    strict_builtin_errors: bool,
    /// Treat modules without a declared Rego version as v0.
    #[arg(long)]
    v0_compatible: bool,
    /// The query, e.g. `data.payment.decision`.
    query: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Raw,
    Pretty,
}

pub fn main(args: EvalArgs) -> ExitCode {
    match eval(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let mut paths = args.data.clone();
    paths.extend(args.bundles.iter().cloned());
    let bundles = super::load_paths(&paths, args.v0_compatible)?;
    let set = match super::compile_paths(&bundles) {
        Ok(set) => set,
        // A file that does not parse stops OPA's loader, which prints it as text whatever
        // the format; compile errors are the evaluation's, printed in its format.
        Err(e) if e.errors().iter().all(|e| e.code == PARSE_ERROR) => {
            return Ok(report(&args, e.errors(), e.to_string(), false))
        }
        Err(e) => return Ok(report(&args, e.errors(), e.to_string(), true)),
    };
    let input = match &args.input {
        Some(path) => Some(read_input(path)?),
        None if args.stdin_input => Some(read_stdin_input()?),
        None => None,
    };
    let options = QueryOptions {
        input,
        strict_builtin_errors: args.strict_builtin_errors,
    };
    let results = match set.query_with(&args.query, options) {
        Ok(results) => results,
        Err(e) => {
            let errors = match &e {
                EvalError::Policy(errors) | EvalError::Parse(errors) => errors.as_slice(),
                _ => &[],
            };
            return Ok(report(&args, errors, e.to_string(), true));
        }
    };
    let mut out = Vec::new();
    match args.format {
        Format::Pretty => pretty::write(&mut out, &results),
        Format::Raw => {
            for r in &results.result {
                for e in &r.expressions {
                    gojson::write_value(&mut out, &e.value, None);
                    out.push(b'\n');
                }
            }
        }
        Format::Json => {
            write_result_set(&mut out, &results);
            out.push(b'\n');
        }
    }
    std::io::stdout().write_all(&out)?;
    let defined = !results.result.is_empty();
    // OPA's --fail and --fail-defined: the output is printed either way, the exit code tells.
    if (args.fail && !defined) || (args.fail_defined && defined) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// OPA's presentation of errors: `{"errors": [...]}` on stdout for JSON output (when
/// `in_format`), otherwise its text on stderr; exit 1 either way.
fn report(args: &EvalArgs, errors: &[RegoError], message: String, in_format: bool) -> ExitCode {
    let failure = Failure { errors, message };
    let _ = match (in_format, args.format) {
        (true, Format::Json) => std::io::stdout().write_all(&failure.json()),
        _ => std::io::stderr().write_all(&failure.bytes(false)),
    };
    ExitCode::FAILURE
}

fn read_stdin_input() -> anyhow::Result<Value> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("reading the input from stdin")?;
    // JSON first; YAML (a superset) when it is not JSON, as OPA reads -I.
    serde_json::from_slice(&bytes)
        .or_else(|_| yaml_serde::from_slice(&bytes))
        .context("parsing the input from stdin")
}

fn read_input(path: &PathBuf) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let value = if yaml {
        yaml_serde::from_slice(&bytes).map_err(anyhow::Error::from)
    } else {
        serde_json::from_slice(&bytes).map_err(anyhow::Error::from)
    };
    value.with_context(|| format!("parsing {}", path.display()))
}

/// OPA's result set: `{"result": [{"expressions": [...], "bindings": {...}}]}`, or `{}` when
/// the query is undefined.
fn write_result_set(out: &mut Vec<u8>, results: &regorus::QueryResults) {
    let mut top = ObjectWriter::new(out, Some(0));
    if !results.result.is_empty() {
        top.with("result", |out, indent| {
            write_seq(out, indent, &results.result, |out, indent, r| {
                let mut obj = ObjectWriter::new(out, indent);
                obj.with("expressions", |out, indent| {
                    write_seq(out, indent, &r.expressions, |out, indent, e| {
                        let mut ex = ObjectWriter::new(out, indent);
                        ex.value("value", &e.value);
                        ex.serde("text", e.text.as_ref());
                        ex.serde(
                            "location",
                            &QueryLocation {
                                row: e.location.row,
                                col: e.location.col,
                            },
                        );
                        ex.finish();
                    })
                });
                if r.bindings.as_object().is_ok_and(|b| !b.is_empty()) {
                    obj.value("bindings", &r.bindings);
                }
                obj.finish();
            })
        });
    }
    top.finish();
}

#[derive(serde::Serialize)]
struct QueryLocation {
    row: u32,
    col: u32,
}

fn write_seq<T>(
    out: &mut Vec<u8>,
    indent: Option<usize>,
    items: &[T],
    mut each: impl FnMut(&mut Vec<u8>, Option<usize>, &T),
) {
    gojson::write_array(out, indent, items.len(), |out, inner, i| {
        each(out, inner, &items[i])
    });
}
