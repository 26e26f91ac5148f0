//! regorus's builtin errors in OPA's words. OPA prefixes every builtin error with the
//! builtin's name and reports a wrong operand as `eval_type_error`, "name: operand N must be T
//! but got U"; regorus words these its own way and leaves out what the caller passed. What
//! the message omits is recovered from the quoted source line (`Excerpt`) where that is
//! certain; what cannot be recovered (a value's type regorus did not print) is left out.

use super::excerpt::Excerpt;

pub(super) const TYPE_ERROR: &str = "eval_type_error";
pub(super) const BUILTIN_ERROR: &str = "eval_builtin_error";

/// A builtin error in OPA's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Translated {
    pub code: &'static str,
    pub message: String,
}

/// OPA's order of the types a builtin accepts, where regorus lists them as "a/b" in
/// another order (OPA's texts: `NewOperandTypeErr` calls in topdown/aggregates.go,
/// object.go, json.go, strings.go). The position is the operand regorus complains about.
const ACCEPTED: &[(&str, usize, &[&str])] = &[
    ("count", 1, &["array", "object", "set", "string"]),
    ("sum", 1, &["set", "array"]),
    ("product", 1, &["set", "array"]),
    ("max", 1, &["set", "array"]),
    ("min", 1, &["set", "array"]),
    ("sort", 1, &["set", "array"]),
    ("json.filter", 2, &["set", "array"]),
    ("json.remove", 2, &["set", "array"]),
    ("object.filter", 2, &["object", "set", "array"]),
    ("object.remove", 2, &["object", "set", "array"]),
];

/// `None` when `message` is no builtin error regorus is known to raise.
pub(super) fn translate(message: &str, excerpt: Option<&Excerpt<'_>>) -> Option<Translated> {
    if is_operand_error(message) {
        // verdict's own builtins already speak OPA's words (`BuiltinError::Operand`).
        return Some(type_error(message.to_string()));
    }
    if let Some((named, rest)) = named(message) {
        return translate_named(named, rest, excerpt);
    }
    translate_unnamed(message, excerpt)
}

/// "`name` rest", as regorus's argument checks word it; `None` for anything else, arity
/// errors included (OPA reports those at compile time, as `rego_type_error`).
fn named(message: &str) -> Option<(&str, &str)> {
    let (name, rest) = message.strip_prefix('`')?.split_once("` ")?;
    let arity = rest
        .strip_prefix("expects ")
        .and_then(|r| r.split_once(' '))
        .is_some_and(|(n, what)| n.parse::<u32>().is_ok() && what.starts_with("argument"));
    let plain = !name.is_empty() && !name.contains(char::is_whitespace);
    (plain && !arity).then_some((name, rest))
}

/// Names regorus gives some builtins in its messages, with the builtin they stand for.
const MISNAMED: &[(&str, &str)] = &[
    ("trim", "strings.replace_n"),
    ("reverse", "strings.reverse"),
];

fn translate_named(named: &str, rest: &str, excerpt: Option<&Excerpt<'_>>) -> Option<Translated> {
    // The call around the caret is the one that failed when it bears the message's name (or
    // the builtin regorus misnames so); otherwise the caret is on a call of its own, in
    // another call's argument list, and only the message's name is known.
    let call = excerpt
        .and_then(Excerpt::call)
        .filter(|c| c.name == named || MISNAMED.contains(&(named, c.name.as_str())));
    let name = call.as_ref().map_or(named, |c| c.name.as_str());
    if !is_builtin(name) {
        return None;
    }
    let at = call.as_ref().map(|c| c.operand);
    let operand = Operand { name, at };

    if let Some((expected, got)) = rest
        .strip_prefix("expects ")
        .and_then(|r| r.split_once(" argument. Got `"))
    {
        let expected = if expected == "numeric" {
            "number"
        } else {
            expected
        };
        if matches!(expected, "number" | "string" | "array" | "set" | "object") {
            return Some(operand.must_be(&[expected], rendered_type(got, &[expected])));
        }
    }
    if rest.starts_with("expects integer arguments.") {
        // regorus checks this of numbers only: the number was not an integer.
        return Some(operand.must_be(&["integer number"], Some("floating-point number")));
    }
    if rest.starts_with("expects non-negative integer arguments.") {
        let message = operand.text("must be an unsigned integer number but got a negative integer");
        return Some(type_error(message));
    }
    if let Some(base) = rest.strip_prefix("expects base to be one of ") {
        let operand = Operand {
            at: Some(2),
            ..operand
        };
        return Some(type_error(
            operand.text(&format!("must be one of {{{base}}}")),
        ));
    }
    if rest.starts_with("requires path to be ") {
        // json.filter and json.remove, about a path inside operand 2.
        let operand = Operand {
            at: Some(2),
            ..operand
        };
        let what = "must be one of {set, array} containing string paths or array of path segments";
        return Some(type_error(operand.text(what)));
    }
    if let Some(listed) = rest
        .strip_prefix("requires ")
        .and_then(|r| r.split_once(" argument"))
        .map(|(types, _)| types)
    {
        // These name the call in the message and point at the call or at operand 1.
        if let Some((_, position, accepted)) = ACCEPTED.iter().find(|(n, ..)| *n == named) {
            let operand = Operand {
                name: named,
                at: Some(*position),
            };
            let got = rest
                .split_once("Got `")
                .and_then(|(_, v)| rendered_type(v, accepted));
            return Some(operand.must_be(accepted, got));
        }
        let types: Vec<&str> = listed.split('/').collect();
        let operand = Operand {
            at: None,
            ..operand
        };
        return Some(operand.must_be(&types, None));
    }
    // Any other complaint about an argument is a type error too, in regorus's words.
    Some(type_error(format!("{name}: {rest}")))
}

