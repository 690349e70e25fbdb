//! Model performance once labels are known: accuracy, precision, recall, F1,
//! ROC AUC and log loss for classifiers; MAE, RMSE and R² for regressors.
//!
//! Every figure follows scikit-learn's definition (checked against
//! scikit-learn 1.9 to 1e-9 by `tests/python/test_evaluate_reference.py`),
//! including its edge cases:
//!
//! * precision, recall and F1 with a zero denominator are 0 (sklearn's
//!   `zero_division="warn"` result);
//! * ROC AUC is the trapezoid under the ROC curve built over distinct score
//!   thresholds, so tied scores count as half; with one class in the target
//!   it is not defined (sklearn returns NaN);
//! * log loss clips probabilities to `[eps, 1 - eps]`, `eps` = `f64::EPSILON`;
//! * R² is 1 for a perfect fit of a constant target and 0 for an imperfect
//!   one (`force_finite=True`); with fewer than two rows it is not defined.
//!
//! Inputs are plain slices so the metrics do not depend on how data is read.
//! Rows with a missing value are the caller's to drop.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};

/// What kind of model produced the predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Classification,
    Regression,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        })
    }
}

/// One metric: a number, or the reason it was not computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Machine name, the JSON key (`roc_auc`).
    pub name: &'static str,
    /// Name for people (`ROC AUC`).
    pub title: &'static str,
    pub value: std::result::Result<f64, String>,
}

/// Metrics in a fixed order. Serialises as `{name: value-or-null}`; the
/// reasons for the nulls are in [`MetricSet::not_computed`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSet(pub Vec<Metric>);

impl MetricSet {
    fn push(&mut self, name: &'static str, title: &'static str, value: std::result::Result<f64, String>) {
        // A NaN is never a result we hand out: it means "not defined".
        let value = match value {
            Ok(v) if v.is_nan() => Err("not defined for this data".to_owned()),
            other => other,
        };
        self.0.push(Metric { name, title, value });
    }

    pub fn get(&self, name: &str) -> Option<&Metric> {
        self.0.iter().find(|m| m.name == name)
    }

    /// The value of `name`, if it was computed.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(|m| m.value.as_ref().ok().copied())
    }

    /// `name → reason` for every metric that was not computed.
    pub fn not_computed(&self) -> BTreeMap<&'static str, String> {
        self.0.iter().filter_map(|m| m.value.as_ref().err().map(|r| (m.name, r.clone()))).collect()
    }
}

impl Serialize for MetricSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for m in &self.0 {
            map.serialize_entry(m.name, &m.value.as_ref().ok())?;
        }
        map.end()
    }
}

/// Counts of a binary confusion matrix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl Confusion {
    pub fn from_labels(y_true: &[bool], y_pred: &[bool]) -> Self {
        let mut c = Confusion::default();
        for (&t, &p) in y_true.iter().zip(y_pred) {
            match (t, p) {
                (true, true) => c.tp += 1,
                (false, true) => c.fp += 1,
                (false, false) => c.tn += 1,
                (true, false) => c.fn_ += 1,
            }
        }
        c
    }

    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }

    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }

    /// TP / (TP + FP); 0 when nothing was predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// TP / (TP + FN), the true positive rate; 0 when there are no positives
    /// (as sklearn and fairlearn both answer).
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// FP / (FP + TN); 0 when there are no negatives.
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }

    /// 2·TP / (2·TP + FP + FN), sklearn's formula; 0 when the denominator is 0.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// Share of rows predicted positive.
    pub fn selection_rate(&self) -> f64 {
        ratio(self.tp + self.fp, self.total())
    }
}

/// `num / den`, or 0 when `den` is 0 (sklearn's zero-division result).
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

fn check_lengths(what: &str, a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(Error::InvalidInput(format!("{what}: lengths differ (`{a}` vs `{b}`)")));
    }
    if a == 0 {
        return Err(Error::InvalidInput(format!("{what}: no rows to evaluate")));
    }
    Ok(())
}

