//! Evidently 0.7.23 compatibility: `DataDriftPreset` as its code runs it
//! (`legacy/calculations/data_drift.py::get_one_column_drift`,
//! `stattests/registry.py::_get_default_stattest`, `stattests/*.py`).
//!
//! Per column: ±inf become missing and missing values are dropped on both
//! sides; the type is inferred from the *current* data (Evidently builds the
//! report's data definition from its first dataset); the method is chosen
//! from the type, the number of distinct values in reference ∪ current and
//! the cleaned reference size (≤ 1000 → K-S / chi-square / Z, otherwise
//! Wasserstein / Jensen–Shannon).
//!
//! Where Evidently's own arithmetic overflows (a column spanning ±1e308:
//! its Sturges bins fail, its standard deviation is inf and Wasserstein
//! reads 0, "no drift"), the scores here are what the methods mean, computed
//! on scaled values; see [`stats`].

use rayon::prelude::*;
use rustc_hash::FxHashMap;

use super::stats;
use super::{
    category_histogram, infer_kind, summarise, ColumnDrift, ColumnKind, DriftOptions, DriftReport, Histogram,
    Inferred, Method, Mode, Source,
};
use crate::data::{format_number, Column, ColumnData, Table};
use crate::error::{Error, Result};

/// [`compare`] taking the tables by value: each column's values are sorted
/// in their own buffer instead of a copy (less memory, fewer page faults).
pub(super) fn compare_owned(mut reference: Table, mut current: Table, options: &DriftOptions) -> Result<DriftReport> {
    let names: Vec<String> = match &options.columns {
        Some(cols) => cols.clone(),
        None => current.names().map(str::to_string).collect(),
    };
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    if unique.len() != names.len() {
        // A column named twice: share it, as the borrowing path does.
        return compare(&reference, &current, options);
    }
    let mut pairs: Vec<(Column, Column)> = Vec::with_capacity(names.len());
    for name in &names {
        current.require(name)?;
        if reference.column(name).is_none() {
            return Err(Error::FileColumn {
                path: reference.path.display().to_string(),
                column: name.clone(),
                reason: format!(
                    "no such column (the current file `{}` has it): the schemas differ",
                    current.path.display()
                ),
            });
        }
    }
    for name in &names {
        let take = |table: &mut Table| {
            let i = table.columns.iter().position(|c| &c.name == name)?;
            Some(table.columns.swap_remove(i))
        };
        if let (Some(r), Some(c)) = (take(&mut reference), take(&mut current)) {
            pairs.push((r, c));
        }
    }
    let ref_path = reference.path.display().to_string();
    let cur_path = current.path.display().to_string();
    let columns: Vec<ColumnDrift> = pairs
        .into_par_iter()
        .map(|(r, c)| {
            let name = c.name.clone();
            let kind = match kind_or_not_computed(&c, options) {
                Ok(kind) => kind,
                Err(out) => return *out,
            };
            finish(&name, kind, Side::from_column(r), Side::from_column(c), &ref_path, &cur_path, options)
        })
        .collect();
    Ok(summarise(
        Mode::Evidently,
        Source { path: ref_path, rows: reference.rows },
        Source { path: cur_path, rows: current.rows },
        options.drift_share,
        columns,
    ))
}

pub(super) fn compare(reference: &Table, current: &Table, options: &DriftOptions) -> Result<DriftReport> {
    let names: Vec<String> = match &options.columns {
        Some(cols) => cols.clone(),
        None => current.names().map(str::to_string).collect(),
    };
    let pairs: Vec<(&Column, &Column)> = names
        .iter()
        .map(|name| {
            let cur = current.require(name)?;
            let refc = reference.column(name).ok_or_else(|| Error::FileColumn {
                path: reference.path.display().to_string(),
                column: name.clone(),
                reason: format!(
                    "no such column (the current file `{}` has it): the schemas differ",
                    current.path.display()
                ),
            })?;
            Ok((refc, cur))
        })
        .collect::<Result<_>>()?;
    let ref_path = reference.path.display().to_string();
    let cur_path = current.path.display().to_string();
    let columns: Vec<ColumnDrift> = pairs
        .par_iter()
        .map(|(r, c)| column_drift(r, c, &ref_path, &cur_path, options))
        .collect();
    Ok(summarise(
        Mode::Evidently,
        Source { path: ref_path, rows: reference.rows },
        Source { path: cur_path, rows: current.rows },
        options.drift_share,
        columns,
    ))
}

