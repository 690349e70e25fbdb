//! Summarising recorded calls into windows: records → the exported table's
//! columns (`modelops_deploy::export`, then `modelops_monitor::data`, the
//! very conversion `modelops predictions export` + `modelops drift` go
//! through) → one [`ColumnAggregate`] per monitored column, merged into the
//! window's with a bounded raw sample. And the labelled table a window's
//! performance is computed over.
//!
//! The engine's ingest reads the monitored columns straight from the
//! records' JSON ([`table_for`], [`fast_table`]) when every record is of
//! numeric tensors, without building the rest of the exported table (the
//! call columns, text columns): the same values, a third of the work. Any
//! other record goes the whole way, so what the export refuses or converts
//! (name collisions, mixed types, text) is decided in one place.

use chrono::{DateTime, Utc};
use modelops_core::deployment::PredictionRecord;
use modelops_core::{Error, Result};
use modelops_deploy::export::ParquetExport;
use modelops_monitor::data::{table_from_batch, Categorical, Column, ColumnData, SourceType, Table};
use modelops_monitor::drift::{needs_sample, ColumnAggregate, DriftOptions, Profile};
use std::collections::{BTreeMap, HashMap, HashSet};
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

/// The recorded calls as the exported table, with at least the columns a
/// window of `profile` summarises (and `row`): the same values and types
/// [`table_of`] gives those columns. Records of numeric tensors are read
/// straight into those columns ([`fast_table`]); anything else goes the
/// whole way through the export.
pub fn table_for(records: &[PredictionRecord], name: &str, profile: Option<&Profile>, features: Option<&[String]>) -> Result<Table> {
    let wanted: Vec<&str> = profile.map(|p| watched(p, features).into_iter().map(|c| c.name.as_str()).collect()).unwrap_or_default();
    match fast_table(records, name, &wanted) {
        Some(table) => Ok(table),
        None => table_of(records, name),
    }
}

/// The columns a window of `profile` summarises: the monitor's features
/// (those the profile has), or every column of the profile.
pub fn watched<'p>(profile: &'p Profile, features: Option<&[String]>) -> Vec<&'p modelops_monitor::profile::ColumnProfile> {
    profile.columns.iter().filter(|c| features.is_none_or(|f| f.iter().any(|n| n == &c.name))).collect()
}

