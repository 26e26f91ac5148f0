//! Where configuration text comes from before it is typed: the file (YAML or JSON, `${ENV}`
//! expanded); `--set` overrides are read by `set`.

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
pub(super) fn expand_env(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_are_expanded_when_set() {
        let expanded = expand_env("a: ${PATH}\nb: ${VERDICT_SURELY_UNSET_VAR}");
        assert!(!expanded.contains("${PATH}"));
        assert!(expanded.contains("${VERDICT_SURELY_UNSET_VAR}"));
    }
}
