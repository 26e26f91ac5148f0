//! One Rego module parsed on its own, as the policy API needs it: its package (to check it
//! against the bundles' roots before it is compiled with them) and its AST in the JSON shape
//! OPA's `GET /v1/policies` gives (`package.path`, `imports`, `rules` with heads and bodies).
//!
//! The AST is the module as written, not OPA's compiled one (no generated locals, no
//! rewritten calls): what clients read from it (the package path, rule names, the rules'
//! refs, args and values) is the same; the rest is OPA's shape for what regorus parsed.

use std::borrow::Cow;

mod terms;

use regorus::unstable::{AssignOp, Expr, Module, Ref, Rule, RuleAssign, RuleHead};
use regorus::Engine;
use serde_json::{json, Map, Value as Json};

use super::error::{self, RegoError};
use super::guard;
use super::rewrite::keywords;
use super::rules::ModuleIndex;
use terms::{query_json, ref_parts, string, term, var};

/// A module that parsed: the engine modules it became (a module with Rego keywords leading
/// references may be split in several) and its package under `data`.
pub struct Parsed {
    pub modules: Vec<Ref<Module>>,
    pub package: Vec<String>,
}

/// Parses `raw` behind the guards compilation uses, without compiling it.
/// Blocking: run it off the async threads.
pub fn parse(file: &str, raw: &str, rego_v0: bool) -> Result<Parsed, Vec<RegoError>> {
    guard::check_text(file, raw).map_err(|e| vec![e])?;
    let rewritten =
        keywords::rewrite_keyword_refs(raw, rego_v0).map_err(|e| vec![e.rego_error(file)])?;
    let mut engine = Engine::new();
    engine.set_policy_length_config(guard::length_config());
    engine.set_rego_v0(rego_v0);
    let texts =
        std::iter::once(rewritten.module).chain(rewritten.split.into_iter().map(Cow::Owned));
    // Without compilation's other rewrites (imports resolved, negations hoisted): the AST is
    // the module as written, and compiling it finds what they would.
    for text in texts {
        engine
            .add_policy(file.to_string(), text.into_owned())
            .map_err(|e| vec![error::parse_error(&format!("{e:#}"))])?;
    }
    let modules = engine.get_modules().clone();
    let package = modules
        .first()
        .map(|m| ModuleIndex::of(m).package)
        .unwrap_or_default();
    Ok(Parsed { modules, package })
}

/// True when the text holds nothing but blanks and comments: OPA's "empty module".
pub fn is_empty_module(raw: &str) -> bool {
    raw.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

/// The module's AST in OPA's JSON shape. A module that does not parse on its own (it always
/// did when it was compiled) still gets an object, never `null`: clients index into it.
pub fn module_json(file: &str, raw: &str) -> Json {
    let parsed = parse(file, raw, false).or_else(|_| parse(file, raw, true));
    let Ok(parsed) = parsed else {
        return json!({"package": {"path": [var("data")]}, "rules": []});
    };
    let mut out = Map::new();
    let mut path = vec![var("data")];
    path.extend(parsed.package.iter().map(|s| string(s)));
    out.insert("package".into(), json!({ "path": path }));
    let mut imports = Vec::new();
    let mut rules = Vec::new();
    for module in &parsed.modules {
        for import in &module.imports {
            let mut i = Map::new();
            i.insert("path".into(), term(&import.refr));
            if let Some(alias) = &import.r#as {
                i.insert("alias".into(), Json::from(alias.text()));
            }
            imports.push(Json::Object(i));
        }
        for rule in &module.policy {
            rules.extend(rule_json(rule));
        }
    }
    if !imports.is_empty() {
        out.insert("imports".into(), Json::Array(imports));
    }
    out.insert("rules".into(), Json::Array(rules));
    Json::Object(out)
}

