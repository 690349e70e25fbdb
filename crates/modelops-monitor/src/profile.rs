//! The reference profile: what the default drift mode needs from training
//! data, fitted once and saved beside a model version, then compared with
//! any number of current windows.
//!
//! Per column it keeps counts and moments, bins fitted on the reference
//! (equal-frequency, at most [`QUANTILE_BINS`], open-ended at both sides, so
//! every current value lands in a bin), the distinct values with counts when
//! there are few of them, the category counts of a categorical column, and
//! a sorted sample for K-S and Wasserstein: every value when the reference
//! has at most [`EXACT_SAMPLE`] of them, otherwise [`EXACT_SAMPLE`] evenly
//! spaced quantiles. Size is bounded by columns × bins, not rows.
//!
//! The current side is summarised by [`ColumnAggregate`]s, which merge
//! exactly (counts add; moments combine by Chan's formula), so windows,
//! threads or replicas can be combined. The only non-bounded part is the raw
//! sample kept for K-S / Wasserstein.
//!
//! Format: JSON, `{"format": "modelops-profile", "version": 1, ...}`; the
//! field names are part of the stored format and do not change. Every
//! number in a profile is finite (JSON has no infinities): a numeric column
//! without finite values, or whose variance overflows `f64`, is kept as an
//! unusable column with the reason. Loading checks the invariants that
//! [`Profile::fit`] keeps ([`Profile::validate`]), so a damaged or
//! hand-edited file is refused, naming the column, instead of giving wrong
//! numbers.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{format_number, Column, ColumnData, SourceType, Table};
use crate::drift::{infer_kind, ColumnKind, Inferred};
use crate::error::{Error, Result};

/// At most this many equal-frequency bins per numeric column.
pub const QUANTILE_BINS: usize = 20;
/// Keep every reference value up to this count, quantiles beyond.
pub const EXACT_SAMPLE: usize = 10_000;
/// Numeric columns with at most this many distinct reference values keep
/// their value counts (one bin per value, as Evidently does).
pub const DISCRETE_VALUES: usize = 20;

pub const FORMAT: &str = "modelops-profile";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub format: String,
    pub version: u32,
    /// The file it was fitted from.
    pub source: String,
    pub rows: usize,
    pub columns: Vec<ColumnProfile>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ColumnProfile {
    pub name: String,
    pub source_type: SourceType,
    /// `None` when the column cannot be compared; `unusable` says why.
    pub kind: Option<ColumnKind>,
    pub unusable: Option<String>,
    /// Finite, non-missing values, and the rest.
    pub count: u64,
    pub missing: u64,
    pub numeric: Option<NumericProfile>,
    /// Category → count, for categorical columns.
    pub categories: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NumericProfile {
    pub moments: Moments,
    /// Inner bin edges; bins are (-∞, e₀), [e₀, e₁), …, [e_last, +∞).
    pub edges: Vec<f64>,
    pub bin_counts: Vec<u64>,
    /// (value, count) when there are at most [`DISCRETE_VALUES`] distinct values.
    pub values: Option<Vec<(f64, u64)>>,
    /// Sorted reference sample: all values when `exact`, else quantiles.
    pub sample: Vec<f64>,
    pub exact: bool,
}

/// Count, mean, sum of squared deviations, min and max: mergeable exactly
/// (up to floating-point rounding of the mean and M2).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Moments {
    pub count: u64,
    // JSON spells a non-finite number `null`; read it as NaN so that
    // validation can name the column (and old profiles of empty columns,
    // with `min`/`max` of ±inf, still load).
    #[serde(deserialize_with = "number_or_null")]
    pub mean: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub m2: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub min: f64,
    #[serde(deserialize_with = "number_or_null")]
    pub max: f64,
}

