//! Bundles loaded side by side must not share roots: OPA's "overlapping roots" check.

use super::{is_prefix, manifest, Bundle};

/// Bundles whose roots overlap, in OPA's words for the two ways they can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootsOverlap {
    #[error("bundles [{}] have overlapping roots and cannot be activated simultaneously because bundle(s) [{}] specify empty root paths ('') which overlap with any other bundle root", bundles.join(", "), empty.join(", "))]
    EmptyRoot {
        bundles: Vec<String>,
        empty: Vec<String>,
    },
    #[error("detected overlapping roots in manifests for these bundles: [{}] ({})", bundles.join(", "), conflicts.join(", "))]
    Roots {
        bundles: Vec<String>,
        conflicts: Vec<String>,
    },
}

/// Bundles loaded together must not share roots (OPA's "overlapping roots" check).
pub fn check_overlap(bundles: &[&Bundle]) -> Result<(), RootsOverlap> {
    let mut conflicts = Vec::new();
    let mut names = Vec::new();
    let mut empty_root = Vec::new();
    for (i, a) in bundles.iter().enumerate() {
        for b in bundles.iter().skip(i + 1) {
            let mut clash = false;
            for ra in a.manifest.roots() {
                for rb in b.manifest.roots() {
                    let (pa, pb) = (manifest::split_root(&ra), manifest::split_root(&rb));
                    if ra.is_empty() || rb.is_empty() {
                        clash = true;
                        for (bundle, root) in [(a, &ra), (b, &rb)] {
                            if root.is_empty() && !empty_root.contains(&bundle.name) {
                                empty_root.push(bundle.name.clone());
                            }
                        }
                    } else if ra == rb {
                        clash = true;
                        conflicts.push(format!("root {ra} is in multiple bundles"));
                    } else if is_prefix(&pa, &pb) || is_prefix(&pb, &pa) {
                        clash = true;
                        conflicts.push(format!("{ra} overlaps {rb}"));
                    }
                }
            }
            if clash {
                for n in [&a.name, &b.name] {
                    if !names.contains(n) {
                        names.push(n.clone());
                    }
                }
            }
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    if !empty_root.is_empty() {
        empty_root.sort();
        return Err(RootsOverlap::EmptyRoot {
            bundles: names,
            empty: empty_root,
        });
    }
    conflicts.sort();
    conflicts.dedup();
    Err(RootsOverlap::Roots {
        bundles: names,
        conflicts,
    })
}
