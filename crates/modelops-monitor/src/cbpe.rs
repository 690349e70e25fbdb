//! Confidence-based performance estimation (CBPE) for binary classifiers:
//! the performance a model has on data whose labels are not known yet,
//! estimated from its scores, as NannyML 0.13.1 does it
//! (`nannyml.performance_estimation.confidence_based`, binary case).
//!
//! [`Cbpe::fit`] looks at a labelled reference once and decides, with
//! NannyML's test (`nannyml.calibration.needs_calibration`), whether the
//! scores must first be calibrated into probabilities: ten stratified
//! 90/10 splits of the reference (scikit-learn's `StratifiedShuffleSplit`
//! with `random_state=42`, whose NumPy MT19937 draws are reproduced here),
//! an isotonic regression fitted on each training part, and the expected
//! calibration error (ECE, 10 equal-count bins) of the held-out parts
//! before and after; calibration is used when it lowers the ECE, never when
//! the reference ROC AUC is above 0.999. The calibrator is then an isotonic
//! regression over the whole reference (scikit-learn's
//! `IsotonicRegression(out_of_bounds="clip")`: pool adjacent violators
//! with SciPy's arithmetic, linear interpolation between the thresholds as
//! `numpy.interp`, clipped outside them).
//!
//! [`Cbpe::estimate`] then treats each calibrated score `p` as the chance
//! that the row is positive: accuracy is the mean of `p` over rows
//! predicted positive and `1 - p` over the others; precision, recall and F1
//! use the same expected confusion counts; ROC AUC is the area under the
//! curve traced by the expected true and false positives, the rows taken by
//! decreasing uncalibrated score, with NannyML's rounding of the cumulated
//! counts to five decimals. Sums are NumPy's pairwise sums, so the figures
//! equal NannyML's to the last bits (`tests/python/test_cbpe_nannyml.py`).
//!
//! One difference is inherent: NumPy sorts the held-out scores for the ECE
//! with an unstable sort whose order among tied scores depends on the CPU
//! (x86-simd-sort on AVX2/AVX-512, introsort elsewhere). Here ties keep
//! their order. The two ECEs, hence the decision, can differ only when tied
//! scores straddle a bin edge and the two ECEs are that close; NannyML
//! itself then answers differently on different machines.
//!
//! Not reproduced (yet): sampling errors, confidence bands and the alert
//! thresholds NannyML derives from reference chunks.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::{Column, ColumnData, Table};
use crate::error::{Error, Result};
use crate::performance;

/// NannyML's `needs_calibration` settings: splits, held-out share, seed of
/// the splits, ECE bins, and the reference ROC AUC above which scores are
/// taken as they are.
const SPLITS: usize = 10;
const TEST_SIZE: f64 = 0.1;
const SPLIT_SEED: u32 = 42;
const ECE_BINS: usize = 10;
const NO_CALIBRATION_ABOVE_AUC: f64 = 0.999;

/// The names the inputs are called by in error messages: the columns they
/// were read from, or `score`, `label` and `prediction`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fields {
    pub score: String,
    pub label: String,
    pub prediction: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields { score: "score".to_owned(), label: "label".to_owned(), prediction: "prediction".to_owned() }
    }
}

/// A CBPE estimator fitted on a labelled reference. Serialisable: store it
/// as JSON beside the reference profile and estimate every window with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cbpe {
    /// The columns it was fitted on.
    pub fields: Fields,
    pub reference_rows: usize,
    /// Performance on the reference itself, from its labels.
    pub reference_accuracy: f64,
    pub reference_roc_auc: f64,
    /// Why the scores are (or are not) calibrated.
    pub calibration: CalibrationCheck,
    /// The calibrator, when calibration was found to help; `None` means the
    /// scores are taken as probabilities as they are.
    pub calibrator: Option<Isotonic>,
}

/// The outcome of NannyML's calibration test on the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCheck {
    pub needed: bool,
    pub reason: String,
    /// ECE of the held-out scores as they are and once calibrated (absent
    /// when the test stopped before the splits).
    pub ece_uncalibrated: Option<f64>,
    pub ece_calibrated: Option<f64>,
}

/// Estimated performance of one window (chunk). A metric is `None` when it
/// cannot be estimated; [`Estimate::not_computed`] says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub rows: usize,
    pub accuracy: Option<f64>,
    pub roc_auc: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub not_computed: BTreeMap<String, String>,
}

impl Cbpe {
    /// Fit on a labelled reference, the inputs called `score`, `label` and
    /// `prediction` in errors.
    pub fn fit(reference_scores: &[f64], reference_labels: &[bool], reference_predictions: &[bool]) -> Result<Cbpe> {
        Cbpe::fit_with_fields(Fields::default(), reference_scores, reference_labels, reference_predictions)
    }

