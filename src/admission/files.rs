//! Reading the admission policies from their files: ConstraintTemplates, Constraints and the
//! inventory, compiled into a new `AdmissionSet` beside the last good one. The runtime's
//! reloader calls this (at start, on file changes, on SIGHUP); nothing here watches or swaps.

use std::path::PathBuf;

use super::inventory::Inventory;
use super::resources::read_paths;
use super::set::AdmissionSet;
use super::LoadError;
use crate::config::AdmissionConfig;

/// Reads and compiles everything; `None` (keep what serves) when a configured path is gone
/// altogether, which is a mount being replaced or a mistake, never "no policies". Blocking
/// and CPU-bound.
pub fn load_set(config: &AdmissionConfig, previous: Option<&AdmissionSet>) -> Option<AdmissionSet> {
    if let Some(missing) = config.policies.iter().find(|p| !p.exists()) {
        tracing::error!(path = %missing.display(), "admission policy path missing; keeping the last good policies");
        return None;
    }
    let docs = read_paths(&config.policies);
    let mut errors: Vec<LoadError> = Vec::new();
    let inventory = Inventory::load(config.inventory.as_deref(), &mut errors);
    let mut set = AdmissionSet::build(docs, inventory, previous);
    set.errors.extend(errors);
    tracing::info!(
        templates = set.templates.len(),
        constraints = set.constraints.len(),
        errors = set.errors.len(),
        "admission policies loaded"
    );
    Some(set)
}

/// The trees whose every file is admission policy or inventory, watched recursively.
pub fn policy_trees(config: &AdmissionConfig) -> Vec<PathBuf> {
    config
        .policies
        .iter()
        .chain(config.inventory.as_ref())
        .cloned()
        .collect()
}
