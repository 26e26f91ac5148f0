//! Rego v0 rules with several bodies (`violation[m] { a } { b }`): OPA reads one definition
//! per body, regorus reads the further bodies as `else` (and refuses them for partial sets:
//! "else cannot be used with set rules"). Each further body gets the rule's head written
//! before it, on the same line. Lexical, since regorus cannot parse the text before.

use super::edits::Edit;
use super::scan;

/// Characters after which `{` opens a value (an object or set), not a rule body.
const VALUE_BEFORE: &[char] = &[
    '=', ',', '(', '[', ':', '|', '&', '{', '+', '-', '*', '/', '<', '>', '!',
];

pub fn edits(text: &str) -> Vec<Edit> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    // The outermost `{` open now opened a body.
    let mut in_body = false;
    // A body just closed and only whitespace followed.
    let mut after_body = false;
    let mut statement: Option<usize> = None;
    let mut head: Option<&str> = None;
    let mut last: Option<char> = None;
    for (at, c) in scan::code(text) {
        if depth > 0 {
            match c {
                '{' | '[' | '(' => depth += 1,
                '}' | ']' | ')' => {
                    depth -= 1;
                    if depth == 0 && c == '}' && in_body {
                        in_body = false;
                        after_body = true;
                        statement = None;
                    }
                }
                _ => {}
            }
            if !c.is_whitespace() {
                last = Some(c);
            }
            continue;
        }
        if c.is_whitespace() {
            if c == '\n' && !after_body {
                statement = None;
            }
            continue;
        }
        if after_body {
            after_body = false;
            if c == '{' {
                if let Some(h) = head.filter(|h| !h.contains('\n')) {
                    out.push(Edit::insert(at as u32, format!("{h} ")));
                }
                depth = 1;
                in_body = true;
                last = Some(c);
                continue;
            }
        }
        let start = *statement.get_or_insert(at);
        match c {
            '{' => {
                let opens_body = start != at && last.is_some_and(|p| !VALUE_BEFORE.contains(&p));
                if opens_body {
                    let written = text.get(start..at).unwrap_or("").trim_end();
                    // `} else = x {` continues the rule: its head stays the rule's.
                    if !written.starts_with("else") {
                        head = Some(written);
                    }
                    in_body = true;
                }
                depth = 1;
            }
            '[' | '(' => depth = 1,
            _ => {}
        }
        last = Some(c);
    }
    out
}

#[cfg(test)]
mod tests {
    fn rewrite(text: &str) -> String {
        super::super::edits::apply(text, super::edits(text)).unwrap_or_else(|| text.to_string())
    }

    #[test]
    fn further_bodies_get_the_head() {
        let text = "package p\n\nviolation[{\"msg\": m}] {\n  m := \"a\"\n} {\n  m := \"b\"\n}\n\nf(x) = y { y := {\"k\": x} } { y := 2 }\n";
        assert_eq!(
            rewrite(text),
            "package p\n\nviolation[{\"msg\": m}] {\n  m := \"a\"\n} violation[{\"msg\": m}] {\n  m := \"b\"\n}\n\nf(x) = y { y := {\"k\": x} } f(x) = y { y := 2 }\n"
        );
    }

    #[test]
    fn values_else_chains_and_single_bodies_are_left_alone() {
        let text = "package p\n\nx = {\"a\": 1}\n\ny = {1} { true }\n\nf(x) = 1 { x > 0 } else = 2 { true }\n\nz { \"}\" != \"{\" }\n";
        assert_eq!(rewrite(text), text);
    }
}
