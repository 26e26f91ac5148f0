//! `AdmissionSet`: the immutable snapshot every review runs on: compiled templates by kind,
//! resolved constraints, the inventory, and what failed to load.
//!
//! Last known good per item: a template or constraint that fails to load keeps its previous
//! good version (re-resolved against the new inventory and templates) when there is one, as a
//! cluster keeps the old object when `kubectl apply` of a bad one is refused. The failure is
//! still reported.

use std::collections::BTreeMap;
use std::sync::Arc;

use regorus::Value;

use super::inventory::Inventory;
use super::matching::Match;
use super::resources::{Action, ConstraintDoc, Documents, TemplateDoc};
use super::schema;
use super::template::Template;
use super::LoadError;

/// A Constraint ready to run: its match, its parameters with defaults, its template.
pub struct Constraint {
    pub doc: ConstraintDoc,
    pub matcher: Match,
    pub parameters: Value,
    pub template: Arc<Template>,
}

impl Constraint {
    pub fn kind(&self) -> &str {
        &self.doc.kind
    }

    pub fn name(&self) -> &str {
        &self.doc.name
    }

    pub fn action(&self) -> Action {
        self.doc.action
    }
}

#[derive(Default)]
pub struct AdmissionSet {
    pub templates: BTreeMap<String, Arc<Template>>,
    /// Sorted by kind, then name.
    pub constraints: Vec<Constraint>,
    pub inventory: Arc<Inventory>,
    pub errors: Vec<LoadError>,
}

impl AdmissionSet {
    /// Compiles `docs` with `inventory`. `previous` supplies the last good version of items
    /// that fail now, and compiled templates that did not change. Blocking and CPU-bound.
    pub fn build(
        docs: Documents,
        inventory: Inventory,
        previous: Option<&AdmissionSet>,
    ) -> AdmissionSet {
        let mut errors = docs.errors;
        let inventory = match previous {
            Some(p) if *p.inventory == inventory => p.inventory.clone(),
            _ => Arc::new(inventory),
        };
        let reuse = previous.filter(|p| Arc::ptr_eq(&p.inventory, &inventory));
        let data = Value::from(inventory.data.clone());

        let mut templates: BTreeMap<String, Arc<Template>> = BTreeMap::new();
        for doc in docs.templates {
            if templates.contains_key(&doc.kind) {
                errors.push(LoadError::Template {
                    name: doc.name.clone(),
                    message: format!("another template already defines kind {}", doc.kind),
                });
                continue;
            }
            let unchanged = reuse
                .and_then(|p| p.templates.get(&doc.kind))
                .filter(|t| t.doc == doc)
                .cloned();
            let compiled = match unchanged {
                Some(t) => Ok(t),
                None => Template::compile(&doc, &data).map(Arc::new),
            };
            match compiled {
                Ok(t) => {
                    templates.insert(doc.kind.clone(), t);
                }
                Err(e) => {
                    errors.push(e);
                    let last_good = previous
                        .and_then(|p| p.templates.get(&doc.kind))
                        .and_then(|t| Template::compile(&t.doc, &data).ok());
                    if let Some(t) = last_good {
                        log_kept("ConstraintTemplate", &doc.name);
                        templates.insert(doc.kind.clone(), Arc::new(t));
                    }
                }
            }
        }

        let mut constraints: Vec<Constraint> = Vec::new();
        for doc in docs.constraints {
            if constraints
                .iter()
                .any(|c| c.doc.kind == doc.kind && c.doc.name == doc.name)
            {
                errors.push(LoadError::Constraint {
                    kind: doc.kind.clone(),
                    name: doc.name.clone(),
                    message: "defined twice".into(),
                });
                continue;
            }
            match resolve(&doc, &templates) {
                Ok(c) => constraints.push(c),
                Err(e) => {
                    errors.push(e);
                    let last_good = previous
                        .and_then(|p| p.constraint(&doc.kind, &doc.name))
                        .and_then(|c| resolve(&c.doc, &templates).ok());
                    if let Some(c) = last_good {
                        log_kept(&doc.kind, &doc.name);
                        constraints.push(c);
                    }
                }
            }
        }
        constraints.sort_by(|a, b| (a.kind(), a.name()).cmp(&(b.kind(), b.name())));
        for e in &errors {
            tracing::warn!(error = %e, "admission policy not loaded");
        }
        AdmissionSet {
            templates,
            constraints,
            inventory,
            errors,
        }
    }

    pub fn constraint(&self, kind: &str, name: &str) -> Option<&Constraint> {
        self.constraints
            .iter()
            .find(|c| c.kind() == kind && c.name() == name)
    }

    /// What is loaded and what failed, for `/v1/admission/status` and logs.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "templates": self.templates.values().map(|t| &t.doc.name).collect::<Vec<_>>(),
            "constraints": self.constraints.iter().map(|c| serde_json::json!({
                "kind": c.kind(), "name": c.name(), "enforcementAction": c.action(),
            })).collect::<Vec<_>>(),
            "inventory_objects": self.inventory.objects,
            "errors": self.errors.iter().map(|e| serde_json::json!({
                "message": e.to_string(), "detail": e,
            })).collect::<Vec<_>>(),
        })
    }
}

fn log_kept(kind: &str, name: &str) {
    tracing::warn!(kind, name, "keeping the last good version");
}

/// Binds a Constraint to its template: match criteria parsed, parameters checked against the
/// template's schema with its defaults applied.
fn resolve(
    doc: &ConstraintDoc,
    templates: &BTreeMap<String, Arc<Template>>,
) -> Result<Constraint, LoadError> {
    let fail = |message: String| LoadError::Constraint {
        kind: doc.kind.clone(),
        name: doc.name.clone(),
        message,
    };
    let Some(template) = templates.get(&doc.kind) else {
        return Err(LoadError::NoTemplate {
            kind: doc.kind.clone(),
            name: doc.name.clone(),
        });
    };
    let matcher = Match::parse(&doc.match_spec).map_err(&fail)?;
    let parameters = parameters(&template.doc, &doc.parameters).map_err(&fail)?;
    Ok(Constraint {
        doc: doc.clone(),
        matcher,
        parameters: Value::from(parameters),
        template: template.clone(),
    })
}

/// Missing parameters are an empty object, so that schema defaults still apply.
fn parameters(
    template: &TemplateDoc,
    given: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let given = if given.is_null() {
        serde_json::json!({})
    } else {
        given.clone()
    };
    match &template.schema {
        Some(s) => schema::apply(s, &given, "spec.parameters"),
        None => Ok(given),
    }
}
