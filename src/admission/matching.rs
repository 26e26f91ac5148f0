//! A Constraint's `spec.match`, with Gatekeeper's semantics: every criterion present must
//! hold; `kinds` with `*`; `scope`; `namespaces`/`excludedNamespaces` and `name` with a `*`
//! prefix or suffix wildcard; `labelSelector` on the object, `namespaceSelector` on its
//! namespace. A Namespace object is its own namespace; other cluster-scoped objects pass the
//! namespace criteria.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    #[serde(default)]
    pub kinds: Vec<Kinds>,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub excluded_namespaces: Vec<String>,
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    #[serde(default)]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Kinds {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
}

/// Kubernetes' `metav1.LabelSelector`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Requirement {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

/// What matching looks at, taken once per review.
pub struct Target<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    /// The request's namespace ("" for cluster-scoped objects).
    pub namespace: &'a str,
    pub labels: BTreeMap<String, String>,
    /// The labels of the object's Namespace when verdict knows it (from the inventory).
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

impl Target<'_> {
    fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.group.is_empty()
    }

    /// The namespace the namespace criteria test: a Namespace's own name, else the object's.
    fn namespace_name(&self) -> Option<&str> {
        if self.is_namespace() {
            Some(self.name)
        } else if self.namespace.is_empty() {
            None
        } else {
            Some(self.namespace)
        }
    }
}

/// A namespace selector on a namespaced object whose Namespace verdict does not know.
#[derive(Debug, thiserror::Error)]
#[error("namespaceSelector needs the labels of namespace {0:?}, which is not in the inventory")]
pub struct UnknownNamespace(pub String);

impl Match {
    pub fn parse(spec: &Json) -> Result<Match, String> {
        if spec.is_null() {
            return Ok(Match::default());
        }
        let m = Match::deserialize(spec).map_err(|e| format!("spec.match: {e}"))?;
        for selector in m.label_selector.iter().chain(&m.namespace_selector) {
            for r in &selector.match_expressions {
                match r.operator.as_str() {
                    "In" | "NotIn" if !r.values.is_empty() => {}
                    "Exists" | "DoesNotExist" if r.values.is_empty() => {}
                    op => {
                        return Err(format!(
                            "spec.match: invalid selector requirement {op} on {:?}",
                            r.key
                        ))
                    }
                }
            }
        }
        Ok(m)
    }

    pub fn matches(&self, t: &Target<'_>) -> Result<bool, UnknownNamespace> {
        let simple = self.kinds_match(t)
            && self.scope_match(t)
            && self.namespaces_match(t)
            && (self.name.is_empty() || wildcard(&self.name, t.name))
            && self
                .label_selector
                .as_ref()
                .is_none_or(|s| s.matches(&t.labels));
        if !simple {
            return Ok(false);
        }
        let Some(selector) = &self.namespace_selector else {
            return Ok(true);
        };
        if t.is_namespace() {
            return Ok(selector.matches(&t.labels));
        }
        if t.namespace.is_empty() {
            return Ok(true);
        }
        match &t.namespace_labels {
            Some(labels) => Ok(selector.matches(labels)),
            None => Err(UnknownNamespace(t.namespace.to_string())),
        }
    }

    fn kinds_match(&self, t: &Target<'_>) -> bool {
        self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                let any = |list: &[String], v: &str| {
                    list.is_empty() || list.iter().any(|x| x == "*" || x == v)
                };
                any(&k.kinds, t.kind) && any(&k.api_groups, t.group)
            })
    }

    fn scope_match(&self, t: &Target<'_>) -> bool {
        let namespaced = !t.namespace.is_empty();
        match self.scope.as_str() {
            "Cluster" => t.is_namespace() || !namespaced,
            "Namespaced" => !t.is_namespace() && namespaced,
            _ => true,
        }
    }

    fn namespaces_match(&self, t: &Target<'_>) -> bool {
        let Some(ns) = t.namespace_name() else {
            return true;
        };
        (self.namespaces.is_empty() || self.namespaces.iter().any(|w| wildcard(w, ns)))
            && !self.excluded_namespaces.iter().any(|w| wildcard(w, ns))
    }
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// Gatekeeper's wildcard: `kube-*` is a prefix, `*-system` a suffix, anything else exact.
pub fn wildcard(pattern: &str, candidate: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix('*') {
        candidate.ends_with(suffix)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        candidate.starts_with(prefix)
    } else {
        pattern == candidate
    }
}

/// `metadata.labels` of an object as strings.
pub fn labels_of(object: &regorus::Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.as_string().ok()?.to_string(),
                        v.as_string().ok()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod<'a>(ns: &'a str, labels: &[(&str, &str)]) -> Target<'a> {
        Target {
            group: "",
            kind: "Pod",
            name: "web-1",
            namespace: ns,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            namespace_labels: Some(BTreeMap::new()),
        }
    }

    #[test]
    fn gatekeeper_match_semantics() {
        let m = Match::parse(&json!({
            "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
            "excludedNamespaces": ["kube-*", "*-system"],
            "labelSelector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["infra"]}]},
        }))
        .unwrap();
        assert!(m.matches(&pod("payments", &[])).unwrap());
        assert!(!m.matches(&pod("kube-public", &[])).unwrap());
        assert!(!m.matches(&pod("verdict-system", &[])).unwrap());
        assert!(!m.matches(&pod("payments", &[("tier", "infra")])).unwrap());
        let mut deploy = pod("payments", &[]);
        deploy.group = "apps";
        deploy.kind = "Deployment";
        assert!(!m.matches(&deploy).unwrap());

        let scoped = Match::parse(&json!({"scope": "Cluster"})).unwrap();
        assert!(!scoped.matches(&pod("payments", &[])).unwrap());
        assert!(scoped.matches(&pod("", &[])).unwrap());

        let by_ns =
            Match::parse(&json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}})).unwrap();
        let mut unknown = pod("payments", &[]);
        unknown.namespace_labels = None;
        assert!(by_ns.matches(&unknown).is_err());
        assert!(!by_ns.matches(&pod("payments", &[])).unwrap());
        assert!(Match::parse(
            &json!({"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Maybe"}]}})
        )
        .is_err());
    }
}
