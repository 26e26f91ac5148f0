//! Data paths: `/v1/data/payment/allow` and `data.payment.allow` as one typed reference.
//!
//! Follows OPA's reading of a URL path: segments are percent-decoded one by one, a segment
//! that is an integer indexes arrays, and a segment holding `"` is refused.

use super::error::EvalError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(i64),
}

/// A reference into the data document, with the forms the engine and messages need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPath {
    segments: Vec<Segment>,
    /// `data.a.b` when every segment is a plain identifier: the form `eval_rule` takes.
    rule_key: Option<String>,
    /// The segments as rule path keys, when none is an array index: worked out once, since
    /// a decision asks for them several times (its plan, its metric label, its log).
    keys: Option<Vec<String>>,
}

const KEYWORDS: &[&str] = &[
    "as", "contains", "default", "else", "every", "false", "if", "import", "in", "not", "null",
    "package", "some", "true", "with",
];

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

impl DataPath {
    pub fn new(segments: Vec<Segment>) -> Self {
        let rule_key = segments
            .iter()
            .map(|s| match s {
                Segment::Key(k) if is_identifier(k) => Some(k.as_str()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|keys| {
                let mut key = String::from("data");
                for k in keys {
                    key.push('.');
                    key.push_str(k);
                }
                key
            });
        let keys = segments
            .iter()
            .map(|s| match s {
                Segment::Key(k) => Some(k.clone()),
                Segment::Index(_) => None,
            })
            .collect();
        DataPath {
            segments,
            rule_key,
            keys,
        }
    }

    /// The segments as keys of the rule tree, `None` when one is an array index.
    pub fn keys(&self) -> Option<&[String]> {
        self.keys.as_deref()
    }

    pub fn root() -> Self {
        DataPath::new(Vec::new())
    }

    /// Reads the part of a URL path after `/v1/data`, still percent-escaped. Empty segments
    /// are skipped, so `/v1/data/` and `/v1/data` both mean the whole document.
    pub fn from_url(escaped: &str) -> Result<Self, EvalError> {
        let mut segments = Vec::new();
        for raw in escaped.split('/').filter(|s| !s.is_empty()) {
            // OPA keeps the raw text when a segment does not unescape.
            let text = percent_decode(raw).unwrap_or_else(|| raw.to_string());
            segments.push(Self::segment(text)?);
        }
        Ok(DataPath::new(segments))
    }

    /// Reads `data.payment.allow`, `payment.allow`, `/payment/allow` or `payment/allow`: the
    /// forms users write for `eval`, `default_decision` and config paths.
    pub fn parse(text: &str) -> Result<Self, EvalError> {
        let text = text.trim();
        let body = if text.contains('/') || !text.contains('.') {
            text.trim_start_matches('/')
                .trim_start_matches("data/")
                .to_string()
        } else {
            text.trim_start_matches("data.").replace('.', "/")
        };
        if body == "data" {
            return Ok(DataPath::root());
        }
        let mut segments = Vec::new();
        for part in body.split('/').filter(|s| !s.is_empty()) {
            segments.push(Self::segment(part.to_string())?);
        }
        Ok(DataPath::new(segments))
    }

    fn segment(text: String) -> Result<Segment, EvalError> {
        if text.contains('"') {
            return Err(EvalError::InvalidPath(text));
        }
        Ok(match go_atoi(&text) {
            Some(i) => Segment::Index(i),
            None => Segment::Key(text),
        })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn rule_key(&self) -> Option<&str> {
        self.rule_key.as_deref()
    }

    /// How many segments lead the path before the first array index.
    pub fn leading_keys(&self) -> usize {
        self.segments
            .iter()
            .take_while(|s| matches!(s, Segment::Key(_)))
            .count()
    }

    /// `data.a.b` for the first `n` segments, when they are all plain identifiers.
    pub fn prefix_rule_key(&self, n: usize) -> Option<String> {
        let mut key = String::from("data");
        for s in self.segments.get(..n)? {
            match s {
                Segment::Key(k) if is_identifier(k) => {
                    key.push('.');
                    key.push_str(k);
                }
                _ => return None,
            }
        }
        Some(key)
    }

    /// The query reading the first `n` segments (which must be keys): `data["a"]["b"]`.
    /// Keys are written as JSON strings, so any text is a valid query.
    pub fn prefix_query(&self, n: usize) -> String {
        let mut q = String::from("data");
        for s in self.segments.iter().take(n) {
            if let Segment::Key(k) = s {
                q.push('[');
                q.push_str(&serde_json::Value::String(k.clone()).to_string());
                q.push(']');
            }
        }
        q
    }

    /// The reference as OPA prints it in messages: `data.system.health.does["not"].exist`.
    pub fn display_ref(&self) -> String {
        let mut out = String::from("data");
        for s in &self.segments {
            match s {
                Segment::Key(k) if is_identifier(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Segment::Key(k) => {
                    out.push('[');
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push(']');
                }
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The path as decision logs and `default_decision` write it: `payment/allow`.
    pub fn slashed(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Key(k) => k.clone(),
                Segment::Index(i) => i.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The same path with `more` appended.
    pub fn join(&self, more: &DataPath) -> DataPath {
        let mut segments = self.segments.clone();
        segments.extend(more.segments.iter().cloned());
        DataPath::new(segments)
    }
}

/// Go's `strconv.Atoi`: optional sign, ASCII digits, within 64 bits.
pub(crate) fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_decode_like_opa() {
        let p = DataPath::from_url("limits/roles/cust%6Fmer").unwrap();
        assert_eq!(p.rule_key(), Some("data.limits.roles.customer"));
        let p = DataPath::from_url("limits/currencies/1").unwrap();
        assert_eq!(p.segments()[2], Segment::Index(1));
        assert_eq!(p.leading_keys(), 2);
        assert_eq!(p.prefix_query(2), "data[\"limits\"][\"currencies\"]");
        assert_eq!(
            p.prefix_rule_key(2).as_deref(),
            Some("data.limits.currencies")
        );
        assert_eq!(p.rule_key(), None);
        assert!(matches!(
            DataPath::from_url("payment/a%22b"),
            Err(EvalError::InvalidPath(s)) if s == "a\"b"
        ));
        assert!(DataPath::from_url("").unwrap().is_root());
        assert!(DataPath::from_url("//").unwrap().is_root());
        let p = DataPath::from_url("x/%zz").unwrap();
        assert_eq!(p.segments()[1], Segment::Key("%zz".into()));
    }

    #[test]
    fn references_print_like_opa() {
        let p = DataPath::parse("system/health/does/not/exist").unwrap();
        assert_eq!(p.display_ref(), "data.system.health.does[\"not\"].exist");
        assert_eq!(
            p.rule_key(),
            None,
            "a keyword segment cannot use the rule fast path"
        );
        let p = DataPath::parse("data.payment.allow").unwrap();
        assert_eq!(p.slashed(), "payment/allow");
        assert_eq!(
            DataPath::parse("/system/main").unwrap().display_ref(),
            "data.system.main"
        );
        assert!(DataPath::parse("data").unwrap().is_root());
    }
}