/// One side of a column after Evidently's cleaning.
enum Side {
    /// Finite values, sorted.
    Numbers { sorted: Vec<f64>, dropped: u64 },
    /// Distinct labels with their counts (only non-zero).
    Labels { counts: Vec<(String, u64)>, n: u64, dropped: u64 },
}

impl Side {
    /// Like [`Side::of`], sorting numbers in the column's own buffer.
    fn from_column(column: Column) -> Option<Side> {
        match column.data {
            ColumnData::Numeric(values) => {
                let (sorted, dropped) = crate::sort::into_sorted_finite(values);
                Some(Side::Numbers { sorted, dropped })
            }
            data => Side::of(&Column { data, ..column }),
        }
    }

    fn of(column: &Column) -> Option<Side> {
        match &column.data {
            ColumnData::Numeric(values) => {
                let (sorted, dropped) = crate::sort::sorted_finite(values);
                Some(Side::Numbers { sorted, dropped })
            }
            ColumnData::Categorical(c) => {
                let mut counts = vec![0u64; c.dictionary.len()];
                let mut dropped = 0u64;
                for &code in &c.codes {
                    match counts.get_mut(code as usize) {
                        Some(n) => *n += 1,
                        None => dropped += 1,
                    }
                }
                let n = c.codes.len() as u64 - dropped;
                let counts = c
                    .dictionary
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(s, n)| (s.clone(), n))
                    .collect();
                Some(Side::Labels { counts, n, dropped })
            }
            ColumnData::Unsupported { .. } => None,
        }
    }

    fn n(&self) -> u64 {
        match self {
            Side::Numbers { sorted, .. } => sorted.len() as u64,
            Side::Labels { n, .. } => *n,
        }
    }

    fn dropped(&self) -> u64 {
        match self {
            Side::Numbers { dropped, .. } | Side::Labels { dropped, .. } => *dropped,
        }
    }
}

/// Counts per distinct value over reference ∪ current.
#[derive(Default)]
struct Counts {
    /// Empty when the column holds numbers (see `numbers`).
    labels: Vec<String>,
    /// The numeric value of each label when the column holds numbers.
    numbers: Option<Vec<f64>>,
    reference: Vec<u64>,
    current: Vec<u64>,
}

fn run_lengths(sorted: &[f64]) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = Vec::new();
    for &x in sorted {
        match out.last_mut() {
            Some((v, n)) if *v == x => *n += 1,
            _ => out.push((x + 0.0, 1)),
        }
    }
    out
}

/// Distinct values (by `==`) of a sorted sample, counting no further than `cap`.
fn distinct_sorted(sorted: &[f64], cap: usize) -> usize {
    let mut n = usize::from(!sorted.is_empty());
    for w in sorted.windows(2) {
        if n >= cap {
            break;
        }
        n += usize::from(w[0] != w[1]);
    }
    n.min(cap)
}

/// Distinct values of reference ∪ current (both sorted), counting no
/// further than `cap`: the length `counts` would give, without building it.
fn distinct_union(a: &[f64], b: &[f64], cap: usize) -> usize {
    let (mut i, mut j, mut n) = (0usize, 0usize, 0usize);
    while n < cap {
        let x = match (a.get(i), b.get(j)) {
            (Some(&p), Some(&q)) => p.min(q),
            (Some(&p), None) => p,
            (None, Some(&q)) => q,
            (None, None) => break,
        };
        while i < a.len() && a[i] == x {
            i += 1;
        }
        while j < b.len() && b[j] == x {
            j += 1;
        }
        n += 1;
    }
    n
}

/// Evidently's default choice only distinguishes up to this many values.
const METHOD_VALUES: usize = 6;

