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
use super::{Definitions, PolicyModule, PolicySet, TestCase};
use crate::bundle::{self, is_prefix, Bundle};

/// Interpreter work units between two reads of the clock for the evaluation time limit. One
/// read per unit cost ~9% of a payment decision (profiled); every 64 units costs nothing
/// measurable and still stops a runaway loop within microseconds of the limit.
pub(crate) const CHECK_INTERVAL: NonZeroU32 = match NonZeroU32::new(64) {
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
    compile_with_data(bundles, options, &Value::new_object())
}

/// Compiles the bundles with the data pushed through the Data API beside theirs (`pushed`:
/// an object, already cleared of the bundles' roots).
pub fn compile_with_data(
    bundles: &[Arc<Bundle>],
    options: CompileOptions,
    pushed: &Value,
) -> Result<PolicySet, CompileError> {
    // Parsing and merging run inside regorus too: a panic there refuses the bundles.
    catch_unwind(AssertUnwindSafe(|| {
        compile_unguarded(bundles, options, pushed)
    }))
    .unwrap_or(Err(CompileError::EngineFault))
}

impl PolicySet {
    /// The same modules and bundle data with another pushed-data tree: what a Data API write
    /// publishes. Modules are neither parsed nor validated again (static errors do not depend
    /// on data); the data is merged into the bundle-only engine, checked against the rules as
    /// at activation, and the engine warmed. Blocking: run it on a blocking thread.
    pub fn with_pushed_data(&self, pushed: &Value) -> Result<PolicySet, CompileError> {
        catch_unwind(AssertUnwindSafe(|| {
            let mut engine = self.base.clone();
            add_pushed(&mut engine, pushed)?;
            check_rules_against_data(&engine.get_data(), &self.definitions.rule_paths)?;
            warm(&mut engine)?;
            Ok(PolicySet {
                id: super::next_id(),
                template: engine,
                base: self.base.clone(),
                definitions: self.definitions.clone(),
                eval_timeout: self.eval_timeout,
            })
        }))
        .unwrap_or(Err(CompileError::EngineFault))
    }
}

fn add_pushed(engine: &mut Engine, pushed: &Value) -> Result<(), CompileError> {
    if pushed.as_object().is_ok_and(|o| o.is_empty()) {
        return Ok(());
    }
    engine
        .add_data(pushed.clone())
        .map_err(|e| CompileError::PushedData(format!("{e:#}")))
}

/// The first evaluation runs regorus's analysis (safety, scheduling) and leaves the engine
/// prepared, so that per-request clones start warm.
fn warm(engine: &mut Engine) -> Result<(), CompileError> {
    engine
        .eval_query("true".into(), false)
        .map(|_| ())
        .map_err(|e| CompileError::Modules(vec![error::classify(&format!("{e:#}"))]))
}

fn compile_unguarded(
    bundles: &[Arc<Bundle>],
    options: CompileOptions,
    pushed: &Value,
) -> Result<PolicySet, CompileError> {
    let refs: Vec<&Bundle> = bundles.iter().map(Arc::as_ref).collect();
    if options.check_overlap {
        bundle::check_overlap(&refs)?;
    }

    let mut engine = Engine::new();
    super::builtins::register(&mut engine)?;
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
    let base = engine.clone();
    add_pushed(&mut engine, pushed)?;
    check_rules_against_data(&engine.get_data(), &rule_paths)?;

    // A panic here is caught by `compile_with_data` itself.
    warm(&mut engine)?;
    validate_rules(&engine, &rule_paths)?;

    let definitions = Definitions {
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
    };
    Ok(PolicySet {
        id: super::next_id(),
        template: engine,
        base,
        definitions: Arc::new(definitions),
        eval_timeout: options.eval_timeout,
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
/// the data; OPA refuses the bundle, and refuses a Data API write with `ast.CheckPathConflicts`).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{LoadOptions, RawFile};
    use crate::policy::{DataPath, Query};

    fn set(files: &[(&str, &str)]) -> PolicySet {
        let files = files
            .iter()
            .map(|(path, text)| RawFile {
                path: path.to_string(),
                bytes: text.as_bytes().to_vec(),
            })
            .collect();
        let bundle = Bundle::from_files("b", "", files, LoadOptions::default()).unwrap();
        compile(&[Arc::new(bundle)], CompileOptions::default()).unwrap()
    }

    fn eval(set: &PolicySet, path: &str) -> Option<Value> {
        let path = DataPath::parse(path).unwrap();
        let query = Query {
            path: &path,
            input: None,
            strict_builtin_errors: false,
        };
        set.evaluate(query).unwrap().result
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn pushed_data_joins_the_bundle_data_and_can_be_taken_back() {
        let manifest = r#"{"roots": ["app", "limits/roles"]}"#;
        let s = set(&[
            ("/.manifest", manifest),
            ("/app/p.rego", "package app\n\nn := count(data.keys)\n"),
            ("/limits/roles/data.json", r#"{"admin": 1}"#),
        ]);
        assert_eq!(eval(&s, "app/n"), None);
        let pushed = s
            .with_pushed_data(&json(r#"{"keys": {"a": 1, "b": 2}, "limits": {"max": 9}}"#))
            .unwrap();
        assert_eq!(eval(&pushed, "app/n"), Some(Value::from(2u64)));
        assert_eq!(
            eval(&pushed, "limits"),
            Some(json(r#"{"max": 9, "roles": {"admin": 1}}"#))
        );
        // Rebuilt from the bundle-only engine: a removal really removes.
        let emptied = pushed.with_pushed_data(&Value::new_object()).unwrap();
        assert_eq!(eval(&emptied, "app/n"), None);
        assert_eq!(
            eval(&emptied, "limits"),
            Some(json(r#"{"roles": {"admin": 1}}"#))
        );
    }

    #[test]
    fn pushed_data_may_not_collide_with_rules_or_bundle_data() {
        let s = set(&[
            ("/.manifest", r#"{"roots": ["app", "limits/roles"]}"#),
            ("/app/p.rego", "package app\n\nallow := true\n"),
            ("/limits/roles/data.json", r#"{"admin": 1}"#),
        ]);
        let err = s
            .with_pushed_data(&json(r#"{"app": {"allow": false}}"#))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("conflicting rule for data path app/allow found"),
            "{err}"
        );
        let err = s.with_pushed_data(&json(r#"{"limits": 5}"#)).unwrap_err();
        assert!(matches!(err, CompileError::PushedData(_)), "{err}");
    }
}
