//! What `--set` and `--set-file` text means, as OPA reads it (Helm's "strvals" syntax):
//! `a.b=v,c=w`, lists `a.b={x,y}`, indexes `a.b[0]=x` and `a[0].b=x`, `\` escaping the next
//! character. Every override goes into one tree, merged over the config file at the end.

use serde_json::{Map, Value as Json};

use super::ConfigError;

/// OPA refuses indexes above this (Helm's limit), so a typo cannot allocate gigabytes.
const MAX_INDEX: usize = 65_536;

/// How a value's text becomes a value: typed for `--set`, a file's contents for `--set-file`.
enum Values {
    Typed,
    FileContents,
}

/// Parses one `--set` argument into `overrides`.
pub fn apply_set(overrides: &mut Json, arg: &str) -> Result<(), ConfigError> {
    let text = super::sources::expand_env(arg);
    Parser::new(&text, Values::Typed)
        .parse(overrides)
        .map_err(|message| bad(arg, message))
}

/// Parses one `--set-file key=path` argument into `overrides`: the value is the file's text,
/// trimmed of surrounding whitespace, as OPA reads it.
pub fn apply_set_file(overrides: &mut Json, arg: &str) -> Result<(), ConfigError> {
    Parser::new(arg, Values::FileContents)
        .parse(overrides)
        .map_err(|message| bad(arg, message))
}

