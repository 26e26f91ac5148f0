//! The code of a Rego text without its strings and comments, for the rewrites that must work
//! before regorus can parse the text: each code character with its byte offset, and each
//! string literal as one `"` at its opening quote.

/// Code characters and their byte offsets, in order.
pub fn code(text: &str) -> Vec<(usize, char)> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '#' => while chars.next_if(|(_, c)| *c != '\n').is_some() {},
            '"' => {
                out.push((at, '"'));
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' | '\n' => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                out.push((at, '"'));
                while chars.next_if(|(_, c)| *c != '`').is_some() {}
                chars.next();
            }
            _ => out.push((at, c)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_and_comments_are_not_code() {
        let text = "p { x := \"{\\\"}\" # }\n y := `}` }";
        let code: String = super::code(text).iter().map(|(_, c)| *c).collect();
        assert_eq!(code, "p { x := \" \n y := \" }");
    }
}
