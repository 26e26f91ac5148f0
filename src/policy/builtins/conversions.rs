//! `to_number` as OPA's `topdown/casts.go` converts: null and booleans to 0 and 1, numbers as
//! they are, strings as Go's `strconv.ParseFloat` reads them (signs, `1.`, `.5`, exponents,
//! hexadecimal floats, digit separators), with Go's errors; infinities and NaN are refused as
//! a type error. regorus reads strings as JSON and answers every failure with its own words.

use regorus::Value;

use super::args::{self, BuiltinError};
use super::strings::goquote::quote;
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("to_number", 1, to_number)];

fn to_number(args: &[Value]) -> Result<Value, BuiltinError> {
    match args::arg(args, 0) {
        Value::Null | Value::Bool(false) => Ok(Value::from(0u64)),
        Value::Bool(true) => Ok(Value::from(1u64)),
        n @ Value::Number(_) => Ok(n.clone()),
        Value::String(s) => parse_number(s),
        other => Err(BuiltinError::Operand {
            position: 1,
            expected: "one of {null, boolean, number, string}",
            actual: args::type_name(other),
        }),
    }
}

fn parse_number(text: &str) -> Result<Value, BuiltinError> {
    let unsigned = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
    if matches!(unsigned.as_str(), "inf" | "infinity" | "nan") {
        return Err(BuiltinError::Operand {
            position: 1,
            expected: "valid number string",
            actual: "string",
        });
    }
    let failure = |why: &str| {
        BuiltinError::invalid(format!(
            "strconv.ParseFloat: parsing {}: {why}",
            quote(text, false)
        ))
    };
    let literal = Literal::read(text).ok_or_else(|| failure("invalid syntax"))?;
    literal.value().ok_or_else(|| failure("value out of range"))
}

/// A float literal in Go's syntax, split into its parts (digit separators removed).
#[derive(Debug, PartialEq, Eq)]
struct Literal {
    negative: bool,
    hex: bool,
    integer: String,
    fraction: String,
    exponent: i64,
}

impl Literal {
    /// `None` when Go's `ParseFloat` reports invalid syntax.
    fn read(text: &str) -> Option<Literal> {
        if !underscores_ok(text) {
            return None;
        }
        let cleaned: String = text.chars().filter(|c| *c != '_').collect();
        let (negative, rest) = match cleaned.as_bytes().first() {
            Some(b'-') => (true, &cleaned[1..]),
            Some(b'+') => (false, &cleaned[1..]),
            _ => (false, cleaned.as_str()),
        };
        let (hex, rest) = match rest.get(..2) {
            Some("0x" | "0X") => (true, &rest[2..]),
            _ => (false, rest),
        };
        let is_digit = |c: char| {
            if hex {
                c.is_ascii_hexdigit()
            } else {
                c.is_ascii_digit()
            }
        };
        let mantissa_end = rest
            .find(|c: char| !(is_digit(c) || c == '.'))
            .unwrap_or(rest.len());
        let (mantissa, exponent) = rest.split_at(mantissa_end);
        let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if fraction.contains('.') || (integer.is_empty() && fraction.is_empty()) {
            return None;
        }
        let exponent = match exponent.chars().next() {
            None if !hex => 0,
            Some('e' | 'E') if !hex => read_exponent(&exponent[1..])?,
            Some('p' | 'P') if hex => read_exponent(&exponent[1..])?,
            // A hexadecimal float must have its binary exponent.
            _ => return None,
        };
        Some(Literal {
            negative,
            hex,
            integer: integer.to_string(),
            fraction: fraction.to_string(),
            exponent,
        })
    }