    /// [`Cbpe::fit`], naming the inputs after their columns.
    pub fn fit_with_fields(
        fields: Fields,
        reference_scores: &[f64],
        reference_labels: &[bool],
        reference_predictions: &[bool],
    ) -> Result<Cbpe> {
        let n = reference_scores.len();
        for (name, len) in [(&fields.label, reference_labels.len()), (&fields.prediction, reference_predictions.len())] {
            if len != n {
                return Err(Error::InvalidInput(format!(
                    "reference: `{}` has {n} rows but `{name}` has {len}",
                    fields.score
                )));
            }
        }
        if n == 0 {
            return Err(Error::InvalidInput("reference: no rows to fit on".to_owned()));
        }
        check_scores(&fields.score, reference_scores)?;
        let positives = reference_labels.iter().filter(|&&t| t).count();
        for (class, count) in [(true, positives), (false, n - positives)] {
            if count < 2 {
                return Err(Error::column(
                    &fields.label,
                    format!(
                        "the reference has {count} row(s) labelled `{class}` among {n}; \
                         estimating performance needs at least 2 of each class"
                    ),
                ));
            }
        }
        let n_test = (TEST_SIZE * n as f64).ceil() as usize;
        if n_test < 2 || n - n_test < 2 {
            return Err(Error::InvalidInput(format!(
                "reference: {n} rows are too few to test calibration (needs at least 20)"
            )));
        }
        let reference_roc_auc = performance::roc_auc(reference_labels, reference_scores)
            .ok_or_else(|| Error::Internal("reference ROC AUC with both classes present".to_owned()))?;
        let correct = reference_labels.iter().zip(reference_predictions).filter(|(t, p)| t == p).count();
        let reference_accuracy = correct as f64 / n as f64;

        let calibration = calibration_check(reference_scores, reference_labels, reference_roc_auc)?;
        let calibrator = calibration.needed.then(|| Isotonic::fit(reference_scores, reference_labels));
        Ok(Cbpe { fields, reference_rows: n, reference_accuracy, reference_roc_auc, calibration, calibrator })
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| Error::Internal(format!("cannot serialise the estimator: {e}")))
    }

    pub fn from_json(text: &str) -> Result<Cbpe> {
        let cbpe: Cbpe = serde_json::from_str(text)
            .map_err(|e| Error::InvalidInput(format!("not a CBPE estimator: {e}")))?;
        if let Some(iso) = &cbpe.calibrator {
            iso.check()?;
        }
        Ok(cbpe)
    }

    /// The probability of the positive class NannyML works with: the score
    /// through the calibrator, or as it is.
    pub fn calibrate(&self, score: f64) -> f64 {
        match &self.calibrator {
            Some(iso) => iso.predict(score),
            None => score,
        }
    }

    /// Estimate the performance of one window of unlabelled rows. Scores
    /// must be probabilities (finite, in [0, 1]); rows with a missing value
    /// are the caller's to drop.
    pub fn estimate(&self, scores: &[f64], predictions: &[bool]) -> Result<Estimate> {
        if scores.len() != predictions.len() {
            return Err(Error::InvalidInput(format!(
                "`{}` has {} rows but `{}` has {}",
                self.fields.score,
                scores.len(),
                self.fields.prediction,
                predictions.len()
            )));
        }
        check_scores(&self.fields.score, scores)?;
        let n = scores.len();
        let mut not_computed = BTreeMap::new();
        if n == 0 {
            for name in ["accuracy", "roc_auc", "precision", "recall", "f1"] {
                not_computed.insert(name.to_owned(), "no rows".to_owned());
            }
            return Ok(Estimate {
                rows: 0,
                accuracy: None,
                roc_auc: None,
                precision: None,
                recall: None,
                f1: None,
                not_computed,
            });
        }
        let p: Vec<f64> = scores.iter().map(|&s| self.calibrate(s)).collect();
        // NannyML's np.where(...) columns, zeros included: the zeros take part
        // in the pairwise sums, so they shape the rounding.
        let pick = |f: &dyn Fn(bool, f64) -> f64| -> f64 {
            let v: Vec<f64> = predictions.iter().zip(&p).map(|(&pred, &pi)| f(pred, pi)).collect();
            pairwise_sum(&v)
        };
        let tp = pick(&|pred, pi| if pred { pi } else { 0.0 });
        let fp = pick(&|pred, pi| if pred { 1.0 - pi } else { 0.0 });
        let tn = pick(&|pred, pi| if pred { 0.0 } else { 1.0 - pi });
        let fn_ = pick(&|pred, pi| if pred { 0.0 } else { pi });
        // NannyML answers 0 for a zero denominator, as scikit-learn does.
        let ratio = |num: f64, den: f64| if den != 0.0 { num / den } else { 0.0 };
        let roc_auc = match estimate_roc_auc(&p, scores) {
            Ok(v) => Some(v),
            Err(reason) => {
                not_computed.insert("roc_auc".to_owned(), reason);
                None
            }
        };
        Ok(Estimate {
            rows: n,
            accuracy: Some((tp + tn) / n as f64),
            roc_auc,
            precision: Some(ratio(tp, tp + fp)),
            recall: Some(ratio(tp, tp + fn_)),
            f1: Some(ratio(tp, tp + 0.5 * (fp + fn_))),
            not_computed,
        })
    }
}

