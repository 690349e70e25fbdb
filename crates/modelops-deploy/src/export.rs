//! Recorded predictions as a Parquet table, for monitoring (drift,
//! performance) and retraining, which read windows of predictions as
//! Parquet (`modelops_monitor::data::read_table`).
//!
//! One row per predicted row: a call on a batch of n rows gives n rows,
//! each carrying the call's `request_id`, `at` (timestamp, microseconds,
//! UTC), `version` (int64, the type every Parquet reader has), `route`,
//! `latency_us` (int64), `error` (nullable) and `row` (int32, the index
//! within the call), then one column per input value, then one per output
//! value. A tensor whose rows hold one value (shape `[n]` or `[n, 1]`)
//! gives a column named as the tensor (`income`); one whose rows hold k
//! values (`[n, k]`, or more dimensions, flattened row-major) gives
//! `probabilities_0 … probabilities_{k-1}`. Floats become float64 (NaN and
//! ±infinity, recorded as JSON `null`, become nulls: missing), integers
//! int64, BYTES utf8, BOOL boolean.
//!
//! The columns are the union over the records pushed, inputs first, each
//! group in first-seen order; a record lacking a column gets nulls there,
//! and a failed call (outputs `[]`) keeps its input rows with null outputs.
//! Names stay unique: an input named like one of the call's columns is
//! prefixed `input_`, an output named like a call column or an input
//! column `output_`. When versions disagree on a value's type, an integer
//! column meeting floats becomes float64, any other mix becomes utf8 (the
//! values as text) — a window across a model change still exports.
//!
//! The table is built in memory with arrow builders (memory proportional
//! to the output; no row cap — the caller bounds the window) and written
//! at [`ParquetExport::finish`] compressed with zstd. A record whose JSON
//! does not read is an internal error naming the record, and leaves the
//! export as it was before the `push`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use modelops_core::deployment::PredictionRecord;
use modelops_core::{Error, Result};
use modelops_monitor::data::format_number;
use modelops_runtime::tensor_json::{decode, flatten, JsonDataError};
use modelops_runtime::TensorData;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;

/// The call's own columns; tensor columns never take these names.
const CALL_COLUMNS: [&str; 7] = ["request_id", "at", "version", "route", "latency_us", "error", "row"];

/// Rows handed to the Parquet writer at a time.
const WRITE_SLICE: usize = 64 * 1024;

/// Recorded calls collected into one Parquet table.
pub struct ParquetExport {
    request_id: StringBuilder,
    at: TimestampMicrosecondBuilder,
    version: Int64Builder,
    route: StringBuilder,
    latency_us: Int64Builder,
    error: StringBuilder,
    row: Int32Builder,
    columns: Vec<ValueColumn>,
    index: HashMap<(Side, String), usize>,
    rows: usize,
}

impl std::fmt::Debug for ParquetExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let columns: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("ParquetExport").field("rows", &self.rows).field("value_columns", &columns).finish()
    }
}

impl Default for ParquetExport {
    fn default() -> Self {
        Self::new()
    }
}

impl ParquetExport {
    pub fn new() -> Self {
        Self {
            request_id: StringBuilder::new(),
            at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            version: Int64Builder::new(),
            route: StringBuilder::new(),
            latency_us: Int64Builder::new(),
            error: StringBuilder::new(),
            row: Int32Builder::new(),
            columns: Vec::new(),
            index: HashMap::new(),
            rows: 0,
        }
    }

    /// Adds recorded calls: each call's rows become rows of the table.
    /// Every record is read before any is added, so an error (naming the
    /// record) leaves the export unchanged.
    pub fn push(&mut self, records: &[PredictionRecord]) -> Result<()> {
        let parsed: Vec<ParsedCall> = records.iter().map(ParsedCall::read).collect::<Result<_>>()?;
        for (record, call) in records.iter().zip(parsed) {
            self.add(record, call);
        }
        Ok(())
    }

    /// Rows so far.
    pub fn rows(&self) -> u64 {
        self.rows as u64
    }

    /// Writes the Parquet file (zstd) to `out`; returns the rows written.
    pub fn finish<W: std::io::Write + Send>(self, out: W) -> Result<u64> {
        let rows = self.rows as u64;
        let batch = self.into_batch()?;
        write_parquet(&batch, out)?;
        Ok(rows)
    }