    /// The number; `None` past f64's range (Go's `ErrRange`). Decimals of reasonable size go
    /// to regorus as JSON text, which keeps an integer's every digit; the rest are f64 (which
    /// also underflows to zero, as Go's does), so an exponent never becomes a giant integer.
    fn value(&self) -> Option<Value> {
        let sign = if self.negative { -1.0 } else { 1.0 };
        if self.hex {
            let digits = format!("{}{}", self.integer, self.fraction);
            let mantissa = digits
                .chars()
                .try_fold(0f64, |m, c| Some(m * 16.0 + f64::from(c.to_digit(16)?)))?;
            if mantissa == 0.0 {
                return Some(Value::from(0u64));
            }
            let shift = self.exponent - 4 * self.fraction.len() as i64;
            let shift = i32::try_from(shift.clamp(-4000, 4000)).ok()?;
            let magnitude = mantissa * 2f64.powi(shift);
            return magnitude.is_finite().then(|| Value::from(sign * magnitude));
        }
        let integer = self.integer.trim_start_matches('0');
        let integer = if integer.is_empty() { "0" } else { integer };
        let fraction = if self.fraction.is_empty() {
            String::new()
        } else {
            format!(".{}", self.fraction)
        };
        let text = format!("{integer}{fraction}e{}", self.exponent);
        let magnitude: f64 = text.parse().ok()?;
        if magnitude.is_infinite() {
            return None;
        }
        if magnitude == 0.0 {
            return Some(Value::from(0u64));
        }
        let modest = self.exponent.abs() <= 400 && text.len() <= 1000;
        let minus = if self.negative { "-" } else { "" };
        match modest.then(|| Value::from_json_str(&format!("{minus}{text}"))) {
            Some(Ok(value)) => Some(value),
            _ => Some(Value::from(sign * magnitude)),
        }
    }
}

/// A decimal exponent's sign and digits; absurd exponents saturate, keeping their sign.
fn read_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX / 2).min(1 << 40);
    Some(if negative { -magnitude } else { magnitude })
}

/// Go's `underscoreOK`: a digit separator stands between digits (a base prefix counts).
fn underscores_ok(text: &str) -> bool {
    let s = text.strip_prefix(['+', '-']).unwrap_or(text).as_bytes();
    let hex =
        s.len() >= 2 && s[0] == b'0' && matches!(s[1], b'x' | b'X' | b'b' | b'B' | b'o' | b'O');
    let (mut saw, start) = if hex { (b'0', 2) } else { (b'^', 0) };
    let hex = hex && matches!(s[1], b'x' | b'X');
    for &c in &s[start..] {
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else if saw == b'_' {
            return false;
        } else {
            saw = b'!';
        }
    }
    saw != b'_'
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use crate::policy::builtins::testing::{eval, fails, json, value};

    #[test]
    fn converts_what_opa_converts() {
        let cases = [
            ("to_number(null)", "0"),
            ("to_number(false)", "0"),
            ("to_number(true)", "1"),
            ("to_number(100.1)", "100.1"),
            (r#"to_number("-42.0")"#, "-42"),
            (r#"to_number("+7")"#, "7"),
            (r#"to_number("007")"#, "7"),
            (r#"to_number("1.")"#, "1"),
            (r#"to_number(".5")"#, "0.5"),
            (r#"to_number("1e3")"#, "1000"),
            (r#"to_number("2.5E-1")"#, "0.25"),
            (r#"to_number("1_000")"#, "1000"),
            (r#"to_number("0x1p-2")"#, "0.25"),
            (r#"to_number("-0X1.8P1")"#, "-3"),
            (
                r#"to_number("12345678901234567890123")"#,
                "12345678901234567890123",
            ),
        ];
        for (call, want) in cases {
            assert_eq!(value(call), json(want), "{call}");
        }
    }

    #[test]
    fn infinities_and_nan_are_a_type_error() {
        for text in [
            "nan",
            "-nan",
            "-NaN",
            "inf",
            "-inf",
            "iNf",
            "Infinity",
            "+infinity",
        ] {
            let call = format!("to_number({text:?})");
            fails(
                &call,
                "to_number: operand 1 must be valid number string but got string",
            );
        }
    }

    #[test]
    fn malformed_strings_fail_with_go_s_words() {
        let cases = [
            ("broken", "invalid syntax"),
            ("", "invalid syntax"),
            (" 1", "invalid syntax"),
            ("1 ", "invalid syntax"),
            ("1e", "invalid syntax"),
            ("1..2", "invalid syntax"),
            ("_1", "invalid syntax"),
            ("1__0", "invalid syntax"),
            ("0x10", "invalid syntax"),
            ("1e400", "value out of range"),
            ("-1e99999999999999999999", "value out of range"),
        ];
        for (text, why) in cases {
            let call = format!("to_number({text:?})");
            fails(
                &call,
                &format!("strconv.ParseFloat: parsing {text:?}: {why}"),
            );
        }
    }

    #[test]
    fn tiny_exponents_underflow_to_zero_as_in_go() {
        assert_eq!(value(r#"to_number("1e-400")"#), Value::from(0u64));
    }

    #[test]
    fn other_types_are_refused() {
        fails(
            "to_number([])",
            "operand 1 must be one of {null, boolean, number, string}",
        );
        assert_eq!(eval("to_number({})", false), Ok(None));
    }
}
