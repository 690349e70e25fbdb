//! The default mode: the current window against a reference [`Profile`].
//!
//! Where it differs from Evidently, and why:
//! - categorical columns (and numerical ones with ≤ 5 values) with a small
//!   reference use the chi-square test of homogeneity on the 2×K table of
//!   reference and current counts. Evidently's goodness-of-fit test treats
//!   the reference shares as exact, which roughly doubles the statistic
//!   under no drift and gives false alarms far above the nominal 5 %;
//! - the binary case uses the same contingency test (equal to the two-sided
//!   pooled Z-test), so there is one rule for 2 or K categories;
//! - binned methods use bins fitted on the reference only (equal-frequency,
//!   open-ended), so the reference side is computed once and every window
//!   is compared on the same bins; Evidently re-derives Sturges bins from
//!   reference + current on every call;
//! - for large references Wasserstein is computed against the profile's
//!   sorted sample (exact up to [`EXACT_SAMPLE`] values, 10 000 quantiles
//!   beyond), so no raw reference is needed.

use rayon::prelude::*;

use super::stats;
use super::{
    category_histogram, summarise, ColumnDrift, ColumnKind, DriftOptions, DriftReport, Histogram, Method, Mode,
    Source,
};
use crate::data::{format_number, Table};
use crate::error::{Error, Result};
use crate::profile::{ColumnAggregate, ColumnProfile, Profile};

/// Reference sizes up to this use tests (p-values); above, distances.
const SMALL_REFERENCE: u64 = 1000;

pub(super) fn compare(profile: &Profile, profile_path: &str, current: &Table, options: &DriftOptions) -> Result<DriftReport> {
    let names: Vec<String> = match &options.columns {
        Some(cols) => cols.clone(),
        None => profile.columns.iter().map(|c| c.name.clone()).collect(),
    };
    let pairs = names
        .iter()
        .map(|name| {
            let p = profile.column(name).ok_or_else(|| Error::FileColumn {
                path: profile_path.to_string(),
                column: name.clone(),
                reason: "no such column in the reference".to_string(),
            })?;
            let c = current.column(name).ok_or_else(|| Error::FileColumn {
                path: current.path.display().to_string(),
                column: name.clone(),
                reason: format!("no such column (the reference `{profile_path}` has it): the schemas differ"),
            })?;
            Ok((p, c))
        })
        .collect::<Result<Vec<_>>>()?;
    let cur_path = current.path.display().to_string();
    let columns = pairs
        .par_iter()
        .map(|(p, c)| {
            let keep_sample = needs_sample(p, options);
            let agg = ColumnAggregate::of(p, c, keep_sample);
            column_drift(p, &agg, profile_path, &cur_path, options)
        })
        .collect();
    Ok(summarise(
        Mode::Default,
        Source { path: profile_path.to_string(), rows: profile.rows },
        Source { path: cur_path, rows: current.rows },
        options.drift_share,
        columns,
    ))
}

