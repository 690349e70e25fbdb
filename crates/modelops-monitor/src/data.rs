//! Reading tabular files (CSV or Parquet) into typed columns.
//!
//! Every column comes out as one of three shapes:
//! - [`ColumnData::Numeric`]: `f64` values, missing as `NaN` (integers are
//!   widened; they stay exact below 2^53);
//! - [`ColumnData::Categorical`]: dictionary codes into a list of distinct
//!   strings, missing as [`Categorical::MISSING`];
//! - [`ColumnData::Unsupported`]: a type no statistic here can use (dates,
//!   lists, binary); kept so callers can say "not computed" instead of
//!   silently dropping the column.
//!
//! [`SourceType`] remembers what the file said (float, int, bool, string),
//! because Evidently's column-type inference depends on it.
//!
//! Parquet columns are decoded in parallel, one column per task; CSV is read
//! in two streaming passes (infer types, then parse), so a CSV never sits in
//! memory as text. Errors name the file and, where one is at fault, the
//! column.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, StringArray,
};
use arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A table read from one file: columns of equal length.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it was read from, for error messages.
    pub path: PathBuf,
    pub rows: usize,
    pub columns: Vec<Column>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Like [`Table::column`], but a missing column is an error naming the file.
    pub fn require(&self, name: &str) -> Result<&Column> {
        self.column(name).ok_or_else(|| Error::FileColumn {
            path: self.path.display().to_string(),
            column: name.to_string(),
            reason: "no such column".to_string(),
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }
}

/// One named column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub source: SourceType,
    pub data: ColumnData,
}

impl Column {
    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(c) => c.codes.len(),
            ColumnData::Unsupported { rows, .. } => *rows,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The numeric values, or `None` for a categorical or unsupported column.
    pub fn as_numeric(&self) -> Option<&[f64]> {
        match &self.data {
            ColumnData::Numeric(v) => Some(v),
            _ => None,
        }
    }

    /// The categorical codes and dictionary, or `None` for other columns.
    pub fn as_categorical(&self) -> Option<&Categorical> {
        match &self.data {
            ColumnData::Categorical(c) => Some(c),
            _ => None,
        }
    }

    /// Values as strings for categorical use, whatever the storage: numbers
    /// are formatted the way Python prints them (`1`, `2.5`). Missing → `None`.
    pub fn label(&self, row: usize) -> Option<String> {
        match &self.data {
            ColumnData::Numeric(v) => {
                let x = *v.get(row)?;
                (!x.is_nan()).then(|| format_number(x))
            }
            ColumnData::Categorical(c) => c.get(row).map(str::to_string),
            ColumnData::Unsupported { .. } => None,
        }
    }
}

/// The type the file declared for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceType {
    Float,
    /// Integers. `has_missing` matters: pandas turns an integer column with
    /// nulls into floats, and Evidently then calls it numerical.
    Int { has_missing: bool },
    Bool,
    String,
    Other,
}

/// The values of a column.
#[derive(Debug, Clone)]
pub enum ColumnData {
    Numeric(Vec<f64>),
    Categorical(Categorical),
    Unsupported { type_name: String, rows: usize },
}

/// Dictionary-encoded strings: `codes[i]` indexes `dictionary`, or is
/// [`Categorical::MISSING`].
#[derive(Debug, Clone, Default)]
pub struct Categorical {
    pub codes: Vec<u32>,
    pub dictionary: Vec<String>,
}

impl Categorical {
    pub const MISSING: u32 = u32::MAX;

    pub fn get(&self, row: usize) -> Option<&str> {
        let code = *self.codes.get(row)?;
        self.dictionary.get(code as usize).map(String::as_str)
    }

    /// Build from optional strings (tests, small inputs).
    pub fn from_values<S: AsRef<str>>(values: &[Option<S>]) -> Self {
        let mut builder = CategoricalBuilder::default();
        for v in values {
            builder.push(v.as_ref().map(AsRef::as_ref));
        }
        builder.finish()
    }
}

