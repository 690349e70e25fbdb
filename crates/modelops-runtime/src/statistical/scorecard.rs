//! Credit scorecards: each feature's value falls in one bin, the bin gives
//! points, the score is `base_points` plus every feature's points.
//!
//! ```json
//! {"type": "scorecard", "base_points": 400,
//!  "features": [
//!    {"name": "age", "bins": [
//!       {"max": 25, "points": 10, "code": "AGE_YOUNG"},
//!       {"min": 25, "max": 40, "points": 25},
//!       {"min": 40, "points": 40}],
//!     "missing_points": 5, "missing_code": "AGE_MISSING"},
//!    {"name": "housing", "bins": [
//!       {"values": ["rent"], "points": 5, "code": "HOUSING_RENT"},
//!       {"values": ["own", "mortgage"], "points": 30},
//!       {"other": true, "points": 0}]}],
//!  "score_to_probability": {"pdo": 20, "base_score": 600, "base_odds": 50}}
//! ```
//!
//! Numeric bins (`min`/`max`) hold `min <= x < max`; the first may leave
//! out `min` (no lower bound) and the last `max` (no upper bound). They are
//! listed in ascending order and must meet exactly: each bin's `min` is the
//! previous bin's `max` (a gap or an overlap is refused at load). A value
//! outside the covered range is an input error naming the feature, the row
//! and the value. The input is a double (`FP64`).
//!
//! Categorical bins list `values` (text, each in at most one bin); one bin
//! may be `other: true`, taking every value not listed. Without it, an
//! unlisted value is an input error naming the feature, row and value. The
//! input is a string.
//!
//! `missing_points` makes the feature optional: NaN (numeric, the
//! signature allows it) or the empty string (categorical) scores those
//! points; without it a missing value is refused.
//!
//! Reason codes (the explanation): for each feature, points lost = the
//! feature's best points (over its bins and `missing_points`) minus the
//! points scored; features that lost something, most lost first, ties in
//! feature order. A reason's code is the bin's `code` (`missing_code` for
//! a missing value), else the feature's `code`, else the feature's name.
//!
//! `score_to_probability` scales the score to odds the usual way: `pdo`
//! points double the odds, and `base_score` stands at `base_odds` (good to
//! bad, e.g. 50 for 50:1), so `ln(odds) = (score - base_score) × ln 2 / pdo
//! + ln(base_odds)`. The output `probability` is then the probability of a
//! bad outcome, `1 / (1 + odds)`, or of a good one (`odds / (1 + odds)`)
//! with `"probability_of": "good"`.