    /// The table as one arrow batch, the columns [`finish`](Self::finish)
    /// writes: what live monitors summarise, so that their numbers are
    /// those of the exported file.
    pub fn into_batch(mut self) -> Result<RecordBatch> {
        let written = self.written_columns();
        let call_fields = [
            Field::new("request_id", DataType::Utf8, false),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            Field::new("version", DataType::Int64, false),
            Field::new("route", DataType::Utf8, false),
            Field::new("latency_us", DataType::Int64, false),
            Field::new("error", DataType::Utf8, true),
            Field::new("row", DataType::Int32, false),
        ];
        let mut arrays: Vec<ArrayRef> = vec![
            Arc::new(self.request_id.finish()),
            Arc::new(self.at.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.route.finish()),
            Arc::new(self.latency_us.finish()),
            Arc::new(self.error.finish()),
            Arc::new(self.row.finish()),
        ];
        let mut fields: Vec<Field> = call_fields.into();
        for (i, name) in written {
            let array = self.columns[i].values.finish();
            fields.push(Field::new(name, array.data_type().clone(), true));
            arrays.push(array);
        }
        let schema = Arc::new(Schema::new(fields));
        RecordBatch::try_new(schema, arrays).map_err(|e| internal(format!("building the prediction table: {e}")))
    }

    fn add(&mut self, record: &PredictionRecord, call: ParsedCall) {
        let n = call.rows;
        if n == 0 {
            return;
        }
        let route = record.route.as_str();
        let version = i64::from(record.version);
        let latency = i64::try_from(record.latency_us).unwrap_or(i64::MAX);
        let at = record.at.timestamp_micros();
        for r in 0..n {
            self.request_id.append_value(&record.request_id);
            self.at.append_value(at);
            self.version.append_value(version);
            self.route.append_value(route);
            self.latency_us.append_value(latency);
            self.error.append_option(record.error.as_deref());
            // `ParsedCall::read` refuses calls of more rows than an i32 holds.
            self.row.append_value(i32::try_from(r).unwrap_or(i32::MAX));
        }
        for (side, tensors) in [(Side::Input, &call.inputs), (Side::Output, &call.outputs)] {
            for tensor in tensors {
                let width = tensor.width;
                for j in 0..width {
                    let name = if width == 1 { tensor.name.clone() } else { format!("{}_{j}", tensor.name) };
                    let column = self.column(side, name, Kind::of(&tensor.data));
                    column.values.extend(&tensor.data, (0..n).map(|r| r * width + j));
                }
            }
        }
        let rows = self.rows + n;
        for column in &mut self.columns {
            column.values.pad_to(rows);
        }
        self.rows = rows;
    }

    /// The column for `(side, name)`, created (null in every earlier row)
    /// or widened to hold `kind`.
    fn column(&mut self, side: Side, name: String, kind: Kind) -> &mut ValueColumn {
        let at = match self.index.entry((side, name)) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => {
                let mut values = Values::new(kind);
                values.pad_to(self.rows);
                self.columns.push(ValueColumn { side, name: entry.key().1.clone(), values });
                *entry.insert(self.columns.len() - 1)
            }
        };
        let column = &mut self.columns[at];
        column.values.widen(kind);
        column
    }

    /// The value columns as written: their indices, inputs then outputs,
    /// each group in first-seen order, and their names, prefixed where they
    /// would collide (an input with a call column; an output with a call
    /// column or an input — within a side, names are unique by
    /// construction).
    fn written_columns(&self) -> Vec<(usize, String)> {
        let mut taken: HashSet<String> = CALL_COLUMNS.iter().map(|s| (*s).to_string()).collect();
        let mut order: Vec<usize> = (0..self.columns.len()).collect();
        order.sort_by_key(|&i| (self.columns[i].side, i));
        order
            .into_iter()
            .map(|i| {
                let column = &self.columns[i];
                let prefix = match column.side {
                    Side::Input => "input_",
                    Side::Output => "output_",
                };
                let mut name = column.name.clone();
                while taken.contains(&name) {
                    name = format!("{prefix}{name}");
                }
                taken.insert(name.clone());
                (i, name)
            })
            .collect()
    }
}

fn internal(message: String) -> Error {
    Error::Internal(message)
}