/// Scores must be probabilities: finite and within [0, 1].
fn check_scores(field: &str, scores: &[f64]) -> Result<()> {
    if let Some((row, v)) = scores.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
        return Err(Error::column(field, format!("row {row}: score `{v}` is not a probability in [0, 1]")));
    }
    Ok(())
}

/// `a < b` as NumPy orders floats (no NaN reaches here; -0 equals 0).
fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// NannyML's `estimate_roc_auc`: rows by decreasing uncalibrated score,
/// cumulated calibrated probabilities as expected true positives, their
/// complement as expected false positives, both rounded to 5 decimals, and
/// the trapezoid under the resulting curve.
fn estimate_roc_auc(calibrated: &[f64], uncalibrated: &[f64]) -> std::result::Result<f64, String> {
    let n = calibrated.len();
    let mut order: Vec<usize> = (0..n).collect();
    // Tied uncalibrated scores have equal calibrated ones, so their order
    // changes no partial sum.
    order.sort_by(|&a, &b| cmp_f64(uncalibrated[b], uncalibrated[a]));
    let round5 = |x: f64| (x * 100_000.0).round_ties_even() / 100_000.0;
    let (mut tps, mut fps) = (Vec::with_capacity(n + 1), Vec::with_capacity(n + 1));
    tps.push(0.0);
    fps.push(0.0);
    let mut cum = 0.0;
    for (i, &row) in order.iter().enumerate() {
        cum += calibrated[row];
        tps.push(round5(cum));
        fps.push(round5((i + 1) as f64 - cum));
    }
    let (tp_total, fp_total) = (tps[n], fps[n]);
    if tp_total == 0.0 {
        return Err("the calibrated scores expect no positive row".to_owned());
    }
    if fp_total == 0.0 {
        return Err("the calibrated scores expect no negative row".to_owned());
    }
    let tpr: Vec<f64> = tps.iter().map(|t| t / tp_total).collect();
    let fpr: Vec<f64> = fps.iter().map(|f| f / fp_total).collect();
    // scikit-learn's `auc`: the curve must be monotonic in x.
    let dx: Vec<f64> = fpr.windows(2).map(|w| w[1] - w[0]).collect();
    let direction = if dx.iter().any(|&d| d < 0.0) {
        if dx.iter().all(|&d| d <= 0.0) {
            -1.0
        } else {
            return Err("the expected false positive rate is not monotonic".to_owned());
        }
    } else {
        1.0
    };
    let terms: Vec<f64> = dx.iter().zip(tpr.windows(2)).map(|(d, y)| d * (y[1] + y[0]) / 2.0).collect();
    Ok(direction * pairwise_sum(&terms))
}

/// NumPy's `add.reduce` over a contiguous float64 array: pairwise summation
/// with blocks of 128 summed in 8 lanes.
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (j, rj) in r.iter_mut().enumerate() {
                *rj += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[i..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

// ---------------------------------------------------------------------------
// Isotonic regression

/// A fitted isotonic regression (increasing, clipped outside the fitted
/// range): scikit-learn's `X_thresholds_` and `y_thresholds_`. Between two
/// thresholds the prediction is linear; below the first and above the last
/// it is the first or last `y`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
}

impl Isotonic {
    /// Fit on scores and 0/1 targets. Equal scores (closer than 1e-15, as
    /// scikit-learn merges them) are pooled first; then pool adjacent
    /// violators; then the points whose neighbours both carry the same value
    /// are dropped. `x` must not be empty (callers check).
    pub fn fit(x: &[f64], y: &[bool]) -> Isotonic {
        let n = x.len().min(y.len());
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| cmp_f64(x[a], x[b]).then(y[a].cmp(&y[b])));
        // scikit-learn's `_make_unique`: mean target per distinct score.
        const EPS: f64 = 1e-15;
        let (mut ux, mut uy, mut uw) = (Vec::new(), Vec::new(), Vec::new());
        if let Some(&first) = order.first() {
            let mut current_x = x[first];
            let (mut current_y, mut current_w) = (0.0, 0.0);
            for &row in &order {
                let (xi, yi) = (x[row], if y[row] { 1.0 } else { 0.0 });
                if xi - current_x >= EPS {
                    ux.push(current_x);
                    uw.push(current_w);
                    uy.push(current_y / current_w);
                    current_x = xi;
                    current_w = 1.0;
                    current_y = yi;
                } else {
                    current_w += 1.0;
                    current_y += yi;
                }
            }
            ux.push(current_x);
            uw.push(current_w);
            uy.push(current_y / current_w);
        }
        let fitted = pava(uy, uw);
        // Keep the ends and every point that differs from a neighbour.
        let m = fitted.len();
        let keep = |i: usize| i == 0 || i + 1 == m || fitted[i] != fitted[i - 1] || fitted[i] != fitted[i + 1];
        let (xs, ys) = (0..m).filter(|&i| keep(i)).map(|i| (ux[i], fitted[i])).unzip();
        Isotonic { x: xs, y: ys }
    }

    /// The calibrated value of `t`: `numpy.interp` over the thresholds after
    /// clipping `t` to their range.
    pub fn predict(&self, t: f64) -> f64 {
        let (x, y) = (&self.x, &self.y);
        let m = x.len().min(y.len());
        if m == 0 {
            return t;
        }
        if m == 1 {
            return y[0];
        }
        let t = t.max(x[0]).min(x[m - 1]);
        // The last j with x[j] <= t.
        let j = x[..m].partition_point(|&v| v <= t).saturating_sub(1);
        if j >= m - 1 || x[j] == t {
            return y[j];
        }
        let slope = (y[j + 1] - y[j]) / (x[j + 1] - x[j]);
        slope * (t - x[j]) + y[j]
    }

    /// A deserialised calibrator must be usable: equal lengths, finite,
    /// increasing thresholds.
    fn check(&self) -> Result<()> {
        if self.x.len() != self.y.len() || self.x.is_empty() {
            return Err(Error::InvalidInput(format!(
                "calibrator: {} thresholds but {} values",
                self.x.len(),
                self.y.len()
            )));
        }
        if let Some(v) = self.x.iter().chain(&self.y).find(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!("calibrator: value `{v}` is not finite")));
        }
        if let Some(w) = self.x.windows(2).find(|w| w[1] <= w[0]) {
            return Err(Error::InvalidInput(format!(
                "calibrator: thresholds must increase (`{}` then `{}`)",
                w[0], w[1]
            )));
        }
        Ok(())
    }
}