/// Messages that do not name their builtin, with the builtins that raise them (all at an
/// argument, so the call around the caret is the one that failed if it is one of these).
const UNNAMED: &[(&str, &[&str])] = &[
    (
        "operand must be integer",
        &["numbers.range", "numbers.range_step"],
    ),
    ("step must be a positive integer", &["numbers.range_step"]),
    (
        "initial vertices must be array/set",
        &["graph.reachable", "graph.reachable_paths"],
    ),
    (
        "could not convert numeric value of `ns` to int64",
        &[
            "time.clock",
            "time.date",
            "time.format",
            "time.weekday",
            "time.add_date",
            "time.diff",
        ],
    ),
    ("marshaling option ", &["json.marshal_with_options"]),
];

fn translate_unnamed(message: &str, excerpt: Option<&Excerpt<'_>>) -> Option<Translated> {
    match message {
        // Only the arithmetic operators raise these; OPA names them by their builtins.
        "divide by zero" => return Some(builtin_error("div: divide by zero".into())),
        "modulo by zero" => return Some(builtin_error("rem: modulo by zero".into())),
        "spaces not allowed in resource strings" => {
            // units.parse and units.parse_bytes point at the call, not at an argument.
            let called = excerpt
                .and_then(Excerpt::called)
                .filter(|n| n.starts_with("units.parse"));
            return Some(builtin_error(match called {
                Some(name) => format!("{name}: {message}"),
                None => message.to_string(),
            }));
        }
        m if m.starts_with("item at index ") && m.ends_with(" is not an object") => {
            let text = "object.union_n: operand 1 must be array of objects";
            return Some(type_error(text.into()));
        }
        _ => {}
    }
    let (family, raisers) = UNNAMED.iter().find(|(m, _)| message.starts_with(m))?;
    let call = excerpt
        .and_then(Excerpt::call)
        .filter(|c| raisers.contains(&c.name.as_str()));
    let operand = Operand {
        name: call.as_ref().map_or("", |c| c.name.as_str()),
        at: call.as_ref().map(|c| c.operand),
    };
    let prefixed = |text: &str| match &call {
        Some(c) => format!("{}: {text}", c.name),
        None => text.to_string(),
    };
    Some(match *family {
        "operand must be integer" => {
            operand.must_be(&["integer number"], Some("floating-point number"))
        }
        "initial vertices must be array/set" => type_error(
            Operand {
                at: Some(2),
                ..operand
            }
            .text("must be {array, set}"),
        ),
        // OPA converts `ns` to an int64 too, and fails the same values with its own words.
        "could not convert numeric value of `ns` to int64" => {
            builtin_error(prefixed("timestamp too big"))
        }
        "marshaling option " => type_error(prefixed(message)),
        _ => builtin_error(prefixed(message)),
    })
}

/// The operand a type error is about, as far as it is known.
struct Operand<'a> {
    name: &'a str,
    at: Option<usize>,
}

impl Operand<'_> {
    /// "name: operand N <what>", leaving out the parts that are not known.
    fn text(&self, what: &str) -> String {
        let name = if self.name.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.name)
        };
        match self.at {
            Some(n) => format!("{name}operand {n} {what}"),
            None => format!("{name}operand {what}"),
        }
    }

    /// OPA's `NewOperandTypeErr` text.
    fn must_be(&self, expected: &[&str], got: Option<&str>) -> Translated {
        let expected = match expected {
            [one] => (*one).to_string(),
            many => format!("one of {{{}}}", many.join(", ")),
        };
        let got = got.map(|g| format!(" but got {g}")).unwrap_or_default();
        type_error(self.text(&format!("must be {expected}{got}")))
    }
}

fn type_error(message: String) -> Translated {
    Translated {
        code: TYPE_ERROR,
        message,
    }
}

fn builtin_error(message: String) -> Translated {
    Translated {
        code: BUILTIN_ERROR,
        message,
    }
}

/// OPA's name for the type of a value regorus printed as JSON. Sets print as arrays, so a
/// `[...]` is a set where the builtin wanted an array (and the other way round), and unknown
/// where it wanted neither.
fn rendered_type(value: &str, expected: &[&str]) -> Option<&'static str> {
    match value.chars().next()? {
        '"' => Some("string"),
        '{' => Some("object"),
        't' | 'f' => Some("boolean"),
        'n' => Some("null"),
        '-' | '0'..='9' => Some("number"),
        '[' => match (expected.contains(&"array"), expected.contains(&"set")) {
            (true, false) => Some("set"),
            (false, true) => Some("array"),
            _ => None,
        },
        _ => None,
    }
}

/// "name: operand N ...", OPA's `ErrOperand` text behind its `name: ` prefix.
fn is_operand_error(message: &str) -> bool {
    message
        .split_once(": operand ")
        .is_some_and(|(name, rest)| {
            // OPA's `ErrOperand` reads "operand N <what>"; "operand N: ..." is a plain error
            // (net.cidr_contains_matches words its element errors so), a builtin error.
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            is_builtin(name) && digits > 0 && rest[digits..].starts_with(' ')
        })
}

/// A builtin regorus provides or verdict adds.
fn is_builtin(name: &str) -> bool {
    regorus::unstable::BUILTINS.contains_key(name)
        || crate::policy::builtins::arities().any(|(n, _)| n == name)
}

#[cfg(test)]
#[path = "builtin_tests.rs"]
mod tests;
