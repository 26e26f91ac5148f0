//! Rego values as protobuf `Struct` values, for the CheckResponse's `dynamic_metadata`.

use std::collections::HashMap;

use envoy_types::pb::google::protobuf::{value::Kind, ListValue, Struct, Value as PbValue};
use regorus::Value;

use super::fields::key_string;

pub(super) fn to_struct(fields: &regorus::value::Object) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(k, v)| (key_string(k), to_pb_value(v)))
            .collect::<HashMap<_, _>>(),
    }
}

pub(super) fn string_value(s: String) -> PbValue {
    PbValue {
        kind: Some(Kind::StringValue(s)),
    }
}

pub(super) fn to_pb_value(value: &Value) -> PbValue {
    let kind = match value {
        Value::Null | Value::Undefined => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Kind::StringValue(s.to_string()),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_pb_value).collect(),
        }),
        Value::Set(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_pb_value).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(to_struct(fields)),
    };
    PbValue { kind: Some(kind) }
}
