//! Policies put through OPA's policy API (`PUT`/`DELETE /v1/policies/{id}`): Rego modules
//! that belong to no bundle, compiled with every active bundle and kept in the pushed-data
//! store beside the pushed documents.
//!
//! The reloader applies them (`reloader/policies.rs`) as it applies Data API writes, one
//! change at a time; here is what they are and how they join a compilation: as one bundle
//! without a name or roots, whose modules keep the ids they were put under.

use std::sync::Arc;

use crate::bundle::{Bundle, Manifest, ModuleFile};
use crate::runtime::store::StoredPolicies;

/// A change to the policies, as the handler read it.
#[derive(Debug, Clone)]
pub enum PolicyOp {
    /// Creates or replaces the module `id` with `raw`.
    Put {
        id: String,
        raw: String,
    },
    Delete {
        id: String,
    },
}

/// How long the parts of a policy write took, for `?metrics` (OPA's timers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PolicyTimings {
    pub parse_ns: u128,
    pub compile_ns: u128,
}

/// The policies as one nameless bundle for compiling, `None` when there are none. Rego v1
/// unless the runtime reads v0 (OPA parses an API policy with the server's parser options).
pub fn as_bundle(policies: &StoredPolicies, rego_v0: bool) -> Option<Arc<Bundle>> {
    if policies.is_empty() {
        return None;
    }
    let modules = policies
        .iter()
        .map(|(id, raw)| ModuleFile {
            path: id.clone(),
            // Error locations name the policy by its id, as OPA's do.
            file: id.clone(),
            source: raw.clone(),
            rego_v0,
        })
        .collect();
    Some(Arc::new(Bundle {
        name: String::new(),
        manifest: Manifest::owning_nothing(),
        modules,
        data: Vec::new(),
        size: 0,
        fingerprint: 0,
        patch: None,
        from_delta: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{compile, CompileOptions};

    #[test]
    fn api_policies_compile_beside_a_bundle_and_keep_their_ids() {
        let files = vec![
            crate::bundle::RawFile {
                path: "/.manifest".into(),
                bytes: br#"{"roots": ["app"]}"#.to_vec(),
            },
            crate::bundle::RawFile {
                path: "/app/p.rego".into(),
                bytes: b"package app\n\nallow := true\n".to_vec(),
            },
        ];
        let bundle = Bundle::from_files("b", "", files, Default::default()).unwrap();
        let policies = StoredPolicies::from([(
            "mine/one".to_string(),
            "package extra\n\nuses := data.app.allow\n".to_string(),
        )]);
        let api = as_bundle(&policies, false).unwrap();
        let set = compile(&[Arc::new(bundle), api], CompileOptions::default()).unwrap();
        let ids: Vec<&str> = set.modules().iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["b/app/p.rego", "mine/one"]);
        assert!(as_bundle(&StoredPolicies::new(), false).is_none());
    }
}
