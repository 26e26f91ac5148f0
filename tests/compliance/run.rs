//! One case through verdict's decision core, judged the way OPA's own runner judges it
//! (v1/topdown/exported_test.go): modules compiled together, the query evaluated with its
//! bindings, the result set compared as a set of binding objects.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use regorus::Value;
use verdict::bundle::{Bundle, LoadOptions, RawFile};
use verdict::gojson;
use verdict::policy::{self, CompileError, CompileOptions, EvalError, QueryOptions};

use crate::suite::{self, Case};

/// Why a case does not pass, in the ledger's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub category: String,
    pub detail: String,
}

impl Failure {
    pub fn new(category: &str, detail: impl AsRef<str>) -> Failure {
        let mut detail = suite::one_line(detail.as_ref());
        if detail.chars().count() > 160 {
            detail = detail.chars().take(157).collect::<String>() + "...";
        }
        Failure {
            category: category.to_string(),
            detail,
        }
    }
}

/// The limit regorus's own timer puts on one evaluation. Generous: debug builds on a loaded
/// machine are slow, and a case that needs more than this is a failure worth seeing.
const EVAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one case: `Ok(())` when verdict answers as OPA does.
pub fn run(case: &Case) -> Result<(), Failure> {
    if case.skip {
        // Not run, and not counted as passing either.
        return Err(Failure::new("skipped", "the case is marked skip"));
    }
    let outcome = evaluate(case);
    let judged = judge(case, outcome)
        .map_err(|f| name_missing_builtins(case, f))
        .map_err(|f| name_parse_construct(case, f));
    match (judged, suite::newer_than_opa_1_9(case)) {
        (Err(_), Some(feature)) => Err(Failure::new("newer than OPA 1.9", feature)),
        (judged, _) => judged,
    }
}

/// What verdict answered: bindings per result, or why it could not answer.
pub enum Outcome {
    Results(Vec<Value>),
    Refused(CompileError),
    Failed(EvalError),
    BadInput(String),
}

fn evaluate(case: &Case) -> Outcome {
    let set = match compile(case) {
        Ok(set) => set,
        Err(Outcome::Refused(e)) => return Outcome::Refused(e),
        Err(other) => return other,
    };
    let input = match input(case) {
        Ok(input) => input,
        Err(e) => return e,
    };
    let options = QueryOptions {
        input,
        strict_builtin_errors: case.strict_error,
    };
    match set.query_with(&case.query, options) {
        Ok(results) => Outcome::Results(
            results
                .result
                .iter()
                .map(|r| visible(&r.bindings, case.ignore_generated_vars))
                .collect(),
        ),
        Err(e) => Outcome::Failed(e),
    }
}

/// The modules as OPA's runner names them (`test-<i>.rego`), the data as the bundle's
/// `data.json`, compiled as `verdict eval -d` compiles plain files.
fn compile(case: &Case) -> Result<policy::PolicySet, Outcome> {
    compile_with(case, policy::vm::VmOptions::default())
}

/// `compile` with the engine choice of `vm` (the engines comparison, `engines.rs`).
pub fn compile_with(case: &Case, vm: policy::vm::VmOptions) -> Result<policy::PolicySet, Outcome> {
    let mut files: Vec<RawFile> = case
        .modules
        .iter()
        .enumerate()
        .map(|(i, m)| RawFile {
            path: format!("test-{i}.rego"),
            bytes: m.as_bytes().to_vec(),
        })
        .collect();
    if let Some(data) = &case.data {
        files.push(RawFile {
            path: "/data.json".into(),
            bytes: data.to_string().into_bytes(),
        });
    }
    let bundle = Bundle::from_files("compliance", "", files, LoadOptions::default())
        .map_err(|e| Outcome::BadInput(format!("bundle: {e}")))?;
    let options = CompileOptions {
        eval_timeout: EVAL_TIMEOUT,
        check_overlap: false,
        vm,
        ..CompileOptions::default()
    };
    policy::compile(&[Arc::new(bundle)], options).map_err(Outcome::Refused)
}

