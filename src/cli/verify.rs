//! `verdict verify SUITE...`: run gator test suites and report each case, with the exit code
//! a CI expects: 0 when every case passes, 1 when one fails, 64 when a suite file cannot be
//! used at all (unreadable, not YAML, not `kind: Suite`), as for a bad configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::admission::suite;

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Suite files, or directories searched for `suite.yaml` files.
    #[arg(required = true, value_name = "SUITE")]
    pub paths: Vec<PathBuf>,
    /// Print passing cases too.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

pub fn main(args: VerifyArgs) -> ExitCode {
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    let files = suite_files(&args.paths);
    if files.is_empty() {
        eprintln!("error: no suite.yaml under {:?}", args.paths);
        return ExitCode::from(super::EXIT_CONFIG);
    }
    for path in files {
        let results = match suite::run(&path) {
            Ok(results) => results,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(super::EXIT_CONFIG);
            }
        };
        for case in results {
            match (&case.failure, case.skipped) {
                (_, true) => {
                    skipped += 1;
                    if args.verbose {
                        println!("SKIP {} {}", path.display(), case.name);
                    }
                }
                (None, false) => {
                    passed += 1;
                    if args.verbose {
                        println!("ok   {} {}", path.display(), case.name);
                    }
                }
                (Some(why), false) => {
                    failed += 1;
                    println!("FAIL {} {}: {why}", path.display(), case.name);
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Files as given; directories searched (recursively) for `suite.yaml`, as gator finds them.
fn suite_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            find(path, &mut out);
        } else {
            out.push(path.clone());
        }
    }
    out
}

fn find(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            find(&entry, out);
        } else if entry.file_name().is_some_and(|n| n == "suite.yaml") {
            out.push(entry);
        }
    }
}
