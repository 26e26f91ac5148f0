//! Go's `fmt.Sprintf`, which OPA's `sprintf` is, for the argument types OPA passes it: `int`
//! (and `*big.Int` past 64 bits), `float64` and `string`. Flags, widths, precisions, `*` and
//! `[n]` indexes, and Go's in-band errors (`%!d(string=x)`, `%!v(MISSING)`, `%!(EXTRA ...)`,
//! `%!(NOVERB)`, `%!(BADWIDTH)`, `%!(BADPREC)`, `%!v(BADINDEX)`).

use super::goquote::{can_backquote, is_print, quote, quote_rune};
use crate::policy::builtins::args::BuiltinError;

/// One argument as OPA hands it to Go.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `big` when the value does not fit Go's `int` (OPA passes a `*big.Int` then).
    Int {
        value: i128,
        big: bool,
    },
    Float(f64),
    Str(String),
}

impl Arg {
    fn type_name(&self) -> &'static str {
        match self {
            Arg::Int { big: false, .. } => "int",
            Arg::Int { big: true, .. } => "*big.Int",
            Arg::Float(_) => "float64",
            Arg::Str(_) => "string",
        }
    }
}

/// Go refuses widths and precisions past a million (`tooLarge`); the output as a whole is
/// bounded too, since a short format can still ask for a million columns per verb.
const TOO_LARGE: usize = 1_000_000;
pub const MAX_OUTPUT: usize = 16 << 20;

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Flags {
    pub minus: bool,
    pub plus: bool,
    pub sharp: bool,
    pub space: bool,
    pub zero: bool,
    pub sharp_v: bool,
    pub wid: Option<usize>,
    pub prec: Option<usize>,
}

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Arg]) -> Result<String, BuiltinError> {
    let f: Vec<char> = format.chars().collect();
    let mut out = String::with_capacity(format.len() + 16);
    let mut arg_num = 0usize;
    let mut reordered = false;
    let mut i = 0usize;
    while i < f.len() {
        if f[i] != '%' {
            out.push(f[i]);
            i += 1;
            continue;
        }
        i += 1;
        let mut fl = Flags::default();
        while let Some(&c) = f.get(i) {
            match c {
                '#' => fl.sharp = true,
                '0' => fl.zero = true,
                '+' => fl.plus = true,
                '-' => fl.minus = true,
                ' ' => fl.space = true,
                _ => break,
            }
            i += 1;
        }
        let mut good = true;
        let mut after_index;
        (arg_num, i, after_index) =
            arg_number(&f, i, arg_num, args.len(), &mut reordered, &mut good);
        if f.get(i) == Some(&'*') {
            i += 1;
            let (w, ok);
            (w, ok, arg_num) = int_from_arg(args, arg_num);
            if !ok {
                out.push_str("%!(BADWIDTH)");
            } else if w < 0 {
                fl.minus = true;
                fl.wid = Some(w.unsigned_abs() as usize);
            } else {
                fl.wid = Some(w as usize);
            }
            after_index = false;
        } else {
            let (w, present);
            (w, present, i) = parse_num(&f, i);
            fl.wid = present.then_some(w);
            if after_index && present {
                good = false;
            }
        }
        if i + 1 < f.len() && f[i] == '.' {
            i += 1;
            if after_index {
                good = false;
            }
            (arg_num, i, after_index) =
                arg_number(&f, i, arg_num, args.len(), &mut reordered, &mut good);
            if f.get(i) == Some(&'*') {
                i += 1;
                let (p, ok);
                (p, ok, arg_num) = int_from_arg(args, arg_num);
                fl.prec = (ok && p >= 0).then_some(p as usize);
                if !ok {
                    out.push_str("%!(BADPREC)");
                }
                after_index = false;
            } else {
                let (p, present);
                (p, present, i) = parse_num(&f, i);
                fl.prec = Some(if present { p } else { 0 });
            }
        }
        if !after_index {
            (arg_num, i, _) = arg_number(&f, i, arg_num, args.len(), &mut reordered, &mut good);
        }
        let Some(&verb) = f.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if fl.minus {
            fl.zero = false;
        }
        match verb {
            '%' => out.push('%'),
            _ if !good => push_bad(&mut out, verb, "BADINDEX"),
            _ if arg_num >= args.len() => push_bad(&mut out, verb, "MISSING"),
            _ => {
                if verb == 'v' {
                    fl.sharp_v = fl.sharp;
                    fl.sharp = false;
                    fl.plus = false;
                }
                print_arg(&mut out, &args[arg_num], verb, &fl)?;
                arg_num += 1;
            }
        }
        if out.len() > MAX_OUTPUT {
            return Err(too_long());
        }
    }
    if !reordered && arg_num < args.len() {
        out.push_str("%!(EXTRA ");
        for (n, arg) in args[arg_num..].iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            out.push_str(arg.type_name());
            out.push('=');
            print_arg(&mut out, arg, 'v', &Flags::default())?;
        }
        out.push(')');
    }
    if out.len() > MAX_OUTPUT {
        return Err(too_long());
    }
    Ok(out)
}

