//! One normal form for a request path, so that the path a policy decides on is the path the
//! upstream serves: RFC 3986's normalisation (percent-encoded unreserved characters decoded,
//! other escapes in upper case, dot segments removed) plus merged slashes. What could be read
//! two ways is refused rather than guessed: an encoded `/` or `\` (a separator to some servers,
//! a name character to others), an encoded NUL, an encoded `%` followed by hex (decoded twice
//! by some servers), a bad escape, a raw backslash.
//!
//! Envoy offers the same choices (`normalize_path`, `merge_slashes`,
//! `path_with_escaped_slashes_action: REJECT_REQUEST`); opa-envoy-plugin applies none.

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("ambiguous path: {what} at byte {at}")]
    Ambiguous { what: &'static str, at: usize },
    #[error("invalid URL escape {escape:?}")]
    BadEscape { escape: String },
    #[error("the request target must be an absolute path")]
    NotAbsolute,
}

/// Normalises the path of `target` (a path with an optional `?query`, the query left as it
/// is).
pub fn normalize_target(target: &str) -> Result<String, PathError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut out = normalize_path(path)?;
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Normalises an absolute path.
pub fn normalize_path(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode_unreserved(path)?;
    let segments = decoded.split('/').filter(|s| !s.is_empty());
    let mut kept: Vec<&str> = Vec::new();
    for segment in segments {
        match segment {
            "." => {}
            // Above the root stays at the root, as RFC 3986 section 5.2.4 says.
            ".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    // A trailing slash (or a last `.`/`..`) names a directory: `/a/` and `/a` may differ.
    let ends_as_directory = decoded.ends_with('/')
        || decoded.ends_with("/.")
        || decoded.ends_with("/..")
        || kept.is_empty();
    if ends_as_directory {
        out.push('/');
    }
    Ok(out)
}

/// Decodes escapes of unreserved characters, upper-cases the rest, and refuses the ambiguous.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let byte = hex_pair(bytes, i + 1).ok_or_else(|| PathError::BadEscape {
                    escape: String::from_utf8_lossy(&bytes[i..(i + 3).min(bytes.len())])
                        .into_owned(),
                })?;
                let ambiguous = |what| Err(PathError::Ambiguous { what, at: i });
                match byte {
                    b'/' => return ambiguous("an encoded slash"),
                    b'\\' => return ambiguous("an encoded backslash"),
                    0 => return ambiguous("an encoded NUL"),
                    b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => out.push(b as char),
                    b => {
                        out.push('%');
                        out.push_str(&format!("{b:02X}"));
                    }
                }
                i += 3;
            }
            b'\\' => {
                return Err(PathError::Ambiguous {
                    what: "a backslash",
                    at: i,
                })
            }
            _ => {
                // Copy the run up to the next escape or backslash unchanged (UTF-8 kept whole).
                let end = bytes[i..]
                    .iter()
                    .position(|b| *b == b'%' || *b == b'\\')
                    .map_or(bytes.len(), |n| i + n);
                out.push_str(&path[i..end]);
                i = end;
            }
        }
    }
    // An encoded `%` followed by hex is an escape to a server that decodes twice. Checked on
    // the result: decoding `%25%34%31` above makes `%2541` (found by the proxy_path fuzzer).
    let written = out.as_bytes();
    let double = written
        .windows(3)
        .enumerate()
        .find(|(at, w)| *w == b"%25" && hex_pair(written, at + 3).is_some());
    if let Some((at, _)) = double {
        return Err(PathError::Ambiguous {
            what: "a double-encoded escape",
            at,
        });
    }
    Ok(out)
}

fn hex_pair(bytes: &[u8], at: usize) -> Option<u8> {
    let pair = bytes.get(at..at + 2)?;
    let text = std::str::from_utf8(pair).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u8::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(path: &str) -> String {
        normalize_target(path).unwrap()
    }

    #[test]
    fn dot_segments_and_slashes_collapse() {
        assert_eq!(ok("/public/../admin"), "/admin");
        assert_eq!(ok("/public/%2e%2e/admin"), "/admin");
        assert_eq!(ok("/public/%2E%2e/admin"), "/admin");
        assert_eq!(ok("/public/./a/./b"), "/public/a/b");
        assert_eq!(ok("//public///a"), "/public/a");
        assert_eq!(ok("/../../etc"), "/etc");
        assert_eq!(ok("/a/b/.."), "/a/");
        assert_eq!(ok("/a/b/"), "/a/b/");
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("/.."), "/");
        assert_eq!(
            ok("/a?x=../y&z=%2F"),
            "/a?x=../y&z=%2F",
            "queries are left alone"
        );
    }

    #[test]
    fn escapes_are_decoded_only_when_unambiguous() {
        assert_eq!(ok("/%61pi/pay%2Dment"), "/api/pay-ment");
        assert_eq!(ok("/caf%c3%a9"), "/caf%C3%A9");
        assert_eq!(ok("/a%20b"), "/a%20b");
        assert_eq!(ok("/café"), "/café");
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for path in [
            "/public%2f..%2fadmin",
            "/public%2F..%2Fadmin",
            "/public%5c..%5cadmin",
            "/public\\..\\admin",
            "/a%00b",
            "/a/%252e%252e/admin",
            "/a/%25%32%65",
            // Found by the proxy_path fuzzer: decoding %42 made the %25 before it an escape.
            "/%25J%25%425J%25\0-/*",
        ] {
            assert!(
                matches!(normalize_target(path), Err(PathError::Ambiguous { .. })),
                "{path} must be refused"
            );
        }
        assert_eq!(
            normalize_target("/a%zz").unwrap_err().to_string(),
            r#"invalid URL escape "%zz""#
        );
        assert_eq!(
            normalize_target("/a%4").unwrap_err(),
            PathError::BadEscape {
                escape: "%4".into()
            }
        );
        assert_eq!(normalize_target("*").unwrap_err(), PathError::NotAbsolute);
        // A lone percent sign not followed by hex is a bad escape, not a double encoding.
        assert!(matches!(
            normalize_target("/100%25"),
            Ok(p) if p == "/100%25"
        ));
    }
}