/// Pool adjacent violators over `x` with weights `w`, in the arithmetic of
/// SciPy's `optimize.isotonic_regression` (Busing 2022, Algorithm 1, with
/// equal neighbours pooled): each block keeps its weighted sum, extended
/// one element at a time, so the block means round as SciPy's do.
fn pava(mut x: Vec<f64>, mut w: Vec<f64>) -> Vec<f64> {
    let n = x.len();
    if n < 2 {
        return x;
    }
    // r[k]..r[k + 1] is block k.
    let mut r = vec![0usize; n + 1];
    r[1] = 1;
    let mut b = 0usize;
    let (mut xb_prev, mut wb_prev) = (x[0], w[0]);
    let mut i = 1;
    while i < n {
        b += 1;
        let (mut xb, mut wb) = (x[i], w[i]);
        if xb_prev >= xb {
            b -= 1;
            let mut sb = wb_prev * xb_prev + wb * xb;
            wb += wb_prev;
            xb = sb / wb;
            while i < n - 1 && xb >= x[i + 1] {
                i += 1;
                sb += w[i] * x[i];
                wb += w[i];
                xb = sb / wb;
            }
            while b > 0 && x[b - 1] >= xb {
                b -= 1;
                sb += w[b] * x[b];
                wb += w[b];
                xb = sb / wb;
            }
        }
        x[b] = xb;
        xb_prev = xb;
        w[b] = wb;
        wb_prev = wb;
        r[b + 1] = i + 1;
        i += 1;
    }
    // Spread each block's value over its elements, last block first.
    let mut out = vec![0.0; n];
    for k in (0..=b).rev() {
        let value = x[k];
        for slot in &mut out[r[k]..r[k + 1]] {
            *slot = value;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// NannyML's calibration test

fn calibration_check(scores: &[f64], labels: &[bool], reference_roc_auc: f64) -> Result<CalibrationCheck> {
    if reference_roc_auc > NO_CALIBRATION_ABOVE_AUC {
        return Ok(CalibrationCheck {
            needed: false,
            reason: format!(
                "reference ROC AUC {reference_roc_auc} is above {NO_CALIBRATION_ABOVE_AUC}: scores taken as they are"
            ),
            ece_uncalibrated: None,
            ece_calibrated: None,
        });
    }
    let splits = stratified_shuffle_split(labels, SPLITS, TEST_SIZE, SPLIT_SEED)?;
    let (mut held_labels, mut held_raw, mut held_calibrated) = (Vec::new(), Vec::new(), Vec::new());
    for (train, test) in &splits {
        let train_x: Vec<f64> = train.iter().map(|&i| scores[i]).collect();
        let train_y: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
        let iso = Isotonic::fit(&train_x, &train_y);
        for &i in test {
            held_labels.push(labels[i]);
            held_raw.push(scores[i]);
            held_calibrated.push(iso.predict(scores[i]));
        }
    }
    let edges = bin_edges(held_raw.len(), ECE_BINS)?;
    let before = expected_calibration_error(&held_labels, &held_raw, &edges);
    let after = expected_calibration_error(&held_labels, &held_calibrated, &edges);
    let needed = before > after;
    Ok(CalibrationCheck {
        needed,
        reason: format!(
            "held-out ECE over {SPLITS} stratified splits: {before} as scored, {after} calibrated: {}",
            if needed { "calibrating" } else { "scores taken as they are" }
        ),
        ece_uncalibrated: Some(before),
        ece_calibrated: Some(after),
    })
}

/// NannyML's `_get_bin_index_edges`: `bins` runs of equal length (the last
/// takes the rest), fewer when there are not 2 rows per bin.
fn bin_edges(len: usize, bins: usize) -> Result<Vec<(usize, usize)>> {
    let mut bins = bins;
    if len <= 2 * bins {
        bins = len / 2;
        if bins < 2 {
            return Err(Error::InvalidInput(format!(
                "reference: {len} held-out rows cannot fill 2 calibration bins"
            )));
        }
    }
    let width = len / bins;
    let mut edges: Vec<usize> = (0..=len).step_by(width).collect();
    if let Some(last) = edges.last_mut() {
        *last = len;
    }
    Ok(edges.windows(2).map(|w| (w[0], w[1])).collect())
}

/// NannyML's ECE: rows sorted by probability (ties in their order, see the
/// module documentation), cut at `edges`, the mean |probability - share of
/// positives| per bin weighted by the bin's share of rows.
fn expected_calibration_error(labels: &[bool], proba: &[f64], edges: &[(usize, usize)]) -> f64 {
    let n = proba.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| cmp_f64(proba[a], proba[b]));
    let sorted_p: Vec<f64> = order.iter().map(|&i| proba[i]).collect();
    let terms: Vec<f64> = edges
        .iter()
        .map(|&(l, r)| {
            let len = (r - l) as f64;
            let mean_p = pairwise_sum(&sorted_p[l..r]) / len;
            let positives = order[l..r].iter().filter(|&&i| labels[i]).count() as f64;
            let mean_t = positives / len;
            (len / n as f64) * (mean_p - mean_t).abs()
        })
        .collect();
    pairwise_sum(&terms)
}

// ---------------------------------------------------------------------------
// scikit-learn's StratifiedShuffleSplit over NumPy's legacy RandomState

/// The Mersenne Twister MT19937 as NumPy's legacy `RandomState(seed)` runs it.
struct Mt19937 {
    state: [u32; 624],
    pos: usize,
}

impl Mt19937 {
    fn new(seed: u32) -> Self {
        let mut state = [0u32; 624];
        state[0] = seed;
        for i in 1..624 {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Mt19937 { state, pos: 624 }
    }

    fn generate(&mut self) {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        for i in 0..624 {
            let y = (self.state[i] & UPPER) | (self.state[(i + 1) % 624] & LOWER);
            let mut next = self.state[(i + 397) % 624] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= MATRIX_A;
            }
            self.state[i] = next;
        }
        self.pos = 0;
    }

    fn next_u32(&mut self) -> u32 {
        if self.pos >= 624 {
            self.generate();
        }
        let mut y = self.state[self.pos];
        self.pos += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// NumPy's `random_interval`: uniform in `[0, max]` by masked rejection.
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for shift in [1, 2, 4, 8, 16, 32] {
            mask |= mask >> shift;
        }
        if max <= u64::from(u32::MAX) {
            loop {
                let v = u64::from(self.next_u32()) & mask;
                if v <= max {
                    return v;
                }
            }
        }
        loop {
            let hi = u64::from(self.next_u32());
            let lo = u64::from(self.next_u32());
            let v = ((hi << 32) | lo) & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `RandomState.shuffle` of a 1-d array (Fisher–Yates from the end).
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.interval(i as u64) as usize;
            v.swap(i, j);
        }
    }

    /// `RandomState.permutation(n)`.
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        self.shuffle(&mut v);
        v
    }
}

/// scikit-learn's `_approximate_mode`: how many of `n_draws` to take from
/// each class, the remainders' ties broken with `rng`.
fn approximate_mode(class_counts: &[usize], n_draws: usize, rng: &mut Mt19937) -> Vec<usize> {
    let total: usize = class_counts.iter().sum();
    let continuous: Vec<f64> = class_counts.iter().map(|&c| c as f64 / total as f64 * n_draws as f64).collect();
    let mut floored: Vec<f64> = continuous.iter().map(|c| c.floor()).collect();
    let mut need = (n_draws as f64 - pairwise_sum(&floored)) as i64;
    if need > 0 {
        let remainder: Vec<f64> = continuous.iter().zip(&floored).map(|(c, f)| c - f).collect();
        let mut values = remainder.clone();
        values.sort_by(|a, b| cmp_f64(*b, *a));
        values.dedup();
        for value in values {
            let inds: Vec<usize> = (0..remainder.len()).filter(|&i| remainder[i] == value).collect();
            let add_now = inds.len().min(need as usize);
            // `RandomState.choice(inds, add_now, replace=False)`.
            let perm = rng.permutation(inds.len());
            for &k in &perm[..add_now] {
                floored[inds[k]] += 1.0;
            }
            need -= add_now as i64;
            if need == 0 {
                break;
            }
        }
    }
    floored.iter().map(|&f| f as usize).collect()
}

/// `StratifiedShuffleSplit(n_splits, test_size, random_state=seed).split`
/// over binary labels: `(train, test)` row indices per split.
fn stratified_shuffle_split(
    labels: &[bool],
    n_splits: usize,
    test_size: f64,
    seed: u32,
) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    let n = labels.len();
    let n_test = (test_size * n as f64).ceil() as usize;
    let n_train = n - n_test.min(n);
    // Classes in sorted order (false, true); each class's rows in order.
    let class_rows: [Vec<usize>; 2] =
        [(0..n).filter(|&i| !labels[i]).collect(), (0..n).filter(|&i| labels[i]).collect()];
    let counts = [class_rows[0].len(), class_rows[1].len()];
    if counts.iter().any(|&c| c < 2) || n_train < 2 || n_test < 2 {
        return Err(Error::InvalidInput(format!(
            "reference: {n} rows ({} negative, {} positive) cannot be split to test calibration",
            counts[0], counts[1]
        )));
    }
    let mut rng = Mt19937::new(seed);
    let mut splits = Vec::with_capacity(n_splits);
    for _ in 0..n_splits {
        let n_i = approximate_mode(&counts, n_train, &mut rng);
        let remaining: Vec<usize> = counts.iter().zip(&n_i).map(|(c, t)| c - t).collect();
        let t_i = approximate_mode(&remaining, n_test, &mut rng);
        let (mut train, mut test) = (Vec::with_capacity(n_train), Vec::with_capacity(n_test));
        for (class, rows) in class_rows.iter().enumerate() {
            let perm = rng.permutation(rows.len());
            let picked: Vec<usize> = perm.iter().map(|&k| rows[k]).collect();
            train.extend_from_slice(&picked[..n_i[class]]);
            test.extend_from_slice(&picked[n_i[class]..n_i[class] + t_i[class]]);
        }
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        splits.push((train, test));
    }
    Ok(splits)
}

