//! Data drift between a reference sample and a current sample, per column
//! and for the dataset, in two modes:
//!
//! - [`Mode::Evidently`] reproduces Evidently 0.7's `DataDriftPreset`: its
//!   column-type inference, default method choice (by type, distinct values
//!   and reference size), binning (Sturges over reference + current),
//!   epsilons, thresholds and comparison operators. Raw values on both sides.
//! - [`Mode::Default`] compares the current sample with a [`Profile`] fitted
//!   on the reference once: two-sample tests (2×K contingency chi-square, not
//!   goodness of fit; two-sided K-S), bins fitted on the reference and reused
//!   for every window. Fitting the profile from a reference file on the fly
//!   and loading a saved one give the same numbers.
//!
//! Results are plain serialisable data ([`DriftReport`], [`ColumnDrift`]),
//! with each column's reference and current histogram for charts.

mod evidently;
mod kolmogorov;
mod sound;
pub mod stats;

use serde::{Deserialize, Serialize};

use crate::data::{Column, ColumnData, SourceType, Table};
use crate::error::{Error, Result};
pub use crate::profile::{ColumnAggregate, Profile};

/// Which rules compute the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Evidently 0.7.23's `DataDriftPreset`, number for number.
    Evidently,
    /// Two-sample tests against a reference profile.
    #[default]
    Default,
}

/// A per-column drift method, named by Evidently's registry key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Ks,
    Wasserstein,
    Psi,
    #[serde(rename = "jensenshannon")]
    JensenShannon,
    #[serde(rename = "chisquare")]
    ChiSquare,
    Z,
    KlDiv,
    Hellinger,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Ks,
        Method::Wasserstein,
        Method::Psi,
        Method::JensenShannon,
        Method::ChiSquare,
        Method::Z,
        Method::KlDiv,
        Method::Hellinger,
    ];

    /// Evidently's registry key (`ks`, `jensenshannon`, …).
    pub fn key(self) -> &'static str {
        match self {
            Method::Ks => "ks",
            Method::Wasserstein => "wasserstein",
            Method::Psi => "psi",
            Method::JensenShannon => "jensenshannon",
            Method::ChiSquare => "chisquare",
            Method::Z => "z",
            Method::KlDiv => "kl_div",
            Method::Hellinger => "hellinger",
        }
    }

    pub fn parse(key: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.key() == key)
    }

    /// Evidently's display name for the method.
    pub fn display_name(self) -> &'static str {
        match self {
            Method::Ks => "K-S p_value",
            Method::Wasserstein => "Wasserstein distance (normed)",
            Method::Psi => "PSI",
            Method::JensenShannon => "Jensen-Shannon distance",
            Method::ChiSquare => "chi-square p_value",
            Method::Z => "Z-test p_value",
            Method::KlDiv => "Kullback-Leibler divergence",
            Method::Hellinger => "Hellinger distance",
        }
    }

    /// Whether the score is a p-value (small = drift) or a distance.
    pub fn score_kind(self) -> ScoreKind {
        match self {
            Method::Ks | Method::ChiSquare | Method::Z => ScoreKind::PValue,
            _ => ScoreKind::Distance,
        }
    }

    /// The default threshold (Evidently's).
    pub fn default_threshold(self) -> f64 {
        match self {
            Method::Ks | Method::ChiSquare | Method::Z => 0.05,
            _ => 0.1,
        }
    }

    /// The drift verdict with Evidently's exact operator: K-S `p <= t`,
    /// chi-square and Z `p < t`, distances `d >= t`.
    pub fn drifted(self, score: f64, threshold: f64) -> bool {
        match self {
            Method::Ks => score <= threshold,
            Method::ChiSquare | Method::Z => score < threshold,
            _ => score >= threshold,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    PValue,
    Distance,
}

/// How a column is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numerical,
    Categorical,
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    pub mode: Mode,
    /// Columns to compare; `None` = every column of the current data (in
    /// evidently mode) or of the profile (in default mode).
    pub columns: Option<Vec<String>>,
    /// Force these columns to be treated as categorical / numerical.
    pub categorical: Vec<String>,
    pub numerical: Vec<String>,
    /// One method for every column instead of the default choice.
    pub method: Option<Method>,
    /// One threshold for every column instead of the method's default.
    pub threshold: Option<f64>,
    /// Dataset drift when the share of drifted columns is at least this.
    pub drift_share: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            mode: Mode::Default,
            columns: None,
            categorical: Vec::new(),
            numerical: Vec::new(),
            method: None,
            threshold: None,
            drift_share: 0.5,
        }
    }
}