fn number_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl Default for Moments {
    fn default() -> Self {
        Moments { count: 0, mean: 0.0, m2: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = other.mean - self.mean;
        self.mean += delta * nb / n;
        self.m2 += other.m2 + delta * delta * na * nb / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Population standard deviation (ddof = 0).
    pub fn std(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            (self.m2 / self.count as f64).sqrt()
        }
    }
}

impl Profile {
    /// Fit a profile on a reference table. `columns` restricts the columns;
    /// `categorical` / `numerical` override the inferred types.
    pub fn fit(
        table: &Table,
        columns: Option<&[String]>,
        categorical: &[String],
        numerical: &[String],
    ) -> Result<Profile> {
        let selected: Vec<&Column> = match columns {
            Some(names) => names.iter().map(|n| table.require(n)).collect::<Result<_>>()?,
            None => table.columns.iter().collect(),
        };
        let columns =
            selected.par_iter().map(|c| ColumnProfile::fit(c, categorical, numerical)).collect();
        Ok(Profile {
            format: FORMAT.to_string(),
            version: VERSION,
            source: table.path.display().to_string(),
            rows: table.rows,
            columns,
        })
    }

    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Internal(format!("cannot encode profile: {e}")))
    }

    /// Read a profile and [`validate`](Profile::validate) it. Errors name
    /// `path` and, where one is at fault, the column.
    pub fn from_json(text: &str, path: &str) -> Result<Profile> {
        let read = |reason: String| Error::Read { path: path.to_string(), reason };
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| read(format!("not a modelops profile: {e}")))?;
        // The header first: a profile of another version is refused as
        // such, not for a field it happens to lack.
        let shown = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        match value.get("format") {
            Some(f) if f.as_str() == Some(FORMAT) => {}
            Some(f) => {
                return Err(read(format!("not a modelops profile: `format` is `{}` (expected `{FORMAT}`)", shown(f))))
            }
            None => return Err(read(format!("not a modelops profile: no `format` (expected `{FORMAT}`)"))),
        }
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
            Some(v) => {
                return Err(read(format!(
                    "profile version `{}` is not supported (expected `{VERSION}`)",
                    shown(v)
                )))
            }
            None => return Err(read(format!("no profile `version` (expected `{VERSION}`)"))),
        }
        // Columns one by one, so that an error names the column.
        let columns = value.get_mut("columns").map(serde_json::Value::take);
        if let Some(slot) = value.get_mut("columns") {
            *slot = serde_json::Value::Array(Vec::new());
        }
        let mut profile: Profile =
            serde_json::from_value(value).map_err(|e| read(format!("not a modelops profile: {e}")))?;
        let columns = match columns {
            Some(serde_json::Value::Array(columns)) => columns,
            _ => return Err(read("not a modelops profile: `columns` is not a list".to_string())),
        };
        for (i, column) in columns.into_iter().enumerate() {
            let name = column.get("name").and_then(|n| n.as_str()).map_or_else(|| format!("#{i}"), str::to_string);
            let mut column: ColumnProfile = serde_json::from_value(column).map_err(|e| Error::FileColumn {
                path: path.to_string(),
                column: name,
                reason: format!("not a column profile: {e}"),
            })?;
            column.upgrade();
            profile.columns.push(column);
        }
        profile.validate(path)?;
        Ok(profile)
    }

    /// Check the invariants every profile written by [`Profile::fit`]
    /// keeps: the format and version; per column, finite numbers, sorted
    /// samples, strictly increasing bin edges and value lists, and counts
    /// that add up. `path` names the profile in the error.
    pub fn validate(&self, path: &str) -> Result<()> {
        if self.format != FORMAT {
            return Err(Error::Read {
                path: path.to_string(),
                reason: format!("not a modelops profile: `format` is `{}` (expected `{FORMAT}`)", self.format),
            });
        }
        if self.version != VERSION {
            return Err(Error::Read {
                path: path.to_string(),
                reason: format!("profile version `{}` is not supported (expected `{VERSION}`)", self.version),
            });
        }
        for c in &self.columns {
            c.check().map_err(|reason| Error::FileColumn {
                path: path.to_string(),
                column: c.name.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()?).map_err(|e| Error::Read {
            path: path.display().to_string(),
            reason: format!("cannot write: {e}"),
        })
    }

    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Read { path: path.display().to_string(), reason: e.to_string() })?;
        Profile::from_json(&text, &path.display().to_string())
    }
}

