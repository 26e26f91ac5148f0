//! A bundle's data files: parsed into values at the data path of their directory, and
//! checked against the manifest's roots.

use std::collections::BTreeMap;

use regorus::Value;

use super::{is_prefix, Bundle, BundleError, DataFile, RawFile, Root};

impl Bundle {
    /// Every data value must lie under one of the bundle's roots. A directory above a root is
    /// walked into, so `{"limits": {"roles": ...}}` is fine for the root `limits/roles`.
    pub(super) fn check_data_roots(&self) -> Result<(), BundleError> {
        let roots = self.manifest.root_paths();
        for file in &self.data {
            check_value_in_roots(&roots, &file.dir, &file.value).map_err(|path| {
                BundleError::DataOutsideRoots {
                    roots: go_list(&self.manifest.roots()),
                    path: path.join("/"),
                }
            })?;
        }
        Ok(())
    }

    /// The whole data document of this bundle: each data file nested at its directory.
    pub fn data_documents(&self) -> impl Iterator<Item = (&DataFile, Value)> {
        self.data.iter().map(|f| (f, nest(&f.dir, f.value.clone())))
    }
}

pub(super) fn parse_data_file(f: RawFile) -> Result<DataFile, BundleError> {
    let fail = |message: String| BundleError::DataFile {
        path: f.path.clone(),
        message,
    };
    let value: Value = if f.path.ends_with(".json") {
        serde_json::from_slice(&f.bytes).map_err(|e| fail(e.to_string()))?
    } else {
        yaml_serde::from_slice(&f.bytes).map_err(|e| fail(e.to_string()))?
    };
    let dir: Vec<String> = f
        .path
        .trim_start_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .split_last()
        .map(|(_, dirs)| dirs.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    if dir.is_empty() && value.as_object().is_err() {
        return Err(fail("root value must be object".into()));
    }
    Ok(DataFile {
        path: f.path,
        dir,
        value,
    })
}

/// Returns the first data path that no root permits.
fn check_value_in_roots(roots: &[Root], path: &[String], value: &Value) -> Result<(), Vec<String>> {
    if roots.iter().any(|r| is_prefix(r, path)) {
        return Ok(());
    }
    let above_a_root = roots.iter().any(|r| is_prefix(path, r));
    match value.as_object() {
        Ok(object) if above_a_root => {
            for (key, child) in object.iter() {
                let mut child_path = path.to_vec();
                child_path.push(key_text(key));
                check_value_in_roots(roots, &child_path, child)?;
            }
            Ok(())
        }
        _ => Err(path.to_vec()),
    }
}

fn key_text(key: &Value) -> String {
    match key.as_string() {
        Ok(s) => s.to_string(),
        Err(_) => key.to_string(),
    }
}

/// Wraps `value` in objects so that it sits at `dir`.
pub fn nest(dir: &[String], value: Value) -> Value {
    dir.iter().rev().fold(value, |inner, key| {
        let mut map = BTreeMap::new();
        map.insert(Value::from(key.as_str()), inner);
        Value::from(map)
    })
}

/// Formats a list as Go's `%v` does (`[a b]`), the form OPA's messages use.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}
