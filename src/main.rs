//! The `verdict` binary: everything lives in the library; this only hands over to the CLI.

use std::process::ExitCode;

fn main() -> ExitCode {
    // regorus reports errors through anyhow, which captures a backtrace per error when
    // RUST_BACKTRACE is set: ~5x the cost of a swallowed builtin error on the request path.
    // Set before any thread starts; panics still honour RUST_BACKTRACE.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    verdict::runtime::memory::no_huge_pages();
    // Evaluations (`eval`, `test`) run here: on a stack the depth limit fits, without moving.
    verdict::policy::guard::stack::on_eval_stack(verdict::cli::main)
}
