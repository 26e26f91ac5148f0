//! `verdict eval -f pretty`, as `opa eval -f pretty` prints a result set: `undefined` when
//! there is none, a lone expression's value as indented JSON, otherwise a table with a column
//! per binding and per expression that is not simply `true`.

use regorus::{QueryResults, Value};

use super::table;
use crate::gojson;

pub fn write(out: &mut Vec<u8>, results: &QueryResults) {
    let rows = &results.result;
    if rows.is_empty() {
        out.extend_from_slice(b"undefined\n");
        return;
    }
    let no_bindings = |r: &regorus::QueryResult| r.bindings.as_object().is_ok_and(|b| b.is_empty());
    if let [only] = rows.as_slice() {
        if no_bindings(only) && only.expressions.len() == 1 {
            gojson::write_value(out, &only.expressions[0].value, Some(0));
            out.push(b'\n');
            return;
        }
    }
    // Columns: every variable bound in any row, then each expression whose value says more
    // than `true` (in the first row's order, as the expressions are the same in every row).
    let mut headers: Vec<String> = Vec::new();
    for r in rows {
        if let Ok(bindings) = r.bindings.as_object() {
            for key in bindings.keys() {
                let name = gojson::key_text(key);
                if !headers.contains(&name) {
                    headers.push(name);
                }
            }
        }
    }
    let shown: Vec<usize> = (0..rows[0].expressions.len())
        .filter(|&i| {
            rows.iter().any(|r| {
                r.expressions
                    .get(i)
                    .is_some_and(|e| e.value != Value::Bool(true))
            })
        })
        .collect();
    let bound = headers.len();
    headers.extend(
        shown
            .iter()
            .map(|&i| rows[0].expressions[i].text.to_string()),
    );
    if headers.is_empty() {
        // Every expression was `true` and nothing was bound: a defined, empty answer.
        out.extend_from_slice(b"true\n");
        return;
    }
    let compact = |v: &Value| {
        let mut text = Vec::new();
        gojson::write_value(&mut text, v, None);
        String::from_utf8_lossy(&text).into_owned()
    };
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut cells: Vec<String> = headers[..bound]
                .iter()
                .map(|name| {
                    let value = r.bindings[&Value::from(name.as_str())].clone();
                    match value {
                        Value::Undefined => String::new(),
                        v => compact(&v),
                    }
                })
                .collect();
            cells.extend(shown.iter().map(|&i| {
                r.expressions
                    .get(i)
                    .map_or_else(String::new, |e| compact(&e.value))
            }));
            cells
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    out.extend_from_slice(table::render(&headers, &table_rows).as_bytes());
}
