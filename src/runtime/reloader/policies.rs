//! Policy API writes in the reloader, checked as OPA's server checks them (server.go
//! `v1PoliciesPut`/`v1PoliciesDelete`): an id that names a bundle's module, or a package under
//! a bundle's roots, is refused; a module is parsed on its own first, then compiled with every
//! active bundle, the other policies and the pushed data; only a set that compiles is stored
//! and published, and only then is the client answered.

use std::sync::Arc;
use std::time::Instant;

use super::{present, writes, Reloader};
use crate::bundle::Bundle;
use crate::policy::{self, ast, CompileError, PolicySet};
use crate::runtime::policies::{self as api, PolicyOp, PolicyTimings};
use crate::runtime::pushed::{check_scope, Owner, WriteError, Written};
use crate::runtime::store::StoredPolicies;
use crate::runtime::{AppState, Snapshot};

impl Reloader {
    pub(super) fn write_policy(
        &mut self,
        state: &AppState,
        op: &PolicyOp,
    ) -> Result<Written, WriteError> {
        let current = state.snapshot();
        let owners = writes::owners(&self.active);
        let mut next = self.policies.clone();
        let (id, parse_ns) = match op {
            PolicyOp::Put { id, raw } => {
                check_id_scope(&current, &owners, id)?;
                if self.policies.get(id) == Some(raw) {
                    return Ok(Written::Policy(None));
                }
                let started = Instant::now();
                if ast::is_empty_module(raw) {
                    return Err(WriteError::EmptyModule { id: id.clone() });
                }
                let parsed =
                    ast::parse(id, raw, self.load.v0_compatible).map_err(WriteError::Module)?;
                let parse_ns = started.elapsed().as_nanos();
                check_scope(&owners, &parsed.package)?;
                next.insert(id.clone(), raw.clone());
                (id, parse_ns)
            }
            PolicyOp::Delete { id } => {
                check_id_scope(&current, &owners, id)?;
                if next.remove(id).is_none() {
                    return Err(WriteError::PolicyNotFound { id: id.clone() });
                }
                (id, 0)
            }
        };
        let started = Instant::now();
        let (set, bundle) = self.compile_with(&next)?;
        let compile_ns = started.elapsed().as_nanos();
        self.store
            .commit_policy(id, next.get(id).map(String::as_str))?;
        self.policies = next;
        self.api_bundle = bundle;
        let snapshot = self.snapshot(set, current.activated_at);
        let generation = snapshot.generation;
        state.publish_write(snapshot);
        let stored = self.policies.contains_key(id);
        tracing::info!(policy = %id, stored, generation, "policy written");
        Ok(Written::Policy(Some(PolicyTimings {
            parse_ns,
            compile_ns,
        })))
    }

    /// Compiles the active bundles with `policies` and the pushed data.
    fn compile_with(
        &self,
        policies: &StoredPolicies,
    ) -> Result<(PolicySet, Option<Arc<Bundle>>), WriteError> {
        let bundle = api::as_bundle(policies, self.load.v0_compatible);
        let bundles = present(&self.active, bundle.as_ref());
        match policy::compile_with_data(&bundles, self.compile, &self.pushed) {
            Ok(set) => Ok((set, bundle)),
            Err(CompileError::Modules(errors)) => Err(WriteError::Module(errors)),
            Err(other) => Err(WriteError::Rules(other)),
        }
    }
}

/// OPA's `checkPolicyIDScope`: an id that names a bundle's module is owned by that bundle,
/// through the module's package.
fn check_id_scope(current: &Snapshot, owners: &[Owner], id: &str) -> Result<(), WriteError> {
    let Some(module) = current
        .policy
        .modules()
        .iter()
        .find(|m| m.id == id && !m.bundle.is_empty())
    else {
        return Ok(());
    };
    let package = ast::parse(&module.file, &module.raw, false)
        .or_else(|_| ast::parse(&module.file, &module.raw, true))
        .map(|p| p.package)
        .unwrap_or_default();
    check_scope(owners, &package)
}
