//! Summarising recorded calls into windows: records → the exported table's
//! columns (`modelops_deploy::export`, then `modelops_monitor::data`, the
//! very conversion `modelops predictions export` + `modelops drift` go
//! through) → one [`ColumnAggregate`] per monitored column, merged into the
//! window's with a bounded raw sample. And the labelled table a window's
//! performance is computed over.

use chrono::{DateTime, Utc};
use modelops_core::deployment::PredictionRecord;
use modelops_core::{Error, Result};
use modelops_deploy::export::ParquetExport;
use modelops_monitor::data::{table_from_batch, Categorical, Column, ColumnData, SourceType, Table};
use modelops_monitor::drift::{needs_sample, ColumnAggregate, DriftOptions, Profile};
use std::collections::BTreeMap;
use std::path::Path;

/// The name of the label column added to a labelled window's table; no
/// tensor column can take it (`@` is not in a tensor name).
pub const LABEL_COLUMN: &str = "@label";

/// One window of one version, summarised.
#[derive(Debug, Clone)]
pub struct WindowAgg {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub rows: u64,
    pub first_id: i64,
    pub last_id: i64,
    pub columns: BTreeMap<String, ColumnAggregate>,
    /// Rows merged since the result was last written.
    pub dirty: bool,
}

impl WindowAgg {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        WindowAgg { start, end, rows: 0, first_id: i64::MAX, last_id: 0, columns: BTreeMap::new(), dirty: false }
    }

    /// Merges a part (rows of calls `first_id..=last_id`), keeping at most
    /// `cap` raw values per column.
    pub fn merge(&mut self, part: &Part, cap: usize) {
        self.rows += part.rows;
        self.first_id = self.first_id.min(part.first_id);
        self.last_id = self.last_id.max(part.last_id);
        for (name, agg) in &part.columns {
            self.columns.entry(name.clone()).or_default().merge_capped(agg, cap);
        }
        self.dirty = true;
    }
}

/// The summary of some rows of one version.
#[derive(Debug, Clone, Default)]
pub struct Part {
    pub rows: u64,
    pub first_id: i64,
    pub last_id: i64,
    pub first_at: Option<DateTime<Utc>>,
    pub last_at: Option<DateTime<Utc>>,
    pub columns: Vec<(String, ColumnAggregate)>,
}

/// The recorded calls as the exported table.
pub fn table_of(records: &[PredictionRecord], name: &str) -> Result<Table> {
    let mut export = ParquetExport::new();
    export.push(records)?;
    let batch = export.into_batch()?;
    table_from_batch(&batch, Path::new(name)).map_err(|e| Error::Internal(format!("summarising recorded predictions: {e}")))
}

/// The columns a window of `profile` summarises: the monitor's features
/// (those the profile has), or every column of the profile.
pub fn watched<'p>(profile: &'p Profile, features: Option<&[String]>) -> Vec<&'p modelops_monitor::profile::ColumnProfile> {
    profile.columns.iter().filter(|c| features.is_none_or(|f| f.iter().any(|n| n == &c.name))).collect()
}

/// Summarises rows `range` of `table` on the profile's columns.
pub fn summarise(table: &Table, range: std::ops::Range<usize>, profile: &Profile, features: Option<&[String]>, options: &DriftOptions) -> Vec<(String, ColumnAggregate)> {
    let whole = range.start == 0 && range.end == table.rows;
    watched(profile, features)
        .into_iter()
        .map(|p| {
            let agg = match table.column(&p.name) {
                Some(column) if whole => ColumnAggregate::of(p, column, needs_sample(p, options)),
                Some(column) => ColumnAggregate::of(p, &slice(column, range.clone()), needs_sample(p, options)),
                // Not in these calls (failed calls have no outputs): every
                // row is missing the value.
                None => ColumnAggregate { missing: (range.end - range.start) as u64, ..Default::default() },
            };
            (p.name.clone(), agg)
        })
        .collect()
}

/// Rows `range` of a column.
pub fn slice(column: &Column, range: std::ops::Range<usize>) -> Column {
    let data = match &column.data {
        ColumnData::Numeric(v) => ColumnData::Numeric(v[range].to_vec()),
        ColumnData::Categorical(c) => ColumnData::Categorical(Categorical { codes: c.codes[range].to_vec(), dictionary: c.dictionary.clone() }),
        ColumnData::Unsupported { type_name, .. } => ColumnData::Unsupported { type_name: type_name.clone(), rows: range.len() },
    };
    Column { name: column.name.clone(), source: column.source, data }
}

/// For each row of a table of `records`, the index of its record: the
/// exported `row` column restarts at 0 with every call.
pub fn record_of_rows(table: &Table) -> Vec<usize> {
    let Some(rows) = table.column("row").and_then(Column::as_numeric) else { return Vec::new() };
    let mut out = Vec::with_capacity(rows.len());
    let mut record = 0usize;
    for (i, &r) in rows.iter().enumerate() {
        if i > 0 && r == 0.0 {
            record += 1;
        }
        out.push(record);
    }
    out
}

/// A label as sent: one value for every row of the call, or one per row.
fn label_values(label: &serde_json::Value, rows: usize) -> Vec<serde_json::Value> {
    match label {
        serde_json::Value::Array(items) if items.len() == rows => items.clone(),
        other => vec![other.clone(); rows],
    }
}

/// The table of labelled calls with their labels as [`LABEL_COLUMN`]:
/// numbers as a numeric column (integers keep the integer source type),
/// booleans as `True`/`False` like a boolean Parquet column, text as text.
pub fn labelled_table(records: &[PredictionRecord], labels: &[serde_json::Value], name: &str) -> Result<Table> {
    let mut table = table_of(records, name)?;
    let owners = record_of_rows(&table);
    let mut values = Vec::with_capacity(table.rows);
    let mut i = 0;
    while i < owners.len() {
        let record = owners[i];
        let n = owners[i..].iter().take_while(|&&r| r == record).count();
        values.extend(label_values(&labels[record], n));
        i += n;
    }
    let column = if values.iter().all(|v| v.is_number()) {
        let integers = values.iter().all(|v| v.is_i64() || v.is_u64());
        let numbers = values.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect();
        let source = if integers { SourceType::Int { has_missing: false } } else { SourceType::Float };
        Column { name: LABEL_COLUMN.into(), source, data: ColumnData::Numeric(numbers) }
    } else if values.iter().all(serde_json::Value::is_boolean) {
        let texts: Vec<Option<&str>> = values.iter().map(|v| Some(if v.as_bool() == Some(true) { "True" } else { "False" })).collect();
        Column { name: LABEL_COLUMN.into(), source: SourceType::Bool, data: ColumnData::Categorical(Categorical::from_values(&texts)) }
    } else {
        let texts: Vec<Option<String>> = values
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect();
        Column { name: LABEL_COLUMN.into(), source: SourceType::String, data: ColumnData::Categorical(Categorical::from_values(&texts)) }
    };
    table.columns.push(column);
    Ok(table)
}