/// Which half of a call a column comes from; inputs sort first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Side {
    Input,
    Output,
}

struct ValueColumn {
    side: Side,
    /// The name before collisions are resolved.
    name: String,
    values: Values,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Bool,
    Text,
}

impl Kind {
    fn of(data: &TensorData) -> Self {
        match data {
            TensorData::Float32(_) | TensorData::Float64(_) => Kind::Float,
            TensorData::Int32(_) | TensorData::Int64(_) => Kind::Int,
            TensorData::Bool(_) => Kind::Bool,
            TensorData::String(_) => Kind::Text,
        }
    }
}

enum Values {
    Float(Float64Builder),
    Int(Int64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
}

impl Values {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Float => Values::Float(Float64Builder::new()),
            Kind::Int => Values::Int(Int64Builder::new()),
            Kind::Bool => Values::Bool(BooleanBuilder::new()),
            Kind::Text => Values::Text(StringBuilder::new()),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Values::Float(_) => Kind::Float,
            Values::Int(_) => Kind::Int,
            Values::Bool(_) => Kind::Bool,
            Values::Text(_) => Kind::Text,
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Float(b) => b.len(),
            Values::Int(b) => b.len(),
            Values::Bool(b) => b.len(),
            Values::Text(b) => b.len(),
        }
    }

    fn pad_to(&mut self, rows: usize) {
        let missing = rows.saturating_sub(self.len());
        match self {
            Values::Float(b) => b.append_nulls(missing),
            Values::Int(b) => b.append_nulls(missing),
            Values::Bool(b) => b.append_nulls(missing),
            Values::Text(b) => b.append_nulls(missing),
        }
    }

    /// Makes the column able to hold `kind`: integers meeting floats become
    /// floats, any other mix text.
    #[allow(clippy::cast_precision_loss)]
    fn widen(&mut self, kind: Kind) {
        let have = self.kind();
        if have == kind || (have == Kind::Float && kind == Kind::Int) || have == Kind::Text {
            return;
        }
        let widened = match &mut *self {
            Values::Int(b) if kind == Kind::Float => {
                let done = b.finish();
                let mut floats = Float64Builder::with_capacity(done.len());
                floats.extend(done.iter().map(|v| v.map(|x| x as f64)));
                Values::Float(floats)
            }
            other => {
                let mut text = StringBuilder::new();
                match other {
                    Values::Float(b) => b.finish().iter().for_each(|v| text.append_option(v.map(format_number))),
                    Values::Int(b) => b.finish().iter().for_each(|v| text.append_option(v.map(|x| x.to_string()))),
                    Values::Bool(b) => b.finish().iter().for_each(|v| text.append_option(v.map(|x| x.to_string()))),
                    Values::Text(_) => {}
                }
                Values::Text(text)
            }
        };
        *self = widened;
    }

    /// Appends `data[i]` for each of `at`; the column already holds the kind.
    #[allow(clippy::cast_precision_loss)]
    fn extend(&mut self, data: &TensorData, at: impl Iterator<Item = usize>) {
        // Non-finite floats were recorded as `null`: missing.
        let finite = |x: f64| x.is_finite().then_some(x);
        match (self, data) {
            (Values::Float(b), TensorData::Float32(v)) => at.for_each(|i| b.append_option(finite(f64::from(v[i])))),
            (Values::Float(b), TensorData::Float64(v)) => at.for_each(|i| b.append_option(finite(v[i]))),
            (Values::Float(b), TensorData::Int32(v)) => at.for_each(|i| b.append_value(f64::from(v[i]))),
            (Values::Float(b), TensorData::Int64(v)) => at.for_each(|i| b.append_value(v[i] as f64)),
            (Values::Int(b), TensorData::Int32(v)) => at.for_each(|i| b.append_value(i64::from(v[i]))),
            (Values::Int(b), TensorData::Int64(v)) => at.for_each(|i| b.append_value(v[i])),
            (Values::Bool(b), TensorData::Bool(v)) => at.for_each(|i| b.append_value(v[i])),
            (Values::Text(b), TensorData::String(v)) => at.for_each(|i| b.append_value(&v[i])),
            (Values::Text(b), data) => at.for_each(|i| match data.f64_at(i) {
                Some(x) if x.is_finite() => b.append_value(format_number(x)),
                Some(_) => b.append_null(),
                None => b.append_value(data.json_at(i).to_string()),
            }),
            // `widen` ran first: no other pairing reaches here.
            (values, _) => at.for_each(|_| values.pad_to(values.len() + 1)),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Values::Float(b) => Arc::new(b.finish()),
            Values::Int(b) => Arc::new(b.finish()),
            Values::Bool(b) => Arc::new(b.finish()),
            Values::Text(b) => Arc::new(b.finish()),
        }
    }
}

