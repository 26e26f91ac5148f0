//! Assembling the engine a compilation works on: a new engine with verdict's builtins and
//! limits, and the bundle modules added to it, each rewritten for OPA's meaning.

use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::Engine;

use super::compile::CHECK_INTERVAL;
use super::error::{self, RegoError};
use super::{guard, rewrite, PolicyModule};
use crate::bundle::{Bundle, ModuleFile};

/// An engine with verdict's builtins, OPA's lenient builtin errors and the evaluation time
/// limit `eval_timeout`, and no module yet: what bundles and Gatekeeper templates compile on.
pub(crate) fn new_engine(eval_timeout: Duration) -> Result<Engine, super::builtins::RegisterError> {
    let mut engine = Engine::new();
    engine.set_policy_length_config(guard::length_config());
    super::builtins::register(&mut engine)?;
    // OPA's default: a failing builtin makes its expression undefined, not the query an error.
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: eval_timeout,
        check_interval: CHECK_INTERVAL,
    });
    Ok(engine)
}

/// The bundle modules added to an engine, each rewritten for OPA's meaning in `context`.
pub(super) struct Added {
    pub engine: Engine,
    pub modules: Vec<PolicyModule>,
    /// How many engine modules each module became.
    pub parts: Vec<usize>,
    pub errors: Vec<RegoError>,
}

pub(super) fn add_modules(
    mut engine: Engine,
    prepared: &[(&Bundle, &ModuleFile, Vec<String>)],
    context: &rewrite::Context,
) -> Added {
    let (mut modules, mut parts, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for (b, m, texts) in prepared {
        engine.set_rego_v0(m.rego_v0);
        // OPA's meaning where regorus reads the module differently; `raw` stays as written.
        let added = texts
            .iter()
            .map(|text| {
                let text = rewrite::module_in(&m.file, text, m.rego_v0, context).into_owned();
                engine.add_policy(m.file.clone(), text)
            })
            .try_fold(0, |n, added| added.map(|_| n + 1));
        match added {
            Ok(n) => {
                parts.push(n);
                modules.push(PolicyModule {
                    id: b.module_id(&m.path),
                    file: m.file.clone(),
                    raw: m.source.clone(),
                    bundle: b.name.clone(),
                })
            }
            Err(e) => errors.push(error::parse_error(&format!("{e:#}"))),
        }
    }
    Added {
        engine,
        modules,
        parts,
        errors,
    }
}
