//! Delta bundles (OPA's `patch.json`): a manifest and data patches, applied to the bundle of
//! the same name that serves, as OPA's activation applies them (`upsert` makes the parents it
//! needs, `remove` and `replace` need the path to exist). The result serves like a snapshot
//! under the delta's revision; its roots must be the serving bundle's.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use regorus::Value;
use serde::Deserialize;

use super::{Bundle, BundleError, DataFile, RawFile};

/// The data patches of a delta bundle, in the order they apply.
#[derive(Debug, Clone, Default)]
pub struct Patch {
    pub ops: Vec<PatchOp>,
}

#[derive(Debug, Clone)]
pub struct PatchOp {
    pub kind: PatchKind,
    /// Keys under `data`, from the op's JSON pointer (`~1` is `/`, `~0` is `~`).
    pub path: Vec<String>,
    pub value: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Upsert,
    Remove,
    Replace,
}

#[derive(Deserialize)]
struct PatchFile {
    #[serde(default)]
    data: Vec<PatchEntry>,
}

#[derive(Deserialize)]
struct PatchEntry {
    op: String,
    path: String,
    /// Absent for `remove`, and `null` then, as in OPA.
    #[serde(default)]
    value: Option<Value>,
}

/// Why a delta does not apply; OPA's words where it has them.
fn failed(message: impl Into<String>) -> BundleError {
    BundleError::Delta(message.into())
}

/// Reads `patch.json`. A delta carries nothing else but its manifest (and signatures).
pub(super) fn read_patch(files: &[RawFile]) -> Result<Option<Patch>, BundleError> {
    let Some(file) = files.iter().find(|f| f.path.ends_with("/patch.json")) else {
        return Ok(None);
    };
    for (what, found) in [
        ("policy", files.iter().any(|f| f.path.ends_with(".rego"))),
        (
            "data",
            files.iter().any(|f| {
                let name = f.path.rsplit('/').next().unwrap_or_default();
                matches!(name, "data.json" | "data.yaml" | "data.yml")
            }),
        ),
    ] {
        if found {
            return Err(failed(format!(
                "delta bundle expected to contain only patch file but {what} files found"
            )));
        }
    }
    let parsed: PatchFile =
        serde_json::from_slice(&file.bytes).map_err(|e| BundleError::DataFile {
            path: file.path.clone(),
            message: e.to_string(),
        })?;
    let mut ops = Vec::with_capacity(parsed.data.len());
    for entry in parsed.data {
        let kind = match entry.op.as_str() {
            "upsert" => PatchKind::Upsert,
            "remove" => PatchKind::Remove,
            "replace" => PatchKind::Replace,
            other => return Err(failed(format!("bad patch operation: {other}"))),
        };
        let path: Vec<String> = entry
            .path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        if path.is_empty() {
            return Err(failed(
                "error parsing patch path: a patch cannot replace all of data",
            ));
        }
        let value = entry.value.unwrap_or(Value::Null);
        ops.push(PatchOp { kind, path, value });
    }
    Ok(Some(Patch { ops }))
}

impl Bundle {
    /// A delta bundle: patches for the bundle of its name, no modules or data of its own.
    pub fn is_delta(&self) -> bool {
        self.patch.is_some()
    }