#[derive(Default)]
struct CategoricalBuilder {
    codes: Vec<u32>,
    dictionary: Vec<String>,
    index: FxHashMap<String, u32>,
}

impl CategoricalBuilder {
    fn code_of(&mut self, value: &str) -> u32 {
        if let Some(&code) = self.index.get(value) {
            return code;
        }
        let code = self.dictionary.len() as u32;
        self.dictionary.push(value.to_string());
        self.index.insert(value.to_string(), code);
        code
    }

    fn push(&mut self, value: Option<&str>) {
        let code = match value {
            Some(v) => self.code_of(v),
            None => Categorical::MISSING,
        };
        self.codes.push(code);
    }

    fn finish(self) -> Categorical {
        Categorical { codes: self.codes, dictionary: self.dictionary }
    }
}

/// A number as a category label: integral values without a fraction (`3`,
/// as Python prints an int), others in the shortest round-trip form (`2.5`).
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Called with (work done, total work) while a file is read; both in the
/// same unit (bytes for CSV, column chunks for Parquet).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Read a CSV or Parquet file (chosen by extension: `.csv`/`.tsv`/`.txt` are
/// CSV, everything else is tried as Parquet). `columns` selects and orders
/// the columns to read; `None` reads all.
pub fn read_table(path: &Path, columns: Option<&[String]>) -> Result<Table> {
    read_table_with_progress(path, columns, &|_, _| {})
}

/// [`read_table`] reporting progress.
pub fn read_table_with_progress(
    path: &Path,
    columns: Option<&[String]>,
    progress: Progress<'_>,
) -> Result<Table> {
    if is_csv(path) {
        read_csv(path, columns, progress)
    } else {
        read_parquet(path, columns, progress)
    }
}

/// The column names and declared types of a file, without reading its values
/// (CSV: the types are inferred, which does read the file once).
pub fn read_schema(path: &Path) -> Result<Vec<(String, SourceType)>> {
    if is_csv(path) {
        let (names, kinds, _) = csv_infer(path, &|_, _| {})?;
        Ok(names.into_iter().zip(kinds.iter().map(CsvKind::source)).collect())
    } else {
        let builder = parquet_builder(path)?;
        Ok(builder
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), source_of(f.data_type(), f.is_nullable())))
            .collect())
    }
}

fn is_csv(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
        Some("csv" | "tsv" | "txt")
    )
}

fn read_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Read { path: path.display().to_string(), reason: reason.to_string() }
}

fn column_error(path: &Path, column: &str, reason: impl Into<String>) -> Error {
    Error::FileColumn {
        path: path.display().to_string(),
        column: column.to_string(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------- Parquet

fn parquet_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| read_error(path, format!("not a readable parquet file: {e}")))
}

fn source_of(data_type: &DataType, _nullable: bool) -> SourceType {
    match data_type {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => SourceType::Float,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => SourceType::Int { has_missing: false },
        DataType::Boolean => SourceType::Bool,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SourceType::String,
        DataType::Dictionary(_, value) => match value.as_ref() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SourceType::String,
            other => source_of(other, true),
        },
        _ => SourceType::Other,
    }
}

