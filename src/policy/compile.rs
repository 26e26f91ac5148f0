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

use regorus::{Engine, Value};

use super::assemble;
use super::checks::{check_packages_in_roots, check_rules_against_data, validate_rules};
use super::error::{self, CompileError};
use super::guard::{self, stack::COMPILE_STACK};
use super::rewrite::{self, keywords};
use super::rules::{rule_key, ModuleIndex};
use super::vm::{self, VmOptions};
use super::{Definitions, PolicyModule, PolicySet, TestCase};
use crate::bundle::{self, Bundle};

/// Interpreter work units between two reads of the clock for the evaluation time limit. One
/// read per unit cost ~9% of a payment decision (profiled); every 64 units costs nothing
/// measurable and still stops a runaway loop within microseconds of the limit.
pub(crate) const CHECK_INTERVAL: NonZeroU32 = match NonZeroU32::new(64) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Limits every evaluation of the compiled set runs under, and the compilation itself.
#[derive(Debug, Clone, Copy)]
pub struct CompileOptions {
    pub eval_timeout: Duration,
    /// Refuse bundles whose roots overlap. Off for `eval -d` and `test`, where paths are plain
    /// files merged into one data tree, as OPA treats them.
    pub check_overlap: bool,
    /// The longest a compilation may take before it is given up: parsing, validation and
    /// warming run inside regorus, and one builtin call there cannot be interrupted. The
    /// reloader must never wait on a bundle for ever.
    pub compile_timeout: Duration,
    /// Which engine serves decisions; the VM only where verified to agree (`policy::vm`).
    pub vm: VmOptions,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            eval_timeout: Duration::from_millis(500),
            check_overlap: true,
            compile_timeout: Duration::from_secs(30),
            vm: VmOptions::default(),
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
///
/// The work runs on a thread of its own that the caller waits for at most
/// `options.compile_timeout`. Past that the compilation is refused and its thread abandoned: it
/// ends when regorus returns, and its result is dropped; the caller goes on at once.
pub fn compile_with_data(
    bundles: &[Arc<Bundle>],
    options: CompileOptions,
    pushed: &Value,
) -> Result<PolicySet, CompileError> {
    compile_timed(bundles, options, pushed).0
}

/// How long the stages of one compilation took, as far as it got: parsing the modules, then
/// the rest (checks, data, analysis, validation). Bundle statuses report them as OPA's
/// `timer_rego_module_parse_ns` and `timer_rego_module_compile_ns`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompileStages {
    pub parse: Option<Duration>,
    pub compile: Option<Duration>,
}

/// `compile_with_data`, with the time each stage took, also when it failed. A compilation
/// given up (timeout, lost thread) reports no stage.
pub fn compile_timed(
    bundles: &[Arc<Bundle>],
    options: CompileOptions,
    pushed: &Value,
) -> (Result<PolicySet, CompileError>, CompileStages) {
    let (bundles, pushed) = (bundles.to_vec(), pushed.clone());
    on_compile_thread(options.compile_timeout, move |stages| {
        compile_unguarded(&bundles, options, &pushed, stages)
    })
}

/// Parses a bundle's modules as a compilation would, with its limits: what OPA's bundle reader
/// does before it checks a download's roots, so that a module that does not parse is the
/// download's error. Gives the bundle back, and how long parsing took (OPA's
/// `timer_rego_module_parse_ns`; none for a parse given up).
pub fn parse_timed(
    bundle: Bundle,
    options: CompileOptions,
) -> (Result<Bundle, CompileError>, Option<Duration>) {
    let (parsed, stages) = on_compile_thread(options.compile_timeout, move |stages| {
        let parsing = std::time::Instant::now();
        let parsed = parse_modules(&[&bundle], options).map(|_| ());
        stages.parse = Some(parsing.elapsed());
        parsed.map(|()| bundle)
    });
    (parsed, stages.parse)
}