    /// The bundle this delta makes of `base`, the serving bundle of the same name (none: the
    /// patches apply to empty data, as OPA does). Anything that fails leaves `base` serving.
    pub fn apply_delta(&self, base: Option<&Bundle>) -> Result<Bundle, BundleError> {
        let Some(patch) = &self.patch else {
            return Ok(self.clone());
        };
        if let Some(base) = base {
            if base.manifest.roots() != self.manifest.roots() {
                return Err(failed(format!(
                    "delta bundle '{}' has wasm resolvers or manifest roots that are different from those in the store",
                    self.name
                )));
            }
        }
        let mut document = Value::from(BTreeMap::new());
        for file in base.map(|b| b.data.as_slice()).unwrap_or_default() {
            merge_at(&mut document, &file.dir, file.value.clone());
        }
        for op in &patch.ops {
            apply(&mut document, op)?;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        base.map(|b| b.fingerprint).hash(&mut hasher);
        self.fingerprint.hash(&mut hasher);
        let merged = Bundle {
            name: self.name.clone(),
            manifest: self.manifest.clone(),
            modules: base.map(|b| b.modules.clone()).unwrap_or_default(),
            data: vec![DataFile {
                path: "/data.json".into(),
                dir: Vec::new(),
                value: document,
            }],
            size: self.size,
            fingerprint: hasher.finish(),
            patch: None,
            from_delta: true,
        };
        merged.check_data_roots()?;
        Ok(merged)
    }
}

/// Places `value` at `dir` inside `document`, merging objects (a bundle's data files do not
/// overlap: compiling it checked that).
fn merge_at(document: &mut Value, dir: &[String], value: Value) {
    let Some((key, rest)) = dir.split_first() else {
        merge(document, value);
        return;
    };
    if let Some(child) = member_or_new(document, key) {
        merge_at(child, rest, value);
    }
}

fn merge(into: &mut Value, value: Value) {
    match (into.as_object_mut(), value) {
        (Ok(map), Value::Object(fields)) => {
            for (k, v) in fields.iter() {
                match map.get_mut(k) {
                    Some(existing) => merge(existing, v.clone()),
                    None => {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (_, value) => *into = value,
    }
}

/// Applies one patch to the data document.
fn apply(document: &mut Value, op: &PatchOp) -> Result<(), BundleError> {
    let shown = format!("/{}", op.path.join("/"));
    let missing = || {
        failed(format!(
            "storage_not_found_error: {shown}: document does not exist"
        ))
    };
    let (last, parents) = op.path.split_last().ok_or_else(missing)?;
    let mut at = document;
    for key in parents {
        at = match (op.kind, &*at) {
            (PatchKind::Upsert, Value::Object(_)) => member_or_new(at, key),
            _ => child(at, key),
        }
        .ok_or_else(missing)?;
    }
    match at {
        Value::Object(_) => {
            let map = at.as_object_mut().map_err(|_| missing())?;
            let key = Value::from(last.as_str());
            match op.kind {
                PatchKind::Upsert => {
                    map.insert(key, op.value.clone());
                }
                PatchKind::Replace => *map.get_mut(&key).ok_or_else(missing)? = op.value.clone(),
                PatchKind::Remove => {
                    map.remove(&key).ok_or_else(missing)?;
                }
            }
        }
        Value::Array(items) => {
            let mut items = items.to_vec();
            let index = match (last.as_str(), op.kind) {
                ("-", PatchKind::Upsert) => items.len(),
                (text, _) => text.parse::<usize>().map_err(|_| missing())?,
            };
            match op.kind {
                PatchKind::Upsert if index <= items.len() => items.insert(index, op.value.clone()),
                PatchKind::Replace if index < items.len() => items[index] = op.value.clone(),
                PatchKind::Remove if index < items.len() => {
                    items.remove(index);
                }
                _ => return Err(missing()),
            }
            *at = Value::from(items);
        }
        _ => return Err(missing()),
    }
    Ok(())
}

/// The member `key` of an object, made an empty object when there is none (`None` for what
/// is not an object).
fn member_or_new<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let map = value.as_object_mut().ok()?;
    let key = Value::from(key);
    if !map.contains_key(&key) {
        map.insert(key.clone(), Value::from(BTreeMap::new()));
    }
    map.get_mut(&key)
}

/// The member `key` of an object, or the element at `key` of an array.
fn child<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    match value {
        Value::Object(_) => value.as_object_mut().ok()?.get_mut(&Value::from(key)),
        Value::Array(_) => {
            let index = key.parse::<usize>().ok()?;
            value.as_array_mut().ok()?.get_mut(index)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::LoadOptions;

    fn bundle(files: &[(&str, &str)]) -> Result<Bundle, BundleError> {
        Bundle::from_files(
            "b",
            "",
            crate::bundle::files_of(files),
            LoadOptions::default(),
        )
    }

    fn base() -> Bundle {
        bundle(&[
            (
                "/.manifest",
                r#"{"revision": "r1", "roots": ["limits", "payment"]}"#,
            ),
            (
                "/limits/data.json",
                r#"{"max": 10, "currencies": ["EUR", "USD"]}"#,
            ),
            (
                "/payment/p.rego",
                "package payment\n\nallow := data.limits.max > 5\n",
            ),
        ])
        .unwrap()
    }

    fn delta(patch: &str) -> Result<Bundle, BundleError> {
        bundle(&[
            (
                "/.manifest",
                r#"{"revision": "r2", "roots": ["limits", "payment"]}"#,
            ),
            ("/patch.json", patch),
        ])
    }

    fn data(b: &Bundle) -> serde_json::Value {
        serde_json::from_str(&b.data[0].value.to_json_str().unwrap()).unwrap()
    }

    #[test]
    fn patches_apply_to_the_serving_bundles_data_under_the_deltas_revision() {
        let d = delta(
            r#"{"data": [
                {"op": "upsert", "path": "/limits/max", "value": 20},
                {"op": "upsert", "path": "/limits/new/deep", "value": {"a": 1}},
                {"op": "replace", "path": "/limits/currencies/1", "value": "GBP"},
                {"op": "upsert", "path": "/limits/currencies/-", "value": "JPY"},
                {"op": "remove", "path": "/limits/currencies/0"}
            ]}"#,
        )
        .unwrap();
        assert!(d.is_delta() && d.modules.is_empty());
        let merged = d.apply_delta(Some(&base())).unwrap();
        assert!(!merged.is_delta() && merged.from_delta);
        assert_eq!(merged.revision(), "r2");
        assert_eq!(
            merged.modules.len(),
            1,
            "the serving bundle's policies stay"
        );
        assert_eq!(
            data(&merged),
            serde_json::json!({"limits": {"max": 20, "new": {"deep": {"a": 1}},
                "currencies": ["GBP", "JPY"]}})
        );
        assert_ne!(merged.fingerprint, base().fingerprint);
    }

    #[test]
    fn a_delta_that_does_not_apply_is_refused_with_opas_reason() {
        let missing = delta(r#"{"data": [{"op": "remove", "path": "/limits/nope"}]}"#).unwrap();
        let e = missing.apply_delta(Some(&base())).unwrap_err().to_string();
        assert!(e.contains("/limits/nope: document does not exist"), "{e}");
        let replace =
            delta(r#"{"data": [{"op": "replace", "path": "/limits/a/b", "value": 1}]}"#).unwrap();
        assert!(replace.apply_delta(Some(&base())).is_err());
        let outside =
            delta(r#"{"data": [{"op": "upsert", "path": "/other/x", "value": 1}]}"#).unwrap();
        let e = outside.apply_delta(Some(&base())).unwrap_err().to_string();
        assert!(e.contains("do not permit data at path '/other'"), "{e}");
        let roots = bundle(&[
            ("/.manifest", r#"{"revision": "r2", "roots": ["limits"]}"#),
            ("/patch.json", r#"{"data": []}"#),
        ])
        .unwrap();
        let e = roots.apply_delta(Some(&base())).unwrap_err().to_string();
        assert!(e.contains("manifest roots that are different"), "{e}");
    }

    #[test]
    fn a_delta_carries_patches_only() {
        for (file, what) in [("/x.rego", "policy"), ("/limits/data.json", "data")] {
            let e = bundle(&[
                ("/.manifest", r#"{"roots": ["limits"]}"#),
                ("/patch.json", r#"{"data": []}"#),
                (file, "{}"),
            ])
            .unwrap_err()
            .to_string();
            assert!(e.contains(&format!("but {what} files found")), "{e}");
        }
        let e = delta(r#"{"data": [{"op": "move", "path": "/limits/a"}]}"#).unwrap_err();
        assert!(e.to_string().contains("bad patch operation: move"), "{e}");
        assert!(delta(r#"{"data": [{"op": "upsert", "path": "/", "value": {}}]}"#).is_err());
        assert!(delta("not json").is_err());
    }

    #[test]
    fn without_a_serving_bundle_the_patches_build_data_from_nothing() {
        let d =
            delta(r#"{"data": [{"op": "upsert", "path": "/limits/max", "value": 3}]}"#).unwrap();
        let merged = d.apply_delta(None).unwrap();
        assert_eq!(data(&merged), serde_json::json!({"limits": {"max": 3}}));
        assert!(merged.modules.is_empty());
    }
}