fn read_parquet(path: &Path, columns: Option<&[String]>, progress: Progress<'_>) -> Result<Table> {
    let builder = parquet_builder(path)?;
    let metadata = builder.metadata().clone();
    let rows = usize::try_from(metadata.file_metadata().num_rows())
        .map_err(|_| read_error(path, "negative row count in footer"))?;
    let schema = builder.schema().clone();
    let parquet_schema = builder.parquet_schema().clone();
    drop(builder);

    let wanted: Vec<usize> = match columns {
        None => (0..schema.fields().len()).collect(),
        Some(names) => names
            .iter()
            .map(|name| {
                schema.index_of(name).map_err(|_| column_error(path, name, "no such column"))
            })
            .collect::<Result<_>>()?,
    };

    // Leaf columns of each top-level field, for the projection mask.
    let total = (wanted.len() * metadata.num_row_groups().max(1)) as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let read_one = |field_index: usize| -> Result<Column> {
        let field = schema.field(field_index);
        let name = field.name().clone();
        let mask = ProjectionMask::roots(&parquet_schema, [field_index]);
        let builder = parquet_builder(path)?;
        let reader = builder
            .with_projection(mask)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| column_error(path, &name, format!("cannot decode: {e}")))?;
        let mut sink = ColumnSink::new(field.data_type(), rows);
        let batches_per_group = rows.div_ceil(metadata.num_row_groups().max(1)).max(1);
        let mut seen_rows = 0usize;
        for batch in reader {
            let batch = batch.map_err(|e| {
                column_error(path, &name, format!("cannot decode (truncated or corrupt file?): {e}"))
            })?;
            let array = batch.column(0);
            let before = seen_rows / batches_per_group;
            seen_rows += array.len();
            sink.push(array).map_err(|reason| column_error(path, &name, reason))?;
            let after = seen_rows / batches_per_group;
            if after > before {
                let d = done.fetch_add((after - before) as u64, std::sync::atomic::Ordering::Relaxed);
                progress(d + (after - before) as u64, total);
            }
        }
        let data = sink.finish(rows);
        let len = match &data {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(c) => c.codes.len(),
            ColumnData::Unsupported { rows, .. } => *rows,
        };
        if len != rows {
            return Err(column_error(
                path,
                &name,
                format!("has `{len}` values but the footer says `{rows}` rows (truncated file?)"),
            ));
        }
        let mut source = source_of(field.data_type(), field.is_nullable());
        if let (SourceType::Int { .. }, ColumnData::Numeric(v)) = (&source, &data) {
            source = SourceType::Int { has_missing: v.iter().any(|x| x.is_nan()) };
        }
        Ok(Column { name, source, data })
    };

    let columns: Vec<Column> = wanted.par_iter().map(|&i| read_one(i)).collect::<Result<_>>()?;
    Ok(Table { path: path.to_path_buf(), rows, columns })
}

/// An in-memory arrow batch as a [`Table`], column by column exactly as
/// [`read_table`] reads the same batch written to Parquet (same shapes,
/// same [`SourceType`]s): the server's live monitors summarise recorded
/// predictions this way, so their numbers equal those of the offline
/// commands on the exported file. `path` names the source in messages.
pub fn table_from_batch(batch: &arrow::record_batch::RecordBatch, path: &Path) -> Result<Table> {
    let rows = batch.num_rows();
    let schema = batch.schema();
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let mut sink = ColumnSink::new(field.data_type(), rows);
        sink.push(array).map_err(|reason| column_error(path, field.name(), reason))?;
        let data = sink.finish(rows);
        let mut source = source_of(field.data_type(), field.is_nullable());
        if let (SourceType::Int { .. }, ColumnData::Numeric(v)) = (&source, &data) {
            source = SourceType::Int { has_missing: v.iter().any(|x| x.is_nan()) };
        }
        columns.push(Column { name: field.name().clone(), source, data });
    }
    Ok(Table { path: path.to_path_buf(), rows, columns })
}

/// Accumulates arrow arrays of one column into our representation.
enum ColumnSink {
    Numeric(Vec<f64>),
    Categorical(CategoricalBuilder),
    Bool(CategoricalBuilder),
    Unsupported { type_name: String },
}

impl ColumnSink {
    /// `rows` (from the footer) sizes the buffers once, so they never grow
    /// by copying; capped, as a corrupt footer may claim any count.
    fn new(data_type: &DataType, rows: usize) -> Self {
        let rows = rows.min(1 << 26);
        let builder = || CategoricalBuilder { codes: Vec::with_capacity(rows), ..Default::default() };
        match source_of(data_type, true) {
            SourceType::Float | SourceType::Int { .. } => ColumnSink::Numeric(Vec::with_capacity(rows)),
            SourceType::String => ColumnSink::Categorical(builder()),
            SourceType::Bool => ColumnSink::Bool(builder()),
            SourceType::Other => ColumnSink::Unsupported { type_name: data_type.to_string() },
        }
    }

