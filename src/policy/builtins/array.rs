//! `array.flatten` (OPA 1.10): one level of nested arrays spliced into their parent.

use regorus::Value;

use super::args::{self, BuiltinError};
use super::Builtin;

pub const BUILTINS: &[(&str, u8, Builtin)] = &[("array.flatten", 1, flatten)];

fn flatten(args: &[Value]) -> Result<Value, BuiltinError> {
    let value = args::arg(args, 0);
    let Value::Array(items) = value else {
        return Err(BuiltinError::Operand {
            position: 1,
            expected: "array",
            actual: args::type_name(value),
        });
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.iter() {
        match item {
            Value::Array(inner) => out.extend(inner.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use crate::policy::builtins::testing::{fails, json, value};

    #[test]
    fn flattens_one_level() {
        assert_eq!(
            value("array.flatten([[1, 2], 3, [[4], []], {\"a\": [5]}])"),
            json(r#"[1, 2, 3, [4], [], {"a": [5]}]"#)
        );
        assert_eq!(value("array.flatten([])"), json("[]"));
        fails("array.flatten({1})", "operand 1 must be array but got set");
    }
}
