//! Where configuration text comes from before it is typed: the file (YAML or JSON, `${ENV}`
//! expanded) and `--set key=value` overrides, layered onto one JSON tree.

use std::path::Path;

use serde_json::Value as Json;

use super::ConfigError;

pub(super) fn read_tree(path: &Path) -> Result<Json, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let text = expand_env(&text);
    // YAML is a superset of JSON, so one parser reads both forms OPA accepts.
    let tree: Json = yaml_serde::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(match tree {
        Json::Null => Json::Object(Default::default()),
        other => other,
    })
}

/// `${NAME}` is replaced by the variable's value; unset variables are left as written (OPA).
fn expand_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(value) => out.push_str(&value),
                    Err(_) => out.push_str(&rest[start..start + 3 + end]),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Applies one `--set a.b=v[,c=w]` as OPA does: dotted keys, `true`/`false` as booleans,
/// integers without a leading zero as numbers, anything else as a string.
pub fn apply_set(tree: &mut Json, arg: &str) -> Result<(), ConfigError> {
    for pair in split_unescaped(arg, ',') {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(ConfigError::BadSet {
                arg: arg.into(),
                message: "expected key=value".into(),
            });
        };
        let keys: Vec<&str> = key.split('.').collect();
        if keys.iter().any(|k| k.is_empty()) {
            return Err(ConfigError::BadSet {
                arg: arg.into(),
                message: "empty key segment".into(),
            });
        }
        let typed = match value {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            v if v.parse::<i64>().is_ok() && !(v.len() > 1 && v.starts_with('0')) => {
                Json::from(v.parse::<i64>().unwrap_or_default())
            }
            v => Json::String(v.replace("\\,", ",")),
        };
        let mut node = &mut *tree;
        for k in &keys[..keys.len() - 1] {
            node = object_of(node, arg)?
                .entry(k.to_string())
                .or_insert_with(|| Json::Object(Default::default()));
        }
        object_of(node, arg)?.insert(keys[keys.len() - 1].to_string(), typed);
    }
    Ok(())
}

/// The node as a mapping, replacing a scalar by an empty mapping as `--set a.b=1` over `a: 1`.
fn object_of<'a>(
    node: &'a mut Json,
    arg: &str,
) -> Result<&'a mut serde_json::Map<String, Json>, ConfigError> {
    if !node.is_object() {
        *node = Json::Object(Default::default());
    }
    node.as_object_mut().ok_or_else(|| ConfigError::BadSet {
        arg: arg.into(),
        message: "cannot set a key below a non-mapping value".into(),
    })
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn set_overrides_are_typed_like_opa() {
        let mut tree = serde_json::json!({});
        apply_set(
            &mut tree,
            "default_decision=/payment/allow,verdict.watch=false",
        )
        .unwrap();
        apply_set(&mut tree, "verdict.eval_timeout_ms=250").unwrap();
        let (config, _) = Config::from_tree(tree).unwrap();
        assert_eq!(config.default_decision, "/payment/allow");
        assert!(!config.verdict.watch);
        assert_eq!(config.verdict.eval_timeout_ms, 250);
        assert!(apply_set(&mut serde_json::json!({}), "novalue").is_err());
    }

    #[test]
    fn environment_variables_are_expanded_when_set() {
        let expanded = expand_env("a: ${PATH}\nb: ${VERDICT_SURELY_UNSET_VAR}");
        assert!(!expanded.contains("${PATH}"));
        assert!(expanded.contains("${VERDICT_SURELY_UNSET_VAR}"));
    }
}