/// Drift of a current window already summarised column by column (the
/// server's live monitors merge [`ColumnAggregate`]s batch by batch): the
/// same per-column rules and numbers as [`compare`] over the window's rows.
/// `columns` are the columns compared, in order; a column without an
/// aggregate had no values in the window.
pub(super) fn compare_aggregates(
    profile: &Profile,
    profile_path: &str,
    current: &Source,
    columns: &[(String, ColumnAggregate)],
    options: &DriftOptions,
) -> Result<DriftReport> {
    let results = columns
        .par_iter()
        .map(|(name, agg)| {
            let p = profile.column(name).ok_or_else(|| Error::FileColumn {
                path: profile_path.to_string(),
                column: name.clone(),
                reason: "no such column in the reference".to_string(),
            })?;
            Ok(column_drift(p, agg, profile_path, &current.path, options))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(summarise(
        Mode::Default,
        Source { path: profile_path.to_string(), rows: profile.rows },
        current.clone(),
        options.drift_share,
        results,
    ))
}

pub(super) fn needs_sample(p: &ColumnProfile, options: &DriftOptions) -> bool {
    match options.method {
        Some(m) => matches!(m, Method::Ks | Method::Wasserstein),
        None => p.numeric.as_ref().is_some_and(|n| n.values.is_none() || n.values.as_ref().is_some_and(|v| v.len() > 5)),
    }
}

/// Reference and current counts over the union of categories / values.
struct Counts {
    labels: Vec<String>,
    reference: Vec<u64>,
    current: Vec<u64>,
}

fn category_union(p: &ColumnProfile, agg: &ColumnAggregate) -> Counts {
    let mut out = Counts { labels: vec![], reference: vec![], current: vec![] };
    let empty = Default::default();
    let refc = p.categories.as_ref().unwrap_or(&empty);
    for (label, &n) in refc {
        out.labels.push(label.clone());
        out.reference.push(n);
        out.current.push(agg.categories.get(label).copied().unwrap_or(0));
    }
    for (label, &n) in &agg.categories {
        if !refc.contains_key(label) {
            out.labels.push(label.clone());
            out.reference.push(0);
            out.current.push(n);
        }
    }
    out
}

/// Per-bin counts of a numeric column on the reference bins, with labels.
fn numeric_bins(p: &ColumnProfile, agg: &ColumnAggregate) -> Option<(Counts, Vec<f64>)> {
    let num = p.numeric.as_ref()?;
    match &num.values {
        Some(values) => {
            let mut labels: Vec<String> = values.iter().map(|v| format_number(v.0)).collect();
            labels.push("other".to_string());
            let mut reference: Vec<u64> = values.iter().map(|v| v.1).collect();
            reference.push(0);
            Some((Counts { labels, reference, current: agg.bins.clone() }, Vec::new()))
        }
        None => {
            // Outer bins are open-ended; for charts they end at the extremes
            // seen on either side.
            let mut edges = vec![num.moments.min.min(agg.moments.min)];
            edges.extend_from_slice(&num.edges);
            edges.push(num.moments.max.max(agg.moments.max));
            let labels = edges.windows(2).map(|w| format!("[{}, {})", w[0], w[1])).collect();
            Some((Counts { labels, reference: num.bin_counts.clone(), current: agg.bins.clone() }, edges))
        }
    }
}

fn column_drift(p: &ColumnProfile, agg: &ColumnAggregate, ref_path: &str, cur_path: &str, options: &DriftOptions) -> ColumnDrift {
    let name = p.name.as_str();
    let Some(kind) = p.kind else {
        return ColumnDrift::not_computed(name, None, p.unusable.clone().unwrap_or_default());
    };
    let mut out = compute(p, kind, agg, ref_path, cur_path, options);
    out.reference_count = p.count;
    out.reference_missing = p.missing;
    out.current_count = agg.count;
    out.current_missing = agg.missing;
    out
}

fn compute(
    p: &ColumnProfile,
    kind: ColumnKind,
    agg: &ColumnAggregate,
    ref_path: &str,
    cur_path: &str,
    options: &DriftOptions,
) -> ColumnDrift {
    let name = p.name.as_str();
    let nc = |reason: String| ColumnDrift::not_computed(name, Some(kind), reason);
    if p.count == 0 {
        return nc(format!("no finite values in the reference `{ref_path}` (all missing or infinite)"));
    }
    if agg.count == 0 {
        return nc(format!("no finite values in the current `{cur_path}` (all missing or infinite)"));
    }
    if kind == ColumnKind::Numerical && p.numeric.is_some() && !agg.categories.is_empty() {
        return nc(format!("numbers in `{ref_path}` but text in `{cur_path}`: the schemas differ"));
    }
    // Distinct values over reference ∪ current, as far as the rule needs it.
    let (counts, edges) = match kind {
        ColumnKind::Categorical => (category_union(p, agg), Vec::new()),
        ColumnKind::Numerical => match numeric_bins(p, agg) {
            Some(x) => x,
            None => return nc("no numeric profile".to_string()),
        },
    };
    let n_values = match (kind, p.numeric.as_ref().and_then(|n| n.values.as_ref())) {
        (ColumnKind::Categorical, _) => counts.labels.len(),
        (ColumnKind::Numerical, Some(values)) => values.len() + agg.new_values.len(),
        (ColumnKind::Numerical, None) => usize::MAX,
    };
    let few_values = n_values <= 5;
    let small = p.count <= SMALL_REFERENCE;
    let method = options.method.unwrap_or(match (kind, few_values, small) {
        (ColumnKind::Categorical, _, true) | (ColumnKind::Numerical, true, true) => Method::ChiSquare,
        (ColumnKind::Categorical, _, false) | (ColumnKind::Numerical, true, false) => Method::JensenShannon,
        (ColumnKind::Numerical, false, true) => Method::Ks,
        (ColumnKind::Numerical, false, false) => Method::Wasserstein,
    });
    let threshold = options.threshold.unwrap_or_else(|| method.default_threshold());
    let (nr, ncur) = (p.count as f64, agg.count as f64);
    let shares = |v: &[u64], n: f64| v.iter().map(|&x| x as f64 / n).collect::<Vec<f64>>();
    let score = match method {
        Method::Ks | Method::Wasserstein => {
            let (Some(num), Some(sample)) = (p.numeric.as_ref(), agg.sample.as_ref()) else {
                return nc(format!("method `{}` needs numeric values", method.key()));
            };
            let mut cur = sample.clone();
            crate::sort::sort_f64(&mut cur);
            if method == Method::Ks {
                if !num.exact {
                    return nc(format!(
                        "method `ks` needs every reference value; the profile keeps {} quantiles of {}",
                        num.sample.len(),
                        p.count
                    ));
                }
                match stats::ks_2samp(&num.sample, &cur) {
                    Some((_, pv)) => pv,
                    None => {
                        return nc("K-S needs values on both sides".to_string())
                    }
                }
            } else {
                stats::normed_wasserstein(&num.sample, &cur, num.moments.std().max(0.001))
            }
        }
        Method::ChiSquare => stats::chi2_contingency(&counts.reference, &counts.current).1,
        Method::Z => {
            // First key vs the rest, pooled two-sided z (= 2×2 contingency).
            let first = (0..counts.labels.len())
                .filter(|&i| counts.reference[i] + counts.current[i] > 0)
                .min_by(|&a, &b| counts.labels[a].cmp(&counts.labels[b]))
                .unwrap_or(0);
            let total_distinct = counts.reference.iter().zip(&counts.current).filter(|(a, b)| **a + **b > 0).count();
            if total_distinct <= 1 {
                1.0
            } else {
                stats::z_test(p.count - counts.reference[first], p.count, agg.count - counts.current[first], agg.count)
            }
        }
        Method::JensenShannon => stats::jensenshannon(&shares(&counts.reference, nr), &shares(&counts.current, ncur)),
        Method::Psi | Method::KlDiv => {
            let (mut r, mut c) = (shares(&counts.reference, nr), shares(&counts.current, ncur));
            // Drop bins empty on both sides (the discrete "other" bin).
            let keep: Vec<bool> = r.iter().zip(&c).map(|(a, b)| *a > 0.0 || *b > 0.0).collect();
            r = r.into_iter().zip(&keep).filter(|x| *x.1).map(|x| x.0).collect();
            c = c.into_iter().zip(&keep).filter(|x| *x.1).map(|x| x.0).collect();
            stats::fill_zeroes(&mut r);
            stats::fill_zeroes(&mut c);
            if method == Method::Psi {
                stats::psi(&r, &c)
            } else {
                stats::kl_div(&r, &c)
            }
        }
        Method::Hellinger => {
            let bc: f64 = shares(&counts.reference, nr)
                .iter()
                .zip(shares(&counts.current, ncur))
                .map(|(a, b)| (a * b).sqrt())
                .sum();
            (1.0 - bc.clamp(0.0, 1.0)).sqrt()
        }
    };
    if score.is_nan() {
        return nc(format!("method `{}` is undefined here", method.key()));
    }
    let mut out = ColumnDrift::scored(name, kind, method, score, threshold);
    out.histogram = Some(if edges.is_empty() {
        category_histogram(&counts.labels, &counts.reference, &counts.current)
    } else {
        Histogram::Bins { edges, reference: counts.reference, current: counts.current }
    });
    out
}
