//! The checked request's URL as opa-envoy-plugin reads it: `parsed_path` and `parsed_query`,
//! with Go's `net/url` unescaping rules and error words (form bodies are queries too).

use std::collections::BTreeMap;

use regorus::Value;

use super::ExtAuthzError;

/// `parsed_path` (the unescaped path split on `/`, without its leading slashes) and
/// `parsed_query` (each parameter's values, in order).
pub fn parse_path_and_query(path: &str) -> Result<(Value, Value), ExtAuthzError> {
    let (raw_path, raw_query) = path.split_once('?').unwrap_or((path, ""));
    let decoded = unescape(raw_path, false)?;
    let segments = decoded
        .trim_start_matches('/')
        .split('/')
        .map(Value::from)
        .collect::<Vec<_>>();
    Ok((Value::from(segments), query_object(parse_query(raw_query)?)))
}

/// Go's `url.ParseQuery`: `&`-separated pairs, `+` as space. Go reads every pair and reports
/// one error: the last `;` separator if any, else the first bad escape.
pub(super) fn parse_query(query: &str) -> Result<Vec<(String, String)>, ExtAuthzError> {
    let mut pairs = Vec::new();
    let mut error: Option<ExtAuthzError> = None;
    let mut semicolon = false;
    for part in query.split('&') {
        if part.is_empty() {
            continue;
        }
        if part.contains(';') {
            semicolon = true;
            continue;
        }
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match (unescape(key, true), unescape(value, true)) {
            (Ok(k), Ok(v)) => pairs.push((k, v)),
            (Err(e), _) | (_, Err(e)) => {
                error.get_or_insert(e);
            }
        }
    }
    if semicolon {
        return Err(ExtAuthzError::QuerySemicolon);
    }
    match error {
        Some(e) => Err(e),
        None => Ok(pairs),
    }
}

/// Parameters as an object of arrays of values, as Go's `url.Values` reads in JSON.
pub(super) fn query_object(pairs: Vec<(String, String)>) -> Value {
    let mut grouped: BTreeMap<Value, Vec<Value>> = BTreeMap::new();
    for (key, value) in pairs {
        grouped
            .entry(Value::from(key))
            .or_default()
            .push(Value::from(value));
    }
    Value::from(
        grouped
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect::<BTreeMap<_, _>>(),
    )
}

/// Go's `url.PathUnescape` (`plus_is_space` false) and `url.QueryUnescape` (true).
fn unescape(s: &str, plus_is_space: bool) -> Result<String, ExtAuthzError> {
    if !(s.contains('%') || plus_is_space && s.contains('+')) {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                });
                let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
                    let end = (i + 3).min(bytes.len());
                    let escape = String::from_utf8_lossy(&bytes[i..end]).into_owned();
                    return Err(ExtAuthzError::UrlEscape { escape });
                };
                out.push(byte);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &Value) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }

    #[test]
    fn paths_and_queries_parse_like_go() {
        let (path, query) = parse_path_and_query("/pay/caf%C3%A9?a=1&b=x+y&a=2&c").unwrap();
        assert_eq!(json(&path), r#"["pay","café"]"#);
        assert_eq!(json(&query), r#"{"a":["1","2"],"b":["x y"],"c":[""]}"#);
        let (path, query) = parse_path_and_query("").unwrap();
        assert_eq!(json(&path), r#"[""]"#);
        assert_eq!(json(&query), "{}");
        assert_eq!(
            parse_path_and_query("/a%zz").unwrap_err().to_string(),
            r#"invalid URL escape "%zz""#
        );
        assert_eq!(
            parse_path_and_query("/a?x=%4").unwrap_err().to_string(),
            r#"invalid URL escape "%4""#
        );
        assert_eq!(
            parse_path_and_query("/a?x=1;y=2").unwrap_err().to_string(),
            "invalid semicolon separator in query"
        );
        assert_eq!(
            parse_path_and_query("/a?a=%zz&b;c")
                .unwrap_err()
                .to_string(),
            "invalid semicolon separator in query",
            "Go reports the semicolon over an earlier bad escape"
        );
        // A plus in a path is a plus.
        let (path, _) = parse_path_and_query("/a+b").unwrap();
        assert_eq!(json(&path), r#"["a+b"]"#);
    }
}