/// One tensor of the stored JSON.
#[derive(Deserialize)]
struct WireTensor {
    name: String,
    datatype: String,
    shape: Vec<usize>,
    data: serde_json::Value,
}

/// One tensor read: its values and how many of them make a row.
struct ParsedTensor {
    name: String,
    width: usize,
    data: TensorData,
}

/// One recorded call read, checked to fit in a table.
struct ParsedCall {
    rows: usize,
    inputs: Vec<ParsedTensor>,
    outputs: Vec<ParsedTensor>,
}

impl ParsedCall {
    fn read(record: &PredictionRecord) -> Result<Self> {
        let fail = |what: String| {
            Error::Internal(format!("prediction record `{}` (request `{}`): {what}", record.id, record.request_id))
        };
        let (input_rows, inputs) = read_tensors(&record.inputs).map_err(|e| fail(format!("inputs: {e}")))?;
        let (output_rows, outputs) = read_tensors(&record.outputs).map_err(|e| fail(format!("outputs: {e}")))?;
        let rows = match (input_rows, output_rows) {
            (Some(i), Some(o)) if i != o => return Err(fail(format!("the outputs have {o} rows where the inputs have {i}"))),
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => 0,
        };
        if i32::try_from(rows).is_err() {
            return Err(fail(format!("{rows} rows are more than a table takes from one call")));
        }
        // Two tensors of one side must not fill the same column (`x` of
        // width 2 and a tensor named `x_1`).
        for (side, tensors) in [("inputs", &inputs), ("outputs", &outputs)] {
            let mut seen = HashSet::new();
            for tensor in tensors.iter() {
                for j in 0..tensor.width {
                    let name = if tensor.width == 1 { tensor.name.clone() } else { format!("{}_{j}", tensor.name) };
                    if !seen.insert(name.clone()) {
                        return Err(fail(format!("{side}: two tensors give the column `{name}`")));
                    }
                }
            }
        }
        Ok(Self { rows, inputs, outputs })
    }
}

/// The tensors of a stored JSON array and their common number of rows
/// (`None` for no tensors).
fn read_tensors(json: &str) -> std::result::Result<(Option<usize>, Vec<ParsedTensor>), String> {
    let wire: Vec<WireTensor> = serde_json::from_str(json).map_err(|e| format!("not a JSON array of tensors: {e}"))?;
    let mut rows: Option<usize> = None;
    let mut tensors = Vec::with_capacity(wire.len());
    for tensor in wire {
        let name = &tensor.name;
        let Some((&n, row_shape)) = tensor.shape.split_first() else {
            return Err(format!("tensor `{name}` has shape `[]`, without a row dimension"));
        };
        let width = row_shape.iter().try_fold(1usize, |w, d| w.checked_mul(*d));
        let elements = width.and_then(|w| w.checked_mul(n));
        let values = flatten(&tensor.data).map_err(|e| format!("tensor `{name}`: {}", describe(&e)))?;
        let (Some(width), Some(elements)) = (width, elements) else {
            return Err(format!("tensor `{name}` has shape {:?}, too large", tensor.shape));
        };
        if values.len() != elements {
            return Err(format!("tensor `{name}` has shape {:?} but {} values", tensor.shape, values.len()));
        }
        let data = decode(&tensor.datatype, &values).map_err(|e| format!("tensor `{name}`: {}", describe(&e)))?;
        match rows {
            Some(r) if r != n => return Err(format!("tensor `{name}` has {n} rows where the others have {r}")),
            _ => rows = Some(n),
        }
        tensors.push(ParsedTensor { name: tensor.name, width, data });
    }
    Ok((rows, tensors))
}

fn describe(error: &JsonDataError) -> String {
    match error {
        JsonDataError::TooDeep => "data nested too deep".to_string(),
        JsonDataError::Object => "an object where values belong".to_string(),
        JsonDataError::Element { index, value, expected } => format!("value {index} (`{value}`) is not {expected}"),
        JsonDataError::Unsupported(datatype) => format!("datatype `{datatype}` is not read"),
    }
}

