//! The decision core: a compiled, immutable policy set and the evaluation of one decision.
//!
//! Synchronous and transport-free: the HTTP Data API, the CLI's `eval` and `test`, and later
//! gRPC and admission all call `PolicySet::evaluate`. Nothing here parses or compiles Rego per
//! request; each evaluation clones a warmed engine (a few hundred nanoseconds) and runs it
//! under a time limit, with panics contained.

pub(crate) mod assemble;
pub mod ast;
pub mod builtins;
mod checks;
pub mod compile;
pub mod coverage;
pub mod engine;
pub mod error;
pub mod guard;
pub mod path;
mod plans;
mod query;
pub mod rewrite;
pub mod rules;
pub mod testing;
pub mod vm;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regorus::{Engine, Value};

use crate::bundle;

pub use compile::{
    compile, compile_timed, compile_with_data, parse_timed, CompileOptions, CompileStages,
};
pub use error::{summarize, CompileError, EvalError, Location, ParseDetails, RegoError};
pub use path::DataPath;
use path::Segment;
pub use query::QueryOptions;

/// A Rego module as `GET /v1/policies` lists it.
#[derive(Debug, Clone)]
pub struct PolicyModule {
    pub id: String,
    /// The name error locations use.
    pub file: String,
    pub raw: String,
    pub bundle: String,
}

/// A `test_*` rule and the file that defines it.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub path: Vec<String>,
    pub file: String,
}

/// What a client asks: a data path, an optional input, and OPA's evaluation switches.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub path: &'a DataPath,
    pub input: Option<Value>,
    pub strict_builtin_errors: bool,
}

/// The result of one decision. `None` is OPA's undefined: no rule or data produced a value.
#[derive(Debug, Clone)]
pub struct Decision {
    pub result: Option<Value>,
    pub eval_time: Duration,
    /// The time preparing the path took, on its first decision on this compilation (OPA's
    /// prepared-query cache miss); `None` when it was prepared already (a hit).
    pub prepare_time: Option<Duration>,
}

/// All modules and data of the active bundles (and the pushed data beside them), compiled and
/// warmed once per bundle revision and rebuilt cheaply per data write.
#[derive(Debug)]
pub struct PolicySet {
    /// Unique per compilation; names the set in each thread's warm engine slot.
    id: u64,
    template: Engine,
    /// The engine before pushed data joined it: modules and bundle data only. A data write
    /// rebuilds from here without parsing or checking a module again.
    base: Engine,
    definitions: Arc<Definitions>,
    eval_timeout: Duration,
    /// The entrypoints the bytecode VM serves, once verified; `None` on the interpreter only.
    fast: Option<Arc<vm::FastPath>>,
    vm: vm::VmOptions,
}

/// What the modules define: shared by every data revision of one compilation.
#[derive(Debug, Default)]
struct Definitions {
    rule_keys: HashSet<String>,
    /// Rule keys cut at a generic head (`data.p` of `p[q].r`): queried, not looked up.
    generic_keys: HashSet<String>,
    /// How each decision path is read, worked out on its first decision.
    plans: plans::Plans,
    /// Generic documents that also hold literal rules: ad-hoc queries into them are rewritten.
    documents: rewrite::generic::Documents,
    rule_paths: BTreeSet<Vec<String>>,
    function_paths: BTreeSet<Vec<String>>,
    /// Length of the longest rule path.
    rule_depth: usize,
    modules: Vec<PolicyModule>,
    tests: Vec<TestCase>,
}

impl PolicySet {
    /// An empty set: every path is undefined. Serves until the first bundle activates.
    pub fn empty() -> PolicySet {
        compile::compile(&[], CompileOptions::default()).unwrap_or_else(|_| PolicySet {
            id: next_id(),
            template: Engine::new(),
            base: Engine::new(),
            definitions: Arc::default(),
            eval_timeout: CompileOptions::default().eval_timeout,
            fast: None,
            vm: vm::VmOptions::default(),
        })
    }

    pub fn modules(&self) -> &[PolicyModule] {
        &self.definitions.modules
    }

    /// The `test_*` rules, for the test runner.
    pub fn tests(&self) -> &[TestCase] {
        &self.definitions.tests
    }

    /// The parsed modules, as regorus holds them.
    pub fn parsed_modules(&self) -> Vec<regorus::unstable::Ref<regorus::unstable::Module>> {
        let mut engine = self.base.clone();
        engine.get_modules().clone()
    }

