//! `data.inventory`: Kubernetes objects read from a directory and laid out as Gatekeeper's
//! sync puts them, `cluster[groupVersion][kind][name]` for cluster-scoped objects and
//! `namespace[ns][groupVersion][kind][name]` for the others. Namespaces found there also give
//! `namespaceSelector` its labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};

/// groupVersion → kind → name → object.
type ByGroupVersion = BTreeMap<String, BTreeMap<String, BTreeMap<String, Json>>>;

use super::matching::labels_of;
use super::resources::{files_under, read_objects, str_at};
use super::LoadError;

#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// `{"inventory": {"cluster": ..., "namespace": ...}}`, ready to add as engine data.
    pub data: Json,
    /// Namespace objects by name, as the engine's values: reviews add them to their input
    /// as `namespaceObject` without converting them each time.
    pub namespaces: BTreeMap<String, regorus::Value>,
    pub objects: usize,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory::from_objects(Vec::new())
    }
}

impl Inventory {
    /// Reads every object under `dir`; files that cannot be read are reported in `errors`.
    pub fn load(dir: Option<&Path>, errors: &mut Vec<LoadError>) -> Inventory {
        let mut objects = Vec::new();
        if let Some(dir) = dir {
            for file in files_under(&[PathBuf::from(dir)], errors) {
                objects.extend(read_objects(&file, errors));
            }
        }
        Inventory::from_objects(objects)
    }

    pub fn from_objects(objects: Vec<Json>) -> Inventory {
        let mut cluster: ByGroupVersion = BTreeMap::new();
        let mut namespaced: BTreeMap<String, ByGroupVersion> = BTreeMap::new();
        let mut namespaces = BTreeMap::new();
        let count = objects.len();
        for object in objects {
            let (gv, kind, name, ns) = (
                str_at(&object, &["apiVersion"]).to_string(),
                str_at(&object, &["kind"]).to_string(),
                str_at(&object, &["metadata", "name"]).to_string(),
                str_at(&object, &["metadata", "namespace"]).to_string(),
            );
            if gv == "v1" && kind == "Namespace" {
                namespaces.insert(name.clone(), regorus::Value::from(object.clone()));
            }
            let tree = if ns.is_empty() {
                &mut cluster
            } else {
                namespaced.entry(ns).or_default()
            };
            tree.entry(gv)
                .or_default()
                .entry(kind)
                .or_default()
                .insert(name, object);
        }
        Inventory {
            data: json!({"inventory": {"cluster": cluster, "namespace": namespaced}}),
            namespaces,
            objects: count,
        }
    }

    pub fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.get(name).map(labels_of)
    }
}
