//! The parts of Go's `net/url.Parse` that AWS signing reads: the host (with its port, without
//! user information), the path as `EscapedPath` writes it and the raw query, and Go's errors
//! for the URLs it refuses. A signature covers these bytes, so they must be Go's.

use super::super::strings::goquote::quote;

/// A URL as Go's parser splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoUrl {
    pub host: String,
    pub escaped_path: String,
    pub raw_query: String,
}

/// Go's `url.Parse`; the error is `*url.Error`'s text, `parse "<url>": <reason>`.
pub fn parse(raw: &str) -> Result<GoUrl, String> {
    let (url, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let parsed = parse_reference(url).map_err(|e| format!("parse {}: {e}", quote(url, false)))?;
    // Go unescapes the fragment too, and refuses a bad escape in it.
    unescape(fragment, false).map_err(|e| format!("parse {}: {e}", quote(raw, false)))?;
    Ok(parsed)
}

fn parse_reference(raw: &str) -> Result<GoUrl, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = GoUrl {
        host: String::new(),
        escaped_path: String::new(),
        raw_query: String::new(),
    };
    if raw == "*" {
        url.escaped_path = "*".into();
        return Ok(url);
    }
    let (scheme, rest) = scheme(raw)?;
    let rest = match rest.strip_suffix('?') {
        Some(stripped) if !stripped.contains('?') => stripped,
        _ => match rest.split_once('?') {
            Some((before, query)) => {
                url.raw_query = query.to_string();
                before
            }
            None => rest,
        },
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // An opaque URL ("mailto:x", "http:host"): no host, no path.
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or_default();
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority = &rest[2..];
        let (authority, after) = match authority.find('/') {
            Some(i) => authority.split_at(i),
            None => (authority, ""),
        };
        url.host = parse_authority(authority)?;
        path = after;
    }
    let unescaped = unescape(path, false)?;
    url.escaped_path = if valid_encoded(path) {
        path.to_string()
    } else {
        escape_path(&unescaped)
    };
    Ok(url)
}

/// Go's `getScheme`: a letter, then letters, digits, `+`, `-`, `.`, up to a colon.
fn scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// Go's `parseAuthority`: user information before the last `@` is checked and dropped.
fn parse_authority(authority: &str) -> Result<String, String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let host = parse_host(host)?;
    if let Some(userinfo) = userinfo {
        let valid = userinfo
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c));
        if !valid {
            return Err("net/url: invalid userinfo".into());
        }
        unescape(userinfo, false)?;
    }
    Ok(host)
}

fn parse_host(host: &str) -> Result<String, String> {
    let port = if host.starts_with('[') {
        let Some(close) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        &host[close + 1..]
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    let valid_port = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    if !valid_port {
        return Err(format!("invalid port {} after host", quote(port, false)));
    }
    unescape(host, true)
}

/// Go's `shouldEscape` in path mode, or in host mode when `host`.
fn should_escape(c: u8, host: bool) -> bool {
    if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
        return false;
    }
    if host {
        return !b"!$&'()*+,;=:[]<>\"".contains(&c);
    }
    // Go leaves `$&+,/:;=@` alone in a path and escapes `?` and everything else.
    !b"$&+,/:;=@".contains(&c)
}

/// Go's `unescape`: `%XX` decoded, a bad escape refused; in a `host` only non-ASCII bytes may
/// be escaped and the characters a host cannot hold are refused.
fn unescape(s: &str, host: bool) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16)
                    .ok()
                    .filter(|_| h.bytes().all(|b| b.is_ascii_hexdigit()))
            });
            let Some(byte) = hex else {
                let end = (i + 3).min(bytes.len());
                let bad = String::from_utf8_lossy(&bytes[i..end]);
                return Err(format!("invalid URL escape {}", quote(&bad, false)));
            };
            if host && byte < 0x80 && &s[i..i + 3] != "%25" {
                return Err(format!("invalid URL escape {}", quote(&s[i..i + 3], false)));
            }
            out.push(byte);
            i += 3;
            continue;
        }
        if host && c < 0x80 && should_escape(c, true) {
            let bad = char::from(c).to_string();
            return Err(format!(
                "invalid character {} in host name",
                quote(&bad, false)
            ));
        }
        out.push(c);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `validEncoded` for a path: whether `EscapedPath` may return the text as written.
fn valid_encoded(s: &str) -> bool {
    s.bytes()
        .all(|c| b"!$&'()*+,;=:@[]%".contains(&c) || !should_escape(c, false))
}

/// Go's `escape` in path mode, hex digits in upper case.
fn escape_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &c in s.as_bytes() {
        if should_escape(c, false) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(char::from(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn parts(raw: &str) -> (String, String, String) {
        match parse(raw) {
            Ok(u) => (u.host, u.escaped_path, u.raw_query),
            Err(e) => panic!("{raw}: {e}"),
        }
    }

    fn part(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    #[test]
    fn splits_host_path_and_query_as_go_does() {
        assert_eq!(parts("http://example.com"), part("example.com", "", ""));
        assert_eq!(
            parts("https://user:pw@example.com:8443/a/b?x=1&y=2#frag"),
            part("example.com:8443", "/a/b", "x=1&y=2")
        );
        assert_eq!(parts("http://[::1]:80/"), part("[::1]:80", "/", ""));
        assert_eq!(parts("http://h/p?"), part("h", "/p", ""));
        assert_eq!(parts("mailto:someone@example.com"), part("", "", ""));
        assert_eq!(parts("/relative/path?q"), part("", "/relative/path", "q"));
    }

    #[test]
    fn keeps_a_valid_escaped_path_and_escapes_the_rest() {
        assert_eq!(parts("http://h/a%2Fb").1, "/a%2Fb");
        assert_eq!(parts("http://h/a b").1, "/a%20b");
        assert_eq!(parts("http://h/caf\u{e9}").1, "/caf%C3%A9");
        assert_eq!(parts("http://h/a;b,c=d:e@f").1, "/a;b,c=d:e@f");
    }

    #[test]
    fn refuses_what_go_refuses_with_its_words() {
        let cases = [
            (
                "http://h/%zz",
                "parse \"http://h/%zz\": invalid URL escape \"%zz\"",
            ),
            ("://x", "parse \"://x\": missing protocol scheme"),
            (
                "http://h:port/",
                "parse \"http://h:port/\": invalid port \":port\" after host",
            ),
            (
                "http://[::1/",
                "parse \"http://[::1/\": missing ']' in host",
            ),
            (
                "1a:b/c",
                "parse \"1a:b/c\": first path segment in URL cannot contain colon",
            ),
            (
                "http://h\n/",
                "parse \"http://h\\n/\": net/url: invalid control character in URL",
            ),
            (
                "http://h h/",
                "parse \"http://h h/\": invalid character \" \" in host name",
            ),
            (
                "http://h/#%g",
                "parse \"http://h/#%g\": invalid URL escape \"%g\"",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(raw), Err(want.to_string()), "{raw}");
        }
    }
}