fn counts(reference: &Side, current: &Side) -> Counts {
    match (reference, current) {
        (Side::Numbers { sorted: r, .. }, Side::Numbers { sorted: c, .. }) => {
            let (r, c) = (run_lengths(r), run_lengths(c));
            let (mut i, mut j) = (0, 0);
            let mut out = Counts { labels: vec![], numbers: Some(vec![]), reference: vec![], current: vec![] };
            let mut numbers = Vec::new();
            while i < r.len() || j < c.len() {
                let x = match (r.get(i), c.get(j)) {
                    (Some(a), Some(b)) => a.0.min(b.0),
                    (Some(a), None) => a.0,
                    (None, Some(b)) => b.0,
                    (None, None) => break,
                };
                let rn = if r.get(i).is_some_and(|a| a.0 == x) {
                    i += 1;
                    r[i - 1].1
                } else {
                    0
                };
                let cn = if c.get(j).is_some_and(|b| b.0 == x) {
                    j += 1;
                    c[j - 1].1
                } else {
                    0
                };
                numbers.push(x);
                out.reference.push(rn);
                out.current.push(cn);
            }
            out.numbers = Some(numbers);
            out
        }
        (Side::Labels { counts: r, .. }, Side::Labels { counts: c, .. }) => {
            let mut index: FxHashMap<&str, usize> = FxHashMap::default();
            let mut out = Counts { labels: vec![], numbers: None, reference: vec![], current: vec![] };
            for (label, n) in r {
                index.insert(label, out.labels.len());
                out.labels.push(label.clone());
                out.reference.push(*n);
                out.current.push(0);
            }
            for (label, n) in c {
                match index.get(label.as_str()) {
                    Some(&k) => out.current[k] = *n,
                    None => {
                        out.labels.push(label.clone());
                        out.reference.push(0);
                        out.current.push(*n);
                    }
                }
            }
            out
        }
        // Mixed sides are refused before any counting.
        _ => Counts::default(),
    }
}

/// `_get_default_stattest`.
fn default_method(kind: ColumnKind, n_reference: u64, n_values: usize) -> Method {
    let small = n_reference <= 1000;
    match (kind, small) {
        (ColumnKind::Numerical, true) if n_values <= 5 => {
            if n_values > 2 {
                Method::ChiSquare
            } else {
                Method::Z
            }
        }
        (ColumnKind::Numerical, true) => Method::Ks,
        (ColumnKind::Categorical, true) => {
            if n_values > 2 {
                Method::ChiSquare
            } else {
                Method::Z
            }
        }
        (ColumnKind::Numerical, false) if n_values <= 5 => Method::JensenShannon,
        (ColumnKind::Numerical, false) => Method::Wasserstein,
        (ColumnKind::Categorical, false) => Method::JensenShannon,
    }
}

/// The column's kind, or its "not computed" result.
fn kind_or_not_computed(c: &Column, options: &DriftOptions) -> std::result::Result<ColumnKind, Box<ColumnDrift>> {
    let name = c.name.as_str();
    match infer_kind(c, &options.categorical, &options.numerical) {
        Inferred::Kind(k) => Ok(k),
        Inferred::Text => Err(Box::new(ColumnDrift::not_computed(
            name,
            None,
            "text column (more than half of the values are distinct): Evidently's text-content \
             classifier is not reproduced; pass `--categorical` to compare it as categories",
        ))),
        Inferred::Unsupported(t) => {
            Err(Box::new(ColumnDrift::not_computed(name, None, format!("unsupported column type `{t}`"))))
        }
    }
}

fn column_drift(r: &Column, c: &Column, ref_path: &str, cur_path: &str, options: &DriftOptions) -> ColumnDrift {
    let kind = match kind_or_not_computed(c, options) {
        Ok(kind) => kind,
        Err(out) => return *out,
    };
    finish(&c.name, kind, Side::of(r), Side::of(c), ref_path, cur_path, options)
}

fn finish(
    name: &str,
    kind: ColumnKind,
    rs: Option<Side>,
    cs: Option<Side>,
    ref_path: &str,
    cur_path: &str,
    options: &DriftOptions,
) -> ColumnDrift {
    let (Some(rs), Some(cs)) = (rs, cs) else {
        return ColumnDrift::not_computed(name, Some(kind), format!("unsupported column type in `{ref_path}`"));
    };
    let mut out = compute(name, kind, &rs, &cs, ref_path, cur_path, options);
    out.reference_count = rs.n();
    out.current_count = cs.n();
    out.reference_missing = rs.dropped();
    out.current_missing = cs.dropped();
    out
}

