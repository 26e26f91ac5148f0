//! The source line regorus quotes in a rendered error, read as far as classifying needs: which
//! call an argument at the caret belongs to (and as which operand), and what kind of rule a
//! head on that line defines. regorus's messages lack both, and OPA's texts carry them.

/// The quoted line and the caret's byte offset in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Excerpt<'a> {
    line: &'a str,
    caret: usize,
}

/// The call whose argument list holds the caret, as written: `array.concat` and 2 for the
/// caret on `y` in `array.concat(x, y)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Call {
    pub name: String,
    pub operand: usize,
}

/// What a rule head defines, as far as its conflict message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Head {
    /// `f(x) := ...`
    Function,
    /// A ref with a variable key, `p[x] := ...` or `p.q[k].r := ...`: an object built by keys.
    VariableKey,
    /// `p := ...`, `p.q.r := ...`, `p["x"] := ...`: one value at one path.
    Complete,
}

impl<'a> Excerpt<'a> {
    /// Finds the quoted line of a rendered error (`--> file:row:col`, then `row | source`,
    /// then the caret line). `None` when the text has no such excerpt.
    pub fn of(text: &'a str) -> Option<Excerpt<'a>> {
        let mut lines = text.lines();
        let arrow = lines.find_map(|l| l.trim_start().strip_prefix("--> "))?;
        let mut parts = arrow.trim().rsplitn(3, ':');
        let col: usize = parts.next()?.parse().ok()?;
        let row = parts.next()?;
        let prefix = format!("{row} | ");
        let line = lines.find_map(|l| l.strip_prefix(prefix.as_str()))?;
        Some(Excerpt {
            line,
            caret: byte_at_column(line, col)?,
        })
    }

    /// The quoted source line.
    pub fn line(&self) -> &'a str {
        self.line
    }

    /// The caret's byte offset in the line; the line's length when it points past its end.
    pub fn caret(&self) -> usize {
        self.caret
    }

    /// The column where the quoted line's text starts: where a rule head on it begins.
    pub fn first_column(&self) -> u32 {
        let indent = self.line.chars().take_while(|c| c.is_whitespace()).count();
        u32::try_from(indent).map_or(1, |n| n.saturating_add(1))
    }

    /// The call whose argument list directly holds the caret (not inside a literal within
    /// the list), when the line shows it.
    pub fn call(&self) -> Option<Call> {
        let before = self.line.get(..self.caret)?;
        let mut frames: Vec<Frame> = Vec::new();
        let mut word_start: Option<usize> = None;
        let mut chars = before.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if is_ref_char(c) {
                word_start.get_or_insert(i);
                continue;
            }
            let word = word_start.take().map(|s| &before[s..i]);
            match c {
                // regorus points inside a string literal, past its opening quote.
                '"' | '`' if i + 1 == before.len() => break,
                '"' | '`' => skip_string(&mut chars, c)?,
                '#' => return None,
                '(' => frames.push(Frame {
                    name: word.filter(|w| is_name(w)).map(str::to_string),
                    commas: 0,
                }),
                '[' | '{' => frames.push(Frame {
                    name: None,
                    commas: 0,
                }),
                ')' | ']' | '}' => {
                    frames.pop()?;
                }
                ',' => {
                    if let Some(top) = frames.last_mut() {
                        top.commas += 1;
                    }
                }
                _ => {}
            }
        }
        let top = frames.pop()?;
        Some(Call {
            name: top.name?,
            operand: top.commas + 1,
        })
    }

    /// The function called at the caret, for errors regorus reports at a whole call:
    /// `units.parse` for the caret on `units.parse("1 G")`.
    /// regorus points at the name or at the opening parenthesis.
    pub fn called(&self) -> Option<String> {
        let (before, rest) = self.line.split_at_checked(self.caret)?;
        if rest.starts_with('(') {
            let start = before.rfind(|c: char| !is_ref_char(c)).map_or(0, |i| i + 1);
            let name = &before[start..];
            return is_name(name).then(|| name.to_string());
        }
        if before.ends_with(is_ref_char) {
            return None;
        }
        let end = rest.find(|c: char| !is_ref_char(c)).unwrap_or(rest.len());
        let name = &rest[..end];
        (is_name(name) && rest[end..].starts_with('(')).then(|| name.to_string())
    }

    /// The kind of rule whose head opens the line, `None` when the line opens no rule head.
    pub fn head(&self) -> Option<Head> {
        let text = self.line.trim_start();
        let name_end = text.find(|c: char| !is_ref_char(c)).unwrap_or(text.len());
        if !is_name(text.get(..name_end)?) {
            return None;
        }
        let mut rest = &text[name_end..];
        let mut variable_key = false;
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            variable_key |= !is_literal(inner[..close].trim());
            rest = &inner[close + 1..];
            let more = rest.find(|c: char| !is_ref_char(c)).unwrap_or(rest.len());
            rest = &rest[more..];
        }
        let rest = rest.trim_start();
        if rest.starts_with('(') {
            Some(Head::Function)
        } else if [":=", "=", "if", "{", "else"]
            .iter()
            .any(|k| rest.starts_with(k))
            || rest.is_empty()
        {
            Some(if variable_key {
                Head::VariableKey
            } else {
                Head::Complete
            })
        } else {
            None
        }
    }
}

