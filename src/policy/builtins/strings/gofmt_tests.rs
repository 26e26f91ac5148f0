//! `sprintf` and `strings.count` against Go's documented output, through a real engine.

use regorus::Value;

use crate::policy::builtins::testing::{fails, value};

fn sp(format: &str, args: &str) -> String {
    match value(&format!("sprintf(`{format}`, {args})")) {
        Value::String(s) => s.to_string(),
        other => panic!("{format}: not a string: {other:?}"),
    }
}

#[test]
fn integers_take_go_flags_widths_and_bases() {
    assert_eq!(
        sp("%d|%5d|%-5d|%05d", "[42, 42, 42, 42]"),
        "42|   42|42   |00042"
    );
    assert_eq!(sp("%+d|% d|%05d|%d", "[5, 5, -42, -5]"), "+5| 5|-0042|-5");
    assert_eq!(
        sp("%x %X %o %O %b", "[255, 255, 8, 8, 5]"),
        "ff FF 10 0o10 101"
    );
    assert_eq!(
        sp("%#x %#o %#b %x", "[255, 8, 5, -255]"),
        "0xff 010 0b101 -ff"
    );
    assert_eq!(sp("%.3d|%.0d|%5.0d|", "[7, 0, 0]"), "007||     |");
    assert_eq!(
        sp("%c%c %q %U %#U", "[72, 105, 65, 128512, 65]"),
        "Hi 'A' U+1F600 U+0041 'A'"
    );
    assert_eq!(sp("%*d|%-*d|", "[5, 42, 4, 1]"), "   42|1   |");
    let big = "123456789123456789123";
    assert_eq!(
        sp("%s %d %c %T", &format!("[{big}, {big}, {big}, {big}]")),
        format!("{big} {big} %!c(big.Int={big}) *big.Int")
    );
}

#[test]
fn strings_are_padded_truncated_quoted_and_hex_encoded() {
    assert_eq!(
        sp("%-10s|%10s|", r#"["abc", "abc"]"#),
        "abc       |       abc|"
    );
    assert_eq!(sp("%.2s %v %#v", r#"["abcdef", "x", "x"]"#), r#"ab x "x""#);
    assert_eq!(sp("%q %+q", r#"["a\"b\n", "é"]"#), r#""a\"b\n" "\u00e9""#);
    assert_eq!(
        sp("%x|% x|%#x|%X", r#"["hi", "hi", "hi", "hi"]"#),
        "6869|68 69|0x6869|6869"
    );
    assert_eq!(sp("%05s", r#"["ab"]"#), "000ab");
}

#[test]
fn floats_print_as_go_prints_them() {
    assert_eq!(
        sp(
            "%.3f|%8.3f|%08.3f|%-8.3f|",
            "[3.14159, 3.14159, 3.14159, 3.14159]"
        ),
        "3.142|   3.142|0003.142|3.142   |"
    );
    assert_eq!(
        sp("%6.2f|%06.2f|%f", "[-1.5, -1.5, 0.5]"),
        " -1.50|-01.50|0.500000"
    );
    assert_eq!(
        sp("%e %E", "[1234.5678, 1234.5678]"),
        "1.234568e+03 1.234568E+03"
    );
    assert_eq!(
        sp(
            "%g %v %v %.3g",
            "[0.000012345, 1.5, 123456789.5, 1234.5678]"
        ),
        "1.2345e-05 1.5 1.234567895e+08 1.23e+03"
    );
}

#[test]
fn other_values_print_as_rego_terms() {
    assert_eq!(
        sp(
            "%v %v %v %s",
            r#"[[1, "a"], {"b": [true, null]}, {"x": set()}, {"k": 1}]"#
        ),
        r#"[1, "a"] {"b": [true, null]} {"x": set()} {"k": 1}"#
    );
    assert_eq!(sp("%v", "[{1, 2}]"), "{1, 2}");
    assert_eq!(
        sp("%T %T %T %T", r#"[1, "a", 1.5, [1]]"#),
        "int string float64 string"
    );
}

#[test]
fn mistakes_are_written_into_the_output_as_go_writes_them() {
    assert_eq!(sp("%s and %s", r#"["a"]"#), "a and %!s(MISSING)");
    assert_eq!(sp("%s", r#"["a", "b", 3]"#), "a%!(EXTRA string=b, int=3)");
    assert_eq!(
        sp("%d|%s|%t", r#"["a", 1, true]"#),
        "%!d(string=a)|%!s(int=1)|%!t(string=true)"
    );
    assert_eq!(sp("%5t", "[1]"), "%!t(int=    1)");
    assert_eq!(sp("50%% %", "[]"), "50% %!(NOVERB)");
    assert_eq!(sp("%[2]d %[1]d %[3]d", "[1, 2]"), "2 1 %!d(BADINDEX)");
    assert_eq!(sp("%*d", r#"["x", 1]"#), "%!(BADWIDTH)1");
}

#[test]
fn huge_widths_cannot_allocate() {
    // Go stops reading a width past a million: no verb, and the argument left over.
    assert_eq!(sp("%0999999999d", "[1]"), "%!(NOVERB)%!(EXTRA int=1)");
    let format = "%999999d".repeat(20);
    let args = format!("[{}]", vec!["1"; 20].join(", "));
    fails(
        &format!("sprintf(`{format}`, {args})"),
        "output longer than",
    );
}

#[test]
fn wrong_operands_are_type_errors() {
    fails("sprintf(1, [])", "operand 1 must be string but got number");
    fails(
        r#"sprintf("%d", 1)"#,
        "operand 2 must be array but got number",
    );
}

#[test]
fn count_is_go_strings_count() {
    assert_eq!(value(r#"strings.count("cheese", "e")"#), Value::from(3u64));
    assert_eq!(value(r#"strings.count("aaaa", "aa")"#), Value::from(2u64));
    assert_eq!(value(r#"strings.count("five", "")"#), Value::from(5u64));
    assert_eq!(value(r#"strings.count("", "")"#), Value::from(1u64));
}
