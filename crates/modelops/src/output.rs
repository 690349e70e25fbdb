//! How the CLI prints results: a table for people, or JSON for scripts.

use comfy_table::{presets::UTF8_BORDERS_ONLY, ContentArrangement, Table};
use serde_json::Value;

/// Prints `value` as pretty JSON.
pub fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints rows of JSON objects as a table with the given (header, field path) columns.
pub fn print_table(rows: &[Value], columns: &[(&str, &str)]) {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(columns.iter().map(|(h, _)| *h));
    for row in rows {
        table.add_row(columns.iter().map(|(_, path)| cell(row.pointer(path))));
    }
    println!("{table}");
}

/// Prints one object as `field: value` lines, in the order given.
pub fn print_record(value: &Value, fields: &[(&str, &str)]) {
    let width = fields.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    for (header, path) in fields {
        let text = cell(value.pointer(path));
        if !text.is_empty() {
            println!("{header:>width$}  {text}");
        }
    }
}

/// Renders a JSON value for a table cell: strings bare, maps as `k=v`.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(map)) => map.iter().map(|(k, v)| format!("{k}={}", cell(Some(v)))).collect::<Vec<_>>().join(", "),
        Some(Value::Array(items)) => items.iter().map(|v| cell(Some(v))).collect::<Vec<_>>().join(", "),
        Some(other) => other.to_string(),
    }
}