/// One rule, or one per body for a v0 rule with several (OPA makes each its own rule); `else`
/// bodies chain under `else`.
fn rule_json(rule: &Rule) -> Vec<Json> {
    match rule {
        Rule::Default {
            refr,
            args,
            op,
            value,
            ..
        } => {
            let mut head = head_ref(refr);
            if !args.is_empty() {
                head.insert("args".into(), args.iter().map(|a| term(a)).collect());
            }
            head.insert("value".into(), term(value));
            if *op == AssignOp::ColEq {
                head.insert("assign".into(), Json::Bool(true));
            }
            vec![json!({"body": true_body(), "default": true, "head": head})]
        }
        Rule::Spec { head, bodies, .. } => {
            let (head, default_assign) = head_json(head);
            let mut built: Vec<Map<String, Json>> = Vec::new();
            for body in bodies {
                let mut h = head.clone();
                if let Some(assign) = body.assign.as_ref().or(default_assign) {
                    set_value(&mut h, assign);
                }
                let mut r = Map::new();
                r.insert("body".into(), query_json(&body.query));
                r.insert("head".into(), Json::Object(h));
                match built.last_mut() {
                    Some(parent) if body.is_else => attach_else(parent, r),
                    _ => built.push(r),
                }
            }
            if built.is_empty() {
                let mut h = head;
                if let Some(assign) = default_assign {
                    set_value(&mut h, assign);
                }
                built.push(Map::from_iter([
                    ("body".to_string(), true_body()),
                    ("head".to_string(), Json::Object(h)),
                ]));
            }
            built.into_iter().map(Json::Object).collect()
        }
    }
}

/// Puts `rule` at the end of `parent`'s `else` chain.
fn attach_else(parent: &mut Map<String, Json>, rule: Map<String, Json>) {
    match parent.get_mut("else").and_then(Json::as_object_mut) {
        Some(next) => attach_else(next, rule),
        None => {
            parent.insert("else".into(), Json::Object(rule));
        }
    }
}

/// The head without its value, and the value bodies without their own take.
fn head_json(head: &RuleHead) -> (Map<String, Json>, Option<&RuleAssign>) {
    match head {
        RuleHead::Compr { refr, assign, .. } => (head_ref(refr), assign.as_ref()),
        RuleHead::Set { refr, key, .. } => {
            let mut h = head_ref(refr);
            if let Some(key) = key {
                h.insert("key".into(), term(key));
            }
            (h, None)
        }
        RuleHead::Func {
            refr, args, assign, ..
        } => {
            let mut h = head_ref(refr);
            h.insert("args".into(), args.iter().map(|a| term(a)).collect());
            (h, assign.as_ref())
        }
    }
}

/// `name` (for a one-segment head, as OPA sets it) and `ref`.
fn head_ref(refr: &Expr) -> Map<String, Json> {
    let parts = ref_parts(refr);
    let mut h = Map::new();
    if let [Json::Object(only)] = parts.as_slice() {
        if only.get("type") == Some(&Json::from("var")) {
            if let Some(name) = only.get("value") {
                h.insert("name".into(), name.clone());
            }
        }
    }
    h.insert("ref".into(), Json::Array(parts));
    h
}

fn set_value(head: &mut Map<String, Json>, assign: &RuleAssign) {
    head.insert("value".into(), term(&assign.value));
    if assign.op == AssignOp::ColEq {
        head.insert("assign".into(), Json::Bool(true));
    }
}

fn true_body() -> Json {
    json!([{"index": 0, "terms": {"type": "boolean", "value": true}}])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_read_the_package_path_and_rule_names() {
        let raw = "package app.rbac\n\nimport input.user\n\ndefault allow := false\n\nallow if {\n\tuser.role == \"admin\"\n\tnot input.blocked\n}\n\ndeny contains msg if msg := \"no\"\n\nf(x) := x + 1\n\nv := 1 if input.a else := 2\n";
        let ast = module_json("p", raw);
        assert_eq!(
            ast["package"]["path"],
            json!([{"type": "var", "value": "data"}, {"type": "string", "value": "app"}, {"type": "string", "value": "rbac"}])
        );
        assert_eq!(ast["imports"][0]["path"]["value"][1]["value"], "user");
        let names: Vec<&str> = ast["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["head"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["allow", "allow", "deny", "f", "v"]);
        let rules = &ast["rules"];
        assert_eq!(rules[0]["default"], true);
        assert_eq!(
            rules[0]["head"]["value"],
            json!({"type": "boolean", "value": false})
        );
        assert_eq!(rules[1]["body"][1]["negated"], true);
        assert_eq!(
            rules[1]["body"][0]["terms"][0],
            json!({"type": "ref", "value": [{"type": "var", "value": "equal"}]})
        );
        assert_eq!(
            rules[2]["head"]["key"],
            json!({"type": "var", "value": "msg"})
        );
        assert_eq!(
            rules[3]["head"]["args"],
            json!([{"type": "var", "value": "x"}])
        );
        assert_eq!(rules[4]["else"]["head"]["value"]["value"], 2);
    }

    #[test]
    fn an_unparsable_module_still_has_an_object() {
        let ast = module_json("p", "package");
        assert!(ast["rules"].is_array());
        assert!(is_empty_module("# only\n\n  # comments\n"));
        assert!(!is_empty_module("package a\n"));
    }
}