    fn push(&mut self, array: &ArrayRef) -> std::result::Result<(), String> {
        match self {
            ColumnSink::Numeric(out) => push_numeric(out, array),
            ColumnSink::Categorical(builder) => push_strings(builder, array),
            ColumnSink::Bool(builder) => {
                let bools: &BooleanArray = array
                    .as_boolean_opt()
                    .ok_or_else(|| format!("unexpected type `{}`", array.data_type()))?;
                for i in 0..bools.len() {
                    builder.push(if bools.is_null(i) {
                        None
                    } else if bools.value(i) {
                        Some("True")
                    } else {
                        Some("False")
                    });
                }
                Ok(())
            }
            ColumnSink::Unsupported { .. } => Ok(()),
        }
    }

    fn finish(self, rows: usize) -> ColumnData {
        match self {
            ColumnSink::Numeric(v) => ColumnData::Numeric(v),
            ColumnSink::Categorical(b) | ColumnSink::Bool(b) => ColumnData::Categorical(b.finish()),
            ColumnSink::Unsupported { type_name } => ColumnData::Unsupported { type_name, rows },
        }
    }
}

fn push_numeric(out: &mut Vec<f64>, array: &ArrayRef) -> std::result::Result<(), String> {
    macro_rules! extend {
        ($t:ty, $conv:expr) => {{
            let a = array.as_primitive::<$t>();
            out.reserve(a.len());
            if a.null_count() == 0 {
                out.extend(a.values().iter().map(|&v| $conv(v)));
            } else {
                out.extend(a.iter().map(|v| v.map_or(f64::NAN, $conv)));
            }
        }};
    }
    match array.data_type() {
        DataType::Float64 => extend!(Float64Type, |v: f64| v),
        DataType::Float32 => extend!(Float32Type, f64::from),
        DataType::Float16 => extend!(Float16Type, f64::from),
        DataType::Int64 => extend!(Int64Type, |v: i64| v as f64),
        DataType::Int32 => extend!(Int32Type, f64::from),
        DataType::Int16 => extend!(Int16Type, f64::from),
        DataType::Int8 => extend!(Int8Type, f64::from),
        DataType::UInt64 => extend!(UInt64Type, |v: u64| v as f64),
        DataType::UInt32 => extend!(UInt32Type, f64::from),
        DataType::UInt16 => extend!(UInt16Type, f64::from),
        DataType::UInt8 => extend!(UInt8Type, f64::from),
        DataType::Dictionary(_, _) => {
            let values = arrow::compute::cast(array, dictionary_value_type(array.data_type()))
                .map_err(|e| format!("cannot unpack dictionary: {e}"))?;
            return push_numeric(out, &values);
        }
        other => return Err(format!("unexpected type `{other}` for a numeric column")),
    }
    Ok(())
}

fn dictionary_value_type(data_type: &DataType) -> &DataType {
    match data_type {
        DataType::Dictionary(_, value) => value,
        other => other,
    }
}