fn too_long() -> BuiltinError {
    BuiltinError::invalid(format!("output longer than {MAX_OUTPUT} bytes"))
}

fn push_bad(out: &mut String, verb: char, what: &str) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    out.push_str(what);
    out.push(')');
}

/// Digits at `i`; Go gives up (not a number, rest of the format consumed) past a million.
fn parse_num(f: &[char], mut i: usize) -> (usize, bool, usize) {
    let mut n = 0usize;
    let mut present = false;
    while let Some(d) = f.get(i).and_then(|c| c.to_digit(10)) {
        if n > TOO_LARGE {
            return (0, false, f.len());
        }
        n = n * 10 + d as usize;
        present = true;
        i += 1;
    }
    (n, present, i)
}

/// An explicit `[n]` argument index at `i`, as Go's `argNumber` reads it.
fn arg_number(
    f: &[char],
    i: usize,
    arg_num: usize,
    len: usize,
    reordered: &mut bool,
    good: &mut bool,
) -> (usize, usize, bool) {
    if f.get(i) != Some(&'[') {
        return (arg_num, i, false);
    }
    *reordered = true;
    let rest = &f[i..];
    let parsed = if rest.len() < 3 {
        None
    } else {
        rest.iter().position(|c| *c == ']').map(|close| {
            let (n, ok, end) = parse_num(rest, 1);
            let ok = ok && end == close && n >= 1;
            (n.wrapping_sub(1), close + 1, ok)
        })
    };
    let (index, width, ok) = parsed.unwrap_or((0, 1, false));
    if ok && index < len {
        return (index, i + width, true);
    }
    *good = false;
    (arg_num, i + width, ok)
}

/// A `*` width or precision: the argument must be an int of at most a million.
fn int_from_arg(args: &[Arg], arg_num: usize) -> (i64, bool, usize) {
    match args.get(arg_num) {
        Some(Arg::Int { value, big: false }) if value.unsigned_abs() <= TOO_LARGE as u128 => {
            (*value as i64, true, arg_num + 1)
        }
        Some(_) => (0, false, arg_num + 1),
        None => (0, false, arg_num),
    }
}

