//! `regex.globs_match`: whether two globs (OPA's dialect: `.`, character classes, `*` and `+`
//! after an item, `\` escapes) match at least one common string. Decided on the product of the
//! two globs' automata, in time linear in the product of their lengths.

use std::collections::VecDeque;

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("regex.globs_match", 2, globs_match)];

/// Globs are compared pairwise: bound their length so the product stays small.
const MAX_GLOB: usize = 4096;

#[derive(Debug, Clone, PartialEq)]
enum Chars {
    Any,
    /// Inclusive ranges, negated or not.
    Class(bool, Vec<(char, char)>),
}

#[derive(Debug, Clone, PartialEq)]
struct Item {
    chars: Chars,
    /// `*`: zero or more; otherwise exactly one (`+` is one item then a starred copy).
    repeat: bool,
}

fn invalid(glob: &str, pos: usize, what: &str) -> BuiltinError {
    BuiltinError::invalid(format!(
        "input:{glob}, pos:{pos}, {what}: the input provided is invalid"
    ))
}

fn parse(glob: &str) -> Result<Vec<Item>, BuiltinError> {
    let chars: Vec<char> = glob.chars().collect();
    let mut items: Vec<Item> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        let set = match c {
            '.' => Chars::Any,
            '\\' => {
                i += 1;
                let e = *chars
                    .get(i)
                    .ok_or_else(|| invalid(glob, pos, "escape '\\' at end of input"))?;
                Chars::Class(false, vec![(e, e)])
            }
            '[' => {
                i += 1;
                let negated = chars.get(i) == Some(&'^');
                if negated {
                    i += 1;
                }
                let mut ranges = Vec::new();
                loop {
                    let Some(&first) = chars.get(i) else {
                        return Err(invalid(glob, pos, "set-open '[' with no closing ']'"));
                    };
                    if first == ']' {
                        break;
                    }
                    let lo = if first == '\\' {
                        i += 1;
                        *chars
                            .get(i)
                            .ok_or_else(|| invalid(glob, i + 1, "escape '\\' at end of input"))?
                    } else {
                        first
                    };
                    let hi = if chars.get(i + 1) == Some(&'-')
                        && chars.get(i + 2).is_some_and(|c| *c != ']')
                    {
                        i += 2;
                        chars[i]
                    } else {
                        lo
                    };
                    if hi < lo {
                        return Err(invalid(glob, i + 1, "range with start after end"));
                    }
                    ranges.push((lo, hi));
                    i += 1;
                }
                Chars::Class(negated, ranges)
            }
            ']' => return Err(invalid(glob, pos, "set-close ']' with no preceding '['")),
            '*' | '+' => {
                let what = format!("modifier '{c}' with no preceding item");
                let Some(last) = items.last_mut().filter(|l| !l.repeat) else {
                    return Err(invalid(glob, pos, &what));
                };
                if c == '*' {
                    last.repeat = true;
                } else {
                    let copy = Item {
                        chars: last.chars.clone(),
                        repeat: true,
                    };
                    items.push(copy);
                }
                i += 1;
                continue;
            }
            other => Chars::Class(false, vec![(other, other)]),
        };
        items.push(Item {
            chars: set,
            repeat: false,
        });
        i += 1;
    }
    Ok(items)
}

/// Whether a positive class leaves anything outside the ranges of `other`.
fn escapes(ranges: &[(char, char)], other: &[(char, char)]) -> bool {
    let mut covered: Vec<(u32, u32)> = other.iter().map(|(a, b)| (*a as u32, *b as u32)).collect();
    covered.sort_unstable();
    ranges.iter().any(|&(lo, hi)| {
        let mut next = lo as u32;
        for &(a, b) in &covered {
            if a > next {
                break;
            }
            next = next.max(b.saturating_add(1));
        }
        next <= hi as u32
    })
}

fn overlap(a: &Chars, b: &Chars) -> bool {
    match (a, b) {
        (Chars::Any, Chars::Class(false, r)) | (Chars::Class(false, r), Chars::Any) => {
            !r.is_empty()
        }
        (Chars::Any, _) | (_, Chars::Any) => true,
        (Chars::Class(false, x), Chars::Class(false, y)) => x
            .iter()
            .any(|(a, b)| y.iter().any(|(c, d)| a <= d && c <= b)),
        (Chars::Class(false, x), Chars::Class(true, y))
        | (Chars::Class(true, y), Chars::Class(false, x)) => escapes(x, y),
        (Chars::Class(true, _), Chars::Class(true, _)) => true,
    }
}

/// The positions reachable from `at` by skipping starred items.
fn closure(items: &[Item], mut at: usize) -> Vec<usize> {
    let mut out = vec![at];
    while items.get(at).is_some_and(|i| i.repeat) {
        at += 1;
        out.push(at);
    }
    out
}

fn intersect(a: &[Item], b: &[Item]) -> bool {
    let width = b.len() + 1;
    let mut seen = vec![false; (a.len() + 1) * width];
    let mut queue = VecDeque::from([(0usize, 0usize)]);
    while let Some((i, j)) = queue.pop_front() {
        for x in closure(a, i) {
            for y in closure(b, j) {
                if x == a.len() && y == b.len() {
                    return true;
                }
                let (Some(p), Some(q)) = (a.get(x), b.get(y)) else {
                    continue;
                };
                if !overlap(&p.chars, &q.chars) {
                    continue;
                }
                let next = (
                    if p.repeat { x } else { x + 1 },
                    if q.repeat { y } else { y + 1 },
                );
                let slot = next.0 * width + next.1;
                if seen.get(slot) == Some(&false) {
                    seen[slot] = true;
                    queue.push_back(next);
                }
            }
        }
    }
    false
}

fn globs_match(args: &[Value]) -> Result<Value, BuiltinError> {
    let a = args::string(args, 0)?;
    let b = args::string(args, 1)?;
    if a.len() > MAX_GLOB || b.len() > MAX_GLOB {
        return Err(BuiltinError::invalid("glob is too long"));
    }
    Ok(Value::from(intersect(&parse(a)?, &parse(b)?)))
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use crate::policy::builtins::testing::{fails, value};

    fn matches(a: &str, b: &str) -> Value {
        value(&format!("regex.globs_match(`{a}`, `{b}`)"))
    }

    #[test]
    fn globs_intersect_when_some_string_matches_both() {
        let yes = Value::from(true);
        let no = Value::from(false);
        assert_eq!(matches("a.a.[0-9]+z", ".b.b2359825792*594823z"), yes);
        assert_eq!(matches("[a-z]+", "[0-9]*"), no);
        assert_eq!(matches(r"[a-z]+\[[0-9]+\]", r"foo\[1\]"), yes);
        assert_eq!(matches(r"[a-z]+\[[0-9]+\]", r#"foo["bar"]"#), no);
        assert_eq!(matches("a*", ""), yes);
        assert_eq!(matches("[^a]", "a"), no);
        assert_eq!(matches("[^a]", "[a-c]"), yes);
        assert_eq!(matches("x.*y", "xzzzy"), yes);
    }

    #[test]
    fn malformed_globs_are_errors() {
        fails("regex.globs_match(`pqrs]`, `[a-b]+`)", "input:pqrs], pos:5, set-close ']' with no preceding '[': the input provided is invalid");
        fails(
            "regex.globs_match(`[ab`, `a`)",
            "set-open '[' with no closing ']'",
        );
        fails(
            "regex.globs_match(`*a`, `a`)",
            "modifier '*' with no preceding item",
        );
        fails(
            "regex.globs_match(1, `a`)",
            "operand 1 must be string but got number",
        );
    }
}