// ---------------------------------------------------------------------------
// Tables

impl Cbpe {
    /// Fits on a table's `fields` columns; rows missing any of the three
    /// are left out. Returns the estimator and the rows left out.
    pub fn fit_table(table: &Table, fields: Fields) -> Result<(Cbpe, usize)> {
        let scores = score_values(table.require(&fields.score)?)?;
        let predictions = binary_values(table.require(&fields.prediction)?)?;
        let labels = binary_values(table.require(&fields.label)?)?;
        let (mut s, mut p, mut l) = (Vec::new(), Vec::new(), Vec::new());
        for ((si, pi), li) in scores.iter().zip(&predictions).zip(&labels) {
            if let (Some(si), Some(pi), Some(li)) = (si, pi, li) {
                s.push(*si);
                p.push(*pi);
                l.push(*li);
            }
        }
        let missing = table.rows - s.len();
        Ok((Cbpe::fit_with_fields(fields, &s, &l, &p)?, missing))
    }

    /// Estimates over a table's `score` and `prediction` columns; rows
    /// missing either are left out. Returns the estimate and the rows left
    /// out.
    pub fn estimate_table(&self, table: &Table, score: &str, prediction: &str) -> Result<(Estimate, usize)> {
        let scores = score_values(table.require(score)?)?;
        let predictions = binary_values(table.require(prediction)?)?;
        let (mut s, mut p) = (Vec::new(), Vec::new());
        for (si, pi) in scores.iter().zip(&predictions) {
            if let (Some(si), Some(pi)) = (si, pi) {
                s.push(*si);
                p.push(*pi);
            }
        }
        let missing = table.rows - s.len();
        Ok((self.estimate(&s, &p)?, missing))
    }
}