fn push_strings(builder: &mut CategoricalBuilder, array: &ArrayRef) -> std::result::Result<(), String> {
    if let DataType::Dictionary(_, _) = array.data_type() {
        // Map each dictionary entry once, then the keys through that map.
        let dict: &DictionaryArray<Int32Type> = match array.as_dictionary_opt::<Int32Type>() {
            Some(d) => d,
            None => {
                let plain = arrow::compute::cast(array, &DataType::Utf8)
                    .map_err(|e| format!("cannot unpack dictionary: {e}"))?;
                return push_strings(builder, &plain);
            }
        };
        let values = arrow::compute::cast(dict.values(), &DataType::Utf8)
            .map_err(|e| format!("cannot read dictionary values: {e}"))?;
        let values: &StringArray = values.as_string::<i32>();
        let map: Vec<u32> = (0..values.len())
            .map(|i| if values.is_null(i) { Categorical::MISSING } else { builder.code_of(values.value(i)) })
            .collect();
        let keys = dict.keys();
        builder.codes.reserve(keys.len());
        for i in 0..keys.len() {
            let code = if keys.is_null(i) {
                Categorical::MISSING
            } else {
                usize::try_from(keys.value(i))
                    .ok()
                    .and_then(|k| map.get(k).copied())
                    .ok_or_else(|| format!("dictionary key `{}` out of range", keys.value(i)))?
            };
            builder.codes.push(code);
        }
        return Ok(());
    }
    let utf8;
    let strings: &StringArray = match array.as_string_opt::<i32>() {
        Some(s) => s,
        None => {
            utf8 = arrow::compute::cast(array, &DataType::Utf8)
                .map_err(|e| format!("cannot read as text: {e}"))?;
            utf8.as_string::<i32>()
        }
    };
    builder.codes.reserve(strings.len());
    for i in 0..strings.len() {
        builder.push(if strings.is_null(i) { None } else { Some(strings.value(i)) });
    }
    Ok(())
}

// ---------------------------------------------------------------- CSV

/// What a CSV column can hold, from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CsvKind {
    /// Only missing values so far.
    Empty,
    Bool,
    Int { has_missing: bool },
    Float,
    String,
}

impl CsvKind {
    fn source(&self) -> SourceType {
        match self {
            CsvKind::Empty | CsvKind::Float => SourceType::Float,
            CsvKind::Bool => SourceType::Bool,
            CsvKind::Int { has_missing } => SourceType::Int { has_missing: *has_missing },
            CsvKind::String => SourceType::String,
        }
    }
}

/// The spellings pandas' `read_csv` treats as missing by default.
fn is_missing(field: &str) -> bool {
    matches!(
        field,
        "" | "NA" | "N/A" | "n/a" | "NaN" | "nan" | "-NaN" | "-nan" | "null" | "NULL" | "None"
            | "#N/A" | "#N/A N/A" | "#NA" | "<NA>" | "1.#IND" | "-1.#IND" | "1.#QNAN" | "-1.#QNAN"
    )
}

