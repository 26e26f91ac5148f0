//! Go's `fmt` verbs for numbers: integers (`fmtInteger`, `%c`, `%q`, `%U`) and floats
//! (`strconv.AppendFloat`'s `%e`, `%f`, `%g` with Go's exponent form and shortest digits).

use super::gofmt::{pad, quoted_rune, rune_of, unicode, Flags};
use crate::policy::builtins::args::BuiltinError;

/// An integer verb; false for a verb integers do not take.
pub(super) fn integer(out: &mut String, value: i128, verb: char, fl: &Flags) -> bool {
    let (base, upper) = match verb {
        'v' | 'd' => (10, false),
        'b' => (2, false),
        'o' | 'O' => (8, false),
        'x' => (16, false),
        'X' => (16, true),
        'c' => {
            let mut plain = *fl;
            plain.zero = false;
            pad(out, &rune_of(value).to_string(), &plain, false);
            return true;
        }
        'q' => {
            pad(out, &quoted_rune(value, fl), fl, false);
            return true;
        }
        'U' => {
            pad(out, &unicode(value, fl), fl, false);
            return true;
        }
        _ => return false,
    };
    let negative = value < 0;
    let magnitude = value.unsigned_abs();
    let mut digits = match (base, upper) {
        (2, _) => format!("{magnitude:b}"),
        (8, _) => format!("{magnitude:o}"),
        (16, false) => format!("{magnitude:x}"),
        (16, true) => format!("{magnitude:X}"),
        _ => magnitude.to_string(),
    };
    // Two ways to ask for leading zeros: a precision, or the 0 flag with a width.
    let mut min_digits = 0;
    match fl.prec {
        Some(0) if magnitude == 0 => {
            let mut plain = *fl;
            plain.zero = false;
            pad(out, "", &plain, false);
            return true;
        }
        Some(p) => min_digits = p,
        None => {
            if let (true, Some(w)) = (fl.zero && !fl.minus, fl.wid) {
                min_digits = w.saturating_sub(usize::from(negative || fl.plus || fl.space));
            }
        }
    }
    if digits.len() < min_digits {
        digits.insert_str(0, &"0".repeat(min_digits - digits.len()));
    }
    let mut s = String::with_capacity(digits.len() + 3);
    if negative {
        s.push('-');
    } else if fl.plus {
        s.push('+');
    } else if fl.space {
        s.push(' ');
    }
    if fl.sharp {
        match base {
            2 => s.push_str("0b"),
            8 if !digits.starts_with('0') => s.push('0'),
            16 if upper => s.push_str("0X"),
            16 => s.push_str("0x"),
            _ => {}
        }
    }
    if verb == 'O' {
        s.push_str("0o");
    }
    s.push_str(&digits);
    let mut plain = *fl;
    plain.zero = false;
    pad(out, &s, &plain, false);
    true
}

/// A float verb; false for a verb floats do not take. Go's `%b` and hexadecimal floats are
/// refused with an error rather than printed differently.
pub(super) fn float(
    out: &mut String,
    v: f64,
    verb: char,
    fl: &Flags,
) -> Result<bool, BuiltinError> {
    let text = match verb {
        'v' | 'g' | 'G' => g(v, fl.prec, verb == 'G'),
        'e' | 'E' => e(v, fl.prec.unwrap_or(6), verb == 'E'),
        'f' | 'F' => format!("{:.*}", fl.prec.unwrap_or(6), v.abs()),
        'b' | 'x' | 'X' => {
            return Err(BuiltinError::invalid(format!(
                "verb %{verb} of a non-integer number is not supported"
            )))
        }
        _ => return Ok(false),
    };
    let sign = if v.is_sign_negative() && v != 0.0 {
        "-"
    } else if fl.plus {
        "+"
    } else if fl.space {
        " "
    } else {
        ""
    };
    let width = fl.wid.unwrap_or(0);
    let len = sign.len() + text.len();
    if fl.zero && !fl.minus && width > len {
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', width - len));
        out.push_str(&text);
    } else {
        pad(out, &format!("{sign}{text}"), fl, false);
    }
    Ok(true)
}

/// The significant digits of |v| (no trailing zeros) and the decimal point's position, either
/// shortest (`None`) or rounded to `digits` significant digits.
fn decimal(v: f64, digits: Option<usize>) -> (Vec<u8>, i32) {
    let text = match digits {
        Some(d) => format!("{:.*e}", d.saturating_sub(1), v.abs()),
        None => format!("{:e}", v.abs()),
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut ds: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while ds.len() > 1 && ds.last() == Some(&b'0') {
        ds.pop();
    }
    if ds == [b'0'] {
        return (Vec::new(), 0);
    }
    (ds, exp + 1)
}

/// `%e` with `prec` digits after the point, Go's two-digit signed exponent.
fn e(v: f64, prec: usize, upper: bool) -> String {
    let (ds, dp) = decimal(v, Some(prec + 1));
    fmt_e(&ds, dp, prec, upper)
}

fn fmt_e(ds: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut s = String::new();
    s.push(ds.first().map_or('0', |d| *d as char));
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(ds.get(i).map_or('0', |d| *d as char));
        }
    }
    s.push(if upper { 'E' } else { 'e' });
    let exp = if ds.is_empty() { 0 } else { dp - 1 };
    s.push(if exp < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}", exp.unsigned_abs()));
    s
}

fn fmt_f(ds: &[u8], dp: i32, prec: usize) -> String {
    let mut s = String::new();
    if dp > 0 {
        for i in 0..dp as usize {
            s.push(ds.get(i).map_or('0', |d| *d as char));
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 1..=prec as i32 {
            let j = dp + i - 1;
            let d = usize::try_from(j).ok().and_then(|j| ds.get(j));
            s.push(d.map_or('0', |d| *d as char));
        }
    }
    s
}

/// `%g`: shortest digits unless a precision is given; exponent form when the exponent is below
/// -4 or at least the precision (6 for shortest), as `strconv` decides.
fn g(v: f64, prec: Option<usize>, upper: bool) -> String {
    let shortest = prec.is_none();
    let (ds, dp) = decimal(v, prec.map(|p| p.max(1)));
    let nd = ds.len() as i32;
    let mut p = match prec {
        Some(p) => p.max(1) as i32,
        None => nd,
    };
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    if !ds.is_empty() && (exp < -4 || exp >= eprec) {
        if p > nd {
            p = nd;
        }
        return fmt_e(&ds, dp, (p - 1).max(0) as usize, upper);
    }
    if p > dp {
        p = nd;
    }
    fmt_f(&ds, dp, (p - dp).max(0) as usize)
}