/// Whether a window of `profile` summarises a column of the call itself
/// (request id, time, version, route, latency, error, row) rather than of
/// its tensors.
pub fn watches_call_columns(profile: &Profile, features: Option<&[String]>) -> bool {
    watched(profile, features).iter().any(|c| CALL_COLUMNS.contains(&c.name.as_str()))
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

// ------------------------------------------------------------ fast path

/// The call's own columns of the exported table (`modelops_deploy::export`).
const CALL_COLUMNS: [&str; 7] = ["request_id", "at", "version", "route", "latency_us", "error", "row"];
/// Nested `data` arrays deeper than this go the general way.
const FAST_DEPTH: usize = 4;

/// The columns `wanted` and `row` of the exported table of `records`, read
/// from the records' JSON without building the rest of the table: the
/// column values [`table_of`] gives (`modelops_deploy::export` then
/// `modelops_monitor::data::table_from_batch`), for the cases it handles —
/// every wanted column numeric (FP32/FP64/INT*/UINT*) in every call, no
/// column name colliding with a call column or across inputs and outputs,
/// every tensor reading as the export reads it. `None` for anything else
/// (a record the export refuses included), which the caller sends the
/// general way: this path never decides what the export would.
pub fn fast_table(records: &[PredictionRecord], name: &str, wanted: &[&str]) -> Option<Table> {
    if wanted.iter().any(|w| *w != "row" && CALL_COLUMNS.contains(w)) {
        return None;
    }
    let wanted: Vec<&str> = wanted.iter().copied().filter(|w| *w != "row").collect();
    let mut columns: Vec<FastColumn> = wanted.iter().map(|w| FastColumn::new(w)).collect();
    // A column named twice in `wanted`: the first takes the values.
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(wanted.len());
    for (i, w) in wanted.iter().enumerate() {
        index.entry(*w).or_insert(i);
    }
    let mut row = Vec::with_capacity(records.len());
    // The value columns of the calls with rows, per side (the export makes
    // a column only for those): an output named like an input is renamed.
    let mut inputs_seen: HashSet<String> = HashSet::new();
    let mut outputs_seen: HashSet<String> = HashSet::new();
    // Calls of one deployment mostly share their tensors' names, types and
    // widths: the checks of the names and the column of each value are
    // worked out again only when these change.
    let mut layout = Layout::default();
    let mut tensors = Vec::new();
    let mut elems = Vec::new();
    let mut rows = 0usize;
    for record in records {
        tensors.clear();
        elems.clear();
        let inputs = fast::read(&record.inputs, &mut tensors, &mut elems)?;
        let outputs = fast::read(&record.outputs, &mut tensors, &mut elems)?;
        let split = inputs.len();
        debug_assert_eq!(outputs.start, split);
        let side_rows = |side: &[fast::Tensor<'_>]| -> Option<Option<usize>> {
            let mut n = None;
            for t in side {
                let (&first, rest) = t.shape.split_first()?;
                match n {
                    Some(m) if m != first => return None,
                    _ => n = Some(first),
                }
                let width = rest.iter().try_fold(1usize, |w, d| w.checked_mul(*d))?;
                if width.checked_mul(first)? != t.elems.len() {
                    return None;
                }
            }
            Some(n)
        };
        let n = match (side_rows(&tensors[..split])?, side_rows(&tensors[split..])?) {
            (Some(i), Some(o)) if i != o => return None,
            (Some(n), _) | (None, Some(n)) => n,
            (None, None) => 0,
        };
        i32::try_from(n).ok()?;
        if !layout.matches(&tensors, split) {
            layout = Layout::of(&tensors, split, &index)?;
        }
        if n > 0 && !layout.registered {
            for (i, t) in tensors.iter().enumerate() {
                let seen = if i < split { &mut inputs_seen } else { &mut outputs_seen };
                let width = t.shape[1..].iter().product::<usize>();
                for j in 0..width {
                    seen.insert(if width == 1 { t.name.to_string() } else { format!("{}_{j}", t.name) });
                }
            }
            layout.registered = true;
        }
        // Every element reads as its tensor's datatype says (the export
        // refuses the call otherwise); the monitored ones become values.
        for (t, targets) in tensors.iter().zip(&layout.targets) {
            let values = &elems[t.elems.clone()];
            if targets.iter().all(Option::is_none) {
                fast::check(&t.datatype, values)?;
                continue;
            }
            let float = fast::is_float(&t.datatype)?;
            let width = targets.len();
            for (j, target) in targets.iter().enumerate() {
                match target {
                    // A call without rows makes no column (nor widens one).
                    Some(at) if n > 0 => {
                        let column = &mut columns[*at];
                        column.present = true;
                        column.float |= float;
                        column.values.resize(rows, f64::NAN);
                        for r in 0..n {
                            column.values.push(fast::number(&t.datatype, &values[r * width + j])?);
                        }
                    }
                    _ => {
                        for r in 0..n {
                            fast::number(&t.datatype, &values[r * width + j])?;
                        }
                    }
                }
            }
        }
        row.extend((0..n).map(|r| r as f64));
        rows += n;
    }
    if inputs_seen.iter().any(|c| outputs_seen.contains(c)) {
        return None;
    }
    let mut out = vec![Column { name: "row".into(), source: SourceType::Int { has_missing: false }, data: ColumnData::Numeric(row) }];
    let mut taken = HashSet::new();
    for mut column in columns {
        if !column.present || !taken.insert(column.name.clone()) {
            continue;
        }
        column.values.resize(rows, f64::NAN);
        let source = if column.float { SourceType::Float } else { SourceType::Int { has_missing: column.values.iter().any(|x| x.is_nan()) } };
        out.push(Column { name: column.name, source, data: ColumnData::Numeric(column.values) });
    }
    Some(Table { path: Path::new(name).to_path_buf(), rows, columns: out })
}

/// The tensors' names, datatypes and row shapes of a call, inputs then
/// outputs, and where each of their values goes.
#[derive(Default)]
struct Layout {
    tensors: Vec<(String, String, Vec<usize>)>,
    inputs: usize,
    /// Per tensor, per value of a row: the monitored column it fills.
    targets: Vec<Vec<Option<usize>>>,
    /// Whether its columns were added to the columns seen.
    registered: bool,
}

impl Layout {
    fn matches(&self, tensors: &[fast::Tensor<'_>], inputs: usize) -> bool {
        self.inputs == inputs
            && self.tensors.len() == tensors.len()
            && self.tensors.iter().zip(tensors).all(|((name, datatype, shape), t)| *name == t.name && *datatype == t.datatype && shape[..] == t.shape[1..])
    }

    /// `None` when a name collides: with a call column, or twice in a side.
    fn of(tensors: &[fast::Tensor<'_>], inputs: usize, index: &HashMap<&str, usize>) -> Option<Layout> {
        let mut layout = Layout { inputs, ..Layout::default() };
        for (side, start) in [(&tensors[..inputs], 0), (&tensors[inputs..], inputs)] {
            let mut names: Vec<String> = Vec::new();
            for (k, t) in side.iter().enumerate() {
                let width = t.shape[1..].iter().product::<usize>();
                let mut targets = Vec::with_capacity(width);
                for j in 0..width {
                    let column = if width == 1 { t.name.to_string() } else { format!("{}_{j}", t.name) };
                    if CALL_COLUMNS.contains(&column.as_str()) {
                        return None;
                    }
                    targets.push(index.get(column.as_str()).copied());
                    names.push(column);
                }
                debug_assert_eq!(layout.targets.len(), start + k);
                layout.targets.push(targets);
                layout.tensors.push((t.name.to_string(), t.datatype.to_string(), t.shape[1..].to_vec()));
            }
            names.sort_unstable();
            if names.windows(2).any(|w| w[0] == w[1]) {
                return None;
            }
        }
        Some(layout)
    }
}

struct FastColumn {
    name: String,
    values: Vec<f64>,
    /// Filled by a call with rows (else the export has no such column).
    present: bool,
    /// Filled by a float tensor (the column is float64, else int64).
    float: bool,
}

impl FastColumn {
    fn new(name: &str) -> Self {
        FastColumn { name: name.to_string(), values: Vec::new(), present: false, float: false }
    }
}

/// Reading a recorded tensor array without `serde_json::Value`s: names
/// and strings borrowed from the record, elements into one buffer.
mod fast {
    use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::Number;
    use std::borrow::Cow;
    use std::fmt;
    use std::ops::Range;

    pub(super) struct Tensor<'a> {
        pub name: Cow<'a, str>,
        pub datatype: Cow<'a, str>,
        pub shape: Vec<usize>,
        pub elems: Range<usize>,
    }

    /// One element of `data`, as `serde_json::Value` would hold it.
    pub(super) enum Elem<'a> {
        Number(Number),
        Null,
        Bool,
        Str(Cow<'a, str>),
    }

    /// Reads `json` (an array of tensors) onto `tensors`; their range.
    pub(super) fn read<'a>(json: &'a str, tensors: &mut Vec<Tensor<'a>>, elems: &mut Vec<Elem<'a>>) -> Option<Range<usize>> {
        let (start, first_elem) = (tensors.len(), elems.len());
        if scan::tensors(json, tensors, elems).is_some() {
            return Some(start..tensors.len());
        }
        tensors.truncate(start);
        elems.truncate(first_elem);
        read_with_serde(json, tensors, elems)
    }

    fn read_with_serde<'a>(json: &'a str, tensors: &mut Vec<Tensor<'a>>, elems: &mut Vec<Elem<'a>>) -> Option<Range<usize>> {
        let start = tensors.len();
        let mut de = serde_json::Deserializer::from_str(json);
        Tensors { tensors, elems }.deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(start..tensors.len())
    }

    /// The scanner and serde on `json`: what each read (the scanner's
    /// `None` when it left the call to serde), for the tests.
    #[cfg(test)]
    pub(super) fn both_ways(json: &str) -> (Option<String>, Option<String>) {
        let describe = |tensors: &[Tensor<'_>], elems: &[Elem<'_>]| {
            tensors
                .iter()
                .map(|t| {
                    let values: Vec<String> = elems[t.elems.clone()]
                        .iter()
                        .map(|e| match e {
                            Elem::Number(n) => format!("{n:?}"),
                            Elem::Null => "null".into(),
                            Elem::Bool => "bool".into(),
                            Elem::Str(s) => format!("{s:?}"),
                        })
                        .collect();
                    format!("{}:{}:{:?}:[{}]", t.name, t.datatype, t.shape, values.join(","))
                })
                .collect::<Vec<_>>()
                .join(";")
        };
        let (mut tensors, mut elems) = (Vec::new(), Vec::new());
        let scanned = scan::tensors(json, &mut tensors, &mut elems).map(|()| describe(&tensors, &elems));
        let (mut tensors, mut elems) = (Vec::new(), Vec::new());
        let parsed = read_with_serde(json, &mut tensors, &mut elems).map(|_| describe(&tensors, &elems));
        (scanned, parsed)
    }

    /// The tensors as the recorder writes them — compact objects of
    /// `name`, `datatype`, `shape` and a flat `data` array, strings without
    /// escapes — read byte by byte, about three times faster than through
    /// serde. Anything else (another key, nesting, an escape, a number it
    /// would have to think about) is `None`, and the caller reads the call
    /// through serde instead: what this gives is exactly what serde gives.
    mod scan {
        use super::{Elem, Tensor};
        use serde_json::Number;
        use std::borrow::Cow;

        struct Bytes<'a> {
            text: &'a str,
            at: usize,
        }

        impl<'a> Bytes<'a> {
            fn peek(&mut self) -> Option<u8> {
                let bytes = self.text.as_bytes();
                while matches!(bytes.get(self.at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                    self.at += 1;
                }
                bytes.get(self.at).copied()
            }

            fn eat(&mut self, want: u8) -> Option<()> {
                (self.peek()? == want).then(|| self.at += 1)
            }

            /// A string without escapes or control characters, borrowed.
            fn string(&mut self) -> Option<&'a str> {
                self.eat(b'"')?;
                let bytes = self.text.as_bytes();
                let start = self.at;
                loop {
                    match *bytes.get(self.at)? {
                        b'"' => break,
                        b'\\' => return None,
                        b if b < 0x20 => return None,
                        _ => self.at += 1,
                    }
                }
                let text = self.text.get(start..self.at)?;
                self.at += 1;
                Some(text)
            }

            /// A JSON number literal: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`;
            /// the text and whether it is an integer.
            fn number(&mut self) -> Option<(&'a str, bool)> {
                self.peek()?;
                let bytes = self.text.as_bytes();
                let start = self.at;
                let digits = |at: &mut usize| {
                    let from = *at;
                    while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                        *at += 1;
                    }
                    *at - from
                };
                let mut at = start;
                if bytes.get(at) == Some(&b'-') {
                    at += 1;
                }
                let first = *bytes.get(at)?;
                let int_digits = digits(&mut at);
                if int_digits == 0 || (first == b'0' && int_digits > 1) {
                    return None;
                }
                let mut integer = true;
                if bytes.get(at) == Some(&b'.') {
                    at += 1;
                    if digits(&mut at) == 0 {
                        return None;
                    }
                    integer = false;
                }
                if matches!(bytes.get(at), Some(b'e' | b'E')) {
                    at += 1;
                    if matches!(bytes.get(at), Some(b'+' | b'-')) {
                        at += 1;
                    }
                    if digits(&mut at) == 0 {
                        return None;
                    }
                    integer = false;
                }
                self.at = at;
                Some((self.text.get(start..at)?, integer))
            }

            /// An element of `data` as serde_json gives it: integers as
            /// u64 (i64 when negative), the rest as correctly rounded f64
            /// (the workspace builds serde_json with `float_roundtrip`).
            fn elem(&mut self) -> Option<Elem<'a>> {
                match self.peek()? {
                    b'"' => Some(Elem::Str(Cow::Borrowed(self.string()?))),
                    b'n' => self.word("null").map(|()| Elem::Null),
                    b't' => self.word("true").map(|()| Elem::Bool),
                    b'f' => self.word("false").map(|()| Elem::Bool),
                    _ => {
                        let (text, integer) = self.number()?;
                        let number = match (integer, text.strip_prefix('-')) {
                            (true, None) => Number::from(text.parse::<u64>().ok()?),
                            // serde_json reads `-0` as the float -0.0; beyond
                            // i64 it goes to floats too: left to serde.
                            (true, Some(digits)) => match digits.parse::<u64>().ok()? {
                                0 => return None,
                                n => Number::from(0i64.checked_sub_unsigned(n)?),
                            },
                            (false, _) => Number::from_f64(text.parse::<f64>().ok().filter(|x| x.is_finite())?)?,
                        };
                        Some(Elem::Number(number))
                    }
                }
            }

            /// `[item, item, …]`, each read by `item`.
            fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
                self.eat(b'[')?;
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    item(self)?;
                    if self.eat(b',').is_none() {
                        return self.eat(b']');
                    }
                }
            }

            fn word(&mut self, word: &str) -> Option<()> {
                let end = self.at + word.len();
                (self.text.get(self.at..end)? == word).then(|| self.at = end)
            }
        }

        pub(super) fn tensors<'a>(json: &'a str, tensors: &mut Vec<Tensor<'a>>, elems: &mut Vec<Elem<'a>>) -> Option<()> {
            let mut b = Bytes { text: json, at: 0 };
            b.array(|b| tensor(b, tensors, elems))?;
            b.peek().is_none().then_some(())
        }

        fn tensor<'a>(b: &mut Bytes<'a>, tensors: &mut Vec<Tensor<'a>>, elems: &mut Vec<Elem<'a>>) -> Option<()> {
            b.eat(b'{')?;
            let (mut name, mut datatype, mut shape, mut data) = (None, None, None, None);
            loop {
                let key = b.string()?;
                b.eat(b':')?;
                match key {
                    "name" if name.is_none() => name = Some(b.string()?),
                    "datatype" if datatype.is_none() => datatype = Some(b.string()?),
                    "shape" if shape.is_none() => {
                        let mut dims = Vec::with_capacity(2);
                        b.array(|b| {
                            let (text, integer) = b.number()?;
                            if !integer || text.starts_with('-') {
                                return None;
                            }
                            dims.push(text.parse::<usize>().ok()?);
                            Some(())
                        })?;
                        shape = Some(dims);
                    }
                    "data" if data.is_none() => {
                        let start = elems.len();
                        b.array(|b| {
                            elems.push(b.elem()?);
                            Some(())
                        })?;
                        data = Some(start..elems.len());
                    }
                    _ => return None,
                }
                if b.eat(b',').is_none() {
                    b.eat(b'}')?;
                    break;
                }
            }
            tensors.push(Tensor { name: Cow::Borrowed(name?), datatype: Cow::Borrowed(datatype?), shape: shape?, elems: data? });
            Some(())
        }
    }

    /// Whether the export reads a tensor of `datatype` holding `values`:
    /// the datatype known, every element of its kind
    /// (`modelops_runtime::tensor_json::decode`).
    pub(super) fn check(datatype: &str, values: &[Elem<'_>]) -> Option<()> {
        match datatype {
            "BOOL" => values.iter().all(|v| matches!(v, Elem::Bool) || matches!(v, Elem::Number(n) if matches!(n.as_u64(), Some(0 | 1)))).then_some(()),
            "BYTES" => values.iter().all(|v| matches!(v, Elem::Str(_))).then_some(()),
            datatype => {
                is_float(datatype)?;
                values.iter().try_for_each(|v| number(datatype, v).map(|_| ()))
            }
        }
    }

    pub(super) fn is_float(datatype: &str) -> Option<bool> {
        match datatype {
            "FP32" | "FP64" => Some(true),
            "INT8" | "INT16" | "INT32" | "UINT8" | "UINT16" | "INT64" | "UINT32" | "UINT64" => Some(false),
            _ => None,
        }
    }

    /// The value the exported table's column holds for an element of a
    /// numeric tensor (NaN: null), as `decode`, the export's builders and
    /// `table_from_batch` make it; `None` where `decode` refuses it.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    pub(super) fn number(datatype: &str, v: &Elem<'_>) -> Option<f64> {
        let float = || -> Option<f64> {
            match v {
                Elem::Number(n) => n.as_f64(),
                Elem::Null => Some(f64::NAN),
                Elem::Str(s) if s == "NaN" => Some(f64::NAN),
                Elem::Str(s) if s == "Infinity" || s == "inf" => Some(f64::INFINITY),
                Elem::Str(s) if s == "-Infinity" || s == "-inf" => Some(f64::NEG_INFINITY),
                _ => None,
            }
        };
        let int = |lo: i64, hi: i64| -> Option<f64> {
            match v {
                Elem::Number(n) => n.as_i64().filter(|x| (lo..=hi).contains(x)).map(|x| x as f64),
                _ => None,
            }
        };
        // Non-finite floats are nulls in the export: missing.
        let finite = |x: f64| if x.is_finite() { x } else { f64::NAN };
        match datatype {
            "FP32" => float().map(|x| finite(f64::from(x as f32))),
            "FP64" => float().map(finite),
            "INT8" => int(i64::from(i8::MIN), i64::from(i8::MAX)),
            "INT16" => int(i64::from(i16::MIN), i64::from(i16::MAX)),
            "INT32" => int(i64::from(i32::MIN), i64::from(i32::MAX)),
            "UINT8" => int(0, i64::from(u8::MAX)),
            "UINT16" => int(0, i64::from(u16::MAX)),
            "UINT32" => int(0, i64::from(u32::MAX)),
            "UINT64" => int(0, i64::MAX),
            "INT64" => int(i64::MIN, i64::MAX),
            _ => None,
        }
    }

    struct Tensors<'s, 'a> {
        tensors: &'s mut Vec<Tensor<'a>>,
        elems: &'s mut Vec<Elem<'a>>,
    }

    impl<'de> DeserializeSeed<'de> for Tensors<'_, 'de> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Tensors<'_, 'de> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an array of tensors")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(TensorSeed { tensors: &mut *self.tensors, elems: &mut *self.elems })?.is_some() {}
            Ok(())
        }
    }

    struct TensorSeed<'s, 'a> {
        tensors: &'s mut Vec<Tensor<'a>>,
        elems: &'s mut Vec<Elem<'a>>,
    }

    impl<'de> DeserializeSeed<'de> for TensorSeed<'_, 'de> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    enum Field {
        Name,
        Datatype,
        Shape,
        Data,
        Other,
    }

    impl<'de> de::Deserialize<'de> for Field {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Field;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a field name")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                    Ok(match v {
                        "name" => Field::Name,
                        "datatype" => Field::Datatype,
                        "shape" => Field::Shape,
                        "data" => Field::Data,
                        _ => Field::Other,
                    })
                }
            }
            d.deserialize_identifier(V)
        }
    }

    /// A string borrowed from the input when it has no escapes.
    struct Text<'a>(Cow<'a, str>);

    impl<'de> de::Deserialize<'de> for Text<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Text<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Borrowed(v)))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                    Ok(Text(Cow::Owned(v.to_string())))
                }
            }
            d.deserialize_str(V)
        }
    }

    impl<'de> Visitor<'de> for TensorSeed<'_, 'de> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a tensor")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let (mut name, mut datatype, mut shape, mut elems) = (None, None, None, None);
            while let Some(field) = map.next_key::<Field>()? {
                match field {
                    Field::Name if name.is_none() => name = Some(map.next_value::<Text<'de>>()?.0),
                    Field::Datatype if datatype.is_none() => datatype = Some(map.next_value::<Text<'de>>()?.0),
                    Field::Shape if shape.is_none() => shape = Some(map.next_value::<Vec<usize>>()?),
                    Field::Data if elems.is_none() => {
                        let start = self.elems.len();
                        map.next_value_seed(Data { elems: &mut *self.elems, depth: 0 })?;
                        elems = Some(start..self.elems.len());
                    }
                    Field::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    _ => return Err(de::Error::custom("duplicate field")),
                }
            }
            match (name, datatype, shape, elems) {
                (Some(name), Some(datatype), Some(shape), Some(elems)) => {
                    self.tensors.push(Tensor { name, datatype, shape, elems });
                    Ok(())
                }
                _ => Err(de::Error::custom("missing field")),
            }
        }
    }

    /// `data`: a scalar or nested arrays of scalars, flattened row-major.
    struct Data<'s, 'a> {
        elems: &'s mut Vec<Elem<'a>>,
        depth: usize,
    }

    impl<'de> DeserializeSeed<'de> for Data<'_, 'de> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Data<'_, 'de> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("tensor data")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            if self.depth >= super::FAST_DEPTH {
                return Err(de::Error::custom("nested too deep for the fast path"));
            }
            while seq.next_element_seed(Data { elems: &mut *self.elems, depth: self.depth + 1 })?.is_some() {}
            Ok(())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            self.elems.push(Elem::Bool);
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
            self.elems.push(Elem::Number(v.into()));
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
            self.elems.push(Elem::Number(v.into()));
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
            // As `serde_json::Value` keeps it (JSON has no non-finite numbers).
            self.elems.push(Number::from_f64(v).map_or(Elem::Null, Elem::Number));
            Ok(())
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
            self.elems.push(Elem::Str(Cow::Borrowed(v)));
            Ok(())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            self.elems.push(Elem::Str(Cow::Owned(v.to_string())));
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            self.elems.push(Elem::Null);
            Ok(())
        }
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use modelops_core::deployment::RecordRoute;
    use modelops_core::name::ModelName;

    fn record(id: i64, inputs: &str, outputs: &str) -> PredictionRecord {
        PredictionRecord {
            id,
            request_id: format!("req-{id}"),
            at: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc) + chrono::Duration::seconds(id),
            deployment: ModelName::parse("d").unwrap(),
            model: ModelName::parse("m").unwrap(),
            version: 1,
            route: RecordRoute::Primary,
            inputs: inputs.into(),
            outputs: outputs.into(),
            error: None,
            latency_us: 5,
        }
    }

    fn tensor(name: &str, datatype: &str, shape: &[usize], data: &str) -> String {
        format!(r#"{{"name":"{name}","datatype":"{datatype}","shape":{shape:?},"data":{data}}}"#)
    }

    /// The fast table's columns are the general table's, bit for bit.
    fn same(records: &[PredictionRecord], wanted: &[&str]) {
        let fast = fast_table(records, "t", wanted).expect("the fast path takes these records");
        let full = table_of(records, "t").unwrap();
        assert_eq!(fast.rows, full.rows);
        assert_eq!(fast.path, full.path);
        for name in wanted.iter().chain(&["row"]) {
            match (fast.column(name), full.column(name)) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    assert_eq!(a.source, b.source, "{name}");
                    let (a, b) = (a.as_numeric().unwrap(), b.as_numeric().unwrap());
                    assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), "{name}");
                }
                (a, b) => panic!("{name}: fast {:?}, full {:?}", a.map(|c| &c.name), b.map(|c| &c.name)),
            }
        }
        let table = table_for(records, "t", None, None).unwrap();
        assert_eq!(table.rows, full.rows);
    }

    #[test]
    fn the_fast_path_reads_the_columns_the_export_gives() {
        let a = record(
            1,
            &format!(
                "[{},{},{},{}]",
                tensor("x", "FP64", &[2], "[1.5, null]"),
                tensor("f", "FP32", &[2, 1], r#"[[0.1], ["Infinity"]]"#),
                tensor("m", "INT64", &[2, 2], "[[1, -2], [3, 9007199254740993]]"),
                tensor("s", "BYTES", &[2], r#"["a", "b\"c"]"#)
            ),
            &format!("[{},{}]", tensor("p", "FP32", &[2, 2], "[0.25, 0.75, 0.5, \"NaN\"]"), tensor("label", "INT32", &[2], "[1, 0]")),
        );
        // A failed call: inputs only; `f` is an integer here (the column widens to float).
        let failed = record(2, &format!("[{},{}]", tensor("x", "FP64", &[1], "[3]"), tensor("f", "INT16", &[1], "[7]")), "[]");
        // A column missing, a new one, and an unknown field ignored.
        let other = record(
            3,
            &format!("[{}]", r#"{"name":"x","datatype":"FP64","shape":[1],"data":2e-3,"parameters":{"a":1}}"#),
            &format!("[{},{}]", tensor("label", "UINT8", &[1], "[255]"), tensor("ok", "BOOL", &[1], "[1]")),
        );
        let empty = record(4, &format!("[{}]", tensor("x", "FP64", &[0], "[]")), "[]");
        let records = vec![a, failed, other, empty];
        let wanted = ["x", "f", "m_0", "m_1", "p_0", "p_1", "label", "absent"];
        same(&records, &wanted);
        for i in 0..records.len() {
            same(&records[i..], &wanted);
            same(&records[..i], &wanted);
        }
        same(&records, &[]);
    }

    #[test]
    fn random_numeric_records_read_alike() {
        let mut seed = 0x1234_5678_9abc_def1_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let types = ["FP64", "FP32", "INT64", "INT32", "UINT8"];
        for _ in 0..200 {
            let mut records = Vec::new();
            for id in 0..(1 + next(6)) {
                let rows = next(3) as usize;
                let mut side = |prefix: &str| {
                    let mut tensors = Vec::new();
                    for t in 0..next(4) {
                        let datatype = types[next(types.len() as u64) as usize];
                        let width = 1 + next(2) as usize;
                        let values: Vec<String> = (0..rows * width)
                            .map(|_| match (datatype, next(8)) {
                                ("FP64" | "FP32", 0) => "null".into(),
                                ("FP64" | "FP32", 1) => "\"NaN\"".into(),
                                ("FP64" | "FP32", 2) => "1e300".into(),
                                ("FP64" | "FP32", _) => format!("{}", (next(2_000_001) as f64 - 1e6) / 7.0),
                                ("UINT8", _) => format!("{}", next(256)),
                                _ => format!("{}", next(2001) as i64 - 1000),
                            })
                            .collect();
                        let shape = if width == 1 { vec![rows] } else { vec![rows, width] };
                        tensors.push(tensor(&format!("{prefix}{t}"), datatype, &shape, &format!("[{}]", values.join(","))));
                    }
                    format!("[{}]", tensors.join(","))
                };
                let (inputs, outputs) = (side("i"), side("o"));
                records.push(record(id as i64, &inputs, &outputs));
            }
            same(&records, &["i0", "i1", "i1_0", "i1_1", "i2", "o0", "o1_1", "o3"]);
        }
    }

    #[test]
    fn the_scanner_reads_what_serde_reads_or_leaves_the_call_to_it() {
        let t = |data: &str| format!(r#"[{{"name":"f0","datatype":"FP64","shape":[1],"data":[{data}]}}]"#);
        // The recorder's own form: always scanned.
        let canonical = [
            t("-0.805972"),
            t("0"),
            t("12"),
            t("-7"),
            t("1e-7"),
            t("2.5E+3"),
            t("0.1"),
            t("null"),
            t(r#""NaN""#),
            t(r#""Infinity""#),
            t("true"),
            t("false"),
            t("-9223372036854775808"),
            t("18446744073709551615"),
            t("123456789.123456789123456789"),
            t("4.9406564584124654e-324"),
            t("1.7976931348623157e308"),
            r#"[{"name":"f0","datatype":"FP64","shape":[2,1],"data":[1,2]},{"name":"rule","datatype":"BYTES","shape":[1],"data":["default"]}]"#.to_string(),
            r#" [ { "data" : [ 1 , 2 ] , "shape" : [ 2 ] , "datatype" : "INT64" , "name" : "x" } ] "#.to_string(),
            "[]".to_string(),
            r#"[{"name":"é","datatype":"BYTES","shape":[0],"data":[]}]"#.to_string(),
        ];
        for json in &canonical {
            let (scanned, parsed) = fast::both_ways(json);
            assert!(scanned.is_some(), "{json}");
            assert_eq!(scanned, parsed, "{json}");
        }
        // Left to serde, which decides (reads or refuses).
        let others = [
            t("-0"),
            t("-9223372036854775809"),
            t("18446744073709551616"),
            t("1e400"),
            t("01"),
            t("1."),
            t(".5"),
            t("+1"),
            t("[1]"),
            t(r#""a"b""#),
            t("nul"),
            r#"[{"name":"x","datatype":"FP64","shape":[1],"data":2}]"#.to_string(),
            r#"[{"name":"x","datatype":"FP64","shape":[1],"data":[2],"parameters":{}}]"#.to_string(),
            r#"[{"name":"x","name":"y","datatype":"FP64","shape":[1],"data":[2]}]"#.to_string(),
            r#"[{"name":"x","datatype":"FP64","data":[2]}]"#.to_string(),
            r#"[{"name":"x","datatype":"FP64","shape":[1.0],"data":[2]}]"#.to_string(),
            r#"[{"name":"x","datatype":"FP64","shape":[-1],"data":[2]}]"#.to_string(),
            r#"[{"name":"x\u0041","datatype":"FP64","shape":[1],"data":[2]}]"#.to_string(),
            format!("{} x", t("1")),
            t("1").trim_end_matches(']').to_string(),
            "[{}]".to_string(),
        ];
        for json in &others {
            let (scanned, parsed) = fast::both_ways(json);
            assert_eq!(scanned, None, "{json} (serde: {parsed:?})");
        }
        // Random floats as the recorder writes them (shortest round trip)
        // and as people type them: the same numbers to the bit.
        let mut seed = 0x0ddb_a11c_afe5_eed5_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = f64::from_bits(seed);
            if !x.is_finite() {
                continue;
            }
            for text in [format!("{x:?}"), format!("{x:e}"), format!("{:.3}", x / 1e300), serde_json::to_string(&x).unwrap()] {
                let (scanned, parsed) = fast::both_ways(&t(&text));
                assert_eq!(scanned, parsed, "{text}");
            }
        }
    }

    #[test]
    fn what_the_export_decides_goes_the_general_way() {
        let x = tensor("x", "FP64", &[1], "[1]");
        let cases = [
            // An input named like a call column, an output like an input.
            record(1, &format!("[{}]", tensor("error", "FP64", &[1], "[1]")), "[]"),
            record(2, &format!("[{x}]"), &format!("[{}]", tensor("x", "FP64", &[1], "[2]"))),
            // A monitored column of text, and one mixing numbers and text.
            record(3, &format!("[{x},{}]", tensor("s", "BYTES", &[1], r#"["a"]"#)), "[]"),
            // Records the export refuses.
            record(4, "not json", "[]"),
            record(5, &format!("[{}]", tensor("x", "FP64", &[2], "[1]")), "[]"),
            record(6, &format!("[{}]", tensor("x", "INT8", &[1], "[300]")), "[]"),
            record(7, &format!("[{x}]"), &format!("[{}]", tensor("y", "FP64", &[2], "[1, 2]"))),
            record(8, &format!("[{x},{x}]"), "[]"),
            record(9, &format!("[{}]", tensor("x", "FP16", &[1], "[1]")), "[]"),
            record(10, &format!("[{}]", tensor("x", "FP64", &[], "[1]")), "[]"),
            record(11, &format!("[{}]", tensor("x", "FP16", &[0], "[]")), "[]"),
            record(12, &format!("[{x},{}]", tensor("z", "FP16", &[0, 2], "[]")), "[]"),
            record(13, &format!("[{x},{}]", tensor("z", "BOOL", &[1], "[2]")), "[]"),
            record(14, &format!("[{x},{}]", tensor("x_1", "FP64", &[1], "[2]")), &format!("[{}]", tensor("x", "FP64", &[1, 2], "[1, 2]"))),
        ];
        for (i, case) in cases.iter().enumerate() {
            let records = [record(0, &format!("[{x}]"), "[]"), case.clone()];
            let wanted = ["x", "s"];
            assert!(fast_table(&records, "t", &wanted).is_none(), "case {i}");
            match (table_for(&records, "t", None, None), table_of(&records, "t")) {
                (Ok(a), Ok(b)) => assert_eq!(a.rows, b.rows),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("case {i}: {a:?} / {b:?}"),
            }
        }
        // Call columns other than `row` are not read here.
        assert!(fast_table(&[record(0, &format!("[{x}]"), "[]")], "t", &["latency_us"]).is_none());
    }
}
