//! gator's test suites (`kind: Suite`, `test.gatekeeper.sh/v1alpha1`) run on verdict's own
//! admission core: each test compiles its template and constraint, each case reviews one
//! object (or AdmissionReview) and checks `violations: yes|no|N` assertions, optionally only
//! counting messages that match a regular expression, as gator counts them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::evaluate::Scope;
use super::inventory::Inventory;
use super::resources::{read_objects, str_at, Documents};
use super::review::Review;
use super::set::AdmissionSet;

/// gator does not bound a case's time; verdict gives each a generous one so a runaway loop
/// fails the case instead of hanging CI.
const CASE_DEADLINE: Duration = Duration::from_secs(30);

/// A suite file verdict cannot run at all (exit code 64 in `verdict verify`).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not a gator Suite: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
struct Suite {
    kind: String,
    #[serde(default)]
    tests: Vec<TestSpec>,
}

#[derive(Debug, Deserialize)]
struct TestSpec {
    #[serde(default)]
    name: String,
    template: String,
    constraint: String,
    #[serde(default)]
    cases: Vec<Case>,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Deserialize)]
struct Case {
    #[serde(default)]
    name: String,
    object: String,
    #[serde(default)]
    inventory: Vec<String>,
    #[serde(default)]
    assertions: Vec<Assertion>,
    #[serde(default)]
    skip: bool,
}

#[derive(Debug, Deserialize)]
struct Assertion {
    /// `yes`, `no` or a count; gator's default is `yes`.
    #[serde(default)]
    violations: Option<Json>,
    #[serde(default)]
    message: Option<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// `test/case`.
    pub name: String,
    pub skipped: bool,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
}

/// Runs every test of the suite at `path`.
pub fn run(path: &Path) -> Result<Vec<CaseResult>, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|error| SuiteError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let invalid = |message: String| SuiteError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let suite: Suite = yaml_serde::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    if suite.kind != "Suite" {
        return Err(invalid(format!("kind is {:?}", suite.kind)));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut results = Vec::new();
    for test in &suite.tests {
        run_test(dir, test, &mut results);
    }
    Ok(results)
}

fn run_test(dir: &Path, test: &TestSpec, results: &mut Vec<CaseResult>) {
    let result = |case: &Case, skipped, failure| CaseResult {
        name: format!("{}/{}", test.name, case.name),
        skipped,
        failure,
    };
    let docs = || -> Documents {
        let mut docs = Documents::default();
        for file in [&test.template, &test.constraint] {
            let file = dir.join(file);
            for object in read_objects(&file, &mut docs.errors) {
                docs.add(&file, object);
            }
        }
        docs
    };
    let set = AdmissionSet::build(docs(), Inventory::default(), None);
    let broken = (!set.errors.is_empty()).then(|| {
        set.errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    });
    for case in &test.cases {
        if test.skip || case.skip {
            results.push(result(case, true, None));
            continue;
        }
        if let Some(error) = &broken {
            results.push(result(case, false, Some(error.clone())));
            continue;
        }
        let failure = if case.inventory.is_empty() {
            run_case(dir, &set, case)
        } else {
            let inventory = inventory(dir, &case.inventory);
            run_case(dir, &AdmissionSet::build(docs(), inventory, None), case)
        };
        results.push(result(case, false, failure.err()));
    }
}

fn inventory(dir: &Path, files: &[String]) -> Inventory {
    let mut errors = Vec::new();
    let objects = files
        .iter()
        .flat_map(|f| read_objects(&dir.join(f), &mut errors))
        .collect();
    Inventory::from_objects(objects)
}

fn run_case(dir: &Path, set: &AdmissionSet, case: &Case) -> Result<(), String> {
    let mut errors = Vec::new();
    let object = read_objects(&dir.join(&case.object), &mut errors)
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no object ({errors:?})", case.object))?;
    let review = review_of(object).map_err(|e| e.to_string())?;
    let (violations, failures) =
        set.violations(&review, Scope::All, Instant::now() + CASE_DEADLINE);
    if let Some(f) = failures.first() {
        return Err(format!("evaluation failed: {f}"));
    }
    for assertion in &case.assertions {
        let regex = match &assertion.message {
            Some(m) => Some(regex::Regex::new(m).map_err(|e| format!("message {m:?}: {e}"))?),
            None => None,
        };
        let count = violations
            .iter()
            .filter(|v| regex.as_ref().is_none_or(|r| r.is_match(&v.msg)))
            .count();
        let want = assertion.violations.clone().unwrap_or(json!("yes"));
        let ok = match &want {
            Json::String(s) if s == "yes" => count > 0,
            Json::String(s) if s == "no" => count == 0,
            Json::Bool(b) => (count > 0) == *b,
            Json::Number(n) => n.as_u64() == Some(count as u64),
            other => {
                return Err(format!(
                    "violations must be yes, no or a count, found {other}"
                ))
            }
        };
        if !ok {
            let messages: Vec<&str> = violations.iter().map(|v| v.msg.as_str()).collect();
            return Err(format!(
                "got {count} violations{}, want {want}; messages: {messages:?}",
                assertion
                    .message
                    .as_ref()
                    .map(|m| format!(" matching {m:?}"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// The review gator makes of a case's object: an AdmissionReview as written, or a CREATE
/// of a plain object.
pub fn review_of(object: Json) -> Result<Review, super::ReviewError> {
    if str_at(&object, &["kind"]) == "AdmissionReview" {
        let mut object = object;
        // Hand-written reviews often leave out request.kind; gator takes it from the object.
        if let Some(request) = object.get_mut("request").and_then(Json::as_object_mut) {
            if request.get("kind").is_none_or(Json::is_null) {
                let kind = kind_of(request.get("object").unwrap_or(&Json::Null));
                request.insert("kind".into(), kind);
            }
        }
        return Review::from_json(object);
    }
    let request = json!({
        "uid": "",
        "kind": kind_of(&object),
        "operation": "CREATE",
        "name": str_at(&object, &["metadata", "name"]),
        "namespace": str_at(&object, &["metadata", "namespace"]),
        "userInfo": {},
        "object": object,
    });
    Review::from_json(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    }))
}

/// `{group, version, kind}` of an object, from its apiVersion and kind.
fn kind_of(object: &Json) -> Json {
    let api_version = str_at(object, &["apiVersion"]);
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    json!({"group": group, "version": version, "kind": str_at(object, &["kind"])})
}