/// Area under the ROC curve of `score` for the positive class, or `None`
/// when `y_true` holds only one class. Tied scores form one threshold, so a
/// tie between a positive and a negative counts one half.
pub fn roc_auc(y_true: &[bool], score: &[f64]) -> Option<f64> {
    let n = y_true.len().min(score.len());
    let mut order: Vec<usize> = (0..n).collect();
    // Descending score; NaN never reaches here (callers drop missing rows),
    // total_cmp keeps the sort total anyway.
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let positives = y_true[..n].iter().filter(|&&t| t).count() as f64;
    let negatives = n as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let (mut tps, mut fps) = (0.0_f64, 0.0_f64);
    let (mut prev_tpr, mut prev_fpr) = (0.0_f64, 0.0_f64);
    let mut area = 0.0;
    for (i, &row) in order.iter().enumerate() {
        if y_true[row] {
            tps += 1.0;
        } else {
            fps += 1.0;
        }
        let last_of_threshold = order.get(i + 1).is_none_or(|&next| score[next] != score[row]);
        if last_of_threshold {
            let (tpr, fpr) = (tps / positives, fps / negatives);
            area += (fpr - prev_fpr) * (tpr + prev_tpr) / 2.0;
            (prev_tpr, prev_fpr) = (tpr, fpr);
        }
    }
    Some(area)
}

/// Mean negative log-likelihood of `y_true` under `prob`, the probability of
/// the positive class, clipped to `[eps, 1 - eps]` like sklearn.
pub fn log_loss(y_true: &[bool], prob: &[f64]) -> f64 {
    let eps = f64::EPSILON;
    let n = y_true.len().min(prob.len());
    let total: f64 = y_true
        .iter()
        .zip(prob)
        .map(|(&t, &p)| {
            // sklearn builds the column [1 - p, p] first, then clips each.
            let q = if t { p } else { 1.0 - p };
            -q.clamp(eps, 1.0 - eps).ln()
        })
        .sum();
    total / n as f64
}

pub fn mean_absolute_error(y_true: &[f64], y_pred: &[f64]) -> f64 {
    let n = y_true.len().min(y_pred.len());
    y_true.iter().zip(y_pred).map(|(t, p)| (t - p).abs()).sum::<f64>() / n as f64
}

pub fn mean_squared_error(y_true: &[f64], y_pred: &[f64]) -> f64 {
    let n = y_true.len().min(y_pred.len());
    y_true.iter().zip(y_pred).map(|(t, p)| (t - p) * (t - p)).sum::<f64>() / n as f64
}

pub fn root_mean_squared_error(y_true: &[f64], y_pred: &[f64]) -> f64 {
    mean_squared_error(y_true, y_pred).sqrt()
}

/// Coefficient of determination, sklearn's `r2_score` with
/// `force_finite=True`; `None` with fewer than two rows.
pub fn r2_score(y_true: &[f64], y_pred: &[f64]) -> Option<f64> {
    let n = y_true.len().min(y_pred.len());
    if n < 2 {
        return None;
    }
    let mean = y_true.iter().sum::<f64>() / n as f64;
    let residual: f64 = y_true.iter().zip(y_pred).map(|(t, p)| (t - p) * (t - p)).sum();
    let total: f64 = y_true.iter().map(|t| (t - mean) * (t - mean)).sum();
    Some(if total == 0.0 {
        if residual == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        1.0 - residual / total
    })
}

/// The result of evaluating a classifier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationReport {
    pub rows: usize,
    /// Every label seen in the target or the prediction, sorted.
    pub labels: Vec<String>,
    /// The positive class of a binary task.
    pub pos_label: Option<String>,
    /// Binary tasks only.
    pub confusion: Option<Confusion>,
    pub metrics: MetricSet,
    pub not_computed: BTreeMap<&'static str, String>,
}