/// Writes `batch` as a Parquet file (zstd), as [`ParquetExport::finish`]
/// does; for tables built from an export's batch (a retraining window with
/// its ground truth).
pub fn write_parquet<W: std::io::Write + Send>(batch: &RecordBatch, out: W) -> Result<()> {
    let schema = batch.schema();
    let properties = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut writer = ArrowWriter::try_new(out, schema, Some(properties)).map_err(|e| internal(format!("writing parquet: {e}")))?;
    let mut offset = 0;
    while offset < batch.num_rows() {
        let len = WRITE_SLICE.min(batch.num_rows() - offset);
        writer.write(&batch.slice(offset, len)).map_err(|e| internal(format!("writing parquet: {e}")))?;
        offset += len;
    }
    writer.close().map_err(|e| internal(format!("writing parquet: {e}")))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::recorder::tensors_json;
    use arrow::array::{AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
    use chrono::{DateTime, Utc};
    use modelops_core::deployment::RecordRoute;
    use modelops_core::name::ModelName;
    use modelops_monitor::data::{read_table, ColumnData, SourceType};
    use modelops_runtime::Tensor;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn call(id: i64, inputs: &[Tensor], outputs: &[Tensor], error: Option<&str>) -> PredictionRecord {
        PredictionRecord {
            id,
            request_id: format!("req-{id}"),
            at: at("2025-03-01T12:00:00.000001Z") + chrono::Duration::seconds(id),
            deployment: ModelName::parse("churn-prod").unwrap(),
            model: ModelName::parse("churn").unwrap(),
            version: 3,
            route: RecordRoute::Primary,
            inputs: tensors_json(inputs).unwrap(),
            outputs: tensors_json(outputs).unwrap(),
            error: error.map(str::to_string),
            latency_us: 100 + id as u64,
        }
    }

    fn f32s(name: &str, shape: Vec<usize>, v: &[f32]) -> Tensor {
        Tensor::new(name, shape, TensorData::Float32(v.to_vec()))
    }

    fn read_back(bytes: Vec<u8>) -> RecordBatch {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap().build().unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    fn names(batch: &RecordBatch) -> Vec<String> {
        batch.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    fn floats(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
        batch.column_by_name(name).unwrap().as_primitive::<Float64Type>().iter().collect()
    }

    fn texts(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
        batch.column_by_name(name).unwrap().as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect()
    }

    /// Three calls: two rows with every kind of value; a failed call with
    /// a new input and no outputs; a call whose output shares an input's
    /// name and whose input is named like a call column.
    fn three_calls() -> Vec<PredictionRecord> {
        let first = call(
            7,
            &[
                f32s("income", vec![2], &[1.5, f32::NAN]),
                Tensor::new("segment", vec![2, 1], TensorData::String(vec!["a".into(), "b".into()])),
                Tensor::new("x", vec![2, 2], TensorData::Float64(vec![1.0, 2.0, 3.0, 4.0])),
            ],
            &[
                Tensor::new("label", vec![2], TensorData::Int64(vec![1, 0])),
                Tensor::new("probabilities", vec![2, 2], TensorData::Float32(vec![0.25, 0.75, 0.5, 0.5])),
            ],
            None,
        );
        let failed = call(
            8,
            &[f32s("income", vec![1], &[9.0]), Tensor::new("vip", vec![1], TensorData::Bool(vec![true]))],
            &[],
            Some("model failed: boom"),
        );
        let colliding = call(
            9,
            &[f32s("income", vec![1], &[2.0]), Tensor::new("error", vec![1], TensorData::Int32(vec![5]))],
            &[f32s("income", vec![1], &[0.5]), Tensor::new("label", vec![1], TensorData::Int64(vec![1]))],
            None,
        );
        vec![first, failed, colliding]
    }

    #[test]
    fn calls_become_rows_with_typed_value_columns_and_nulls() {
        let mut export = ParquetExport::new();
        export.push(&three_calls()[..2]).unwrap();
        export.push(&three_calls()[2..]).unwrap();
        assert_eq!(export.rows(), 4);
        let mut bytes = Vec::new();
        assert_eq!(export.finish(&mut bytes).unwrap(), 4);
        let batch = read_back(bytes);
        assert_eq!(
            names(&batch),
            [
                "request_id", "at", "version", "route", "latency_us", "error", "row", "income", "segment", "x_0", "x_1", "vip",
                "input_error", "label", "probabilities_0", "probabilities_1", "output_income"
            ]
        );
        let schema = batch.schema();
        let ty = |name: &str| schema.field_with_name(name).unwrap().data_type().clone();
        assert_eq!(ty("at"), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
        assert_eq!((ty("version"), ty("latency_us"), ty("row")), (DataType::Int64, DataType::Int64, DataType::Int32));
        assert_eq!((ty("income"), ty("segment"), ty("vip")), (DataType::Float64, DataType::Utf8, DataType::Boolean));
        assert_eq!((ty("input_error"), ty("label"), ty("probabilities_0")), (DataType::Int64, DataType::Int64, DataType::Float64));

        assert_eq!(texts(&batch, "request_id"), ["req-7", "req-7", "req-8", "req-9"].map(|s| Some(s.to_string())));
        let times: &TimestampMicrosecondArray = batch.column_by_name("at").unwrap().as_primitive::<TimestampMicrosecondType>();
        assert_eq!(times.value(0), at("2025-03-01T12:00:07.000001Z").timestamp_micros());
        assert_eq!(times.value(3), at("2025-03-01T12:00:09.000001Z").timestamp_micros());
        let rows: &Int32Array = batch.column_by_name("row").unwrap().as_primitive::<Int32Type>();
        assert_eq!(rows.values().to_vec(), [0, 1, 0, 0]);
        let latency: &Int64Array = batch.column_by_name("latency_us").unwrap().as_primitive::<Int64Type>();
        assert_eq!(latency.values().to_vec(), [107, 107, 108, 109]);
        assert_eq!(texts(&batch, "route")[0].as_deref(), Some("primary"));
        assert_eq!(texts(&batch, "error"), [None, None, Some("model failed: boom".to_string()), None]);
        // NaN was recorded as null: missing.
        assert_eq!(floats(&batch, "income"), [Some(1.5), None, Some(9.0), Some(2.0)]);
        assert_eq!(texts(&batch, "segment"), [Some("a".into()), Some("b".into()), None, None]);
        assert_eq!(floats(&batch, "x_1"), [Some(2.0), Some(4.0), None, None]);
        let vip: &BooleanArray = batch.column_by_name("vip").unwrap().as_boolean();
        assert_eq!(vip.iter().collect::<Vec<_>>(), [None, None, Some(true), None]);
        let label: &Int64Array = batch.column_by_name("label").unwrap().as_primitive::<Int64Type>();
        assert_eq!(label.iter().collect::<Vec<_>>(), [Some(1), Some(0), None, Some(1)]);
        assert_eq!(floats(&batch, "probabilities_1"), [Some(0.75), Some(0.5), None, None]);
        assert_eq!(floats(&batch, "output_income"), [None, None, None, Some(0.5)]);
        let input_error: &Int64Array = batch.column_by_name("input_error").unwrap().as_primitive::<Int64Type>();
        assert_eq!(input_error.iter().collect::<Vec<_>>(), [None, None, None, Some(5)]);
    }

    #[test]
    fn the_monitor_reads_the_export_and_computes_drift_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |file: &str, shift: f32| {
            let mut export = ParquetExport::new();
            let records: Vec<PredictionRecord> = (0..40)
                .map(|i| {
                    let income: Vec<f32> = (0..10).map(|j| ((i * 10 + j) % 100) as f32 + shift).collect();
                    let labels: Vec<String> = (0..10).map(|j| if (i + j) % 3 == 0 { "yes".into() } else { "no".into() }).collect();
                    call(i64::from(i), &[f32s("income", vec![10], &income)], &[Tensor::new("label", vec![10], TensorData::String(labels))], None)
                })
                .collect();
            export.push(&records).unwrap();
            let path = dir.path().join(file);
            export.finish(std::fs::File::create(&path).unwrap()).unwrap();
            path
        };
        let reference = read_table(&write("reference.parquet", 0.0), None).unwrap();
        let same = read_table(&write("same.parquet", 0.0), None).unwrap();
        let shifted = read_table(&write("shifted.parquet", 60.0), None).unwrap();
        assert_eq!(reference.rows, 400);
        let income = reference.require("income").unwrap();
        assert_eq!(income.source, SourceType::Float);
        assert_eq!(income.as_numeric().unwrap()[..3], [0.0, 1.0, 2.0]);
        assert!(matches!(&reference.require("label").unwrap().data, ColumnData::Categorical(c) if c.dictionary.len() == 2));
        assert_eq!(reference.require("version").unwrap().source, SourceType::Int { has_missing: false });

        use modelops_monitor::drift::{compare, DriftOptions};
        let options = DriftOptions { columns: Some(vec!["income".into(), "label".into()]), ..Default::default() };
        let drift = |current| compare(&reference, current, &options).unwrap();
        let (calm, moved) = (drift(&same), drift(&shifted));
        assert!(!calm.dataset_drift && calm.number_of_drifted_columns == 0, "{calm:?}");
        let income_drift = moved.columns.iter().find(|c| c.column == "income").unwrap();
        assert!(income_drift.drift_detected, "{income_drift:?}");
    }

    #[test]
    fn a_record_that_does_not_read_names_itself_and_changes_nothing() {
        let mut export = ParquetExport::new();
        export.push(&three_calls()[..1]).unwrap();
        let mut bad = three_calls();
        bad[1].inputs = "not json".into();
        let err = export.push(&bad).unwrap_err();
        assert!(matches!(err, Error::Internal(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("`8`") && text.contains("req-8") && text.contains("inputs"), "{text}");
        assert_eq!(export.rows(), 2, "nothing of the failed push was added");

        let mut wrong = three_calls();
        wrong[0].outputs = r#"[{"name":"label","datatype":"INT64","shape":[3],"data":[1,0,1]}]"#.into();
        let text = export.push(&wrong).unwrap_err().to_string();
        assert!(text.contains("`7`") && text.contains("3 rows where the inputs have 2"), "{text}");
        wrong[0].outputs = r#"[{"name":"label","datatype":"INT64","shape":[2],"data":[1]}]"#.into();
        assert!(export.push(&wrong).unwrap_err().to_string().contains("shape [2] but 1 values"));
        wrong[0].outputs = r#"[{"name":"label","datatype":"INT64","shape":[2],"data":[1, "x"]}]"#.into();
        assert!(export.push(&wrong).unwrap_err().to_string().contains("value 1 (`\"x\"`)"));
        assert_eq!(export.rows(), 2);
        let mut bytes = Vec::new();
        assert_eq!(export.finish(&mut bytes).unwrap(), 2);
    }

    #[test]
    fn types_that_differ_between_versions_widen() {
        let ints = Tensor::new("score", vec![1], TensorData::Int64(vec![3]));
        let floats = f32s("score", vec![1], &[2.5]);
        let texts = Tensor::new("label", vec![1], TensorData::String(vec!["yes".into()]));
        let bools = Tensor::new("label", vec![1], TensorData::Bool(vec![true]));
        let mut export = ParquetExport::new();
        export.push(&[call(1, std::slice::from_ref(&ints), &[bools], None), call(2, &[floats], &[texts], None), call(3, &[ints], &[], None)]).unwrap();
        let mut bytes = Vec::new();
        export.finish(&mut bytes).unwrap();
        let batch = read_back(bytes);
        assert_eq!(floats_of(&batch, "score"), [Some(3.0), Some(2.5), Some(3.0)]);
        assert_eq!(texts_of(&batch, "label"), [Some("true".into()), Some("yes".into()), None]);

        fn floats_of(batch: &RecordBatch, name: &str) -> Vec<Option<f64>> {
            let a: &Float64Array = batch.column_by_name(name).unwrap().as_primitive::<Float64Type>();
            a.iter().collect()
        }
        fn texts_of(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
            let a: &StringArray = batch.column_by_name(name).unwrap().as_string::<i32>();
            a.iter().map(|v| v.map(str::to_string)).collect()
        }
    }

    #[test]
    fn an_empty_export_is_a_valid_file_with_the_call_columns() {
        let mut bytes = Vec::new();
        assert_eq!(ParquetExport::new().finish(&mut bytes).unwrap(), 0);
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap();
        let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names, CALL_COLUMNS);
    }
}