// ---------------------------------------------------------------------------
// Columns

/// A score column as probabilities, `None` where missing. Text columns are
/// an error naming the column.
pub fn score_values(column: &Column) -> Result<Vec<Option<f64>>> {
    match &column.data {
        ColumnData::Numeric(v) => Ok(v.iter().map(|&x| (!x.is_nan()).then_some(x)).collect()),
        _ => Err(Error::column(
            &column.name,
            format!("scores must be numbers, found `{}`", column.label(0).unwrap_or_default()),
        )),
    }
}

/// A binary column (0/1 numbers, booleans, or the text `true`/`false`,
/// `0`/`1`) as booleans, `None` where missing; any other value is an error
/// naming the column and the value.
pub fn binary_values(column: &Column) -> Result<Vec<Option<bool>>> {
    let bad = |value: &str| {
        Error::column(&column.name, format!("value `{value}` is not binary (0/1 or true/false)"))
    };
    match &column.data {
        ColumnData::Numeric(v) => v
            .iter()
            .map(|&x| {
                if x.is_nan() {
                    Ok(None)
                } else if x == 0.0 || x == 1.0 {
                    Ok(Some(x == 1.0))
                } else {
                    Err(bad(&crate::data::format_number(x)))
                }
            })
            .collect(),
        ColumnData::Categorical(c) => {
            let mut dictionary = Vec::with_capacity(c.dictionary.len());
            for value in &c.dictionary {
                dictionary.push(match value.to_ascii_lowercase().as_str() {
                    "true" | "1" | "1.0" => true,
                    "false" | "0" | "0.0" => false,
                    _ => return Err(bad(value)),
                });
            }
            Ok(c.codes.iter().map(|&code| dictionary.get(code as usize).copied()).collect())
        }
        ColumnData::Unsupported { type_name, .. } => {
            Err(Error::column(&column.name, format!("type `{type_name}` is not binary (0/1 or true/false)")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} != {b}");
    }

    #[test]
    fn mt19937_matches_numpy_legacy_seeding() {
        // np.random.MT19937()._legacy_seeding(42); random_raw(3)
        let mut rng = Mt19937::new(42);
        assert_eq!([rng.next_u32(), rng.next_u32(), rng.next_u32()], [1_608_637_542, 3_421_126_067, 4_083_286_876]);
        // np.random.RandomState(42): permutation(10), then permutation(5)
        let mut rng = Mt19937::new(42);
        assert_eq!(rng.permutation(10), vec![8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
        assert_eq!(rng.permutation(5), vec![1, 0, 3, 4, 2]);
    }

    #[test]
    fn stratified_splits_match_scikit_learn() {
        // StratifiedShuffleSplit(n_splits=3, test_size=0.1, random_state=42)
        let y: Vec<bool> = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0, 1]
            .iter()
            .map(|&v| v == 1)
            .collect();
        let splits = stratified_shuffle_split(&y, 3, 0.1, 42).unwrap();
        assert_eq!(splits[0].0, vec![18, 7, 22, 5, 17, 2, 9, 10, 0, 21, 12, 1, 15, 19, 14, 6, 8, 16, 20, 3]);
        assert_eq!(splits[0].1, vec![11, 4, 13]);
        assert_eq!(splits[1].1, vec![8, 2, 3]);
        assert_eq!(splits[2].0, vec![4, 0, 2, 11, 14, 18, 5, 20, 17, 8, 7, 16, 10, 19, 21, 9, 6, 13, 15, 12]);
        assert_eq!(splits[2].1, vec![1, 3, 22]);
    }

    #[test]
    fn isotonic_regression_pools_adjacent_violators() {
        // By hand: scores 0.2 and 0.7 hold two rows each (means 1/2 and 1);
        // 1/2 at 0.2 > 0 at 0.3 pools to 1/3; 1 at 0.5 > 0 at 0.6 pools to
        // 1/2; 1 at 0.7 = 1 at 0.9 pools (equal neighbours do).
        // scikit-learn: IsotonicRegression(out_of_bounds="clip").fit(x, y)
        let x = [0.1, 0.2, 0.2, 0.3, 0.5, 0.6, 0.7, 0.7, 0.9];
        let y = [false, true, false, false, true, false, true, true, true];
        let iso = Isotonic::fit(&x, &y);
        assert_eq!(iso.x, vec![0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.9]);
        assert_eq!(iso.y, vec![0.0, 1.0 / 3.0, 1.0 / 3.0, 0.5, 0.5, 1.0, 1.0]);
        // predict([0, .15, .25, .55, .65, 1]) in scikit-learn, to the bit.
        let got: Vec<f64> = [0.0, 0.15, 0.25, 0.55, 0.65, 1.0].iter().map(|&t| iso.predict(t)).collect();
        assert_eq!(got, vec![0.0, 0.1666666666666666, 0.3333333333333333, 0.5, 0.7500000000000002, 1.0]);
    }

    #[test]
    fn isotonic_trims_flat_runs_and_handles_one_point() {
        let iso = Isotonic::fit(&[0.1, 0.2, 0.3, 0.4], &[false, false, false, true]);
        // 0 0 0 1: the middle 0 has equal neighbours and is dropped.
        assert_eq!(iso.x, vec![0.1, 0.3, 0.4]);
        assert_eq!(iso.y, vec![0.0, 0.0, 1.0]);
        let one = Isotonic::fit(&[0.5, 0.5], &[true, false]);
        assert_eq!(one.x, vec![0.5]);
        assert_eq!(one.predict(0.9), 0.5);
    }

    #[test]
    fn pairwise_sum_follows_numpy_blocks() {
        let v: Vec<f64> = (0..1000).map(|i| 0.1 * f64::from(i)).collect();
        // Exact to the bit is checked against NumPy by the Python test; here
        // it must at least be a sum.
        close(pairwise_sum(&v), 49_950.0, 1e-9);
        assert_eq!(pairwise_sum(&[]), 0.0);
        assert_eq!(pairwise_sum(&[1.0, 2.0, 3.0]), 6.0);
    }

    fn calibrated_sample(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let p: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        let y: Vec<bool> = p.iter().map(|&pi| rng.random::<f64>() < pi).collect();
        (p, y)
    }

    #[test]
    fn uncalibrated_accuracy_is_the_mean_confidence() {
        let (p, y) = calibrated_sample(2000, 3);
        let pred: Vec<bool> = p.iter().map(|&v| v >= 0.5).collect();
        let mut cbpe = Cbpe::fit(&p, &y, &pred).unwrap();
        cbpe.calibrator = None; // perfectly calibrated scores: use them as they are
        let est = cbpe.estimate(&p, &pred).unwrap();
        let expected = p.iter().map(|&v| v.max(1.0 - v)).sum::<f64>() / p.len() as f64;
        close(est.accuracy.unwrap(), expected, 1e-12);
        assert_eq!(est.rows, 2000);
        // ROC AUC of calibrated probabilities: P(score of a positive > of a
        // negative) where positives are drawn with probability p, ≈ 0.833
        // for uniform p.
        close(est.roc_auc.unwrap(), 5.0 / 6.0, 0.01);
    }

    #[test]
    fn miscalibrated_scores_get_a_calibrator() {
        // Over-confident scores: the true probability is p², not p.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let p: Vec<f64> = (0..5000).map(|_| rng.random::<f64>()).collect();
        let y: Vec<bool> = p.iter().map(|&pi| rng.random::<f64>() < pi * pi).collect();
        let pred: Vec<bool> = p.iter().map(|&v| v >= 0.5).collect();
        let cbpe = Cbpe::fit(&p, &y, &pred).unwrap();
        assert!(cbpe.calibration.needed, "{:?}", cbpe.calibration);
        let iso = cbpe.calibrator.as_ref().unwrap();
        close(iso.predict(0.5), 0.25, 0.1);
        // The estimate on the reference itself is close to the realised one.
        let est = cbpe.estimate(&p, &pred).unwrap();
        close(est.accuracy.unwrap(), cbpe.reference_accuracy, 0.03);
        // Round trip through JSON.
        let back = Cbpe::from_json(&cbpe.to_json().unwrap()).unwrap();
        assert_eq!(back, cbpe);
    }

    #[test]
    fn bad_input_is_an_error_naming_the_field() {
        let (p, y) = calibrated_sample(100, 5);
        let pred = vec![true; 100];
        let err = Cbpe::fit(&p[..99], &y, &pred).unwrap_err();
        assert!(err.to_string().contains("`label` has 100"), "{err}");
        let mut bad = p.clone();
        bad[7] = 1.5;
        let err = Cbpe::fit(&bad, &y, &pred).unwrap_err();
        assert_eq!(err.to_string(), "column `score`: row 7: score `1.5` is not a probability in [0, 1]");
        bad[7] = f64::NAN;
        assert!(Cbpe::fit(&bad, &y, &pred).unwrap_err().to_string().contains("`NaN`"));
        let err = Cbpe::fit(&p, &[true; 100], &pred).unwrap_err();
        assert!(err.to_string().starts_with("column `label`: the reference has 0 row(s) labelled `false`"), "{err}");
        let cbpe = Cbpe::fit(&p, &y, &pred).unwrap();
        assert!(cbpe.estimate(&p, &pred[..3]).is_err());
        assert!(cbpe.estimate(&[f64::INFINITY], &[true]).unwrap_err().to_string().contains("`inf`"));
        assert!(Cbpe::fit(&p[..10], &y[..10], &pred[..10]).is_err());
    }

    #[test]
    fn empty_and_degenerate_windows_say_why() {
        let (p, y) = calibrated_sample(200, 9);
        let pred: Vec<bool> = p.iter().map(|&v| v >= 0.5).collect();
        let mut cbpe = Cbpe::fit(&p, &y, &pred).unwrap();
        let est = cbpe.estimate(&[], &[]).unwrap();
        assert_eq!((est.rows, est.accuracy, est.roc_auc), (0, None, None));
        assert_eq!(est.not_computed.get("roc_auc").map(String::as_str), Some("no rows"));
        cbpe.calibrator = None;
        let est = cbpe.estimate(&[1.0, 1.0], &[true, true]).unwrap();
        assert_eq!(est.accuracy, Some(1.0));
        assert_eq!(est.roc_auc, None);
        assert!(est.not_computed["roc_auc"].contains("no negative"));
        let json = serde_json::to_value(&est).unwrap();
        assert_eq!(json["roc_auc"], serde_json::Value::Null);
    }

    #[test]
    fn binary_columns_accept_numbers_and_booleans() {
        use crate::data::{Categorical, SourceType};
        let num = Column { name: "y".into(), source: SourceType::Float, data: ColumnData::Numeric(vec![0.0, 1.0, f64::NAN]) };
        assert_eq!(binary_values(&num).unwrap(), vec![Some(false), Some(true), None]);
        let two = Column { name: "y".into(), source: SourceType::Int { has_missing: false }, data: ColumnData::Numeric(vec![2.0]) };
        assert_eq!(binary_values(&two).unwrap_err().to_string(), "column `y`: value `2` is not binary (0/1 or true/false)");
        let b = Column {
            name: "y".into(),
            source: SourceType::Bool,
            data: ColumnData::Categorical(Categorical::from_values(&[Some("True"), None, Some("False")])),
        };
        assert_eq!(binary_values(&b).unwrap(), vec![Some(true), None, Some(false)]);
    }
}