/// The result for a whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    pub mode: Mode,
    /// Where the reference came from (file or profile path) and its rows.
    pub reference: Source,
    pub current: Source,
    pub drift_share: f64,
    /// Columns with a computed score.
    pub number_of_columns: usize,
    pub number_of_drifted_columns: usize,
    pub share_of_drifted_columns: f64,
    /// `share_of_drifted_columns >= drift_share`.
    pub dataset_drift: bool,
    pub columns: Vec<ColumnDrift>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub path: String,
    pub rows: usize,
}

/// One column's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub column: String,
    /// `None` when the column could not be typed (text, unsupported).
    pub kind: Option<ColumnKind>,
    /// `None` when not computed.
    pub method: Option<Method>,
    pub method_name: Option<String>,
    pub score_kind: Option<ScoreKind>,
    pub score: Option<f64>,
    pub threshold: Option<f64>,
    pub drift_detected: bool,
    /// Why there is no score, e.g. "all values are missing in the reference".
    pub not_computed: Option<String>,
    /// Values used on each side (finite, non-missing) and values dropped.
    pub reference_count: u64,
    pub current_count: u64,
    pub reference_missing: u64,
    pub current_missing: u64,
    /// Reference and current distributions, for charts.
    pub histogram: Option<Histogram>,
}

impl ColumnDrift {
    fn not_computed(column: &str, kind: Option<ColumnKind>, reason: impl Into<String>) -> Self {
        ColumnDrift {
            column: column.to_string(),
            kind,
            method: None,
            method_name: None,
            score_kind: None,
            score: None,
            threshold: None,
            drift_detected: false,
            not_computed: Some(reason.into()),
            reference_count: 0,
            current_count: 0,
            reference_missing: 0,
            current_missing: 0,
            histogram: None,
        }
    }

    fn scored(column: &str, kind: ColumnKind, method: Method, score: f64, threshold: f64) -> Self {
        ColumnDrift {
            column: column.to_string(),
            kind: Some(kind),
            method: Some(method),
            method_name: Some(method.display_name().to_string()),
            score_kind: Some(method.score_kind()),
            score: Some(score),
            threshold: Some(threshold),
            drift_detected: method.drifted(score, threshold),
            not_computed: None,
            reference_count: 0,
            current_count: 0,
            reference_missing: 0,
            current_missing: 0,
            histogram: None,
        }
    }
}

/// Reference and current distributions of one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Histogram {
    /// `edges.len() == reference.len() + 1`; bins `[e_i, e_{i+1})`, the last
    /// closed. Infinite outer edges mean open-ended bins.
    Bins { edges: Vec<f64>, reference: Vec<u64>, current: Vec<u64> },
    /// One entry per category (the most frequent ones, then `other`).
    Categories { labels: Vec<String>, reference: Vec<u64>, current: Vec<u64> },
}

/// Compare two tables. In default mode a profile is fitted on `reference`
/// first, so the numbers equal those of `profile fit` + [`compare_profile`].
pub fn compare(reference: &Table, current: &Table, options: &DriftOptions) -> Result<DriftReport> {
    match options.mode {
        Mode::Evidently => evidently::compare(reference, current, options),
        Mode::Default => {
            let names = options.columns.clone();
            let profile = Profile::fit(reference, names.as_deref(), &options.categorical, &options.numerical)?;
            sound::compare(&profile, &reference.path.display().to_string(), current, options)
        }
    }
}

/// [`compare`] taking the tables by value, so evidently mode can sort each
/// column in its own buffer instead of a copy. Same numbers.
pub fn compare_tables(reference: Table, current: Table, options: &DriftOptions) -> Result<DriftReport> {
    match options.mode {
        Mode::Evidently => evidently::compare_owned(reference, current, options),
        Mode::Default => compare(&reference, &current, options),
    }
}

/// Compare a current table with a saved reference profile (default mode).
pub fn compare_profile(
    profile: &Profile,
    profile_path: &str,
    current: &Table,
    options: &DriftOptions,
) -> Result<DriftReport> {
    if options.mode == Mode::Evidently {
        return Err(Error::InvalidInput(
            "evidently mode needs the raw reference values: pass `--reference FILE`, not a profile"
                .to_string(),
        ));
    }
    sound::compare(profile, profile_path, current, options)
}

/// Drift of a window summarised per column against `profile` (default
/// mode): equal to [`compare_profile`] over the window's rows when each
/// aggregate is [`ColumnAggregate::of`] those rows, or a merge of the
/// aggregates of its parts (see [`ColumnAggregate::merge_capped`] for a
/// capped sample). `columns` pairs each compared column with its aggregate.
pub fn compare_aggregates(
    profile: &Profile,
    profile_path: &str,
    current: &Source,
    columns: &[(String, ColumnAggregate)],
    options: &DriftOptions,
) -> Result<DriftReport> {
    if options.mode == Mode::Evidently {
        return Err(Error::InvalidInput(
            "evidently mode needs the raw reference and current values; windows are summarised against a profile (default mode)"
                .to_string(),
        ));
    }
    sound::compare_aggregates(profile, profile_path, current, columns, options)
}

