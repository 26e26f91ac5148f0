//! Turning bundles into a `PolicySet`: one engine holding every module and data document,
//! checked the way OPA checks at activation, validated by evaluation, and warmed.
//!
//! regorus only parses at load; unknown functions, unsafe variables and type errors surface when
//! a rule first runs. So every rule is evaluated once here, off the request path, and a bundle
//! whose rules cannot run is refused before it can replace the one serving.

use std::collections::{BTreeSet, HashSet};
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

use super::error::{self, CompileError, RegoError};
use super::rules::{rule_key, ModuleIndex};
use super::{PolicyModule, PolicySet, TestCase};
use crate::bundle::{self, is_prefix, Bundle};

/// Interpreter work units between two reads of the clock for the evaluation time limit. One
/// read per unit cost ~9% of a payment decision (profiled); every 64 units costs nothing
/// measurable and still stops a runaway loop within microseconds of the limit.
const CHECK_INTERVAL: NonZeroU32 = match NonZeroU32::new(64) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Limits every evaluation of the compiled set runs under.
#[derive(Debug, Clone, Copy)]
pub struct CompileOptions {
    pub eval_timeout: Duration,
    /// Refuse bundles whose roots overlap. Off for `eval -d` and `test`, where paths are plain
    /// files merged into one data tree, as OPA treats them.
    pub check_overlap: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            eval_timeout: Duration::from_millis(500),
            check_overlap: true,
        }
    }
}

/// Compiles the bundles that will be active together. Blocking and CPU-bound: run it on a
/// blocking thread, never on the async runtime.
pub fn compile(
    bundles: &[Arc<Bundle>],
    options: CompileOptions,
) -> Result<PolicySet, CompileError> {
    // Parsing and merging run inside regorus too: a panic there refuses the bundles.
    catch_unwind(AssertUnwindSafe(|| compile_unguarded(bundles, options)))
        .unwrap_or(Err(CompileError::EngineFault))
}

fn compile_unguarded(
    bundles: &[Arc<Bundle>],
    options: CompileOptions,
) -> Result<PolicySet, CompileError> {
    let refs: Vec<&Bundle> = bundles.iter().map(Arc::as_ref).collect();
    if options.check_overlap {
        bundle::check_overlap(&refs)?;
    }

    let mut engine = Engine::new();
    // OPA's default: a failing builtin makes its expression undefined, not the query an error.
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: options.eval_timeout,
        check_interval: CHECK_INTERVAL,
    });

    let mut modules = Vec::new();
    let mut errors = Vec::new();
    for b in &refs {
        for m in &b.modules {
            engine.set_rego_v0(m.rego_v0);
            match engine.add_policy(m.file.clone(), m.source.clone()) {
                Ok(_) => modules.push(PolicyModule {
                    id: module_id(&b.name, &m.path),
                    file: m.file.clone(),
                    raw: m.source.clone(),
                    bundle: b.name.clone(),
                }),
                Err(e) => errors.push(error::parse_error(&format!("{e:#}"))),
            }
        }
    }
    if !errors.is_empty() {
        return Err(CompileError::Modules(errors));
    }
    // Queries (the Query API, `eval`) are Rego v1, whatever the last module was.
    engine.set_rego_v0(false);

    let indexes: Vec<ModuleIndex> = engine
        .get_modules()
        .iter()
        .map(|m| ModuleIndex::of(m))
        .collect();
    check_packages_in_roots(&refs, &modules, &indexes)?;

    for b in &refs {
        for (file, document) in b.data_documents() {
            engine
                .add_data(document)
                .map_err(|_| CompileError::DataConflict {
                    bundle: b.name.clone(),
                    file: file.path.clone(),
                    path: file.dir.join("/"),
                })?;
        }
    }

    let mut tests = Vec::new();
    for (module, index) in modules.iter().zip(&indexes) {
        for path in &index.rules {
            let is_test = path
                .last()
                .is_some_and(|n| n.starts_with("test_") || n.starts_with("todo_test_"));
            if is_test && !tests.iter().any(|t: &TestCase| &t.path == path) {
                tests.push(TestCase {
                    path: path.clone(),
                    file: module.file.clone(),
                });
            }
        }
    }
    let mut rule_paths = BTreeSet::new();
    let mut function_paths = BTreeSet::new();
    for index in indexes {
        rule_paths.extend(index.rules);
        function_paths.extend(index.functions);
    }
    check_rules_against_data(&engine.get_data(), &rule_paths)?;

    // The first evaluation runs regorus's analysis (safety, scheduling) and leaves the engine
    // prepared, so that per-request clones start warm.
    // A panic here is caught by `compile` itself.
    if let Err(e) = engine.eval_query("true".into(), false) {
        return Err(CompileError::Modules(vec![error::classify(&format!(
            "{e:#}"
        ))]));
    }
    validate_rules(&engine, &rule_paths)?;

    Ok(PolicySet {
        id: super::next_id(),
        rule_keys: rule_paths
            .iter()
            .map(|p| rule_key(p))
            .collect::<HashSet<_>>(),
        rule_depth: rule_paths
            .iter()
            .chain(&function_paths)
            .map(Vec::len)
            .max()
            .unwrap_or(0),
        rule_paths,
        function_paths,
        modules,
        tests,
        eval_timeout: options.eval_timeout,
        template: engine,
    })
}