use super::{check_name, field, finite, load_error, numbers};
use crate::explain::{Contribution, Explanation, ReasonCode};
use crate::spec::{number, quote};
use crate::tensor::{oip_datatype, Tensor, TensorData};
use crate::{Prediction, RuntimeError};
use modelops_core::version::{DataType, SignatureField};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeature {
    name: String,
    bins: Vec<RawBin>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    missing_points: Option<f64>,
    #[serde(default)]
    missing_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBin {
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    values: Option<Vec<String>>,
    #[serde(default)]
    other: bool,
    points: f64,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScaling {
    pdo: f64,
    base_score: f64,
    base_odds: f64,
    #[serde(default)]
    probability_of: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    #[default]
    Bad,
    Good,
}

#[derive(Debug)]
struct Scaling {
    /// ln(odds) = score × slope + offset.
    slope: f64,
    offset: f64,
    of: Outcome,
}

#[derive(Debug)]
struct Bin {
    points: f64,
    code: String,
}

#[derive(Debug)]
enum Bins {
    /// Ascending, meeting exactly: `bins[i].1 == bins[i + 1].0`.
    Numeric(Vec<(f64, f64, Bin)>),
    Categorical {
        bins: Vec<Bin>,
        by_value: HashMap<String, usize>,
        other: Option<usize>,
    },
}

#[derive(Debug)]
struct Feature {
    name: String,
    bins: Bins,
    missing: Option<Bin>,
    best: f64,
}

#[derive(Debug)]
pub(super) struct Scorecard {
    base_points: f64,
    features: Vec<Feature>,
    scaling: Option<Scaling>,
}

impl Scorecard {
    pub(super) fn new(base_points: f64, raw: &[RawFeature], scaling: Option<&RawScaling>) -> Result<Self, super::RuntimeError> {
        let base_points = finite("base_points", base_points)?;
        if raw.is_empty() {
            return Err(load_error("features", "a scorecard needs at least one feature"));
        }
        if raw.len() > super::MAX_FEATURES {
            return Err(load_error("features", format!("{} features; at most {} are allowed", raw.len(), super::MAX_FEATURES)));
        }
        let mut names: Vec<String> = Vec::with_capacity(raw.len());
        let mut features = Vec::with_capacity(raw.len());
        for (f, feature) in raw.iter().enumerate() {
            let path = format!("features[{f}]");
            check_name(&format!("{path}.name"), &feature.name, &names)?;
            names.push(feature.name.clone());
            features.push(Feature::new(&path, feature)?);
        }
        let scaling = match scaling {
            None => None,
            Some(s) => {
                let pdo = finite("score_to_probability.pdo", s.pdo)?;
                let base_score = finite("score_to_probability.base_score", s.base_score)?;
                let base_odds = finite("score_to_probability.base_odds", s.base_odds)?;
                if pdo == 0.0 {
                    return Err(load_error("score_to_probability.pdo", "must not be 0: it is the points that double the odds"));
                }
                if base_odds <= 0.0 {
                    return Err(load_error("score_to_probability.base_odds", format!("`{base_odds}` is not positive odds")));
                }
                let slope = std::f64::consts::LN_2 / pdo;
                Some(Scaling { slope, offset: base_odds.ln() - base_score * slope, of: s.probability_of })
            }
        };
        Ok(Scorecard { base_points, features, scaling })
    }

    pub(super) fn inputs(&self) -> Vec<SignatureField> {
        self.features
            .iter()
            .map(|f| match f.bins {
                Bins::Numeric(_) => field(&f.name, DataType::Float64, f.missing.is_some()),
                Bins::Categorical { .. } => field(&f.name, DataType::String, false),
            })
            .collect()
    }

    pub(super) fn has_probability(&self) -> bool {
        self.scaling.is_some()
    }

    pub(super) fn memory_bytes(&self) -> usize {
        self.features
            .iter()
            .map(|f| {
                128 + match &f.bins {
                    Bins::Numeric(bins) => bins.len() * 64,
                    Bins::Categorical { bins, by_value, .. } => bins.len() * 48 + by_value.keys().map(|k| k.len() + 48).sum::<usize>(),
                }
            })
            .sum()
    }

    pub(super) fn predict(&self, inputs: &[Tensor], rows: usize, explain: bool) -> Result<Prediction, RuntimeError> {
        // points[f][row], the bin chosen (for the reason code) alongside.
        let mut chosen: Vec<Vec<&Bin>> = Vec::with_capacity(self.features.len());
        for (feature, tensor) in self.features.iter().zip(inputs) {
            chosen.push(feature.score(tensor, rows)?);
        }
        let mut scores = vec![self.base_points; rows];
        for bins in &chosen {
            for (score, bin) in scores.iter_mut().zip(bins) {
                *score += bin.points;
            }
        }
        let mut outputs = Vec::with_capacity(2);
        if let Some(scaling) = &self.scaling {
            let probability = scores
                .iter()
                .map(|s| {
                    let log_odds = s * scaling.slope + scaling.offset;
                    match scaling.of {
                        Outcome::Good => super::sigmoid(log_odds),
                        Outcome::Bad => super::sigmoid(-log_odds),
                    }
                })
                .collect();
            outputs.push(Tensor::new("probability", vec![rows], TensorData::Float64(probability)));
        }
        let explanations = explain.then(|| (0..rows).map(|row| self.explain(&chosen, row, scores[row])).collect());
        outputs.insert(0, Tensor::new("score", vec![rows], TensorData::Float64(scores)));
        Ok(Prediction { outputs, explanations, usage: None })
    }

    fn explain(&self, chosen: &[Vec<&Bin>], row: usize, score: f64) -> Explanation {
        let points =
            self.features.iter().zip(chosen).map(|(f, bins)| Contribution { feature: f.name.clone(), value: bins[row].points }).collect();
        let mut reasons: Vec<ReasonCode> = self
            .features
            .iter()
            .zip(chosen)
            .filter_map(|(f, bins)| {
                let bin = bins[row];
                let lost = f.best - bin.points;
                (lost > 0.0).then(|| ReasonCode { feature: f.name.clone(), code: bin.code.clone(), points: bin.points, points_lost: lost })
            })
            .collect();
        // Stable: ties keep feature order.
        reasons.sort_by(|a, b| b.points_lost.total_cmp(&a.points_lost));
        Explanation::Scorecard { score, points, reasons }
    }
}

impl Feature {
    fn new(path: &str, raw: &RawFeature) -> Result<Self, RuntimeError> {
        let default_code = raw.code.clone().unwrap_or_else(|| raw.name.clone());
        let code = |c: &Option<String>| c.clone().unwrap_or_else(|| default_code.clone());
        if raw.bins.is_empty() {
            return Err(load_error(&format!("{path}.bins"), "a feature needs at least one bin"));
        }
        let categorical = raw.bins.iter().any(|b| b.values.is_some() || b.other);
        let mut best = f64::NEG_INFINITY;
        let bins = if categorical {
            let mut bins = Vec::with_capacity(raw.bins.len());
            let mut by_value: HashMap<String, usize> = HashMap::new();
            let mut other = None;
            for (b, bin) in raw.bins.iter().enumerate() {
                let at = format!("{path}.bins[{b}]");
                if bin.min.is_some() || bin.max.is_some() {
                    return Err(load_error(&at, "a feature's bins are either ranges (`min`/`max`) or `values`, not both"));
                }
                let points = finite(&format!("{at}.points"), bin.points)?;
                match (&bin.values, bin.other) {
                    (Some(_), true) => return Err(load_error(&at, "a bin lists `values` or is `other`, not both")),
                    (None, true) => {
                        if let Some(first) = other {
                            return Err(load_error(&format!("{at}.other"), format!("bins[{first}] is the `other` bin already")));
                        }
                        other = Some(b);
                    }
                    (Some(values), false) => {
                        if values.is_empty() {
                            return Err(load_error(&format!("{at}.values"), "a bin needs at least one value"));
                        }
                        for (v, value) in values.iter().enumerate() {
                            if let Some(first) = by_value.insert(value.clone(), b) {
                                return Err(load_error(&format!("{at}.values[{v}]"), format!("{} is in bins[{first}] too", quote(value))));
                            }
                        }
                    }
                    (None, false) => return Err(load_error(&at, "a bin needs `values` (or `other: true`) like the feature's other bins")),
                }
                best = best.max(points);
                bins.push(Bin { points, code: code(&bin.code) });
            }
            if raw.missing_points.is_some() && by_value.contains_key("") {
                return Err(load_error(
                    &format!("{path}.missing_points"),
                    "the empty string marks a missing value and is listed in a bin too",
                ));
            }
            Bins::Categorical { bins, by_value, other }
        } else {
            let last = raw.bins.len() - 1;
            let mut bins: Vec<(f64, f64, Bin)> = Vec::with_capacity(raw.bins.len());
            for (b, bin) in raw.bins.iter().enumerate() {
                let at = format!("{path}.bins[{b}]");
                let points = finite(&format!("{at}.points"), bin.points)?;
                let min = match bin.min {
                    Some(x) => finite(&format!("{at}.min"), x)?,
                    None if b == 0 => f64::NEG_INFINITY,
                    None => return Err(load_error(&format!("{at}.min"), "missing: only the first bin may be open below")),
                };
                let max = match bin.max {
                    Some(x) => finite(&format!("{at}.max"), x)?,
                    None if b == last => f64::INFINITY,
                    None => return Err(load_error(&format!("{at}.max"), "missing: only the last bin may be open above")),
                };
                if min >= max {
                    return Err(load_error(&at, format!("`min` {} is not below `max` {}", number(min), number(max))));
                }
                if let Some((_, previous_max, _)) = bins.last() {
                    if min > *previous_max {
                        return Err(load_error(
                            &format!("{at}.min"),
                            format!("`{}` leaves a gap after bins[{}], which ends at `{}`", number(min), b - 1, number(*previous_max)),
                        ));
                    }
                    if min < *previous_max {
                        return Err(load_error(
                            &format!("{at}.min"),
                            format!(
                                "`{}` overlaps bins[{}], which ends at `{}` (bins are ascending and hold min <= x < max)",
                                number(min),
                                b - 1,
                                number(*previous_max)
                            ),
                        ));
                    }
                }
                best = best.max(points);
                bins.push((min, max, Bin { points, code: code(&bin.code) }));
            }
            Bins::Numeric(bins)
        };
        let missing = match raw.missing_points {
            Some(points) => {
                let points = finite(&format!("{path}.missing_points"), points)?;
                best = best.max(points);
                Some(Bin { points, code: code(&raw.missing_code) })
            }
            None => {
                if raw.missing_code.is_some() {
                    return Err(load_error(&format!("{path}.missing_code"), "applies only with `missing_points`"));
                }
                None
            }
        };
        Ok(Feature { name: raw.name.clone(), bins, missing, best })
    }

    /// The bin each row falls in.
    fn score<'a>(&'a self, tensor: &Tensor, rows: usize) -> Result<Vec<&'a Bin>, RuntimeError> {
        let field = || format!("inputs.{}", self.name);
        let mut out = Vec::with_capacity(rows);
        match &self.bins {
            Bins::Numeric(bins) => {
                let values = numbers(tensor, &self.name, rows, self.missing.is_some())?;
                for (row, &x) in values.iter().enumerate() {
                    if x.is_nan() {
                        match &self.missing {
                            Some(bin) => out.push(bin),
                            None => {
                                return Err(RuntimeError::input(
                                    field(),
                                    format!("row {row} is NaN (missing) and the feature has no `missing_points`"),
                                ))
                            }
                        }
                        continue;
                    }
                    // The first bin whose upper bound is above x.
                    let i = bins.partition_point(|(_, max, _)| *max <= x);
                    match bins.get(i) {
                        Some((min, _, bin)) if *min <= x => out.push(bin),
                        _ => {
                            let low = bins.first().map_or(f64::NEG_INFINITY, |b| b.0);
                            let high = bins.last().map_or(f64::INFINITY, |b| b.1);
                            return Err(RuntimeError::input(
                                field(),
                                format!(
                                    "row {row}: `{}` falls in no bin (the bins cover {} <= x < {})",
                                    number(x),
                                    number(low),
                                    number(high)
                                ),
                            ));
                        }
                    }
                }
            }
            Bins::Categorical { bins, by_value, other } => {
                let TensorData::String(values) = &tensor.data else {
                    return Err(RuntimeError::input(
                        field(),
                        format!("datatype {} where the signature says BYTES", oip_datatype(tensor.data.dtype())),
                    ));
                };
                if values.len() != rows {
                    return Err(RuntimeError::input(field(), format!("{} values for {rows} rows: each row takes one value", values.len())));
                }
                for (row, value) in values.iter().enumerate() {
                    if value.is_empty() {
                        if let Some(bin) = &self.missing {
                            out.push(bin);
                            continue;
                        }
                    }
                    match by_value.get(value.as_str()).copied().or(*other) {
                        Some(b) => out.push(&bins[b]),
                        None => {
                            let mut known: Vec<&str> = by_value.keys().map(String::as_str).collect();
                            known.sort_unstable();
                            let shown: Vec<String> = known.iter().take(10).map(|k| quote(k)).collect();
                            let more = if known.len() > 10 { ", …" } else { "" };
                            return Err(RuntimeError::input(
                                field(),
                                format!("row {row}: {} is in no bin (the bins list {}{more})", quote(value), shown.join(", ")),
                            ));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