/// Why a numeric column without a finite reference value is not compared.
pub const NO_FINITE_VALUES: &str = "no finite values in the reference (all missing or infinite)";

impl ColumnProfile {
    fn unusable(column: &Column, reason: String) -> Self {
        ColumnProfile {
            name: column.name.clone(),
            source_type: column.source,
            kind: None,
            unusable: Some(reason),
            count: 0,
            missing: column.len() as u64,
            numeric: None,
            categories: None,
        }
    }

    pub fn fit(column: &Column, categorical: &[String], numerical: &[String]) -> Self {
        let kind = match infer_kind(column, categorical, numerical) {
            Inferred::Kind(k) => k,
            Inferred::Text => {
                return Self::unusable(
                    column,
                    "text column (more than half of the values are distinct); pass `--categorical` to \
                     compare it as categories"
                        .to_string(),
                )
            }
            Inferred::Unsupported(t) => return Self::unusable(column, format!("unsupported column type `{t}`")),
        };
        let mut out = ColumnProfile {
            name: column.name.clone(),
            source_type: column.source,
            kind: Some(kind),
            unusable: None,
            count: 0,
            missing: 0,
            numeric: None,
            categories: None,
        };
        match (&column.data, kind) {
            (ColumnData::Numeric(values), ColumnKind::Numerical) => {
                let (sorted, missing) = crate::sort::sorted_finite(values);
                // Neither case has finite moments, and JSON cannot hold
                // others: the saved profile would not load.
                let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
                    return Self::unusable(column, NO_FINITE_VALUES.to_string());
                };
                let numeric = NumericProfile::fit(&sorted);
                if !(numeric.moments.mean.is_finite() && numeric.moments.m2.is_finite()) {
                    return Self::unusable(
                        column,
                        format!(
                            "values from `{}` to `{}` are too large to profile: their variance overflows f64",
                            number(min),
                            number(max)
                        ),
                    );
                }
                out.count = sorted.len() as u64;
                out.missing = missing;
                out.numeric = Some(numeric);
            }
            _ => {
                let (cats, missing) = category_counts(column);
                out.count = cats.values().sum();
                out.missing = missing;
                out.categories = Some(cats);
            }
        }
        out
    }
}

impl ColumnProfile {
    /// Profiles written before empty numeric columns were marked unusable
    /// hold an empty numeric profile instead (its `min` and `max` were ±inf,
    /// saved as `null`): read it as the unusable column it is.
    fn upgrade(&mut self) {
        let empty_numeric = self.kind == Some(ColumnKind::Numerical)
            && self.unusable.is_none()
            && self.count == 0
            && self.categories.is_none()
            && self.numeric.as_ref().is_some_and(|n| {
                n.moments.count == 0
                    && n.edges.is_empty()
                    && n.bin_counts == [0]
                    && n.sample.is_empty()
                    && n.values.as_ref().is_none_or(Vec::is_empty)
            });
        if empty_numeric {
            self.kind = None;
            self.unusable = Some(NO_FINITE_VALUES.to_string());
            self.numeric = None;
        }
    }

    /// The column's invariants; the error says what is wrong.
    fn check(&self) -> std::result::Result<(), String> {
        let kind = match (self.kind, &self.unusable) {
            (Some(kind), None) => kind,
            (None, Some(_)) if self.numeric.is_none() && self.categories.is_none() => return Ok(()),
            (None, Some(_)) => return Err("an unusable column has a `numeric` or `categories` profile".to_string()),
            (None, None) => return Err("`kind` is null but `unusable` gives no reason".to_string()),
            (Some(kind), Some(reason)) => {
                return Err(format!("`kind` is `{}` but `unusable` says `{reason}`", kind_name(kind)))
            }
        };
        match (kind, &self.numeric, &self.categories) {
            (ColumnKind::Numerical, Some(_), _) if self.count == 0 => {
                Err("`count` is `0` but the column has a numeric profile".to_string())
            }
            (ColumnKind::Numerical, Some(num), None) => num.check(self.count),
            (ColumnKind::Categorical, None, Some(categories)) => {
                if let Some((label, _)) = categories.iter().find(|(_, &n)| n == 0) {
                    return Err(format!("category `{label}` has a count of `0`"));
                }
                adds_up("categories", categories.values().copied(), self.count)
            }
            (ColumnKind::Numerical, _, _) => {
                Err("a numerical column needs a `numeric` profile and no `categories`".to_string())
            }
            (ColumnKind::Categorical, _, _) => {
                Err("a categorical column needs `categories` and no `numeric` profile".to_string())
            }
        }
    }
}

fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Numerical => "numerical",
        ColumnKind::Categorical => "categorical",
    }
}

/// A number as an error message quotes it: plain where that reads well,
/// else in exponent form (`1e308`, not 309 digits); NaN (read from `null`)
/// as `null`.
fn number(x: f64) -> String {
    if x.is_nan() {
        "null".to_string()
    } else if x == 0.0 || (1e-4..1e15).contains(&x.abs()) || x.is_infinite() {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// `counts` must add up to `count`.
fn adds_up(what: &str, counts: impl IntoIterator<Item = u64>, count: u64) -> std::result::Result<(), String> {
    match counts.into_iter().try_fold(0u64, u64::checked_add) {
        Some(sum) if sum == count => Ok(()),
        Some(sum) => Err(format!("`{what}` add up to `{sum}` but `count` is `{count}`")),
        None => Err(format!("`{what}` add up to more than `{}` but `count` is `{count}`", u64::MAX)),
    }
}

/// Every value finite, and each no smaller than the one before
/// (`strict`: larger).
fn ordered(what: &str, values: impl IntoIterator<Item = f64>, strict: bool) -> std::result::Result<(), String> {
    let mut previous: Option<f64> = None;
    for (i, x) in values.into_iter().enumerate() {
        if !x.is_finite() {
            return Err(format!("`{what}` holds a value that is not a finite number: `{}` at index `{i}`", number(x)));
        }
        if let Some(p) = previous {
            if x < p || (strict && x == p) {
                let order = if strict { "are not strictly increasing" } else { "is not sorted" };
                return Err(format!("`{what}` {order}: `{}` follows `{}` at index `{i}`", number(x), number(p)));
            }
        }
        previous = Some(x);
    }
    Ok(())
}

/// Category counts of any column (numbers become labels like `3`, `2.5`).
pub(crate) fn category_counts(column: &Column) -> (BTreeMap<String, u64>, u64) {
    let mut out = BTreeMap::new();
    let mut missing = 0u64;
    match &column.data {
        ColumnData::Numeric(values) => {
            let mut by_bits: rustc_hash::FxHashMap<u64, u64> = Default::default();
            for &x in values {
                if x.is_finite() {
                    *by_bits.entry((x + 0.0).to_bits()).or_default() += 1;
                } else {
                    missing += 1;
                }
            }
            for (bits, n) in by_bits {
                *out.entry(format_number(f64::from_bits(bits))).or_default() += n;
            }
        }
        ColumnData::Categorical(c) => {
            let mut counts = vec![0u64; c.dictionary.len()];
            for &code in &c.codes {
                match counts.get_mut(code as usize) {
                    Some(n) => *n += 1,
                    None => missing += 1,
                }
            }
            for (label, n) in c.dictionary.iter().zip(counts) {
                if n > 0 {
                    *out.entry(label.clone()).or_default() += n;
                }
            }
        }
        ColumnData::Unsupported { rows, .. } => missing = *rows as u64,
    }
    (out, missing)
}

impl NumericProfile {
    fn fit(sorted: &[f64]) -> Self {
        let mut moments = Moments::default();
        for &x in sorted {
            moments.push(x);
        }
        let n = sorted.len();
        let mut edges: Vec<f64> = Vec::new();
        if n > 0 {
            for k in 1..QUANTILE_BINS {
                let e = sorted[k * n / QUANTILE_BINS];
                if e > sorted[0] && edges.last().is_none_or(|&last| e > last) {
                    edges.push(e);
                }
            }
        }
        let mut bin_counts = vec![0u64; edges.len() + 1];
        for &x in sorted {
            bin_counts[bin_of(&edges, x)] += 1;
        }
        let mut values: Vec<(f64, u64)> = Vec::new();
        for &x in sorted {
            match values.last_mut() {
                Some((v, c)) if *v == x => *c += 1,
                _ => {
                    if values.len() == DISCRETE_VALUES {
                        values.clear();
                        values.push((f64::NAN, 0));
                        break;
                    }
                    values.push((x + 0.0, 1));
                }
            }
        }
        let values = (!values.first().is_some_and(|v| v.0.is_nan())).then_some(values);
        let exact = n <= EXACT_SAMPLE;
        let sample = if exact {
            sorted.to_vec()
        } else {
            (0..EXACT_SAMPLE).map(|k| sorted[((2 * k + 1) * n) / (2 * EXACT_SAMPLE)]).collect()
        };
        NumericProfile { moments, edges, bin_counts, values, sample, exact }
    }

    /// The invariants of a fitted numeric profile of `count` values.
    fn check(&self, count: u64) -> std::result::Result<(), String> {
        let m = &self.moments;
        if m.count != count {
            return Err(format!("`numeric.moments.count` is `{}` but `count` is `{count}`", m.count));
        }
        for (name, x) in [("mean", m.mean), ("m2", m.m2), ("min", m.min), ("max", m.max)] {
            if !x.is_finite() {
                return Err(format!("`numeric.moments.{name}` is not a finite number: `{}`", number(x)));
            }
        }
        if m.m2 < 0.0 {
            return Err(format!("`numeric.moments.m2` is negative: `{}`", number(m.m2)));
        }
        if m.min > m.max {
            return Err(format!(
                "`numeric.moments.min` `{}` is greater than `numeric.moments.max` `{}`",
                number(m.min),
                number(m.max)
            ));
        }
        // Edges lie in (min, max]: bins are cut between reference values.
        ordered("numeric.edges", self.edges.iter().copied(), true)?;
        if let Some(&e) = self.edges.first().filter(|&&e| e <= m.min) {
            return Err(format!(
                "`numeric.edges` start at `{}`, not above `numeric.moments.min` `{}`",
                number(e),
                number(m.min)
            ));
        }
        if let Some(&e) = self.edges.last().filter(|&&e| e > m.max) {
            return Err(format!(
                "`numeric.edges` end at `{}`, above `numeric.moments.max` `{}`",
                number(e),
                number(m.max)
            ));
        }
        if self.bin_counts.len() != self.edges.len() + 1 {
            return Err(format!(
                "`numeric.bin_counts` has `{}` entries for `{}` edges (expected `{}`)",
                self.bin_counts.len(),
                self.edges.len(),
                self.edges.len() + 1
            ));
        }
        adds_up("numeric.bin_counts", self.bin_counts.iter().copied(), count)?;
        if let Some(values) = &self.values {
            ordered("numeric.values", values.iter().map(|v| v.0), true)?;
            if let Some((v, _)) = values.iter().find(|v| v.1 == 0) {
                return Err(format!("`numeric.values` give `{}` a count of `0`", number(*v)));
            }
            adds_up("numeric.values", values.iter().map(|v| v.1), count)?;
        }
        ordered("numeric.sample", self.sample.iter().copied(), false)?;
        let n = self.sample.len() as u64;
        if self.exact && n != count {
            return Err(format!("`numeric.sample` has `{n}` values but `count` is `{count}`"));
        }
        if !self.exact && (n == 0 || n >= count) {
            return Err(format!(
                "`numeric.sample` has `{n}` quantiles of `{count}` values (expected at least one, fewer than `count`)"
            ));
        }
        match (self.sample.first(), self.sample.last()) {
            (Some(&first), Some(&last)) if first < m.min || last > m.max => Err(format!(
                "`numeric.sample` spans `{}` to `{}`, beyond `numeric.moments` `min` `{}` and `max` `{}`",
                number(first),
                number(last),
                number(m.min),
                number(m.max)
            )),
            _ => Ok(()),
        }
    }

    /// Number of reference bins (one per value when discrete).
    pub fn bins(&self) -> usize {
        match &self.values {
            Some(v) => v.len() + 1,
            None => self.edges.len() + 1,
        }
    }
}

/// The open-ended bin of `x`: the number of edges at or below it.
pub fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e <= x)
}

