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
//! field names are part of the stored format and do not change.

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
    pub mean: f64,
    pub m2: f64,
    pub min: f64,
    pub max: f64,
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

    pub fn from_json(text: &str, path: &str) -> Result<Profile> {
        let profile: Profile = serde_json::from_str(text).map_err(|e| Error::Read {
            path: path.to_string(),
            reason: format!("not a modelops profile: {e}"),
        })?;
        if profile.format != FORMAT || profile.version != VERSION {
            return Err(Error::Read {
                path: path.to_string(),
                reason: format!(
                    "profile format `{}` version `{}` is not supported (expected `{FORMAT}` version `{VERSION}`)",
                    profile.format, profile.version
                ),
            });
        }
        Ok(profile)
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
                out.count = sorted.len() as u64;
                out.missing = missing;
                out.numeric = Some(NumericProfile::fit(&sorted));
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
        match (&mut self.sample, &other.sample) {
            (Some(a), Some(b)) => a.extend_from_slice(b),
            (None, Some(b)) if self.count == other.count => self.sample = Some(b.clone()),
            _ => {}
        }
    }
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

    proptest! {
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
