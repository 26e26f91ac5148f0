//! What may differ between OPA's recorded answer and verdict's without being a difference a
//! client could act on: ids, the product version and build, times, timer values, and in
//! metric expositions the values and the Go runtime's own families. Everything else is
//! compared byte for byte.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde_json::Value as Json;

fn is_exposition(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
}

/// The metric families a body shows (its exposition, or the `metrics.prometheus` of a status
/// report), but the Go runtime's: the families an answer must have to be OPA's.
pub fn family_names(content_type: Option<&str>, bytes: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(bytes);
    let families = if is_exposition(content_type) {
        parse_exposition(&text)
    } else if let Some((start, end)) = prometheus_span(&text) {
        parse_protojson(serde_json::from_str(&text[start..end]).unwrap())
    } else {
        BTreeMap::new()
    };
    families
        .into_keys()
        .filter(|name| !name.starts_with("go_"))
        .collect()
}

/// A response body with what varies between runs and servers replaced by placeholders. With
/// `only`, metric families of other names are left out: a server may expose more families
/// than OPA's without a client of OPA's noticing.
pub fn body(content_type: Option<&str>, bytes: &[u8], only: Option<&BTreeSet<String>>) -> String {
    let text = without_member(&String::from_utf8_lossy(bytes), "engines");
    if is_exposition(content_type) {
        return render(parse_exposition(&text), only);
    }
    let text = match prometheus_span(&text) {
        Some((start, end)) => {
            let families = parse_protojson(serde_json::from_str(&text[start..end]).unwrap());
            let rendered = serde_json::to_string(&render(families, only)).unwrap();
            format!("{}{rendered}{}", &text[..start], &text[end..])
        }
        None => text,
    };
    let rules = [
        (r#""decision_id":\s*"[^"]*",\s*"#, ""),
        (r#",?\s*"decision_id":\s*"[^"]*""#, ""),
        (r"\{\s+\}", "{}"),
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "<uuid>",
        ),
        (r#""version":(\s*)"[^"]*""#, r#""version":$1"<version>""#),
        // OPA was recorded without build flags (empty fields); verdict fills them at build.
        (
            r#""build_(commit|timestamp|hostname)":(\s*)"[^"]*""#,
            r#""build_$1":$2"<build>""#,
        ),
        (r#""(timer_[a-z_]+)":(\s*)\d+"#, r#""$1":${2}0"#),
        // Times of day; Go's zero time ("never") is kept, it says something.
        (
            r#""(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)""#,
            r#""<time>""#,
        ),
    ];
    // A body that is one number is a measurement (`/metrics/alloc_bytes`).
    if content_type.is_some_and(|t| t.starts_with("text/plain"))
        && Regex::new(r"^\d+\n$").unwrap().is_match(&text)
    {
        return "<number>\n".to_string();
    }
    let text = text.replace("\"0001-01-01T00:00:00Z\"", "\"<never>\"");
    rules.iter().fold(text, |t, (pattern, with)| {
        Regex::new(pattern)
            .unwrap()
            .replace_all(&t, *with)
            .into_owned()
    })
}

/// Where the object after `"prometheus":` starts and ends, so that it is replaced in place
/// and the rest keeps its bytes and key order.
fn prometheus_span(text: &str) -> Option<(usize, usize)> {
    let key = text.find("\"prometheus\":")? + "\"prometheus\":".len();
    let start = key + text[key..].find(|c: char| !c.is_whitespace())?;
    if !text[start..].starts_with('{') {
        return None;
    }
    Some((start, start + value_len(&text[start..])?))
}

/// The length of the JSON object or array `text` starts with.
fn value_len(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (false, _, '"') => in_string = true,
            (false, _, '{' | '[') => depth += 1,
            (false, _, '}' | ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` without the member `"key": [...]` that follows another member: a field verdict adds
/// to an OPA document (the `engines` of `/v1/status`), which OPA's clients skip as unknown.
fn without_member(text: &str, key: &str) -> String {
    let quoted = format!("\"{key}\":");
    let Some(at) = text.find(&quoted) else {
        return text.to_string();
    };
    let Some(comma) = text[..at].trim_end().strip_suffix(',').map(str::len) else {
        return text.to_string();
    };
    let after = at + quoted.len();
    let Some(start) = text[after..]
        .find(|c: char| !c.is_whitespace())
        .map(|n| after + n)
    else {
        return text.to_string();
    };
    match value_len(&text[start..]) {
        Some(len) => format!("{}{}", &text[..comma], &text[start + len..]),
        None => text.to_string(),
    }
}

/// A family is compared by name, help, type and label names. Its values and label values
/// count what one process has served since it started, and `go_*` families describe the Go
/// runtime OPA is written in; a process in another language cannot have them.
#[derive(Default, Debug, PartialEq)]
struct Family {
    help: String,
    kind: String,
    labels: BTreeSet<String>,
}

fn render(families: BTreeMap<String, Family>, only: Option<&BTreeSet<String>>) -> String {
    families
        .into_iter()
        .filter(|(name, _)| !name.starts_with("go_"))
        .filter(|(name, _)| only.is_none_or(|only| only.contains(name)))
        .map(|(name, f)| {
            let labels: Vec<String> = f.labels.into_iter().collect();
            format!("{name} {} {} {{{}}}\n", f.kind, f.help, labels.join(","))
        })
        .collect()
}

/// The Prometheus text format.
fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let label_name = Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)="#).unwrap();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            families.entry(name.into()).or_default().help = help.into();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            families.entry(name.into()).or_default().kind = kind.to_lowercase();
        } else if !line.is_empty() && !line.starts_with('#') {
            let series = line.split_once('{').map_or("", |(_, l)| l);
            let name = line.split(['{', ' ']).next().unwrap_or_default();
            let family = families
                .keys()
                .filter(|f| name.starts_with(f.as_str()))
                .max_by_key(|f| f.len())
                .cloned()
                .unwrap_or_else(|| name.to_string());
            let entry = families.entry(family).or_default();
            for caps in label_name.captures_iter(series) {
                if &caps[1] != "le" && &caps[1] != "quantile" {
                    entry.labels.insert(caps[1].to_string());
                }
            }
        }
    }
    families
}

/// `metrics.prometheus` of `/v1/status`: protojson MetricFamily objects.
fn parse_protojson(families: Json) -> BTreeMap<String, Family> {
    let mut out = BTreeMap::new();
    for (name, family) in families.as_object().cloned().unwrap_or_default() {
        let mut f = Family {
            help: family["help"].as_str().unwrap_or_default().into(),
            kind: family["type"].as_str().unwrap_or_default().to_lowercase(),
            ..Family::default()
        };
        for metric in family["metric"].as_array().cloned().unwrap_or_default() {
            for label in metric["label"].as_array().cloned().unwrap_or_default() {
                f.labels
                    .insert(label["name"].as_str().unwrap_or_default().into());
            }
        }
        out.insert(name, f);
    }
    out
}

#[test]
fn normalization_keeps_everything_but_ids_times_and_values() {
    let a = br#"{"decision_id":"c952bddf-49c9-4e46-a9ce-cc84975c2a67","result":false}"#;
    assert_eq!(body(None, a, None), r#"{"result":false}"#);
    let b = br#"{"metrics":{"timer_rego_query_eval_ns":745510},"result":true}"#;
    assert_eq!(
        body(None, b, None),
        r#"{"metrics":{"timer_rego_query_eval_ns":0},"result":true}"#
    );
    assert_ne!(
        body(None, b"{\"result\":true}", None),
        body(None, b"{\"result\":false}", None)
    );
    let t = br#"{"a":"2026-11-24T16:38:53.7129827Z","b":"0001-01-01T00:00:00Z"}"#;
    assert_eq!(body(None, t, None), r#"{"a":"<time>","b":"<never>"}"#);
    // verdict's own status member goes, compact or pretty; everything else stays.
    let e = br#"{"result":{"plugins":{"a":1},"engines":[{"path":"p","x":["]"]}]}}"#;
    assert_eq!(body(None, e, None), r#"{"result":{"plugins":{"a":1}}}"#);
    let p = b"{\n  \"plugins\": {},\n  \"engines\": [\n    {}\n  ]\n}\n";
    assert_eq!(body(None, p, None), "{\n  \"plugins\": {}\n}\n");
}

#[test]
fn metric_families_compare_by_name_help_type_and_label_names() {
    let prom = Some("text/plain; version=0.0.4; charset=utf-8");
    let opa = "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\"} 3\n\
               # HELP go_gc_x Go.\n# TYPE go_gc_x gauge\ngo_gc_x 1\n";
    let only = family_names(prom, opa.as_bytes());
    assert_eq!(only, BTreeSet::from(["x_total".to_string()]));
    let norm = |text: &str| body(prom, text.as_bytes(), Some(&only));
    let more = "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"2\"} 9\n\
                # HELP y Other.\n# TYPE y gauge\ny 1\n";
    assert_eq!(
        norm(opa),
        norm(more),
        "values and extra families are not compared"
    );
    let renamed = "# HELP x_total Things.\n# TYPE x_total counter\nx_total{b=\"2\"} 9\n";
    assert_ne!(norm(opa), norm(renamed), "label names are");
    let missing = "# HELP y Other.\n# TYPE y gauge\ny 1\n";
    assert_ne!(norm(opa), norm(missing), "OPA's families must be there");
    let status = br#"{"result":{"metrics":{"prometheus":{"x_total":{"name":"x_total","help":"Things.","type":"COUNTER","metric":[{"label":[{"name":"a","value":"1"}],"counter":{"value":3}}]}}},"plugins":{}}}"#;
    assert_eq!(family_names(None, status), only);
    assert_eq!(
        body(None, status, Some(&only)),
        r#"{"result":{"metrics":{"prometheus":"x_total counter Things. {a}\n"},"plugins":{}}}"#
    );
}