/// Whether the default mode keeps the raw current values of a column
/// (K-S and Wasserstein need them; every other method works on counts).
pub fn needs_sample(column: &crate::profile::ColumnProfile, options: &DriftOptions) -> bool {
    sound::needs_sample(column, options)
}

fn summarise(mode: Mode, reference: Source, current: Source, drift_share: f64, columns: Vec<ColumnDrift>) -> DriftReport {
    let computed = columns.iter().filter(|c| c.score.is_some()).count();
    let drifted = columns.iter().filter(|c| c.drift_detected).count();
    let share = if computed == 0 { 0.0 } else { drifted as f64 / computed as f64 };
    DriftReport {
        mode,
        reference,
        current,
        drift_share,
        number_of_columns: computed,
        number_of_drifted_columns: drifted,
        share_of_drifted_columns: share,
        dataset_drift: computed > 0 && share >= drift_share,
        columns,
    }
}

/// Evidently's inferred column type (`core/datasets.py::infer_column_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inferred {
    Kind(ColumnKind),
    /// A string column where more than half the values are distinct.
    Text,
    Unsupported(String),
}

/// Integers with at most this many distinct values are categorical.
const INTEGER_CARDINALITY_LIMIT: usize = 10;

pub(crate) fn infer_kind(column: &Column, categorical: &[String], numerical: &[String]) -> Inferred {
    let forced_cat = categorical.iter().any(|c| c == &column.name);
    let forced_num = numerical.iter().any(|c| c == &column.name);
    match &column.data {
        ColumnData::Unsupported { type_name, .. } => Inferred::Unsupported(type_name.clone()),
        ColumnData::Numeric(values) => {
            if forced_cat {
                return Inferred::Kind(ColumnKind::Categorical);
            }
            if forced_num {
                return Inferred::Kind(ColumnKind::Numerical);
            }
            match column.source {
                SourceType::Int { has_missing: false } => {
                    if count_distinct_capped(values, INTEGER_CARDINALITY_LIMIT + 1) <= INTEGER_CARDINALITY_LIMIT {
                        Inferred::Kind(ColumnKind::Categorical)
                    } else {
                        Inferred::Kind(ColumnKind::Numerical)
                    }
                }
                _ => Inferred::Kind(ColumnKind::Numerical),
            }
        }
        ColumnData::Categorical(c) => {
            if forced_num {
                return Inferred::Unsupported("text values cannot be treated as numerical".to_string());
            }
            if forced_cat || column.source == SourceType::Bool {
                return Inferred::Kind(ColumnKind::Categorical);
            }
            let mut seen = vec![false; c.dictionary.len()];
            let mut count = 0usize;
            let mut distinct = 0usize;
            for &code in &c.codes {
                if let Some(s) = seen.get_mut(code as usize) {
                    count += 1;
                    if !*s {
                        *s = true;
                        distinct += 1;
                    }
                }
            }
            if distinct as f64 > count as f64 * 0.5 {
                Inferred::Text
            } else {
                Inferred::Kind(ColumnKind::Categorical)
            }
        }
    }
}

/// Distinct non-NaN values, counting no further than `cap`.
fn count_distinct_capped(values: &[f64], cap: usize) -> usize {
    let mut seen: Vec<u64> = Vec::with_capacity(cap);
    for &x in values {
        if x.is_nan() {
            continue;
        }
        let bits = (x + 0.0).to_bits();
        if !seen.contains(&bits) {
            seen.push(bits);
            if seen.len() >= cap {
                break;
            }
        }
    }
    seen.len()
}

/// At most this many categories are drawn; the rest are summed as `other`.
const CHART_CATEGORIES: usize = 50;

pub(crate) fn category_histogram(labels: &[String], reference: &[u64], current: &[u64]) -> Histogram {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| (reference[b] + current[b]).cmp(&(reference[a] + current[a])).then(labels[a].cmp(&labels[b])));
    let mut out_labels = Vec::new();
    let (mut r, mut c) = (Vec::new(), Vec::new());
    let (mut other_r, mut other_c) = (0u64, 0u64);
    for (rank, &i) in order.iter().enumerate() {
        if rank < CHART_CATEGORIES {
            out_labels.push(labels[i].clone());
            r.push(reference[i]);
            c.push(current[i]);
        } else {
            other_r += reference[i];
            other_c += current[i];
        }
    }
    if order.len() > CHART_CATEGORIES {
        out_labels.push("other".to_string());
        r.push(other_r);
        c.push(other_c);
    }
    Histogram::Categories { labels: out_labels, reference: r, current: c }
}