pub(super) fn print_arg(
    out: &mut String,
    arg: &Arg,
    verb: char,
    fl: &Flags,
) -> Result<(), BuiltinError> {
    if verb == 'T' {
        pad(out, arg.type_name(), fl, false);
        return Ok(());
    }
    let done = match arg {
        // `*big.Int` formats itself: decimal for `%s` too, and no rune verbs.
        Arg::Int { value, big: true } => match verb {
            's' => super::gonum::integer(out, *value, 'd', fl),
            'b' | 'o' | 'O' | 'd' | 'x' | 'X' | 'v' => super::gonum::integer(out, *value, verb, fl),
            _ => false,
        },
        Arg::Int { value, .. } => super::gonum::integer(out, *value, verb, fl),
        Arg::Float(v) => super::gonum::float(out, *v, verb, fl)?,
        Arg::Str(s) => string(out, s, verb, fl),
    };
    if !done {
        out.push_str("%!");
        out.push(verb);
        out.push('(');
        // Go names big integers by their value type inside its own error.
        out.push_str(match arg {
            Arg::Int { big: true, .. } => "big.Int",
            other => other.type_name(),
        });
        out.push('=');
        let mut plain = *fl;
        plain.sharp_v = false;
        print_arg(out, arg, 'v', &plain)?;
        out.push(')');
    }
    Ok(())
}

/// The string verbs; false for a verb strings do not take.
fn string(out: &mut String, s: &str, verb: char, fl: &Flags) -> bool {
    match verb {
        'v' if fl.sharp_v => pad(out, &quote(s, false), fl, true),
        'v' | 's' => pad(out, truncate(s, fl.prec), fl, true),
        'q' => {
            let s = truncate(s, fl.prec);
            let quoted = if fl.sharp && can_backquote(s) {
                format!("`{s}`")
            } else {
                quote(s, fl.plus)
            };
            pad(out, &quoted, fl, true);
        }
        'x' | 'X' => pad(out, &hex_bytes(truncate(s, None), verb, fl), fl, true),
        _ => return false,
    }
    true
}

fn truncate(s: &str, prec: Option<usize>) -> &str {
    match prec.and_then(|p| s.char_indices().nth(p)) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// `%x` of a string: its bytes in hex, the precision counting bytes.
fn hex_bytes(s: &str, verb: char, fl: &Flags) -> String {
    let bytes = &s.as_bytes()[..fl.prec.unwrap_or(usize::MAX).min(s.len())];
    let prefix = if verb == 'x' { "0x" } else { "0X" };
    let mut hex = String::with_capacity(bytes.len() * 3 + 2);
    for (n, b) in bytes.iter().enumerate() {
        if fl.space && n > 0 {
            hex.push(' ');
        }
        if fl.sharp && (fl.space || n == 0) {
            hex.push_str(prefix);
        }
        let digits = if verb == 'x' {
            format!("{b:02x}")
        } else {
            format!("{b:02X}")
        };
        hex.push_str(&digits);
    }
    hex
}

/// Pads `s` to the width in runes: zeros on the left when asked for and `zeros_ok`, else spaces.
pub(super) fn pad(out: &mut String, s: &str, fl: &Flags, zeros_ok: bool) {
    let width = fl.wid.unwrap_or(0);
    let len = s.chars().count();
    if len >= width {
        out.push_str(s);
        return;
    }
    let fill = if fl.zero && zeros_ok && !fl.minus {
        '0'
    } else {
        ' '
    };
    let padding = std::iter::repeat_n(fill, width - len);
    if fl.minus {
        out.push_str(s);
        out.extend(padding);
    } else {
        out.extend(padding);
        out.push_str(s);
    }
}

/// `%c`, `%q` and `%U` of an integer: Go's rune, U+FFFD when it is not one.
pub(super) fn rune_of(value: i128) -> char {
    u32::try_from(value)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}')
}

pub(super) fn quoted_rune(value: i128, fl: &Flags) -> String {
    let r = rune_of(value);
    if fl.sharp && can_backquote(&r.to_string()) {
        format!("`{r}`")
    } else {
        quote_rune(r, fl.plus)
    }
}

pub(super) fn unicode(value: i128, fl: &Flags) -> String {
    let digits = fl.prec.unwrap_or(4).max(4);
    let mut s = format!("U+{:0digits$X}", value as u64);
    let r = u32::try_from(value).ok().and_then(char::from_u32);
    if let Some(r) = r.filter(|r| fl.sharp && is_print(*r)) {
        s.push_str(&format!(" '{r}'"));
    }
    s
}