/// The result of evaluating a regressor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressionReport {
    pub rows: usize,
    pub metrics: MetricSet,
    pub not_computed: BTreeMap<&'static str, String>,
}

/// Sort labels the way a person expects: numerically when they all read as
/// numbers, else as text.
pub fn sort_labels(labels: &mut [String]) {
    let numbers: Option<Vec<f64>> = labels.iter().map(|l| l.parse::<f64>().ok()).collect();
    if numbers.is_some() {
        labels.sort_by(|a, b| {
            let (x, y) = (a.parse::<f64>().unwrap_or(0.0), b.parse::<f64>().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal).then_with(|| a.cmp(b))
        });
    } else {
        labels.sort();
    }
}

/// The positive label to use for a binary task when none was given:
/// `1` for {0, 1} or {-1, 1}, `true` for {false, true} (case-insensitive).
pub fn infer_pos_label(labels: &[String]) -> Option<String> {
    let lower: Vec<String> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
    let all_in = |set: &[&str]| lower.iter().all(|l| set.contains(&l.as_str()));
    if all_in(&["0", "1"]) || all_in(&["-1", "1"]) {
        return Some("1".to_owned());
    }
    if all_in(&["false", "true"]) {
        let i = lower.iter().position(|l| l == "true");
        return Some(i.map_or_else(|| "true".to_owned(), |i| labels[i].clone()));
    }
    None
}

/// Resolve the positive label of a binary task: the one given (which must
/// be one of the labels seen, unless only one label was seen) or the
/// inferred one.
pub fn resolve_pos_label(column: &str, labels: &[String], given: Option<&str>) -> Result<String> {
    match given {
        Some(p) => {
            if labels.len() == 2 && !labels.iter().any(|l| l == p) {
                return Err(Error::column(
                    column,
                    format!("positive label `{p}` is not one of the labels seen (`{}`, `{}`)", labels[0], labels[1]),
                ));
            }
            Ok(p.to_owned())
        }
        None => infer_pos_label(labels).ok_or_else(|| {
            Error::column(
                column,
                format!(
                    "cannot tell which label is positive among {}; set the positive label (`--pos-label`)",
                    labels.iter().map(|l| format!("`{l}`")).collect::<Vec<_>>().join(", ")
                ),
            )
        }),
    }
}

/// Evaluate a classifier from its labels. `score`, when given, is the
/// predicted probability of the positive class and enables ROC AUC and log
/// loss. With more than two labels the task is multiclass: accuracy plus
/// macro and weighted precision, recall and F1.
pub fn evaluate_classification(
    target: &str,
    y_true: &[String],
    y_pred: &[String],
    score: Option<(&str, &[f64])>,
    pos_label: Option<&str>,
) -> Result<ClassificationReport> {
    check_lengths("target and prediction", y_true.len(), y_pred.len())?;
    if let Some((_, s)) = score {
        check_lengths("target and score", y_true.len(), s.len())?;
    }
    let mut labels: Vec<String> = y_true.iter().chain(y_pred).cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    sort_labels(&mut labels);

    if labels.len() > 2 {
        return Ok(multiclass(y_true, y_pred, labels, score.is_some()));
    }
    let pos = resolve_pos_label(target, &labels, pos_label)?;
    let t: Vec<bool> = y_true.iter().map(|l| *l == pos).collect();
    let p: Vec<bool> = y_pred.iter().map(|l| *l == pos).collect();
    let c = Confusion::from_labels(&t, &p);

    let mut m = MetricSet::default();
    m.push("accuracy", "Accuracy", Ok(c.accuracy()));
    m.push("precision", "Precision", Ok(c.precision()));
    m.push("recall", "Recall", Ok(c.recall()));
    m.push("f1", "F1", Ok(c.f1()));
    match score {
        None => {
            m.push("roc_auc", "ROC AUC", Err("needs `--score`".to_owned()));
            m.push("log_loss", "Log loss", Err("needs `--score`".to_owned()));
        }
        Some((name, s)) => {
            check_probabilities(name, s)?;
            m.push("roc_auc", "ROC AUC", roc_auc(&t, s).ok_or_else(|| "the target has only one class".to_owned()));
            m.push("log_loss", "Log loss", Ok(log_loss(&t, s)));
        }
    }
    let not_computed = m.not_computed();
    Ok(ClassificationReport { rows: y_true.len(), labels, pos_label: Some(pos), confusion: Some(c), metrics: m, not_computed })
}

