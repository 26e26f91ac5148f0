//! What OPA checks when it activates bundles, applied to the parsed set before it may serve:
//! packages inside their bundle's roots, no rule and base document at one path, and every
//! rule evaluated once (regorus reports unknown functions, unsafe variables and type errors
//! only when a rule runs).

use std::collections::BTreeSet;

use regorus::{Engine, Value};

use super::error::{self, CompileError, RegoError};
use super::rules::{rule_key, ModuleIndex};
use super::PolicyModule;
use crate::bundle::{self, is_prefix, Bundle};

pub(super) fn check_packages_in_roots(
    bundles: &[&Bundle],
    modules: &[PolicyModule],
    indexes: &[ModuleIndex],
) -> Result<(), CompileError> {
    for (module, index) in modules.iter().zip(indexes) {
        // Policies put through the policy API belong to no bundle; the API checked their
        // packages against every bundle's roots before compiling them.
        if module.bundle.is_empty() {
            continue;
        }
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
pub(super) fn check_rules_against_data(
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
                details: None,
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
pub(super) fn validate_rules(
    template: &Engine,
    rules: &BTreeSet<Vec<String>>,
) -> Result<(), CompileError> {
    let mut errors: Vec<RegoError> = Vec::new();
    for path in rules {
        let mut engine = template.clone();
        let key = rule_key(path);
        let result = super::guard::stack::contained(|| engine.eval_rule(key));
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