fn parse_bool(field: &str) -> Option<bool> {
    match field {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn parse_float(field: &str) -> Option<f64> {
    let t = field.trim();
    match t {
        "inf" | "+inf" | "Inf" | "Infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-Inf" | "-Infinity" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok().filter(|x| !x.is_nan()),
    }
}

fn widen(kind: CsvKind, field: &str) -> CsvKind {
    if is_missing(field) {
        return match kind {
            CsvKind::Int { .. } => CsvKind::Int { has_missing: true },
            other => other,
        };
    }
    let as_int = field.trim().parse::<i64>().is_ok();
    let as_float = as_int || parse_float(field).is_some();
    let as_bool = parse_bool(field).is_some();
    match kind {
        CsvKind::String => CsvKind::String,
        CsvKind::Empty if as_int => CsvKind::Int { has_missing: true },
        CsvKind::Empty if as_float => CsvKind::Float,
        CsvKind::Empty if as_bool => CsvKind::Bool,
        CsvKind::Bool if as_bool => CsvKind::Bool,
        CsvKind::Int { has_missing } if as_int => CsvKind::Int { has_missing },
        CsvKind::Int { .. } | CsvKind::Float if as_float => CsvKind::Float,
        _ => CsvKind::String,
    }
}

fn csv_reader(path: &Path) -> Result<csv::Reader<File>> {
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    let delimiter = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv")) { b'\t' } else { b',' };
    Ok(csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(file))
}

/// First pass: names, kinds, row count.
fn csv_infer(path: &Path, progress: Progress<'_>) -> Result<(Vec<String>, Vec<CsvKind>, usize)> {
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut reader = csv_reader(path)?;
    let names: Vec<String> = reader
        .headers()
        .map_err(|e| read_error(path, format!("cannot read the header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(read_error(path, "empty file: no header row"));
    }
    let mut kinds = vec![CsvKind::Empty; names.len()];
    // Start integer columns as "no missing" once they see their first value.
    let mut missing_seen = vec![false; names.len()];
    let mut rows = 0usize;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(path, format!("row {}: {e}", rows + 2))),
        }
        for (i, field) in record.iter().enumerate() {
            if is_missing(field) {
                missing_seen[i] = true;
            }
            kinds[i] = widen(kinds[i], field);
        }
        rows += 1;
        if rows & 0xFFFF == 0 {
            progress(reader.position().byte(), total * 2);
        }
    }
    for (kind, missing) in kinds.iter_mut().zip(&missing_seen) {
        if let CsvKind::Int { .. } = kind {
            *kind = CsvKind::Int { has_missing: *missing };
        }
    }
    Ok((names, kinds, rows))
}

fn read_csv(path: &Path, columns: Option<&[String]>, progress: Progress<'_>) -> Result<Table> {
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let (names, kinds, rows) = csv_infer(path, progress)?;
    let wanted: Vec<usize> = match columns {
        None => (0..names.len()).collect(),
        Some(cols) => cols
            .iter()
            .map(|c| {
                names.iter().position(|n| n == c).ok_or_else(|| column_error(path, c, "no such column"))
            })
            .collect::<Result<_>>()?,
    };
    enum Sink {
        Numeric(Vec<f64>),
        Text(CategoricalBuilder),
    }
    let mut sinks: Vec<Sink> = wanted
        .iter()
        .map(|&i| match kinds[i] {
            CsvKind::String | CsvKind::Bool => Sink::Text(CategoricalBuilder::default()),
            _ => Sink::Numeric(Vec::with_capacity(rows)),
        })
        .collect();
    let mut reader = csv_reader(path)?;
    let mut record = csv::StringRecord::new();
    let mut row = 0usize;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(read_error(path, format!("row {}: {e}", row + 2))),
        }
        for (sink, &i) in sinks.iter_mut().zip(&wanted) {
            let field = record.get(i).unwrap_or("");
            match sink {
                Sink::Numeric(v) => v.push(if is_missing(field) {
                    f64::NAN
                } else {
                    parse_float(field).ok_or_else(|| {
                        column_error(path, &names[i], format!("row {}: `{field}` is not a number", row + 2))
                    })?
                }),
                Sink::Text(b) => {
                    if is_missing(field) {
                        b.push(None)
                    } else if let (CsvKind::Bool, Some(x)) = (kinds[i], parse_bool(field)) {
                        b.push(Some(if x { "True" } else { "False" }))
                    } else {
                        b.push(Some(field))
                    }
                }
            }
        }
        row += 1;
        if row & 0xFFFF == 0 {
            progress(total + reader.position().byte(), total * 2);
        }
    }
    if row != rows {
        return Err(read_error(path, "the file changed while it was read"));
    }
    let columns = sinks
        .into_iter()
        .zip(&wanted)
        .map(|(sink, &i)| Column {
            name: names[i].clone(),
            source: kinds[i].source(),
            data: match sink {
                Sink::Numeric(v) => ColumnData::Numeric(v),
                Sink::Text(b) => ColumnData::Categorical(b.finish()),
            },
        })
        .collect();
    Ok(Table { path: path.to_path_buf(), rows, columns })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        let mut f = File::create(&path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        path
    }

    #[test]
    fn csv_types_are_inferred_like_pandas() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "a.csv",
            "f,i,im,b,s\n1.5,1,1,true,x\ninf,2,,False,y\n,3,3,true,\n-inf,4,4,false,x\n",
        );
        let t = read_table(&path, None).unwrap();
        assert_eq!(t.rows, 4);
        let f = t.require("f").unwrap();
        assert_eq!(f.source, SourceType::Float);
        let v = f.as_numeric().unwrap();
        assert_eq!(v[0], 1.5);
        assert_eq!(v[1], f64::INFINITY);
        assert!(v[2].is_nan());
        assert_eq!(t.require("i").unwrap().source, SourceType::Int { has_missing: false });
        assert_eq!(t.require("im").unwrap().source, SourceType::Int { has_missing: true });
        assert_eq!(t.require("b").unwrap().source, SourceType::Bool);
        let s = t.require("s").unwrap().as_categorical().unwrap();
        assert_eq!(s.get(0), Some("x"));
        assert_eq!(s.get(2), None);
        assert_eq!(s.dictionary.len(), 2);
    }

    #[test]
    fn missing_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "a.csv", "x\n1\n");
        let err = read_table(&path, Some(&["nope".to_string()])).unwrap_err().to_string();
        assert!(err.contains("a.csv") && err.contains("`nope`"), "{err}");
    }

    #[test]
    fn unreadable_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(&dir, "e.parquet", "");
        let err = read_table(&empty, None).unwrap_err().to_string();
        assert!(err.contains("e.parquet"), "{err}");
        let garbage = write(&dir, "g.parquet", "PAR1 this is not parquet");
        assert!(read_table(&garbage, None).is_err());
        let empty_csv = write(&dir, "e.csv", "");
        let err = read_table(&empty_csv, None).unwrap_err().to_string();
        assert!(err.contains("e.csv"), "{err}");
        let ragged = write(&dir, "r.csv", "a,b\n1,2\n3\n");
        let err = read_table(&ragged, None).unwrap_err().to_string();
        assert!(err.contains("r.csv"), "{err}");
        let missing = dir.path().join("missing.parquet");
        let err = read_table(&missing, None).unwrap_err().to_string();
        assert!(err.contains("missing.parquet"), "{err}");
    }

    #[test]
    fn number_labels_read_like_python() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-2.5), "-2.5");
        assert_eq!(format_number(0.1), "0.1");
    }
}