/// Scores must be probabilities: finite and within [0, 1].
fn check_probabilities(column: &str, score: &[f64]) -> Result<()> {
    if let Some(v) = score.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::column(column, format!("score `{v}` is not a probability in [0, 1]")));
    }
    Ok(())
}

fn multiclass(y_true: &[String], y_pred: &[String], labels: Vec<String>, has_score: bool) -> ClassificationReport {
    let index: BTreeMap<&str, usize> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
    let k = labels.len();
    let (mut tp, mut pred, mut support) = (vec![0_u64; k], vec![0_u64; k], vec![0_u64; k]);
    let mut correct = 0_u64;
    for (t, p) in y_true.iter().zip(y_pred) {
        let (ti, pi) = (index[t.as_str()], index[p.as_str()]);
        support[ti] += 1;
        pred[pi] += 1;
        if ti == pi {
            tp[ti] += 1;
            correct += 1;
        }
    }
    let n = y_true.len() as u64;
    let per_class: Vec<(f64, f64, f64)> = (0..k)
        .map(|i| {
            let c = Confusion { tp: tp[i], fp: pred[i] - tp[i], fn_: support[i] - tp[i], tn: 0 };
            (c.precision(), c.recall(), c.f1())
        })
        .collect();
    let macro_avg = |f: fn(&(f64, f64, f64)) -> f64| per_class.iter().map(f).sum::<f64>() / k as f64;
    let weighted = |f: fn(&(f64, f64, f64)) -> f64| {
        per_class.iter().zip(&support).map(|(c, &s)| f(c) * s as f64).sum::<f64>() / n as f64
    };
    let mut m = MetricSet::default();
    m.push("accuracy", "Accuracy", Ok(ratio(correct, n)));
    m.push("precision_macro", "Precision (macro)", Ok(macro_avg(|c| c.0)));
    m.push("recall_macro", "Recall (macro)", Ok(macro_avg(|c| c.1)));
    m.push("f1_macro", "F1 (macro)", Ok(macro_avg(|c| c.2)));
    m.push("precision_weighted", "Precision (weighted)", Ok(weighted(|c| c.0)));
    m.push("recall_weighted", "Recall (weighted)", Ok(weighted(|c| c.1)));
    m.push("f1_weighted", "F1 (weighted)", Ok(weighted(|c| c.2)));
    let reason = if has_score {
        "needs a binary target (the score is one probability per row)"
    } else {
        "needs a binary target and `--score`"
    };
    m.push("roc_auc", "ROC AUC", Err(reason.to_owned()));
    m.push("log_loss", "Log loss", Err(reason.to_owned()));
    let not_computed = m.not_computed();
    ClassificationReport { rows: y_true.len(), labels, pos_label: None, confusion: None, metrics: m, not_computed }
}