/// `input`, or `input_term` evaluated as Rego (sets and non-string keys JSON cannot hold).
pub fn input(case: &Case) -> Result<Option<Value>, Outcome> {
    if let Some(term) = &case.input_term {
        let empty = policy::PolicySet::empty();
        let results = empty
            .query(&format!("__input__ := {term}"), None)
            .map_err(|e| Outcome::BadInput(format!("input_term: {}", e.detail())))?;
        let value = results
            .result
            .first()
            .and_then(|r| r.bindings.as_object().ok())
            .and_then(|b| b.get(&Value::from("__input__")).cloned());
        return Ok(value);
    }
    match &case.input {
        Some(json) => serde_json::from_value(json.clone())
            .map(Some)
            .map_err(|e| Outcome::BadInput(format!("input: {e}"))),
        None => Ok(None),
    }
}

/// The bindings `/v1/query` shows (wildcards and generated variables start with `_`), as the
/// JSON verdict writes them: sets become arrays and keys strings, as OPA's `ast.JSON` does
/// before its runner compares.
fn visible(bindings: &Value, ignore_generated: bool) -> Value {
    let mut shown = std::collections::BTreeMap::new();
    if let Ok(object) = bindings.as_object() {
        for (k, v) in object.iter() {
            let name = k.as_string().map(|s| s.to_string()).unwrap_or_default();
            let generated = name.starts_with('_') || (ignore_generated && name.starts_with('$'));
            if !generated {
                shown.insert(k.clone(), as_json(v));
            }
        }
    }
    Value::from(shown)
}

fn as_json(value: &Value) -> Value {
    let mut out = Vec::new();
    gojson::write_value(&mut out, value, None);
    serde_json::from_slice(&out).unwrap_or(Value::Undefined)
}

fn judge(case: &Case, outcome: Outcome) -> Result<(), Failure> {
    let wants_error = case.want_error.is_some() || case.want_error_code.is_some();
    match outcome {
        Outcome::BadInput(why) => Err(Failure::new("runner", why)),
        Outcome::Refused(CompileError::EngineFault) => {
            Err(Failure::new("panics", "while compiling the modules"))
        }
        Outcome::Refused(e) => Err(refused(&e)),
        Outcome::Failed(EvalError::EngineFault) => {
            Err(Failure::new("panics", "while evaluating the query"))
        }
        Outcome::Failed(EvalError::Timeout(_)) => {
            Err(Failure::new("timeout", "regorus's evaluation timer"))
        }
        Outcome::Failed(e) if wants_error => judge_error(case, &e),
        Outcome::Failed(e) => Err(unexpected_error(&e)),
        Outcome::Results(results) if wants_error => Err(Failure::new(
            "different result",
            format!(
                "answers {}; OPA fails with {}",
                show(&results),
                case.want_error_code
                    .as_deref()
                    .or(case.want_error.as_deref())
                    .unwrap_or_default()
            ),
        )),
        Outcome::Results(results) => judge_results(case, results),
    }
}

fn judge_results(case: &Case, results: Vec<Value>) -> Result<(), Failure> {
    if let Some(defined) = case.want_defined {
        if defined == results.is_empty() {
            let said = if defined { "undefined" } else { "defined" };
            return Err(Failure::new(
                "different result",
                format!("{said}, not as OPA"),
            ));
        }
    }
    let Some(want) = &case.want_result else {
        return Ok(());
    };
    let want: BTreeSet<Value> = want
        .iter()
        .map(|b| serde_json::from_value(serde_json::Value::Object(b.clone())))
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::new("runner", format!("want_result: {e}")))?;
    let got: BTreeSet<Value> = results
        .into_iter()
        .map(|b| if case.sort_bindings { sorted(b) } else { b })
        .collect();
    if got == want {
        return Ok(());
    }
    let got: Vec<Value> = got.into_iter().collect();
    let want: Vec<Value> = want.into_iter().collect();
    Err(Failure::new(
        "different result",
        format!("got {}; OPA {}", show(&got), show(&want)),
    ))
}