/// A current window's summary of one column, on the reference's bins.
/// Merging two aggregates equals aggregating the concatenated data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnAggregate {
    pub count: u64,
    pub missing: u64,
    pub moments: Moments,
    /// Counts on the profile's bins: quantile bins, or for discrete numeric
    /// columns one per reference value plus a last "other value" bin.
    pub bins: Vec<u64>,
    /// Distinct values not in a discrete reference (at most 6 kept: enough
    /// to tell whether the union has more than 5 values).
    pub new_values: Vec<f64>,
    pub categories: BTreeMap<String, u64>,
    /// Raw values, kept only when K-S or Wasserstein need them.
    pub sample: Option<Vec<f64>>,
}

impl ColumnAggregate {
    /// Summarise `column` against `profile`. `keep_sample` keeps the raw
    /// values (needed by K-S and Wasserstein only).
    pub fn of(profile: &ColumnProfile, column: &Column, keep_sample: bool) -> ColumnAggregate {
        let mut out = ColumnAggregate::default();
        match (&profile.numeric, &column.data) {
            (Some(num), ColumnData::Numeric(values)) => {
                out.bins = vec![0; num.bins()];
                let mut sample = keep_sample.then(|| Vec::with_capacity(values.len()));
                for &x in values {
                    if !x.is_finite() {
                        out.missing += 1;
                        continue;
                    }
                    out.count += 1;
                    out.moments.push(x);
                    let bin = match &num.values {
                        Some(vals) => match vals.binary_search_by(|v| v.0.total_cmp(&(x + 0.0))) {
                            Ok(i) => i,
                            Err(_) => {
                                if out.new_values.len() < 6 && !out.new_values.contains(&(x + 0.0)) {
                                    out.new_values.push(x + 0.0);
                                }
                                vals.len()
                            }
                        },
                        None => bin_of(&num.edges, x),
                    };
                    out.bins[bin] += 1;
                    if let Some(s) = sample.as_mut() {
                        s.push(x);
                    }
                }
                out.sample = sample;
            }
            _ => {
                let (cats, missing) = category_counts(column);
                out.count = cats.values().sum();
                out.missing = missing;
                out.categories = cats;
            }
        }
        out
    }