    /// True when some rule defines the document at `path` or below it (OPA's "document
    /// undefined" rather than "document missing").
    pub fn has_rules_at(&self, path: &DataPath) -> bool {
        let Some(segments) = path.keys() else {
            return false;
        };
        self.rule_below(segments).is_some() || self.rule_above(segments).is_some()
    }

    /// The first rule at `segments` or below it. Paths sort element by element, so the rules
    /// under a prefix follow it: one ordered lookup, however many rules the bundle has (the
    /// decision log asks this of every decision).
    fn rule_below(&self, segments: &[String]) -> Option<&Vec<String>> {
        let rules = &self.definitions.rule_paths;
        rules
            .range::<[String], _>((
                std::ops::Bound::Included(segments),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .filter(|r| bundle::is_prefix(segments, r))
    }

    /// The rule strictly above `segments` that defines the document it lies in.
    fn rule_above(&self, segments: &[String]) -> Option<&Vec<String>> {
        let rules = &self.definitions.rule_paths;
        (0..segments.len()).find_map(|n| rules.get(&segments[..n]))
    }

    /// The document a decision at `path` is counted under in metrics: the path itself when it
    /// is a rule or holds rules, the rule it reads into when it lies below one, none when no
    /// rule is involved. Bounded by the policy's own rules, whatever a client asks for: a
    /// path below a rule can carry anything (`payment/decision/<merchant>`).
    pub fn rule_document(&self, path: &DataPath) -> Option<String> {
        let segments = path.keys()?;
        if self.rule_below(segments).is_some() {
            return Some(segments.join("/"));
        }
        self.rule_above(segments).map(|r| r.join("/"))
    }

    /// Evaluates one decision on this policy set.
    pub fn evaluate(&self, query: Query<'_>) -> Result<Decision, EvalError> {
        if let Some(segments) = query.path.keys() {
            if self.definitions.function_paths.contains(segments) {
                let mut engine = self.base.clone();
                let signature = rules::function_signature(engine.get_modules(), segments);
                return Err(EvalError::FunctionPath {
                    reference: query.path.display_ref(),
                    signature: signature.unwrap_or_default(),
                });
            }
        }
        let started = Instant::now();
        let (plan, prepare_time) = self
            .definitions
            .plans
            .get(query.path.display_ref(), || self.plan(query.path));
        if let (Plan::Rule { key, rest }, Some(fast), Some(input)) =
            (&plan, &self.fast, &query.input)
        {
            // Strict builtin errors are not verified on the VM: the interpreter answers them.
            let served = (!query.strict_builtin_errors)
                .then(|| vm::serve(fast, &self.template, key, input, vm::Place::Blocking))
                .flatten();
            if let Some(value) = served {
                return Ok(vm::decision(value, &query, *rest, started, prepare_time));
            }
        }
        let outcome = self.with_engine(|engine| self.run(engine, plan, query));
        self.decision(outcome, started.elapsed(), prepare_time)
    }

    fn run(
        &self,
        engine: &mut Engine,
        plan: Plan,
        query: Query<'_>,
    ) -> std::thread::Result<Result<Value, anyhow::Error>> {
        engine.set_input(query.input.unwrap_or(Value::Undefined));
        engine.set_strict_builtin_errors(query.strict_builtin_errors);
        let _strict = builtins::strict_scope(query.strict_builtin_errors);
        let _deadline = builtins::deadline_scope(self.eval_timeout);
        // regorus can panic on some inputs (see ENGINE-NOTES); a panic must cost one
        // decision, never the process or a worker thread.
        let root = query.path.segments().is_empty();
        let outcome = guard::stack::contained(|| match plan {
            Plan::Rule { key, rest } => engine
                .eval_rule(key)
                .map(|v| navigate(v, &query.path.segments()[rest..])),
            Plan::Query { text, rest } => engine.eval_query(text, false).map(|results| {
                navigate(first_value(results.result), &query.path.segments()[rest..])
            }),
        });
        outcome.map(|result| {
            result.map(|mut value| {
                if root {
                    rewrite::mocks::hide(&mut value);
                }
                value
            })
        })
    }

    fn decision(
        &self,
        outcome: std::thread::Result<Result<Value, anyhow::Error>>,
        eval_time: Duration,
        prepare_time: Option<Duration>,
    ) -> Result<Decision, EvalError> {
        match outcome {
            Ok(Ok(value)) => Ok(Decision {
                result: (value != Value::Undefined).then_some(value),
                eval_time,
                prepare_time,
            }),
            Ok(Err(e)) => Err(error::from_engine(&e, self.eval_timeout)),
            Err(_) => Err(EvalError::EngineFault),
        }
    }

    /// The bytecode fast path of this set, when `verdict.engine` is `auto`.
    pub fn fast_path(&self) -> Option<&vm::FastPath> {
        self.fast.as_deref()
    }

    /// Runs `eval` on this thread's engine for this policy set, cloning the warmed template
    /// only when the thread has none for it yet. Reusing the engine skips the clone, its drop
    /// and the copy-on-write of the input document, and keeps request threads from writing
    /// to the template's shared reference counts. An engine that panicked is not reused.
    fn with_engine<T, E>(
        &self,
        eval: impl FnOnce(&mut Engine) -> std::thread::Result<Result<T, E>>,
    ) -> std::thread::Result<Result<T, E>> {
        let cached = WARM_ENGINE.with(|slot| slot.borrow_mut().take());
        let mut engine = match cached {
            Some((id, engine)) if id == self.id => engine,
            _ => self.template.clone(),
        };
        let outcome = eval(&mut engine);
        if outcome.is_ok() {
            WARM_ENGINE.with(|slot| *slot.borrow_mut() = Some((self.id, engine)));
        }
        outcome
    }

    /// Chooses how to read `path`: the longest prefix that is a rule goes through regorus's
    /// exact-rule fast path; otherwise the leading keys are queried (packages, base data).
    /// Whatever lies past that prefix (sub-keys, array indexes) is walked in the result.
    fn plan(&self, path: &DataPath) -> Plan {
        // Below the deepest rule there is only base data: query no deeper than that and walk
        // the rest, so an absurdly long path stays a cheap lookup.
        let keys = path.leading_keys().min(self.definitions.rule_depth + 1);
        // The shortest rule on the path defines the whole document the path lies in. A rule
        // below it (`p.b.r contains "foo"` beside the generic `p[q].r contains s`) is only
        // part of that document, and regorus evaluating it alone leaves the rest out.
        for n in 1..=keys {
            let Some(key) = path
                .prefix_rule_key(n)
                .filter(|k| self.definitions.rule_keys.contains(k))
            else {
                continue;
            };
            if self.definitions.generic_keys.contains(&key) {
                return Plan::Query {
                    text: path.prefix_query(n),
                    rest: n,
                };
            }
            if n < keys {
                return Plan::Rule { key, rest: n };
            }
        }
        if let Some(key) = path
            .rule_key()
            .filter(|k| self.definitions.rule_keys.contains(*k))
        {
            return Plan::Rule {
                key: key.to_string(),
                rest: path.segments().len(),
            };
        }
        if let Some(key) = path
            .prefix_rule_key(keys)
            .filter(|k| self.definitions.rule_keys.contains(k))
        {
            return Plan::Rule { key, rest: keys };
        }
        Plan::Query {
            text: path.prefix_query(keys),
            rest: keys,
        }
    }
}

thread_local! {
    /// The engine this thread last evaluated with, and the policy set it belongs to. It keeps
    /// that set's data alive until the thread's next decision on a newer set replaces it.
    static WARM_ENGINE: RefCell<Option<(u64, Engine)>> = const { RefCell::new(None) };
}

/// Gives every compiled policy set its own identity for `WARM_ENGINE`.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// How one path is evaluated; `rest` is where the walk through the result begins.
#[derive(Debug, Clone)]
enum Plan {
    Rule { key: String, rest: usize },
    Query { text: String, rest: usize },
}

/// Walks `segments` down a document as OPA's references do: keys into objects, integers into
/// arrays (and objects with number keys), members of sets.
fn navigate(mut value: Value, segments: &[Segment]) -> Value {
    for segment in segments {
        let key = match segment {
            Segment::Key(k) => Value::from(k.as_str()),
            Segment::Index(i) => Value::from(*i),
        };
        let next = match (&value, segment) {
            (Value::Object(o), _) => o.get(&key).cloned(),
            (Value::Array(a), Segment::Index(i)) => {
                usize::try_from(*i).ok().and_then(|i| a.get(i)).cloned()
            }
            (Value::Set(s), _) => s.contains(&key).then_some(key),
            _ => None,
        };
        match next {
            Some(v) => value = v,
            None => return Value::Undefined,
        }
    }
    value
}

fn first_value(results: Vec<regorus::QueryResult>) -> Value {
    results
        .into_iter()
        .next()
        .and_then(|r| r.expressions.into_iter().next())
        .map_or(Value::Undefined, |e| e.value)
}

/// The path as plain keys, or `None` when it has array indexes (no rule lives there).
#[cfg(test)]
mod tests;