/// Evaluate a regressor. Values must be finite.
pub fn evaluate_regression(
    target: (&str, &[f64]),
    prediction: (&str, &[f64]),
) -> Result<RegressionReport> {
    let ((tname, y_true), (pname, y_pred)) = (target, prediction);
    check_lengths("target and prediction", y_true.len(), y_pred.len())?;
    for (name, values) in [(tname, y_true), (pname, y_pred)] {
        if let Some(v) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::column(name, format!("value `{v}` is not finite")));
        }
    }
    let mut m = MetricSet::default();
    m.push("mae", "MAE", Ok(mean_absolute_error(y_true, y_pred)));
    m.push("mse", "MSE", Ok(mean_squared_error(y_true, y_pred)));
    m.push("rmse", "RMSE", Ok(root_mean_squared_error(y_true, y_pred)));
    m.push("r2", "R²", r2_score(y_true, y_pred).ok_or_else(|| "needs at least two rows".to_owned()));
    let not_computed = m.not_computed();
    Ok(RegressionReport { rows: y_true.len(), metrics: m, not_computed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} != {b}");
    }

    #[test]
    fn roc_auc_counts_ties_as_half() {
        // sklearn.metrics.roc_auc_score([0,1,0,1,1], [.5,.5,.2,.9,.5]) == 0.8333333333333333
        let auc = roc_auc(&[false, true, false, true, true], &[0.5, 0.5, 0.2, 0.9, 0.5]);
        close(auc.unwrap_or(f64::NAN), 0.833_333_333_333_333_3);
        assert_eq!(roc_auc(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(roc_auc(&[false, true], &[0.3, 0.3]), Some(0.5));
    }

    #[test]
    fn log_loss_clips_certain_mistakes() {
        let loss = log_loss(&[true, false], &[0.0, 0.0]);
        close(loss, -(f64::EPSILON.ln()) / 2.0 - (1.0 - f64::EPSILON).ln() / 2.0);
        // sklearn.metrics.log_loss([0,0,0,0], [.1,.2,.3,.4], labels=[0,1]) == 0.2990011586691898
        close(log_loss(&[false; 4], &[0.1, 0.2, 0.3, 0.4]), 0.299_001_158_669_189_8);
    }

    #[test]
    fn r2_edge_cases_follow_sklearn() {
        assert_eq!(r2_score(&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0]), Some(1.0));
        assert_eq!(r2_score(&[1.0, 1.0, 1.0], &[1.0, 2.0, 1.0]), Some(0.0));
        assert_eq!(r2_score(&[1.0], &[2.0]), None);
        close(r2_score(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0]).unwrap_or(f64::NAN), 0.948_608_137_044_967_9);
    }

    #[test]
    fn zero_division_gives_zero() {
        let r = evaluate_classification("y", &s(&["0", "0"]), &s(&["0", "0"]), None, None).unwrap();
        assert_eq!(r.metrics.value("precision"), Some(0.0));
        assert_eq!(r.metrics.value("recall"), Some(0.0));
        assert_eq!(r.metrics.value("f1"), Some(0.0));
        assert_eq!(r.metrics.value("accuracy"), Some(1.0));
        assert_eq!(r.not_computed.get("roc_auc").map(String::as_str), Some("needs `--score`"));
    }

    #[test]
    fn binary_metrics_match_sklearn() {
        let t = s(&["1", "0", "1", "1", "0", "0", "1"]);
        let p = s(&["1", "1", "0", "1", "0", "0", "1"]);
        let score = [0.9, 0.6, 0.4, 0.8, 0.1, 0.4, 0.7];
        let r = evaluate_classification("y", &t, &p, Some(("s", &score)), None).unwrap();
        close(r.metrics.value("precision").unwrap_or(f64::NAN), 0.75);
        close(r.metrics.value("recall").unwrap_or(f64::NAN), 0.75);
        // sklearn.metrics.roc_auc_score(t, score) == 0.875
        close(r.metrics.value("roc_auc").unwrap_or(f64::NAN), 0.875);
        assert_eq!(r.pos_label.as_deref(), Some("1"));
    }

    #[test]
    fn positive_label_must_be_known() {
        let err = evaluate_classification("y", &s(&["a", "b"]), &s(&["a", "a"]), None, None).unwrap_err();
        assert!(err.to_string().contains("column `y`"), "{err}");
        assert!(err.to_string().contains("`--pos-label`"), "{err}");
        let err = evaluate_classification("y", &s(&["a", "b"]), &s(&["a", "a"]), None, Some("c")).unwrap_err();
        assert!(err.to_string().contains("`c`"), "{err}");
        assert!(evaluate_classification("y", &s(&["a", "b"]), &s(&["a", "a"]), None, Some("b")).is_ok());
    }

    #[test]
    fn scores_outside_unit_interval_are_rejected() {
        let err = evaluate_classification("y", &s(&["1", "0"]), &s(&["1", "0"]), Some(("s", &[1.5, 0.1])), None)
            .unwrap_err();
        assert_eq!(err.to_string(), "column `s`: score `1.5` is not a probability in [0, 1]");
    }

    #[test]
    fn multiclass_macro_and_weighted() {
        // sklearn: y_true=[0,1,2,0,1,2], y_pred=[0,2,1,0,0,1]
        // precision_score(average='macro') == 0.2222222222222222, f1 weighted == 0.26666666666666666
        let t = s(&["0", "1", "2", "0", "1", "2"]);
        let p = s(&["0", "2", "1", "0", "0", "1"]);
        let r = evaluate_classification("y", &t, &p, None, None).unwrap();
        close(r.metrics.value("precision_macro").unwrap_or(f64::NAN), 2.0 / 9.0);
        close(r.metrics.value("f1_weighted").unwrap_or(f64::NAN), 0.266_666_666_666_666_66);
        close(r.metrics.value("accuracy").unwrap_or(f64::NAN), 1.0 / 3.0);
        assert!(r.metrics.value("roc_auc").is_none());
    }

    #[test]
    fn regression_rejects_infinity_naming_the_column() {
        let err = evaluate_regression(("y", &[1.0, f64::INFINITY]), ("p", &[1.0, 2.0])).unwrap_err();
        assert_eq!(err.to_string(), "column `y`: value `inf` is not finite");
        let r = evaluate_regression(("y", &[1.0, 2.0, 4.0]), ("p", &[1.5, 2.0, 3.0])).unwrap();
        close(r.metrics.value("mae").unwrap_or(f64::NAN), 0.5);
        close(r.metrics.value("rmse").unwrap_or(f64::NAN), (1.25_f64 / 3.0).sqrt());
    }

    proptest::proptest! {
        /// The trapezoid over distinct thresholds equals the pair-counting
        /// definition: P(score of a positive > score of a negative), ties ½.
        #[test]
        fn roc_auc_is_the_pairwise_probability(rows in proptest::collection::vec((proptest::bool::ANY, 0u8..8), 2..60)) {
            let y: Vec<bool> = rows.iter().map(|r| r.0).collect();
            let s: Vec<f64> = rows.iter().map(|r| f64::from(r.1) / 8.0).collect();
            let (mut wins, mut pairs) = (0.0, 0.0);
            for (i, &yi) in y.iter().enumerate() {
                for (j, &yj) in y.iter().enumerate() {
                    if yi && !yj {
                        pairs += 1.0;
                        wins += if s[i] > s[j] { 1.0 } else if s[i] == s[j] { 0.5 } else { 0.0 };
                    }
                }
            }
            match roc_auc(&y, &s) {
                None => proptest::prop_assert!(pairs == 0.0),
                Some(auc) => proptest::prop_assert!((auc - wins / pairs).abs() < 1e-12, "{auc} vs {}", wins / pairs),
            }
        }
    }

    #[test]
    fn metric_set_serialises_nulls_for_missing_values() {
        let r = evaluate_classification("y", &s(&["1", "0"]), &s(&["1", "1"]), None, None).unwrap();
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["metrics"]["roc_auc"], serde_json::Value::Null);
        assert_eq!(json["metrics"]["accuracy"], 0.5);
        assert_eq!(json["not_computed"]["log_loss"], "needs `--score`");
        assert_eq!(json["confusion"]["fn"], 0);
    }
}
