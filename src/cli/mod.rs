//! The command line, shaped like OPA's: `run`, `eval`, `test`, `check`, `inspect`, `build`,
//! `sign`, `version`, and gator's `verify`. Each subcommand lives in its own file and only
//! parses arguments, calls the library and formats output.

pub mod build;
pub mod check;
pub mod errors;
pub mod eval;
pub mod inspect;
pub mod pretty;
pub mod run;
pub mod sign;
pub mod table;
pub mod test;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::bundle::{self, Bundle, LoadOptions};
use crate::policy::{self, CompileOptions, PolicySet};

#[derive(Debug, Parser)]
#[command(
    name = "verdict",
    version,
    about = "An OPA-compatible policy decision service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve OPA's REST API on bundles, reloading them as they change.
    Run(run::RunArgs),
    /// Evaluate a query once against policies and data, like `opa eval`.
    Eval(eval::EvalArgs),
    /// Run the `test_*` rules of policies, like `opa test`.
    Test(test::TestArgs),
    /// Build a bundle tarball from policy and data files, like `opa build`.
    Build(build::BuildArgs),
    /// Write a bundle signature file, like `opa sign`.
    Sign(sign::SignArgs),
    /// Parse and compile policies, reporting errors as `opa check` does.
    Check(check::CheckArgs),
    /// Show a bundle's manifest, namespaces and signatures, like `opa inspect`.
    Inspect(inspect::InspectArgs),
    /// Print the version and build information, like `opa version`.
    Version,
    /// Run gator test suites (Gatekeeper ConstraintTemplates and Constraints), like `gator verify`.
    Verify(verify::VerifyArgs),
}

/// Exit codes: 0 success, 1 failure, 64 a configuration the user must fix (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::main(args),
        Command::Eval(args) => eval::main(args),
        Command::Test(args) => test::main(args),
        Command::Build(args) => build::main(args),
        Command::Sign(args) => sign::main(args),
        Command::Check(args) => check::main(args),
        Command::Inspect(args) => inspect::main(args),
        Command::Version => {
            print!("{}", crate::provenance::version_text());
            ExitCode::SUCCESS
        }
        Command::Verify(args) => verify::main(args),
    }
}

/// Loads plain paths (`-d`, test paths) into one policy set, as `opa eval` and `opa test` do.
pub fn load_policy_set(paths: &[PathBuf], v0_compatible: bool) -> anyhow::Result<PolicySet> {
    let bundles = load_paths(paths, v0_compatible)?;
    compile_paths(&bundles).context("compile error")
}

/// Reads each path as `opa eval -d` takes it: a bundle directory or tarball, a `.rego` file,
/// or a data file.
pub fn load_paths(
    paths: &[PathBuf],
    v0_compatible: bool,
) -> Result<Vec<Arc<Bundle>>, bundle::LoadError> {
    let options = LoadOptions {
        v0_compatible,
        ..LoadOptions::default()
    };
    paths
        .iter()
        .map(|path| bundle::load_data_path(path, options).map(Arc::new))
        .collect()
}

/// Compiles loaded paths together; paths given side by side may share roots.
pub fn compile_paths(bundles: &[Arc<Bundle>]) -> Result<PolicySet, policy::CompileError> {
    let compile = CompileOptions {
        check_overlap: false,
        ..CompileOptions::default()
    };
    policy::compile(bundles, compile)
}
