//! Compiling one ConstraintTemplate's Rego into its own warmed regorus engine, as Gatekeeper
//! compiles each template on its own (two templates' libraries may share a package name), and
//! running its `violation` rule.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use regorus::{Engine, Value};

use super::resources::TemplateDoc;
use super::LoadError;
use crate::policy::engine::run_rule;
use crate::policy::error::EvalError;
use crate::policy::rewrite;
use crate::policy::rules::{rule_key, ModuleIndex};
use crate::policy::{error, guard};

/// How long validating one template's rules may take (each review sets its own limit).
const COMPILE_LIMIT: Duration = Duration::from_secs(2);

/// A compiled template: its engine holds the template's modules and `data.inventory`, and has
/// evaluated once, so that per-review clones start warm.
#[derive(Clone)]
pub struct Template {
    pub doc: TemplateDoc,
    engine: Engine,
    /// `data.<package>.violation`.
    rule: String,
}

/// One `violation` result as the template produced it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RawViolation {
    pub msg: String,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

/// Why a template's rule could not produce its violations for one review.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("evaluation exceeded the admission deadline")]
    Deadline,
    #[error("{0}")]
    Rego(String),
    #[error("the engine failed while evaluating")]
    EngineFault,
}

impl Template {
    /// Compiles and validates `doc`: every rule of every module runs once, so a call to an
    /// unknown function or an unsafe variable refuses the template now rather than failing
    /// each review later. Blocking and CPU-bound.
    pub fn compile(doc: &TemplateDoc, data: &Value) -> Result<Template, LoadError> {
        catch_unwind(AssertUnwindSafe(|| compile_unguarded(doc, data))).unwrap_or_else(|_| {
            Err(LoadError::Rego {
                name: doc.name.clone(),
                message: "the engine failed while compiling".into(),
            })
        })
    }

    /// Runs `violation` with `input`, stopping at `budget`.
    pub fn violations(
        &self,
        input: Value,
        budget: Duration,
    ) -> Result<Vec<RawViolation>, RunError> {
        let mut engine = self.engine.clone();
        let value = run_rule(&mut engine, &self.rule, input, budget).map_err(|e| match e {
            EvalError::Timeout(_) => RunError::Deadline,
            EvalError::EngineFault => RunError::EngineFault,
            EvalError::Policy(errors) | EvalError::Parse(errors) => RunError::Rego(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => RunError::Rego(other.to_string()),
        })?;
        results(&value).map_err(RunError::Rego)
    }
}

fn compile_unguarded(doc: &TemplateDoc, data: &Value) -> Result<Template, LoadError> {
    let rego_error = |message: String| LoadError::Rego {
        name: doc.name.clone(),
        message,
    };
    let rego_v0 = !doc.rego.v1;
    let texts: Vec<(String, &str)> = std::iter::once((
        format!("{}/template.rego", doc.name),
        doc.rego.rego.as_str(),
    ))
    .chain(
        (doc.rego.libs.iter().enumerate())
            .map(|(i, lib)| (format!("{}/lib{i}.rego", doc.name), lib.as_str())),
    )
    .collect();
    // A template's text must not stall the reloader in the parser: checked first.
    for (file, text) in &texts {
        guard::check_text(file, text).map_err(|e| rego_error(e.to_string()))?;
    }
    // The template and its libs in a new engine, with OPA's meaning where regorus reads the
    // text differently, as for bundle modules.
    let add_all = |context: &rewrite::Context| -> Result<(Engine, String), LoadError> {
        // Gatekeeper runs OPA with its default (a failing builtin is undefined); validation
        // runs every rule, and a loop that never ends must not hang the reloader.
        let mut engine = crate::policy::assemble::new_engine(COMPILE_LIMIT)
            .map_err(|e| rego_error(e.to_string()))?;
        engine.set_rego_v0(rego_v0);
        let mut package = None;
        for (file, text) in &texts {
            let text = rewrite::module_in(file, text, rego_v0, context);
            let added = engine
                .add_policy(file.clone(), text.into_owned())
                .map_err(|e| rego_error(error::parse_error(&format!("{e:#}")).to_string()))?;
            package.get_or_insert(added);
        }
        Ok((engine, package.unwrap_or_default()))
    };
    let mut context = rewrite::Context::of(texts.iter().map(|(_, t)| *t));
    let (mut engine, mut package) = add_all(&context)?;
    // Known once parsed: references into generic documents that also hold literal rules.
    if context.learn_documents(engine.get_modules()) {
        (engine, package) = add_all(&context)?;
    }
    // Recursion would overflow the stack in validation below or in a review.
    guard::recursion::check(engine.get_modules()).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        rego_error(lines.join("; "))
    })?;
    engine
        .add_data(data.clone())
        .map_err(|e| rego_error(format!("cannot add inventory: {e:#}")))?;
    let rule = format!("{package}.violation");
    let mut rules = Vec::new();
    for module in engine.get_modules().iter() {
        rules.extend(ModuleIndex::of(module).rules.iter().map(|p| rule_key(p)));
    }
    if !rules.contains(&rule) {
        return Err(rego_error(format!("{package} has no violation rule")));
    }
    engine.set_input(warm_input());
    guard::stack::deep(|| {
        for key in rules {
            let mut probe = engine.clone();
            if let Ok(Err(e)) = catch_unwind(AssertUnwindSafe(|| probe.eval_rule(key))) {
                let e = error::classify(&format!("{e:#}"));
                if error::is_static(&e) {
                    return Err(rego_error(e.to_string()));
                }
            }
        }
        // The warm-up evaluation leaves the engine analysed; its result does not matter.
        let _ = catch_unwind(AssertUnwindSafe(|| engine.eval_rule(rule.clone())));
        Ok(())
    })?;
    Ok(Template {
        doc: doc.clone(),
        engine,
        rule,
    })
}

fn warm_input() -> Value {
    input_value(Value::new_object(), Value::new_object())
}

/// `violation[{"msg": msg, "details": d}]` results, sorted by message for a stable answer.
fn results(value: &Value) -> Result<Vec<RawViolation>, String> {
    let items: Vec<&Value> = match value {
        Value::Undefined => return Ok(Vec::new()),
        Value::Set(set) => set.iter().collect(),
        Value::Array(items) => items.iter().collect(),
        _ => return Err("violation is not a set".into()),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let msg = item["msg"]
            .as_string()
            .map_err(|_| "a violation has no string msg".to_string())?
            .to_string();
        let details = match &item["details"] {
            Value::Undefined => serde_json::Value::Null,
            d => serde_json::to_value(d).unwrap_or(serde_json::Value::Null),
        };
        out.push(RawViolation { msg, details });
    }
    out.sort_by(|a, b| a.msg.cmp(&b.msg));
    Ok(out)
}

/// `{"review": ..., "parameters": ...}`: Gatekeeper's input document.
pub fn input_value(review: Value, parameters: Value) -> Value {
    let mut input = Value::new_object();
    if let Ok(map) = input.as_object_mut() {
        map.insert(Value::from("review"), review);
        map.insert(Value::from("parameters"), parameters);
    }
    input
}