/// Runs `work` on a thread of its own with the compile stack, waiting for it at most
/// `timeout`: past that the work is refused and its thread abandoned (it ends when regorus
/// returns, and its result is dropped). A panic inside is the engine's fault.
fn on_compile_thread<T: Send + 'static>(
    timeout: Duration,
    work: impl FnOnce(&mut CompileStages) -> Result<T, CompileError> + Send + 'static,
) -> (Result<T, CompileError>, CompileStages) {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("verdict-compile".into())
        .stack_size(COMPILE_STACK)
        .spawn(move || {
            let mut stages = CompileStages::default();
            // Parsing and merging run inside regorus too: a panic there refuses the bundles.
            let done = catch_unwind(AssertUnwindSafe(|| work(&mut stages)))
                .unwrap_or(Err(CompileError::EngineFault));
            let _ = tx.send((done, stages));
        });
    if spawned.is_err() {
        return (Err(CompileError::EngineFault), CompileStages::default());
    }
    match rx.recv_timeout(timeout) {
        Ok(done) => done,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => (
            Err(CompileError::Timeout(timeout)),
            CompileStages::default(),
        ),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            (Err(CompileError::EngineFault), CompileStages::default())
        }
    }
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
            // The data is the VM's too, and verification depends on it: verified again.
            let candidates =
                vm::candidates(&self.definitions.rule_paths, &self.definitions.generic_keys);
            Ok(PolicySet {
                id: super::next_id(),
                fast: vm::prepare(&engine, candidates, self.vm, self.eval_timeout),
                template: engine,
                base: self.base.clone(),
                definitions: self.definitions.clone(),
                eval_timeout: self.eval_timeout,
                vm: self.vm,
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
    stages: &mut CompileStages,
) -> Result<PolicySet, CompileError> {
    let refs: Vec<&Bundle> = bundles.iter().map(Arc::as_ref).collect();
    if options.check_overlap {
        bundle::check_overlap(&refs)?;
    }
    let parsing = std::time::Instant::now();
    let parsed = parse_modules(&refs, options);
    stages.parse = Some(parsing.elapsed());
    let (added, context) = parsed?;
    let compiling = std::time::Instant::now();
    let compiled = compile_parsed(
        added.engine,
        &refs,
        options,
        pushed,
        added.modules,
        added.parts,
        &context,
    );
    stages.compile = Some(compiling.elapsed());
    compiled
}

/// The modules of `refs` checked, rewritten for OPA's meaning and parsed into a new engine.
fn parse_modules(
    refs: &[&Bundle],
    options: CompileOptions,
) -> Result<(assemble::Added, rewrite::Context), CompileError> {
    let mut errors = Vec::new();
    // The texts regorus will parse, keywords leading references rewritten as OPA reads them
    // (a module may split in several); the rewrites below read them all first.
    let mut prepared = Vec::new();
    for b in refs {
        for m in &b.modules {
            // regorus's parser can take exponential time on nested literals: checked first.
            if let Err(e) = guard::check_text(&m.file, &m.source) {
                errors.push(e);
                continue;
            }
            match keywords::rewrite_keyword_refs(&m.source, m.rego_v0) {
                Ok(r) => {
                    let texts: Vec<String> = std::iter::once(r.module.into_owned())
                        .chain(r.split)
                        .collect();
                    prepared.push((*b, m, texts));
                }
                Err(e) => errors.push(e.rego_error(&m.file)),
            }
        }
    }
    let mut context = rewrite::Context::of(
        prepared
            .iter()
            .flat_map(|(_, _, texts)| texts.iter().map(String::as_str)),
    );
    let mut added = assemble::add_modules(
        assemble::new_engine(options.eval_timeout)?,
        &prepared,
        &context,
    );
    // References into generic documents that also hold literal rules are rewritten (rare):
    // known once the modules are parsed, they are then added again.
    if added.errors.is_empty() && context.learn_documents(added.engine.get_modules()) {
        added = assemble::add_modules(
            assemble::new_engine(options.eval_timeout)?,
            &prepared,
            &context,
        );
    }
    errors.append(&mut added.errors);
    if !errors.is_empty() {
        return Err(CompileError::Modules(errors));
    }
    Ok((added, context))
}

/// The modules parsed into `engine`: everything else a compilation does.
fn compile_parsed(
    mut engine: Engine,
    refs: &[&Bundle],
    options: CompileOptions,
    pushed: &Value,
    modules: Vec<PolicyModule>,
    parts: Vec<usize>,
    context: &rewrite::Context,
) -> Result<PolicySet, CompileError> {
    // Queries (the Query API, `eval`) are Rego v1, whatever the last module was.
    engine.set_rego_v0(false);
    // Last, so that the modules above keep their places in `parts`.
    if let Some(shims) = rewrite::mocks::shim_module(context.mocked()) {
        let file = format!("{}.rego", rewrite::mocks::PACKAGE);
        engine
            .add_policy(file, shims)
            .map_err(|e| CompileError::Modules(vec![error::parse_error(&format!("{e:#}"))]))?;
    }
    // Recursive rules would overflow the stack when run (validation runs every rule next).
    guard::recursion::check(engine.get_modules()).map_err(CompileError::Modules)?;

    // One index per bundle module, its split modules' rules merged into it.
    let mut parsed = engine.get_modules().iter().map(|m| ModuleIndex::of(m));
    let indexes: Vec<ModuleIndex> = parts
        .iter()
        .map(|n| {
            let mut index = parsed.next().unwrap_or_default();
            for split in parsed.by_ref().take(n.saturating_sub(1)) {
                index.rules.extend(split.rules);
                index.functions.extend(split.functions);
            }
            index
        })
        .collect();
    check_packages_in_roots(refs, &modules, &indexes)?;

    for b in refs {
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
    let mut generic_keys = HashSet::new();
    for index in indexes {
        rule_paths.extend(index.rules);
        function_paths.extend(index.functions);
        generic_keys.extend(index.generic.iter().map(|p| rule_key(p)));
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
        generic_keys,
        documents: context.documents().clone(),
        plans: Default::default(),
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
    let candidates = vm::candidates(&definitions.rule_paths, &definitions.generic_keys);
    Ok(PolicySet {
        id: super::next_id(),
        fast: vm::prepare(&engine, candidates, options.vm, options.eval_timeout),
        template: engine,
        base,
        definitions: Arc::new(definitions),
        eval_timeout: options.eval_timeout,
        vm: options.vm,
    })
}

#[cfg(test)]
#[path = "compile_tests.rs"]
pub(crate) mod tests;
