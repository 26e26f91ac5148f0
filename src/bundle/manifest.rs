//! The `.manifest` file: revision, roots, Rego version per bundle and per file, metadata.

use std::collections::BTreeMap;

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;

use super::BundleError;

/// A bundle's manifest as OPA defines it. A bundle without one owns every path (`roots: [""]`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub revision: String,
    #[serde(default)]
    roots: Option<Vec<String>>,
    #[serde(default)]
    pub rego_version: Option<i64>,
    #[serde(default)]
    pub file_rego_versions: BTreeMap<String, i64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub wasm: Vec<serde_json::Value>,
}

/// A root as a list of path segments; the empty list is the whole data tree.
pub type Root = Vec<String>;

impl Manifest {
    /// A manifest that claims no root: what the policies put through the policy API are
    /// compiled under (they belong to no bundle and own no path).
    pub fn owning_nothing() -> Manifest {
        Manifest {
            roots: Some(Vec::new()),
            ..Manifest::default()
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        serde_json::from_slice(bytes).map_err(|error| BundleError::ManifestJson { error })
    }

    /// The roots as written, with surrounding slashes trimmed as OPA does.
    pub fn roots(&self) -> Vec<String> {
        match &self.roots {
            Some(roots) => roots
                .iter()
                .map(|r| r.trim_matches('/').to_string())
                .collect(),
            None => vec![String::new()],
        }
    }

    pub fn root_paths(&self) -> Vec<Root> {
        self.roots().iter().map(|r| split_root(r)).collect()
    }

    /// Roots must not contain one another ("payment" and "payment/sub").
    pub fn check_roots(&self) -> Result<(), BundleError> {
        let roots = self.roots();
        for (i, a) in roots.iter().enumerate() {
            for b in roots.iter().skip(i + 1) {
                let (pa, pb) = (split_root(a), split_root(b));
                if is_prefix(&pa, &pb) || is_prefix(&pb, &pa) {
                    return Err(BundleError::OverlappedRoots {
                        a: a.clone(),
                        b: b.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Decides v0 or v1 for each file: the first `file_rego_versions` glob that matches wins,
    /// else the bundle's `rego_version`, else the runtime default.
    pub fn rego_versions(&self, default_v0: bool) -> Result<RegoVersions, BundleError> {
        let default_v0 = match self.rego_version {
            None => default_v0,
            Some(0) => true,
            Some(1) => false,
            Some(other) => {
                return Err(BundleError::RegoVersion {
                    version: other,
                    file_glob: None,
                })
            }
        };
        let mut patterns = Vec::new();
        for (pattern, version) in &self.file_rego_versions {
            let v0 = match version {
                0 => true,
                1 => false,
                other => {
                    return Err(BundleError::RegoVersion {
                        version: *other,
                        file_glob: Some(pattern.clone()),
                    })
                }
            };
            // OPA's globs have no separators: `*` also matches `/`.
            let matcher = GlobBuilder::new(pattern.trim_start_matches('/'))
                .literal_separator(false)
                .build()
                .map_err(|error| BundleError::FileGlob {
                    pattern: pattern.clone(),
                    error,
                })?
                .compile_matcher();
            patterns.push((matcher, v0));
        }
        Ok(RegoVersions {
            default_v0,
            patterns,
        })
    }
}

/// The per-file Rego version rule of one bundle.
#[derive(Debug)]
pub struct RegoVersions {
    default_v0: bool,
    patterns: Vec<(GlobMatcher, bool)>,
}

impl RegoVersions {
    pub fn is_v0(&self, file: &str) -> bool {
        let file = file.trim_start_matches('/');
        self.patterns
            .iter()
            .find(|(m, _)| m.is_match(file))
            .map_or(self.default_v0, |(_, v0)| *v0)
    }
}

pub fn split_root(root: &str) -> Root {
    root.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// True when `prefix` is `path` or one of its ancestors, segment by segment.
pub fn is_prefix(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len() && prefix.iter().zip(path).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_default_to_everything_and_overlap_is_refused() {
        let m = Manifest::parse(b"{}").unwrap();
        assert_eq!(m.roots(), vec![String::new()]);
        let m = Manifest::parse(br#"{"roots": ["payment", "payment/sub"]}"#).unwrap();
        let err = m.check_roots().unwrap_err().to_string();
        assert_eq!(
            err,
            "manifest has overlapped roots: 'payment' and 'payment/sub'"
        );
        let m = Manifest::parse(br#"{"roots": ["pay", "payment"]}"#).unwrap();
        assert!(
            m.check_roots().is_ok(),
            "prefix by characters is not overlap"
        );
    }

    #[test]
    fn file_rego_versions_override_the_bundle_version() {
        let m =
            Manifest::parse(br#"{"rego_version": 1, "file_rego_versions": {"legacy/*.rego": 0}}"#)
                .unwrap();
        let v = m.rego_versions(false).unwrap();
        assert!(v.is_v0("/legacy/old.rego"));
        assert!(v.is_v0("/legacy/deep/old.rego"), "* crosses separators");
        assert!(!v.is_v0("/payment/policy.rego"));
        let bad = Manifest::parse(br#"{"rego_version": 3}"#).unwrap();
        assert!(bad.rego_versions(false).is_err());
    }
}