#[cfg(test)]
mod parquet_tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, RecordBatch};
    use std::sync::Arc;

    #[test]
    fn parquet_round_trip_with_nulls_and_dictionary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let f = Float64Array::from(vec![Some(1.0), None, Some(f64::INFINITY)]);
        let i = Int64Array::from(vec![Some(1), None, Some(3)]);
        let s = StringArray::from(vec![Some("a"), Some("b"), None]);
        let d: DictionaryArray<Int32Type> = vec!["x", "y", "x"].into_iter().collect();
        let batch = RecordBatch::try_from_iter(vec![
            ("f", Arc::new(f) as ArrayRef),
            ("i", Arc::new(i) as ArrayRef),
            ("s", Arc::new(s) as ArrayRef),
            ("d", Arc::new(d) as ArrayRef),
        ])
        .unwrap();
        let file = File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let t = read_table(&path, None).unwrap();
        assert_eq!(t.rows, 3);
        let f = t.require("f").unwrap().as_numeric().unwrap();
        assert!(f[1].is_nan() && f[2].is_infinite());
        assert_eq!(t.require("i").unwrap().source, SourceType::Int { has_missing: true });
        let s = t.require("s").unwrap().as_categorical().unwrap();
        assert_eq!((s.get(0), s.get(2)), (Some("a"), None));
        let d = t.require("d").unwrap();
        assert_eq!(d.source, SourceType::String);
        assert_eq!(d.as_categorical().unwrap().get(2), Some("x"));

        let only = read_table(&path, Some(&["s".to_string(), "f".to_string()])).unwrap();
        assert_eq!(only.names().collect::<Vec<_>>(), ["s", "f"]);

        // Truncate the file: an error naming it, not a panic.
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.parquet");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_table(&cut, None).unwrap_err().to_string();
        assert!(err.contains("cut.parquet"), "{err}");
    }
}
