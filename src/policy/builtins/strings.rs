//! String builtins where regorus lacks OPA's or differs from it: `sprintf` as Go's
//! `fmt.Sprintf` (flags, widths, in-band errors; regorus's ignores flags and fails on a missing
//! argument), `strings.count` as Go's `strings.Count` (regorus panics on an empty substring),
//! and `strings.render_template`: Go `text/template` over the variables object, for the
//! template language policies use: field paths, variables, `range`, `if`/`else`, comments and
//! `{{-`/`-}}` trimming. Functions and pipelines are refused with an error.
//!
//! Registered as extensions, these run in place of regorus's builtins of the same name.

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

mod gofmt;
#[cfg(test)]
mod gofmt_tests;
mod gonum;
pub(super) mod goquote;
mod template;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("strings.render_template", 2, render_template),
    ("sprintf", 2, sprintf),
    ("strings.count", 2, count),
];

fn sprintf(args: &[Value]) -> Result<Value, BuiltinError> {
    let format = args::string(args, 0)?;
    let items = match args::arg(args, 1) {
        Value::Array(items) => items,
        other => {
            return Err(BuiltinError::Operand {
                position: 2,
                expected: "array",
                actual: args::type_name(other),
            })
        }
    };
    let operands: Vec<gofmt::Arg> = items.iter().map(operand).collect();
    gofmt::sprintf(format, &operands).map(Value::from)
}

/// What OPA hands Go for one element: an int when the number is integral and fits 64 bits, a
/// `*big.Int` past that, a float64 otherwise, the string itself, or any other value's text.
fn operand(value: &Value) -> gofmt::Arg {
    match value {
        Value::Number(n) if n.is_integer() => match n.as_i128() {
            Some(i) => gofmt::Arg::Int {
                value: i,
                big: i64::try_from(i).is_err(),
            },
            None => gofmt::Arg::Str(n.format_decimal()),
        },
        Value::Number(n) => n
            .as_f64()
            .map_or_else(|| gofmt::Arg::Str(n.format_decimal()), gofmt::Arg::Float),
        Value::String(s) => gofmt::Arg::Str(s.to_string()),
        other => gofmt::Arg::Str(goquote::rego_text(other)),
    }
}

/// Go's `strings.Count`: non-overlapping matches; an empty substring matches between runes.
fn count(args: &[Value]) -> Result<Value, BuiltinError> {
    let search = args::string(args, 0)?;
    let sub = args::string(args, 1)?;
    let n = if sub.is_empty() {
        search.chars().count() + 1
    } else {
        search.matches(sub).count()
    };
    Ok(Value::from(n as u64))
}

/// Templates longer than this are refused: rendering is linear in the template and the data,
/// but a template is also parsed on every call.
const MAX_TEMPLATE: usize = 1 << 20;
/// Output longer than this is refused, so that nested `range`s cannot exhaust memory.
const MAX_OUTPUT: usize = 1 << 20;

fn render_template(args: &[Value]) -> Result<Value, BuiltinError> {
    let text = args::string(args, 0)?;
    let vars = args::object(args, 1).map(|_| args::arg(args, 1))?;
    if text.len() > MAX_TEMPLATE {
        return Err(BuiltinError::invalid("template is too large"));
    }
    let nodes = template::parse(text)?;
    let mut out = String::new();
    template::render(&nodes, vars, &mut out, MAX_OUTPUT)?;
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use crate::policy::builtins::testing::{fails, value};

    fn render(template: &str, vars: &str) -> Value {
        value(&format!("strings.render_template(`{template}`, {vars})"))
    }

    #[test]
    fn fields_variables_ranges_and_conditions_render_as_go_renders_them() {
        assert_eq!(
            render("{{.a}} and {{.b.c}}", r#"{"a": "x", "b": {"c": 2023}}"#),
            Value::from("x and 2023")
        );
        let names = r#"{"names": ["rohan", "john doe"]}"#;
        let t = "{{range $i, $name := .names}}{{if $i}},{{end}}hello {{$name}}{{end}}";
        assert_eq!(render(t, names), Value::from("hello rohan,hello john doe"));
        assert_eq!(
            render("{{range .names}}[{{.}}]{{else}}none{{end}}", names),
            Value::from("[rohan][john doe]")
        );
        assert_eq!(
            render("{{range .names}}x{{else}}none{{end}}", r#"{"names": []}"#),
            Value::from("none")
        );
        assert_eq!(
            render("{{if .on}}yes{{else}}no{{end}}", r#"{"on": false}"#),
            Value::from("no")
        );
        assert_eq!(render("a  {{- /* note */ -}}  b", "{}"), Value::from("ab"));
        assert_eq!(
            render(
                "{{.l}} {{.m}} {{.n}}",
                r#"{"l": [1, "a"], "m": {"k": true}, "n": null}"#
            ),
            Value::from("[1 a] map[k:true] <nil>")
        );
        assert_eq!(
            render(
                "{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}",
                r#"{"m": {"b": 2, "a": 1}}"#
            ),
            Value::from("a=1;b=2;")
        );
    }

    #[test]
    fn missing_keys_render_as_undefined() {
        assert_eq!(
            render("test {{.foo}} {{.baz}}", r#"{"baz": 1}"#),
            Value::from("test <undefined> 1")
        );
    }

    #[test]
    fn bad_templates_and_arguments_are_errors() {
        fails("strings.render_template(`{{.a`, {})", "unclosed action");
        fails(
            "strings.render_template(`{{if .a}}x`, {})",
            "unexpected EOF",
        );
        fails(
            "strings.render_template(`{{end}}`, {})",
            "unexpected {{end}}",
        );
        fails(
            "strings.render_template(`{{len .a}}`, {})",
            "function \"len\" not supported",
        );
        fails(
            "strings.render_template(`{{.a}}`, [])",
            "operand 2 must be object but got array",
        );
    }

    #[test]
    fn output_is_bounded() {
        let vars = format!(r#"{{"a": [{}]}}"#, vec!["1"; 4096].join(","));
        let t = "{{range .a}}{{range $.a}}{{range $.a}}x{{end}}{{end}}{{end}}";
        fails(
            &format!("strings.render_template(`{t}`, {vars})"),
            "output is too large",
        );
    }
}