    pub fn merge(&mut self, other: &ColumnAggregate) {
        let was_empty = self.count == 0 && self.sample.is_none();
        self.merge_counts(other);
        match (&mut self.sample, &other.sample) {
            (Some(a), Some(b)) => a.extend_from_slice(b),
            (None, Some(b)) if was_empty => self.sample = Some(b.clone()),
            _ => {}
        }
    }

    /// [`merge`](Self::merge), keeping at most `cap` raw values: a uniform
    /// sample of every value merged so far (reservoir sampling, Vitter's
    /// algorithm R). While the values merged number `cap` or fewer the
    /// sample is every value, in order, so the result equals `merge`'s;
    /// beyond, the K-S and Wasserstein scores computed from it carry
    /// sampling error (see docs/monitoring.md). The choice of which value
    /// to replace is a hash of its position, not a random draw, so one
    /// stream of values always keeps the same sample.
    pub fn merge_capped(&mut self, other: &ColumnAggregate, cap: usize) {
        let before = self.count;
        let was_empty = before == 0 && self.sample.is_none();
        self.merge_counts(other);
        let Some(incoming) = &other.sample else { return };
        let sample = match &mut self.sample {
            Some(s) => s,
            None if was_empty => self.sample.insert(Vec::with_capacity(incoming.len().min(cap))),
            None => return,
        };
        for (k, &x) in incoming.iter().enumerate() {
            let seen = before + k as u64;
            if sample.len() < cap {
                sample.push(x);
            } else {
                let j = splitmix64(seen) % (seen + 1);
                if let Ok(j) = usize::try_from(j) {
                    if j < cap {
                        sample[j] = x;
                    }
                }
            }
        }
    }