struct Frame {
    name: Option<String>,
    commas: usize,
}

/// regorus counts a tab as four columns and everything else by its bytes.
fn byte_at_column(line: &str, col: usize) -> Option<usize> {
    let mut at = 1;
    for (i, c) in line.char_indices() {
        if at >= col {
            return Some(i);
        }
        at += if c == '\t' { 4 } else { c.len_utf8() };
    }
    (at >= col).then_some(line.len())
}

fn skip_string(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    quote: char,
) -> Option<()> {
    while let Some((_, c)) = chars.next() {
        if c == quote {
            return Some(());
        }
        if c == '\\' && quote == '"' {
            chars.next();
        }
    }
    // The caret sits inside the string: no call argument starts there.
    None
}

fn is_ref_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// A dotted name that can be called: `count`, `data.lib.f`, not `1.5` or `.x`.
fn is_name(word: &str) -> bool {
    word.split('.')
        .all(|part| part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// A scalar key written in a rule head: OPA reads `p["x"]` and `p[1]` as one path.
fn is_literal(key: &str) -> bool {
    (key.len() >= 2 && key.starts_with('"') && key.ends_with('"'))
        || matches!(key, "true" | "false" | "null")
        || key.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(line: &str, col: usize) -> String {
        let pad = " ".repeat(col.saturating_sub(1));
        format!("\n--> test-0.rego:5:{col}\n  |\n5 | {line}\n  | {pad}^\nerror: boom")
    }

    fn call(line: &str, col: usize) -> Option<Call> {
        Excerpt::of(&rendered(line, col))?.call()
    }

    #[test]
    fn the_operand_is_counted_among_the_calls_own_arguments() {
        let line = "\tarray.concat([1, 2], __local1__, __local0__)";
        // A tab is four columns to regorus: `__local1__` starts at column 26.
        assert_eq!(
            call(line, 26),
            Some(Call {
                name: "array.concat".into(),
                operand: 2
            })
        );
        assert_eq!(call(line, 18).map(|c| c.operand), Some(1));
        // A string argument: regorus points past its opening quote.
        let quoted = "\tunits.parse(\"G\")";
        assert_eq!(
            call(quoted, 18).map(|c| (c.name, c.operand)),
            Some(("units.parse".into(), 1))
        );
        let nested = "x := json.remove(f(\"a,b\", [1, 2]), y)";
        let at_y = nested.find(", y").unwrap_or(0) + 3;
        assert_eq!(
            call(nested, at_y),
            Some(Call {
                name: "json.remove".into(),
                operand: 2
            })
        );
    }

    #[test]
    fn no_call_is_claimed_where_the_line_does_not_show_one() {
        // Inside an array literal, inside a string, or with no parenthesis before the caret.
        assert_eq!(call("x := count([1, y])", 16), None);
        assert_eq!(call("x := \"count(a, b\"", 16), None);
        assert_eq!(call("\ty, z)", 5), None);
    }

    #[test]
    fn the_function_at_the_caret_is_the_one_called_there() {
        let called = |line: &str, col: usize| Excerpt::of(&rendered(line, col))?.called();
        assert_eq!(
            called("\tunits.parse(\"1 G\")", 5),
            Some("units.parse".into())
        );
        assert_eq!(
            called("\tunits.parse(\"1 G\")", 16),
            Some("units.parse".into())
        );
        assert_eq!(called("\tunits.parse(\"1 G\")", 6), None);
        assert_eq!(called("\tx := units", 10), None);
    }

    #[test]
    fn rule_heads_are_told_apart_by_their_keys() {
        let head = |line: &str| Excerpt::of(&rendered(line, 1)).and_then(|e| e.head());
        assert_eq!(head("p[x] := y if {"), Some(Head::VariableKey));
        assert_eq!(head("p.q[s] := 2 if s := \"r\""), Some(Head::VariableKey));
        assert_eq!(head("p[q].r.s := i if q := xs[i]"), Some(Head::VariableKey));
        assert_eq!(head("p[\"x\"] := 2"), Some(Head::Complete));
        assert_eq!(head("q := xs[_]"), Some(Head::Complete));
        assert_eq!(head("conflict_2 if {"), Some(Head::Complete));
        assert_eq!(head("f(x) := o[_] == x"), Some(Head::Function));
        assert_eq!(head("} else := true"), None);
        assert_eq!(head("[x, y] := pair"), None);
    }
}
