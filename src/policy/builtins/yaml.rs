//! `yaml.is_valid` as OPA's `topdown/encoding.go` answers it: whether a string parses as YAML,
//! and false for anything that is not a string (regorus fails the call).

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("yaml.is_valid", 1, is_valid)];

fn is_valid(args: &[Value]) -> Result<Value, BuiltinError> {
    Ok(Value::from(match args::arg(args, 0) {
        Value::String(s) => Value::from_yaml_str(s).is_ok(),
        _ => false,
    }))
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use crate::policy::builtins::testing::{eval_with_input, json, value};

    #[test]
    fn strings_are_checked_and_other_values_are_not_yaml() {
        assert_eq!(
            value(r#"yaml.is_valid("a: 1\nb: [x, y]")"#),
            Value::from(true)
        );
        assert_eq!(value(r#"yaml.is_valid("a: [1")"#), Value::from(false));
        for other in ["1", "null", "[\"a: 1\"]", "{\"a\": 1}", "true"] {
            let input = json(&format!(r#"{{"v": {other}}}"#));
            for strict in [false, true] {
                let got = eval_with_input("yaml.is_valid(input.v)", input.clone(), strict);
                assert_eq!(got, Ok(Some(Value::from(false))), "{other}");
            }
        }
    }
}
