//! How the CLI prints results: a table for people, or JSON for scripts.
//!
//! Values go through a `serde_json::Value`: tables and records pick fields by
//! JSON pointer, and JSON output has serde_json's map order rather than the
//! field order of whichever Rust type holds the value.

use comfy_table::{presets::UTF8_BORDERS_ONLY, ContentArrangement, Table};
use serde::Serialize;
use serde_json::Value;

/// Prints `value` as pretty JSON.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&serde_json::to_value(value)?)?);
    Ok(())
}

/// Prints rows as a table with the given (header, JSON pointer) columns.
pub fn print_table<T: Serialize>(rows: &[T], columns: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(columns.iter().map(|(h, _)| *h));
    for row in rows {
        let row = serde_json::to_value(row)?;
        table.add_row(columns.iter().map(|(_, path)| cell(row.pointer(path))));
    }
    println!("{table}");
    Ok(())
}

/// Prints one value as `field: value` lines, in the order given.
pub fn print_record<T: Serialize + ?Sized>(value: &T, fields: &[(&str, &str)]) -> anyhow::Result<()> {
    let value = serde_json::to_value(value)?;
    let width = fields.iter().map(|(h, _)| h.len()).max().unwrap_or(0);
    for (header, path) in fields {
        let text = cell(value.pointer(path));
        if !text.is_empty() {
            println!("{header:>width$}  {text}");
        }
    }
    Ok(())
}

/// A time as the API writes it: RFC 3339 in UTC with `Z`.
pub fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A wire value (an enum, a list of them) as the text a table shows.
pub fn text_of<T: Serialize + ?Sized>(value: &T) -> String {
    cell(serde_json::to_value(value).ok().as_ref())
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