fn compute(
    name: &str,
    kind: ColumnKind,
    rs: &Side,
    cs: &Side,
    ref_path: &str,
    cur_path: &str,
    options: &DriftOptions,
) -> ColumnDrift {
    let nc = |reason: String| ColumnDrift::not_computed(name, Some(kind), reason);
    match (rs, cs) {
        (Side::Numbers { .. }, Side::Labels { .. }) => {
            return nc(format!("numbers in `{ref_path}` but text in `{cur_path}`: the schemas differ"))
        }
        (Side::Labels { .. }, Side::Numbers { .. }) => {
            return nc(format!("text in `{ref_path}` but numbers in `{cur_path}`: the schemas differ"))
        }
        _ => {}
    }
    if rs.n() == 0 {
        return nc(format!("no finite values in the reference `{ref_path}` (all missing or infinite)"));
    }
    if cs.n() == 0 {
        return nc(format!("no finite values in the current `{cur_path}` (all missing or infinite)"));
    }
    let numbers = match (rs, cs) {
        (Side::Numbers { sorted: a, .. }, Side::Numbers { sorted: b, .. }) => Some((a.as_slice(), b.as_slice())),
        _ => None,
    };
    // Per-value counts are built only where a method or the chart needs
    // them: a continuous column of 10⁶ values never pays for them.
    let lazy_counts = std::cell::OnceCell::new();
    let counts = || lazy_counts.get_or_init(|| counts(rs, cs));
    let n_values_capped = match numbers {
        Some((a, b)) => distinct_union(a, b, METHOD_VALUES),
        None => counts().reference.len(),
    };
    let (n_ref, n_cur) = (rs.n(), cs.n());
    let method = options.method.unwrap_or_else(|| default_method(kind, n_ref, n_values_capped));
    let threshold = options.threshold.unwrap_or_else(|| method.default_threshold());
    // Evidently's registry refuses these pairs when a method is forced
    // (StatTestInvalidFeatureTypeError); its default choice may pick them.
    let applies = options.method.is_none()
        || match method {
            Method::Ks | Method::Wasserstein => kind == ColumnKind::Numerical,
            Method::ChiSquare | Method::Z => kind == ColumnKind::Categorical,
            _ => true,
        };
    if !applies {
        return nc(format!("method `{}` does not apply to {kind:?} columns in Evidently", method.key()).to_lowercase());
    }
    let mut chart_edges: Option<Vec<f64>> = None;
    let score = match method {
        Method::Ks | Method::Wasserstein => {
            let Some((a, b)) = numbers else {
                return nc(format!("method `{}` needs numeric values", method.key()));
            };
            if method == Method::Ks {
                match stats::ks_2samp(a, b) {
                    Some((_, p)) => p,
                    None => {
                        return nc("K-S needs values on both sides".to_string())
                    }
                }
            } else {
                let norm = stats::std_pop(a).max(0.001);
                stats::normed_wasserstein(a, b, norm)
            }
        }
        Method::ChiSquare => {
            let counts = counts();
            let k_norm = n_cur as f64 / n_ref as f64;
            let f_exp: Vec<f64> = counts.reference.iter().map(|&x| x as f64 * k_norm).collect();
            let f_obs: Vec<f64> = counts.current.iter().map(|&x| x as f64).collect();
            stats::chisquare(&f_obs, &f_exp).1
        }
        Method::Z => {
            let counts = counts();
            let n_values = counts.reference.len();
            let ref_distinct = counts.reference.iter().filter(|&&x| x > 0).count();
            let cur_distinct = counts.current.iter().filter(|&&x| x > 0).count();
            if ref_distinct == 1 && cur_distinct == 1 && n_values == 1 {
                1.0
            } else {
                // The first key in Python's sorted order: numerically for
                // numbers, by code point for strings.
                let first = match &counts.numbers {
                    Some(nums) => (0..n_values).min_by(|&a, &b| nums[a].total_cmp(&nums[b])),
                    None => (0..n_values).min_by(|&a, &b| counts.labels[a].cmp(&counts.labels[b])),
                }
                .unwrap_or(0);
                stats::z_test(n_ref - counts.reference[first], n_ref, n_cur - counts.current[first], n_cur)
            }
        }
        Method::JensenShannon | Method::Psi | Method::KlDiv => {
            let binned = match numbers {
                Some((a, _)) => kind == ColumnKind::Numerical && distinct_sorted(a, 21) > 20,
                None => false,
            };
            let (mut rp, mut cp): (Vec<f64>, Vec<f64>) = match numbers {
                Some((a, b)) if binned => {
                    let lo = a[0].min(b[0]);
                    let hi = a[a.len() - 1].max(b[b.len() - 1]);
                    let edges = stats::sturges_edges(a.len() + b.len(), lo, hi);
                    let rh = stats::histogram_sorted(a, &edges);
                    let ch = stats::histogram_sorted(b, &edges);
                    chart_edges = Some(edges);
                    (
                        rh.iter().map(|&x| x as f64 / n_ref as f64).collect(),
                        ch.iter().map(|&x| x as f64 / n_cur as f64).collect(),
                    )
                }
                _ => (
                    counts().reference.iter().map(|&x| x as f64 / n_ref as f64).collect(),
                    counts().current.iter().map(|&x| x as f64 / n_cur as f64).collect(),
                ),
            };
            match method {
                Method::JensenShannon => stats::jensenshannon(&rp, &cp),
                _ => {
                    stats::fill_zeroes(&mut rp);
                    stats::fill_zeroes(&mut cp);
                    if method == Method::Psi {
                        stats::psi(&rp, &cp)
                    } else {
                        stats::kl_div(&rp, &cp)
                    }
                }
            }
        }
        Method::Hellinger => {
            let bc = if kind == ColumnKind::Categorical {
                let counts = counts();
                counts
                    .reference
                    .iter()
                    .zip(&counts.current)
                    .map(|(&a, &b)| ((a as f64 / n_ref as f64) * (b as f64 / n_cur as f64)).sqrt())
                    .sum::<f64>()
            } else {
                let Some((a, b)) = numbers else {
                    return nc("method `hellinger` needs numeric values for a numerical column".to_string());
                };
                // The distinct values' count, min and max (`+ 0.0`: as the
                // per-value counts store −0.0).
                let distinct = distinct_union(a, b, usize::MAX);
                let lo = a[0].min(b[0]) + 0.0;
                let hi = a[a.len() - 1].max(b[b.len() - 1]) + 0.0;
                let edges = stats::sturges_edges(distinct, lo, hi);
                let (c1, c2) = (stats::histogram_sorted(a, &edges), stats::histogram_sorted(b, &edges));
                if (hi - lo).is_finite() {
                    bhattacharyya(&c1, &c2, &edges)
                } else {
                    // Widths of ~1e307 would overflow and densities
                    // underflow (NumPy fails before that, on the edges):
                    // the coefficient is scale-free, so take the widths of
                    // the edges scaled to magnitudes below 1.
                    let s = stats::unit_scale(lo.abs().max(hi.abs()));
                    let scaled: Vec<f64> = edges.iter().map(|e| e * s).collect();
                    bhattacharyya(&c1, &c2, &scaled)
                }
            };
            (1.0 - bc.clamp(0.0, 1.0)).sqrt()
        }
    };
    if score.is_nan() {
        return nc(format!("method `{}` is undefined here (a single category on both sides?)", method.key()));
    }
    let mut out = ColumnDrift::scored(name, kind, method, score, threshold);
    out.histogram = Some(match numbers {
        Some((a, b)) if kind == ColumnKind::Numerical => {
            let edges = chart_edges.unwrap_or_else(|| {
                let lo = a[0].min(b[0]);
                let hi = a[a.len() - 1].max(b[b.len() - 1]);
                stats::sturges_edges(a.len() + b.len(), lo, hi)
            });
            Histogram::Bins {
                reference: stats::histogram_sorted(a, &edges),
                current: stats::histogram_sorted(b, &edges),
                edges,
            }
        }
        _ => {
            // Labels of numeric values are only formatted for the chart.
            let counts = counts();
            let labels = match &counts.numbers {
                Some(nums) => nums.iter().map(|&x| format_number(x)).collect(),
                None => counts.labels.clone(),
            };
            category_histogram(&labels, &counts.reference, &counts.current)
        }
    });
    out
}

/// Evidently's Bhattacharyya coefficient of two histograms on `edges`:
/// Σ √(p·q)·w over densities, with `w` the mean bin width.
fn bhattacharyya(c1: &[u64], c2: &[u64], edges: &[f64]) -> f64 {
    let (Some(first), Some(last)) = (edges.first(), edges.last()) else {
        return f64::NAN;
    };
    let h1 = density(c1, edges);
    let h2 = density(c2, edges);
    let width = (last - first) / (edges.len() - 1) as f64;
    h1.iter().zip(&h2).map(|(&p, &q)| (p * q).sqrt() * width).sum::<f64>()
}

/// `np.histogram(..., density=True)`: `n / db / n.sum()`.
fn density(counts: &[u64], edges: &[f64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .zip(edges.windows(2))
        .map(|(&n, w)| n as f64 / (w[1] - w[0]) / total as f64)
        .collect()
}