/// `sort_bindings`: each binding's array sorted, as OPA's runner sorts what it got.
fn sorted(bindings: Value) -> Value {
    let Ok(object) = bindings.as_object() else {
        return bindings;
    };
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in object.iter() {
        let v = match v.as_array() {
            Ok(items) => {
                let mut items = items.clone();
                items.sort();
                Value::from(items)
            }
            Err(_) => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::from(out)
}

fn judge_error(case: &Case, error: &EvalError) -> Result<(), Failure> {
    let errors = match error {
        EvalError::Policy(errors) | EvalError::Parse(errors) => errors.as_slice(),
        _ => &[],
    };
    if let Some(missing) = errors.iter().find_map(missing_function) {
        return Err(Failure::new("missing builtin", missing));
    }
    let code = errors.first().map_or("", |e| e.code);
    if let Some(want) = &case.want_error_code {
        if code != want {
            return Err(Failure::new(
                "error code differs",
                format!("{code}, OPA {want}: {}", error.detail()),
            ));
        }
    }
    if let Some(want) = &case.want_error {
        let text = error.detail();
        if !text.contains(want.as_str()) {
            return Err(Failure::new(
                "error text differs",
                format!("{text:?}, OPA {want:?}"),
            ));
        }
    }
    Ok(())
}

fn unexpected_error(error: &EvalError) -> Failure {
    let errors = match error {
        EvalError::Policy(errors) | EvalError::Parse(errors) => errors.as_slice(),
        _ => &[],
    };
    if let Some(missing) = errors.iter().find_map(missing_function) {
        return Failure::new("missing builtin", missing);
    }
    if let EvalError::Parse(errors) = error {
        return parse_failure(errors);
    }
    Failure::new(
        "different result",
        format!("fails where OPA answers: {}", error.detail()),
    )
}

/// A bundle refused at load: a parse error, a missing builtin, or a static check.
fn refused(error: &CompileError) -> Failure {
    let errors = error.errors();
    if let Some(missing) = errors.iter().find_map(missing_function) {
        return Failure::new("missing builtin", missing);
    }
    if errors.iter().any(|e| e.code == "rego_parse_error") {
        return parse_failure(errors);
    }
    Failure::new("refused at load", error.to_string())
}

/// regorus reports an unknown function whose result is bound as an extra argument as an
/// unsafe variable: name the function the case calls that regorus lacks instead.
fn name_missing_builtins(case: &Case, failure: Failure) -> Failure {
    let unknown_call =
        failure.category == "missing builtin" || failure.detail.contains("is unsafe");
    let missing = crate::builtins::missing(case);
    if unknown_call && !missing.is_empty() {
        return Failure::new("missing builtin", missing.join(" "));
    }
    failure
}

fn missing_function(error: &policy::RegoError) -> Option<String> {
    error
        .message
        .strip_prefix("undefined function ")
        .map(|f| f.trim_matches('`').to_string())
}

/// Parse failures, by the construct regorus does not read.
fn parse_failure(errors: &[policy::RegoError]) -> Failure {
    let text = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    let kind = if text.contains("maximum column width") {
        "long line"
    } else if text.contains("cannot parse number") {
        "number out of range"
    } else {
        "other"
    };
    Failure::new("parse", format!("{kind}: {text}"))
}

/// Names what regorus cannot parse where its message does not: a keyword after a dot (`p.if`,
/// `input.in`, `data.default`), which OPA reads as a plain key since 0.59.
fn name_parse_construct(case: &Case, failure: Failure) -> Failure {
    if failure.category == "parse"
        && failure.detail.starts_with("other: ")
        && crate::builtins::keyword_in_ref(case)
    {
        let detail = failure.detail.replacen("other: ", "keyword in ref: ", 1);
        return Failure::new("parse", detail);
    }
    failure
}

/// A short rendering of a result set, for a ledger line.
fn show(results: &[Value]) -> String {
    let mut out = Vec::new();
    gojson::write_value(&mut out, &Value::from(results.to_vec()), None);
    String::from_utf8_lossy(&out).into_owned()
}
