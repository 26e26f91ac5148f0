//! Parse errors told as OPA's parser tells them: the token the parser could not take, named
//! as OPA names tokens, and the `details` OPA's clients print under the message (the source
//! line and where in it the error is).

use serde::Serialize;

use super::excerpt::Excerpt;

/// OPA's `details` of a parse error: the line the error is on and the byte index in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseDetails {
    pub line: String,
    pub idx: usize,
}

impl ParseDetails {
    /// The line and a caret under the error, each on its own tab-indented line; leading tabs
    /// of the source line are dropped, as OPA drops them.
    pub fn lines(&self) -> String {
        let line = self.line.trim_start_matches('\t');
        let indent = self.idx.saturating_sub(self.line.len() - line.len());
        format!("\n\t{line}\n\t{}^", " ".repeat(indent))
    }
}

/// What a parse error says and shows, given regorus's message and its quoted line.
pub(super) fn explain(
    message: &str,
    excerpt: Option<&Excerpt<'_>>,
) -> (String, Option<ParseDetails>) {
    let Some(excerpt) = excerpt else {
        return (message.to_string(), None);
    };
    let (line, caret) = (excerpt.line(), excerpt.caret());
    // regorus says what it expected where a token stood that no rule could take: OPA names
    // that token. Other "expecting" texts point where a construct started, not at the
    // offending token, so they are left as regorus says them.
    let message = match message {
        "expecting expression" | "expecting EOF" => {
            format!("unexpected {} token", token_name(line, caret))
        }
        other => other.to_string(),
    };
    // OPA's scanner and grammar errors carry details; its checks after parsing (a rule body
    // without `if`, say) do not.
    let syntax = ["expecting", "unexpected", "invalid"]
        .iter()
        .any(|p| message.starts_with(p));
    (message, syntax.then(|| details(line, caret)))
}

/// OPA points at the last character that is not blank at or before the error, so an error at
/// the end of the text shows what came before it.
fn details(line: &str, caret: usize) -> ParseDetails {
    let bytes = line.as_bytes();
    let mut idx = caret.min(bytes.len().saturating_sub(1));
    while idx > 0 && bytes.get(idx).is_none_or(u8::is_ascii_whitespace) {
        idx -= 1;
    }
    ParseDetails {
        line: line.to_string(),
        idx,
    }
}

/// OPA's name for the token starting at `at` in `line`; the end of the line's text is the
/// end of the input, since regorus's tokens never start on a blank.
fn token_name(line: &str, at: usize) -> &'static str {
    let rest = line.get(at..).unwrap_or("").trim_end();
    let Some(first) = rest.chars().next() else {
        return "eof";
    };
    if first.is_ascii_alphabetic() || first == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        return keyword(&word).unwrap_or("identifier");
    }
    if first.is_ascii_digit() {
        return "number";
    }
    let two = rest.get(..2).unwrap_or("");
    match two {
        ":=" => return "assign",
        "==" => return "equal",
        "!=" => return "neq",
        ">=" => return "gte",
        "<=" => return "lte",
        _ => {}
    }
    match first {
        '"' | '`' => "string",
        '[' => "[",
        ']' => "]",
        '{' => "{",
        '}' => "}",
        '(' => "(",
        ')' => ")",
        ',' => ",",
        ':' => ":",
        ';' => ";",
        '.' => ".",
        '+' => "plus",
        '-' => "minus",
        '*' => "mul",
        '/' => "div",
        '%' => "rem",
        '&' => "and",
        '|' => "or",
        '=' => "eq",
        '>' => "gt",
        '<' => "lt",
        '$' => "dollar",
        _ => "illegal",
    }
}

/// The words OPA's scanner reads as keywords in Rego v1.
fn keyword(word: &str) -> Option<&'static str> {
    const KEYWORDS: [&str; 15] = [
        "package", "import", "as", "default", "else", "not", "some", "with", "null", "true",
        "false", "every", "contains", "if", "in",
    ];
    KEYWORDS.iter().find(|k| **k == word).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(line: &str, col: usize, message: &str) -> (String, Option<ParseDetails>) {
        let rendered = format!("\n--> m.rego:5:{col}\n  |\n5 | {line}\n  | ^\nerror: {message}");
        explain(message, Excerpt::of(&rendered).as_ref())
    }

    #[test]
    fn the_token_regorus_could_not_take_is_named_as_opa_names_it() {
        let cases = [
            ("}", 1, "}"),
            ("  x := )", 8, ")"),
            ("  x := := 1", 8, "assign"),
            ("  y == 2", 5, "equal"),
            ("  allow := input.x", 3, "identifier"),
            ("  else = 1", 3, "else"),
            ("  42", 3, "number"),
            ("  \"a\"", 3, "string"),
            ("  x := 1 ", 10, "eof"),
            ("  x := #", 8, "illegal"),
        ];
        for (line, col, token) in cases {
            let (message, _) = explained(line, col, "expecting expression");
            assert_eq!(
                message,
                format!("unexpected {token} token"),
                "{line:?} at {col}"
            );
        }
    }

    #[test]
    fn details_point_at_the_last_written_character_at_or_before_the_error() {
        let (_, d) = explained("}", 1, "expecting expression");
        assert_eq!(
            d,
            Some(ParseDetails {
                line: "}".into(),
                idx: 0
            })
        );
        // At the end of the input OPA shows what came before it.
        let (_, d) = explained("x := ", 6, "expecting expression");
        assert_eq!(
            d,
            Some(ParseDetails {
                line: "x := ".into(),
                idx: 3
            })
        );
    }

    #[test]
    fn messages_that_point_elsewhere_keep_their_words_and_gain_details() {
        let (message, d) = explained("  x := [1,", 3, "expecting `}` while parsing set");
        assert_eq!(message, "expecting `}` while parsing set");
        assert_eq!(d.map(|d| d.idx), Some(2));
        assert_eq!(
            explain("expecting expression", None),
            ("expecting expression".into(), None)
        );
        let (_, d) = explained(
            "allow { true }",
            7,
            "`if` keyword is required before rule body",
        );
        assert_eq!(d, None);
    }
}
