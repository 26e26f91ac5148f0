//! The compliance cases through both engines (`VERDICT_COMPLIANCE_ENGINES=1`): each case's
//! modules compiled under `verdict.engine: auto`, and every entrypoint the verification lets
//! the VM serve evaluated with the case's input on the VM and on the interpreter. A case where
//! both answer and differ is a construct the VM was let through on and must not be: it is
//! reported as "engines differ".

use regorus::Value;
use verdict::policy::vm::{EngineChoice, VmOptions};
use verdict::policy::{DataPath, Query};

use crate::run::{compile_with, input, Failure};
use crate::suite::Case;

pub const ENGINES_ENV: &str = "VERDICT_COMPLIANCE_ENGINES";

/// The category of a case whose VM-served entrypoints all agreed (the detail: how many).
pub const AGREE: &str = "engines agree";

pub fn enabled() -> bool {
    std::env::var_os(ENGINES_ENV).is_some_and(|v| !v.is_empty())
}

/// `Ok` when no VM-served entrypoint answers differently from the interpreter on the case's
/// input (or the case does not compile: nothing is served then).
pub fn compare(case: &Case) -> Result<(), Failure> {
    let auto = VmOptions {
        engine: EngineChoice::Auto,
        shadow_every: 0,
    };
    let (Ok(vm), Ok(interpreter)) = (
        compile_with(case, auto),
        compile_with(case, VmOptions::default()),
    ) else {
        return Ok(());
    };
    let Some(fast) = vm.fast_path() else {
        return Ok(());
    };
    if !fast.wait_verified(std::time::Duration::from_secs(60)) {
        return Err(Failure::new(
            "verification timeout",
            "verification did not finish",
        ));
    }
    // The VM serves decisions with an input only.
    let input = input(case).ok().flatten().unwrap_or_else(Value::new_object);
    let mut differences = Vec::new();
    let mut compared = 0;
    for entry in fast.status().into_iter().filter(|e| e.engine == "vm") {
        let Ok(path) = DataPath::parse(&entry.path) else {
            continue;
        };
        let ask = |set: &verdict::policy::PolicySet| {
            set.evaluate(Query {
                path: &path,
                input: Some(input.clone()),
                strict_builtin_errors: false,
            })
        };
        if let (Ok(a), Ok(b)) = (ask(&vm), ask(&interpreter)) {
            compared += 1;
            if a.result != b.result {
                differences.push(format!(
                    "{}: vm {} interpreter {}",
                    entry.path,
                    show(a.result),
                    show(b.result)
                ));
            }
        }
    }
    match (differences.is_empty(), compared) {
        (true, 0) => Ok(()),
        // Not a failure: how many VM-served entrypoints agreed, for the report's count.
        (true, n) => Err(Failure::new(AGREE, n.to_string())),
        (false, _) => Err(Failure::new("engines differ", differences.join("; "))),
    }
}

fn show(value: Option<Value>) -> String {
    value.map_or("undefined".into(), |v| {
        verdict::gojson::value_to_string(&v, false)
    })
}