    /// Everything but the raw sample.
    fn merge_counts(&mut self, other: &ColumnAggregate) {
        self.count += other.count;
        self.missing += other.missing;
        self.moments.merge(&other.moments);
        if self.bins.len() < other.bins.len() {
            self.bins.resize(other.bins.len(), 0);
        }
        for (a, b) in self.bins.iter_mut().zip(&other.bins) {
            *a += b;
        }
        for &v in &other.new_values {
            if self.new_values.len() < 6 && !self.new_values.contains(&v) {
                self.new_values.push(v);
            }
        }
        for (k, v) in &other.categories {
            *self.categories.entry(k.clone()).or_default() += v;
        }
    }
}

/// A well-mixed 64-bit hash of `x` (splitmix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Categorical;
    use proptest::prelude::*;

    fn numeric(name: &str, v: Vec<f64>) -> Column {
        Column { name: name.into(), source: SourceType::Float, data: ColumnData::Numeric(v) }
    }

    fn profile_of(values: &[f64]) -> ColumnProfile {
        ColumnProfile::fit(&numeric("x", values.to_vec()), &[], &[])
    }

    #[test]
    fn profile_round_trips_through_json() {
        let t = Table {
            path: "t.csv".into(),
            rows: 4,
            columns: vec![
                numeric("x", vec![1.0, 2.5, f64::NAN, 4.0, 4.0]),
                Column {
                    name: "c".into(),
                    source: SourceType::String,
                    data: ColumnData::Categorical(Categorical::from_values(&[Some("a"), Some("b"), Some("a"), Some("a"), None])),
                },
            ],
        };
        let p = Profile::fit(&t, None, &[], &[]).unwrap();
        let back = Profile::from_json(&p.to_json().unwrap(), "p").unwrap();
        assert_eq!(p, back);
        assert_eq!(back.column("x").unwrap().missing, 1);
        assert_eq!(back.column("c").unwrap().categories.as_ref().unwrap()["a"], 3);
        let err = Profile::from_json("{\"format\":\"other\"}", "bad.profile").unwrap_err().to_string();
        assert!(err.contains("bad.profile"), "{err}");
    }

    #[test]
    fn quantile_bins_split_the_reference_evenly() {
        let values: Vec<f64> = (0..1000).map(f64::from).collect();
        let p = profile_of(&values);
        let num = p.numeric.unwrap();
        assert_eq!(num.bin_counts.len(), QUANTILE_BINS);
        assert!(num.bin_counts.iter().all(|&c| c == 50), "{:?}", num.bin_counts);
        assert!(num.values.is_none());
    }

    #[test]
    fn validation_refuses_non_finite_numbers_json_cannot_carry() {
        let mut p = Profile::fit(
            &Table { path: "t.csv".into(), rows: 5, columns: vec![numeric("x", vec![1.0, 2.0, 3.0, 4.0, 5.0])] },
            None,
            &[],
            &[],
        )
        .unwrap();
        p.validate("p.json").unwrap();
        if let Some(num) = p.columns[0].numeric.as_mut() {
            num.sample[2] = f64::INFINITY;
        }
        let err = p.validate("p.json").unwrap_err().to_string();
        assert_eq!(
            err,
            "`p.json`, column `x`: `numeric.sample` holds a value that is not a finite number: `inf` at index `2`"
        );
    }

    proptest! {
        #[test]
        fn every_fitted_profile_is_valid_and_loads_again(
            values in proptest::collection::vec(
                prop_oneof![
                    4 => -1e3f64..1e3,
                    1 => any::<f64>(),
                    1 => Just(f64::NAN),
                    1 => Just(f64::INFINITY),
                    1 => Just(-1e308),
                    1 => Just(1e308),
                    1 => (0u8..4).prop_map(f64::from),
                ],
                0..300,
            ),
        ) {
            let t = Table { path: "t.csv".into(), rows: values.len(), columns: vec![numeric("x", values)] };
            let p = Profile::fit(&t, None, &[], &[]).unwrap();
            prop_assert!(p.validate("p.json").is_ok(), "{:?}", p.validate("p.json"));
            let back = Profile::from_json(&p.to_json().unwrap(), "p.json");
            prop_assert!(back.is_ok(), "{:?}", back);
            let column = &p.columns[0];
            prop_assert_eq!(column.kind.is_none(), column.unusable.is_some());
        }

        #[test]
        fn merged_aggregates_equal_the_whole(
            reference in proptest::collection::vec(-100.0f64..100.0, 1..200),
            current in proptest::collection::vec(prop_oneof![-150.0f64..150.0, Just(f64::NAN), Just(3.0)], 0..300),
            split in 0usize..300,
        ) {
            let profile = profile_of(&reference);
            let split = split.min(current.len());
            let whole = ColumnAggregate::of(&profile, &numeric("x", current.clone()), true);
            let mut left = ColumnAggregate::of(&profile, &numeric("x", current[..split].to_vec()), true);
            let right = ColumnAggregate::of(&profile, &numeric("x", current[split..].to_vec()), true);
            left.merge(&right);
            prop_assert_eq!(&left.bins, &whole.bins);
            prop_assert_eq!(left.count, whole.count);
            prop_assert_eq!(left.missing, whole.missing);
            prop_assert_eq!(&left.sample, &whole.sample);
            prop_assert_eq!(left.moments.count, whole.moments.count);
            if whole.count > 0 {
                prop_assert!((left.moments.mean - whole.moments.mean).abs() <= 1e-9 * (1.0 + whole.moments.mean.abs()));
                prop_assert!((left.moments.m2 - whole.moments.m2).abs() <= 1e-9 * (1.0 + whole.moments.m2.abs()));
                prop_assert_eq!(left.moments.min, whole.moments.min);
                prop_assert_eq!(left.moments.max, whole.moments.max);
            }
        }

        #[test]
        fn capped_merges_equal_the_whole_below_the_cap_and_stay_bounded_above(
            reference in proptest::collection::vec(-100.0f64..100.0, 1..50),
            parts in proptest::collection::vec(proptest::collection::vec(-150.0f64..150.0, 0..40), 0..8),
            cap in 1usize..200,
        ) {
            let profile = profile_of(&reference);
            let all: Vec<f64> = parts.concat();
            let whole = ColumnAggregate::of(&profile, &numeric("x", all.clone()), true);
            let mut merged = ColumnAggregate::default();
            for part in &parts {
                merged.merge_capped(&ColumnAggregate::of(&profile, &numeric("x", part.clone()), true), cap);
            }
            prop_assert_eq!(merged.count, whole.count);
            // (Nothing merged leaves the bins unsized, as an empty window.)
            if !parts.is_empty() {
                prop_assert_eq!(&merged.bins, &whole.bins);
            }
            let sample = merged.sample.clone().unwrap_or_default();
            if all.len() <= cap {
                prop_assert_eq!(sample, all);
            } else {
                prop_assert_eq!(sample.len(), cap);
                prop_assert!(sample.iter().all(|x| all.contains(x)));
            }
        }

        #[test]
        fn merged_category_counts_equal_the_whole(
            labels in proptest::collection::vec(prop_oneof![Just(Some("a")), Just(Some("b")), Just(Some("z")), Just(None)], 0..200),
            split in 0usize..200,
        ) {
            let col = |v: &[Option<&str>]| Column {
                name: "c".into(),
                source: SourceType::String,
                data: ColumnData::Categorical(Categorical::from_values(v)),
            };
            let profile = ColumnProfile::fit(&col(&[Some("a"), Some("b")]), &[], &[]);
            let split = split.min(labels.len());
            let whole = ColumnAggregate::of(&profile, &col(&labels), false);
            let mut left = ColumnAggregate::of(&profile, &col(&labels[..split]), false);
            left.merge(&ColumnAggregate::of(&profile, &col(&labels[split..]), false));
            prop_assert_eq!(left, whole);
        }
    }
}