/// OPA's policy id for a bundle module: the bundle's name joined with the path inside it.
fn module_id(bundle: &str, path: &str) -> String {
    format!(
        "{}/{}",
        bundle.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

fn check_packages_in_roots(
    bundles: &[&Bundle],
    modules: &[PolicyModule],
    indexes: &[ModuleIndex],
) -> Result<(), CompileError> {
    for (module, index) in modules.iter().zip(indexes) {
        let Some(b) = bundles.iter().find(|b| b.name == module.bundle) else {
            continue;
        };
        let roots = b.manifest.root_paths();
        if !roots.iter().any(|r| is_prefix(r, &index.package)) {
            return Err(CompileError::PackageOutsideRoots {
                bundle: b.name.clone(),
                roots: bundle::go_list(&b.manifest.roots()),
                package: index.package.join("."),
                file: module.file.clone(),
            });
        }
    }
    Ok(())
}

/// A rule and a base document may not claim the same path (regorus would silently return
/// the data; OPA refuses the bundle).
fn check_rules_against_data(
    data: &Value,
    rules: &BTreeSet<Vec<String>>,
) -> Result<(), CompileError> {
    let mut errors = Vec::new();
    for path in rules {
        let mut current = data;
        let mut conflict = true;
        for segment in path {
            match current.as_object() {
                Ok(object) => match object.get(&Value::from(segment.as_str())) {
                    Some(next) => current = next,
                    None => {
                        conflict = false;
                        break;
                    }
                },
                Err(_) => break,
            }
        }
        if conflict {
            errors.push(RegoError {
                code: "rego_compile_error",
                message: format!("conflicting rule for data path {} found", path.join("/")),
                location: None,
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CompileError::Modules(errors))
    }
}

/// Evaluates every rule once with no input. Errors no input could cause (unknown functions,
/// unsafe variables, recursion, arity) refuse the bundle; input-dependent errors do not.
fn validate_rules(template: &Engine, rules: &BTreeSet<Vec<String>>) -> Result<(), CompileError> {
    let mut errors: Vec<RegoError> = Vec::new();
    for path in rules {
        let mut engine = template.clone();
        let key = rule_key(path);
        let result = catch_unwind(AssertUnwindSafe(|| engine.eval_rule(key)));
        if let Ok(Err(e)) = result {
            let e = error::classify(&format!("{e:#}"));
            if error::is_static(&e) && !errors.contains(&e) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CompileError::Modules(errors))
    }
}
