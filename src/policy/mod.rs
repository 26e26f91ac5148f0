//! The decision core: a compiled, immutable policy set and the evaluation of one decision.
//!
//! Synchronous and transport-free: the HTTP Data API, the CLI's `eval` and `test`, and later
//! gRPC and admission all call `PolicySet::evaluate`. Nothing here parses or compiles Rego per
//! request; each evaluation clones a warmed engine (a few hundred nanoseconds) and runs it
//! under a time limit, with panics contained.

pub mod compile;
pub mod error;
pub mod json;
pub mod path;
pub mod rules;
pub mod testing;

use std::collections::{BTreeSet, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use regorus::{Engine, Value};

pub use compile::{compile, CompileOptions};
pub use error::{CompileError, EvalError, Location, RegoError};
pub use path::DataPath;

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
    /// True when the path was an exact rule evaluated through the prepared fast path (OPA
    /// reports the equivalent as a prepared-query cache hit).
    pub prepared: bool,
}

/// All modules and data of the active bundles, compiled and warmed once per bundle revision.
#[derive(Debug)]
pub struct PolicySet {
    template: Engine,
    rule_keys: HashSet<String>,
    rule_paths: BTreeSet<Vec<String>>,
    function_paths: BTreeSet<Vec<String>>,
    modules: Vec<PolicyModule>,
    tests: Vec<TestCase>,
    eval_timeout: Duration,
}

impl PolicySet {
    /// An empty set: every path is undefined. Serves until the first bundle activates.
    pub fn empty() -> PolicySet {
        compile::compile(&[], CompileOptions::default()).unwrap_or_else(|_| PolicySet {
            template: Engine::new(),
            rule_keys: HashSet::new(),
            rule_paths: BTreeSet::new(),
            function_paths: BTreeSet::new(),
            modules: Vec::new(),
            tests: Vec::new(),
            eval_timeout: CompileOptions::default().eval_timeout,
        })
    }

    pub fn modules(&self) -> &[PolicyModule] {
        &self.modules
    }

    /// The `test_*` rules, for the test runner.
    pub fn tests(&self) -> &[TestCase] {
        &self.tests
    }

    /// True when some rule defines the document at `path` or below it (OPA's "document
    /// undefined" rather than "document missing").
    pub fn has_rules_at(&self, path: &DataPath) -> bool {
        let Some(prefix) = plain_segments(path) else {
            return false;
        };
        self.rule_paths
            .iter()
            .any(|r| bundle::is_prefix(&prefix, r) || bundle::is_prefix(r, &prefix))
    }

    /// Evaluates one decision on this policy set.
    pub fn evaluate(&self, query: Query<'_>) -> Result<Decision, EvalError> {
        if let Some(segments) = plain_segments(query.path) {
            if self.function_paths.contains(&segments) {
                return Err(EvalError::FunctionPath(query.path.display_ref()));
            }
        }
        let started = Instant::now();
        let mut engine = self.template.clone();
        if let Some(input) = query.input {
            engine.set_input(input);
        }
        if query.strict_builtin_errors {
            engine.set_strict_builtin_errors(true);
        }
        let fast = query
            .path
            .rule_key()
            .filter(|k| self.rule_keys.contains(*k))
            .map(str::to_string);
        let prepared = fast.is_some();
        // regorus can panic on some inputs (see ENGINE-NOTES); a panic must cost one decision,
        // never the process or a worker thread.
        let outcome = catch_unwind(AssertUnwindSafe(|| match fast {
            Some(key) => engine.eval_rule(key),
            None => engine
                .eval_query(query.path.query(), false)
                .map(|results| first_value(results.result)),
        }));
        let eval_time = started.elapsed();
        match outcome {
            Ok(Ok(value)) => Ok(Decision {
                result: (value != Value::Undefined).then_some(value),
                eval_time,
                prepared,
            }),
            Ok(Err(e)) => Err(error::from_engine(&e, self.eval_timeout)),
            Err(_) => Err(EvalError::EngineFault),
        }
    }
}

impl PolicySet {
    /// Evaluates an ad-hoc Rego query (`verdict eval`), with every result and binding.
    pub fn query(
        &self,
        text: &str,
        input: Option<Value>,
    ) -> Result<regorus::QueryResults, EvalError> {
        check_query_syntax(text)?;
        let mut engine = self.template.clone();
        if let Some(input) = input {
            engine.set_input(input);
        }
        match catch_unwind(AssertUnwindSafe(|| {
            engine.eval_query(text.to_string(), false)
        })) {
            Ok(Ok(results)) => Ok(results),
            Ok(Err(e)) => Err(error::from_engine(&e, self.eval_timeout)),
            Err(_) => Err(EvalError::EngineFault),
        }
    }
}

/// Parses a query on its own first, so a syntax error is reported as one (OPA's 400), not
/// as an evaluation failure.
fn check_query_syntax(text: &str) -> Result<(), EvalError> {
    let parsed = regorus::Source::from_contents("<query.rego>".into(), text.to_string()).and_then(
        |source| {
            let mut parser = regorus::unstable::Parser::new(&source)?;
            parser.enable_rego_v1()?;
            parser.parse_user_query().map(|_| ())
        },
    );
    parsed.map_err(|e| EvalError::Parse(vec![error::parse_error(&format!("{e:#}"))]))
}

fn first_value(results: Vec<regorus::QueryResult>) -> Value {
    results
        .into_iter()
        .next()
        .and_then(|r| r.expressions.into_iter().next())
        .map_or(Value::Undefined, |e| e.value)
}

/// The path as plain keys, or `None` when it has array indexes (no rule lives there).
fn plain_segments(path: &DataPath) -> Option<Vec<String>> {
    path.segments()
        .iter()
        .map(|s| match s {
            path::Segment::Key(k) => Some(k.clone()),
            path::Segment::Index(_) => None,
        })
        .collect()
}

use crate::bundle;