/// The overrides win: mappings merge key by key, anything else is replaced (OPA's
/// `mergeValues`).
pub fn merge(base: &mut Json, overrides: Json) {
    match (base, overrides) {
        (Json::Object(base), Json::Object(overrides)) => {
            for (key, value) in overrides {
                match base.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overrides) => *base = overrides,
    }
}

fn bad(arg: &str, message: String) -> ConfigError {
    ConfigError::BadSet {
        arg: arg.into(),
        message,
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    values: Values,
}

/// Why a list was not read where a value starts.
enum NoList {
    /// The value does not start with `{`.
    NotAList,
    Error(String),
}

impl Parser {
    fn new(text: &str, values: Values) -> Parser {
        Parser {
            chars: text.chars().collect(),
            at: 0,
            values,
        }
    }

    fn parse(&mut self, overrides: &mut Json) -> Result<(), String> {
        while self.at < self.chars.len() {
            self.key(mapping(overrides)?, "")?;
        }
        Ok(())
    }

    /// Reads up to one of `stops`, dropping each `\` and keeping the character after it.
    fn until(&mut self, stops: &[char]) -> (String, Option<char>) {
        let mut text = String::new();
        while let Some(&c) = self.chars.get(self.at) {
            self.at += 1;
            if stops.contains(&c) {
                return (text, Some(c));
            }
            if c == '\\' {
                if let Some(&next) = self.chars.get(self.at) {
                    self.at += 1;
                    text.push(next);
                }
                continue;
            }
            text.push(c);
        }
        (text, None)
    }

    /// One `key...=value` below `data`; `prefix` is the dotted path so far, for messages.
    fn key(&mut self, data: &mut Map<String, Json>, prefix: &str) -> Result<(), String> {
        let (name, last) = self.until(&['=', '[', ',', '.']);
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if name.is_empty() && last.is_some() {
            return Err(if prefix.is_empty() {
                "empty key".to_string()
            } else {
                format!("empty key below {prefix:?}")
            });
        }
        match last {
            None if name.is_empty() => Ok(()),
            None => Err(format!("key {path:?} has no value")),
            Some(',') => Err(format!("key {path:?} has no value (cannot end with ,)")),
            Some('=') => {
                let value = self.value(&path)?;
                data.insert(name, value);
                Ok(())
            }
            Some('.') => {
                let inner = data.entry(name).or_insert_with(|| Json::Object(Map::new()));
                self.nested(inner, &path)
            }
            Some(_) => {
                let index = self.index(&path)?;
                let list = data.entry(name).or_insert_with(|| Json::Array(Vec::new()));
                self.list_item(list, index, &format!("{path}[{index}]"))
            }
        }
    }

    /// The keys after `path.`, set in `node`, which becomes a mapping if it is not one.
    fn nested(&mut self, node: &mut Json, path: &str) -> Result<(), String> {
        let inner = mapping(node)?;
        self.key(inner, path)?;
        if inner.is_empty() {
            return Err(format!("key map {path:?} has no value"));
        }
        Ok(())
    }

    /// `N]` after a `[`.
    fn index(&mut self, path: &str) -> Result<usize, String> {
        let (text, last) = self.until(&[']']);
        if last.is_none() {
            return Err(format!("key {path:?}: index [{text} has no closing ]"));
        }
        let index: i64 = text
            .trim()
            .parse()
            .map_err(|_| format!("key {path:?}: index [{text}] is not a number"))?;
        if index < 0 {
            return Err(format!("key {path:?}: negative index {index} not allowed"));
        }
        let index = index as usize;
        if index > MAX_INDEX {
            return Err(format!(
                "key {path:?}: index {index} is greater than the maximum supported index of {MAX_INDEX}"
            ));
        }
        Ok(index)
    }

    /// What follows `name[index]`: `=value`, `.key...` or another `[index]`.
    fn list_item(&mut self, list: &mut Json, index: usize, path: &str) -> Result<(), String> {
        let (junk, last) = self.until(&['[', '.', '=']);
        if !junk.is_empty() {
            return Err(format!("key {path:?}: unexpected {junk:?} after the index"));
        }
        let item = slot(list, index)?;
        match last {
            Some('=') => {
                *item = self.value(path)?;
                Ok(())
            }
            Some('.') => self.nested(item, path),
            Some(_) => {
                let inner = self.index(path)?;
                self.list_item(item, inner, &format!("{path}[{inner}]"))
            }
            None => Err(format!("key {path:?} has no value")),
        }
    }

    /// A value after `=`: a `{x,y}` list, or one value up to the next `,`.
    fn value(&mut self, path: &str) -> Result<Json, String> {
        match self.list(path) {
            Ok(items) => Ok(Json::Array(items)),
            Err(NoList::Error(message)) => Err(message),
            Err(NoList::NotAList) => {
                let (text, _) = self.until(&[',']);
                self.typed(text, path)
            }
        }
    }

    fn list(&mut self, path: &str) -> Result<Vec<Json>, NoList> {
        if self.chars.get(self.at) != Some(&'{') {
            return Err(NoList::NotAList);
        }
        self.at += 1;
        let mut items = Vec::new();
        loop {
            match self.until(&[',', '}']) {
                (text, Some('}')) => {
                    items.push(self.typed(text, path).map_err(NoList::Error)?);
                    if self.chars.get(self.at) == Some(&',') {
                        self.at += 1;
                    }
                    return Ok(items);
                }
                (text, Some(_)) => items.push(self.typed(text, path).map_err(NoList::Error)?),
                (_, None) => {
                    return Err(NoList::Error(format!(
                        "key {path:?}: list must terminate with '}}'"
                    )))
                }
            }
        }
    }

    fn typed(&self, text: String, path: &str) -> Result<Json, String> {
        match self.values {
            Values::Typed => Ok(typed(text)),
            Values::FileContents => std::fs::read_to_string(&text)
                .map(|contents| Json::String(contents.trim().to_string()))
                .map_err(|e| format!("key {path:?}: cannot read {text}: {e}")),
        }
    }
}

/// OPA's typing of a `--set` value: `true`/`false` in any case, integers written without a
/// leading zero, `null` (which OPA turns into an empty mapping), else the text.
fn typed(text: String) -> Json {
    if text.eq_ignore_ascii_case("true") {
        return Json::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Json::Bool(false);
    }
    if text.eq_ignore_ascii_case("null") {
        return Json::Object(Map::new());
    }
    if text == "0" {
        return Json::from(0);
    }
    if !text.starts_with('0') {
        if let Ok(n) = text.parse::<i64>() {
            return Json::from(n);
        }
    }
    Json::String(text)
}

/// The node as a mapping; a value of another kind set earlier is replaced.
fn mapping(node: &mut Json) -> Result<&mut Map<String, Json>, String> {
    if !node.is_object() {
        *node = Json::Object(Map::new());
    }
    node.as_object_mut()
        .ok_or_else(|| "cannot set a key below a non-mapping value".to_string())
}

/// The list's item at `index`, padding with nulls as OPA does.
fn slot(list: &mut Json, index: usize) -> Result<&mut Json, String> {
    if !list.is_array() {
        *list = Json::Array(Vec::new());
    }
    let items = list
        .as_array_mut()
        .ok_or_else(|| "cannot index a non-list value".to_string())?;
    if items.len() <= index {
        items.resize(index + 1, Json::Null);
    }
    items
        .get_mut(index)
        .ok_or_else(|| format!("index {index} out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn set(args: &[&str]) -> Result<Json, ConfigError> {
        let mut overrides = json!({});
        for arg in args {
            apply_set(&mut overrides, arg)?;
        }
        Ok(overrides)
    }

    #[test]
    fn values_are_typed_like_opa() {
        let tree = set(&["a=true,b=FALSE,c=42,d=007,e=0,f=-3,g=text,h=null,i=1.5,j="]).unwrap();
        assert_eq!(
            tree,
            json!({"a": true, "b": false, "c": 42, "d": "007", "e": 0, "f": -3, "g": "text",
                   "h": {}, "i": "1.5", "j": ""})
        );
        assert_eq!(
            set(&[r"a=x\,y,b\.c=1"]).unwrap(),
            json!({"a": "x,y", "b.c": 1})
        );
    }

    #[test]
    fn lists_by_braces_and_by_index() {
        assert_eq!(
            set(&["a.b={x,2,true},c=1"]).unwrap(),
            json!({"a": {"b": ["x", 2, true]}, "c": 1})
        );
        assert_eq!(
            set(&["a[0]=x", "a[2]=z", "b[1].name=n,b[1].on=true", "m[0][1]=q"]).unwrap(),
            json!({"a": ["x", null, "z"], "b": [null, {"name": "n", "on": true}],
                   "m": [[null, "q"]]})
        );
        // Later arguments build on earlier ones, as OPA's one overrides tree does.
        assert_eq!(
            set(&["a={x,y}", "a[2]=z"]).unwrap(),
            json!({"a": ["x", "y", "z"]})
        );
    }

    #[test]
    fn rejections_name_the_key() {
        for (arg, key) in [
            ("labels.app", "\"labels.app\" has no value"),
            ("a.b=1,labels", "\"labels\" has no value"),
            (
                "server.encoding,",
                "\"server.encoding\" has no value (cannot end with ,)",
            ),
            ("keys[x]=1", "\"keys\": index [x] is not a number"),
            ("keys[-1]=1", "\"keys\": negative index"),
            ("keys[999999]=1", "\"keys\": index 999999 is greater"),
            ("keys[0]junk=1", "\"keys[0]\": unexpected \"junk\""),
            ("a.b={x,y", "\"a.b\": list must terminate"),
            ("a.=1", "empty key below \"a\""),
        ] {
            let err = set(&[arg]).unwrap_err().to_string();
            assert!(err.contains(key), "{arg}: {err}");
            assert!(err.contains(&format!("{arg:?}")), "{arg}: {err}");
        }
    }

    #[test]
    fn overrides_merge_over_the_file_and_typed_errors_name_the_key() {
        let mut tree = json!({"labels": {"app": "x", "region": "eu"}, "keys": {"k": {"key": "a"}}});
        let overrides = set(&["labels.region=us,default_decision=/payment/allow"]).unwrap();
        merge(&mut tree, overrides);
        let (config, _) = Config::from_tree(tree).unwrap();
        assert_eq!(config.labels["app"], "x");
        assert_eq!(config.labels["region"], "us");
        assert_eq!(config.default_decision, "/payment/allow");

        let err = Config::from_tree(set(&["labels.app.x=1"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("labels.app"), "{err}");
        let err =
            Config::from_tree(set(&["server.encodng.gzip.min_length=5"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("server"), "{err}");
        assert!(err.to_string().contains("encodng"), "{err}");
        let err = Config::from_tree(set(&["verdict.watch={a,b}"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("verdict.watch"), "{err}");
    }

    #[test]
    fn set_file_values_are_the_files_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decision.txt");
        std::fs::write(&path, "  /payment/allow\n").unwrap();
        let mut overrides = json!({});
        apply_set_file(
            &mut overrides,
            &format!("default_decision={}", path.display()),
        )
        .unwrap();
        assert_eq!(overrides, json!({"default_decision": "/payment/allow"}));
        let missing = dir.path().join("missing");
        let err =
            apply_set_file(&mut overrides, &format!("labels.a={}", missing.display())).unwrap_err();
        assert!(err.to_string().contains("\"labels.a\""), "{err}");
    }
}
