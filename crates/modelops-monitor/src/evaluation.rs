//! Evaluating a scored table: which task it is, which rows count, then
//! [`performance`](crate::performance) and [`fairness`](crate::fairness) over
//! them. This is the whole of `modelops evaluate` except reading the file and
//! printing the result.
//!
//! Rules a user will notice:
//! * the task is classification when the target holds text or booleans or at
//!   most two distinct values, else regression; `Spec::task` overrides it
//!   (integer class codes with more than two classes need it);
//! * rows missing the target, the prediction or the score are dropped and
//!   counted; a missing protected attribute is its own group, `(missing)`;
//! * a column that is entirely missing, or of a type that cannot be used, is
//!   an error naming the file and the column.

use serde::Serialize;

use crate::data::{Column, ColumnData, SourceType, Table};
use crate::error::{Error, Result};
use crate::fairness::{self, FairnessReport};
use crate::performance::{self, ClassificationReport, RegressionReport, Task};

/// The group label of rows whose protected attribute is missing.
pub const MISSING_GROUP: &str = "(missing)";

/// What to evaluate: column names and options.
#[derive(Debug, Clone)]
pub struct Spec {
    pub target: String,
    pub prediction: String,
    /// Probability of the positive class (binary classification).
    pub score: Option<String>,
    pub protected: Option<String>,
    /// `None` infers the task from the target.
    pub task: Option<Task>,
    pub pos_label: Option<String>,
    /// The four-fifths threshold (0.8 by default).
    pub four_fifths: f64,
}

/// Performance of either kind of model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Performance {
    Classification(ClassificationReport),
    Regression(RegressionReport),
}

/// Regression error within one group of the protected attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupError {
    pub group: String,
    pub count: usize,
    pub mae: f64,
    pub rmse: f64,
    /// `None` with fewer than two rows.
    pub r2: Option<f64>,
}

/// A section that was asked for but could not be computed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotComputed {
    pub not_computed: String,
}

/// Fairness over the protected attribute.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Fairness {
    Classification(Box<FairnessReport>),
    /// Regressors get error per group; parity metrics need a classifier.
    Regression { attribute: String, groups: Vec<GroupError>, not_computed: String },
    NotComputed(NotComputed),
}

/// Everything `modelops evaluate` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The file evaluated.
    pub data: String,
    pub task: Task,
    pub target: String,
    pub prediction: String,
    pub score: Option<String>,
    pub protected: Option<String>,
    /// Rows in the file.
    pub rows: usize,
    /// Rows dropped because the target, prediction or score was missing.
    pub rows_dropped_missing: usize,
    pub performance: Performance,
    pub fairness: Option<Fairness>,
    /// Drift of the scored data against a reference, when one was given
    /// (filled by the caller; [`evaluate`] leaves it empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift: Option<crate::drift::DriftReport>,
}

fn file_column(table: &Table, column: &str, reason: impl Into<String>) -> Error {
    Error::FileColumn { path: table.path.display().to_string(), column: column.to_owned(), reason: reason.into() }
}

/// Put the file name on an error that names only a column.
fn in_file(table: &Table, err: Error) -> Error {
    match err {
        Error::InvalidColumn { column, reason } => file_column(table, &column, reason),
        Error::InvalidInput(reason) => {
            Error::Read { path: table.path.display().to_string(), reason }
        }
        other => other,
    }
}

fn is_missing(column: &Column, row: usize) -> bool {
    match &column.data {
        ColumnData::Numeric(v) => v.get(row).is_none_or(|x| x.is_nan()),
        ColumnData::Categorical(c) => c.get(row).is_none(),
        ColumnData::Unsupported { .. } => true,
    }
}

fn usable<'t>(table: &'t Table, name: &str) -> Result<&'t Column> {
    let column = table.require(name)?;
    if let ColumnData::Unsupported { type_name, .. } = &column.data {
        return Err(file_column(table, name, format!("type `{type_name}` cannot be evaluated")));
    }
    if table.rows == 0 {
        return Err(Error::Read { path: table.path.display().to_string(), reason: "the file has no rows".to_owned() });
    }
    if (0..column.len()).all(|row| is_missing(column, row)) {
        return Err(file_column(table, name, "all values are missing"));
    }
    Ok(column)
}

fn numeric<'t>(table: &Table, column: &'t Column, task: Task) -> Result<&'t [f64]> {
    column.as_numeric().ok_or_else(|| {
        let example = column.label(0).unwrap_or_default();
        file_column(
            table,
            &column.name,
            format!("holds text (e.g. `{example}`) but {task} needs numbers here"),
        )
    })
}

/// Infer the task from the target: text or booleans, or at most two
/// distinct values, mean classification.
pub fn infer_task(target: &Column) -> Task {
    match &target.data {
        ColumnData::Categorical(_) | ColumnData::Unsupported { .. } => Task::Classification,
        ColumnData::Numeric(values) => {
            let mut distinct: Vec<f64> = Vec::with_capacity(3);
            for &v in values.iter().filter(|v| !v.is_nan()) {
                if !distinct.contains(&v) {
                    distinct.push(v);
                    if distinct.len() > 2 {
                        return Task::Regression;
                    }
                }
            }
            if matches!(target.source, SourceType::Bool) || distinct.len() <= 2 {
                Task::Classification
            } else {
                Task::Regression
            }
        }
    }
}

/// More distinct labels than this is not a classification task.
pub const MAX_LABELS: usize = 1000;

/// A classifier's target and prediction are labels: numbers must be whole
/// (a probability given as the prediction is a common slip), and there must
/// not be a label per row.
fn check_labels(table: &Table, column: &Column, rows: &[usize]) -> Result<()> {
    match &column.data {
        ColumnData::Numeric(values) => {
            if let Some(v) = rows.iter().map(|&r| values[r]).find(|v| v.fract() != 0.0) {
                return Err(file_column(
                    table,
                    &column.name,
                    format!(
                        "holds `{v}`, not a class label; a classifier's target and prediction are labels (probabilities go in `--score`, or use `--task regression`)"
                    ),
                ));
            }
            let mut distinct: Vec<u64> = rows.iter().map(|&r| values[r].to_bits()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            too_many_labels(table, column, distinct.len())
        }
        ColumnData::Categorical(c) => {
            let mut seen = vec![false; c.dictionary.len()];
            for &r in rows {
                if let Some(code) = c.codes.get(r).filter(|&&code| (code as usize) < seen.len()) {
                    seen[*code as usize] = true;
                }
            }
            too_many_labels(table, column, seen.iter().filter(|&&x| x).count())
        }
        ColumnData::Unsupported { .. } => Ok(()),
    }
}

fn too_many_labels(table: &Table, column: &Column, n: usize) -> Result<()> {
    if n > MAX_LABELS {
        return Err(file_column(
            table,
            &column.name,
            format!("has `{n}` distinct labels, more than {MAX_LABELS}: not a classification target"),
        ));
    }
    Ok(())
}

/// Labels of a classifier column; booleans read `True`/`False` but are
/// compared with 0/1 columns as `1`/`0`.
fn label(column: &Column, row: usize, bool_as_digit: bool) -> Option<String> {
    let l = column.label(row)?;
    if bool_as_digit && column.source == SourceType::Bool {
        return Some(if l == "True" { "1".to_owned() } else { "0".to_owned() });
    }
    Some(l)
}

/// Evaluate `spec` over `table`.
pub fn evaluate(table: &Table, spec: &Spec) -> Result<Evaluation> {
    let target = usable(table, &spec.target)?;
    let prediction = usable(table, &spec.prediction)?;
    let score = spec.score.as_deref().map(|s| usable(table, s)).transpose()?;
    let protected = spec.protected.as_deref().map(|s| table.require(s)).transpose()?;
    if let Some(p) = protected {
        if let ColumnData::Unsupported { type_name, .. } = &p.data {
            return Err(file_column(table, &p.name, format!("type `{type_name}` cannot be a protected attribute")));
        }
    }
    let task = spec.task.unwrap_or_else(|| infer_task(target));

    let kept: Vec<usize> = (0..table.rows)
        .filter(|&row| {
            !is_missing(target, row) && !is_missing(prediction, row) && score.is_none_or(|s| !is_missing(s, row))
        })
        .collect();
    if kept.is_empty() {
        return Err(Error::Read {
            path: table.path.display().to_string(),
            reason: format!("no row has `{}` and `{}` both present", spec.target, spec.prediction),
        });
    }
    let groups: Option<Vec<String>> = protected.map(|p| {
        kept.iter().map(|&row| p.label(row).unwrap_or_else(|| MISSING_GROUP.to_owned())).collect()
    });

    let (performance, fairness) = match task {
        Task::Regression => {
            let (yv, pv) = (numeric(table, target, task)?, numeric(table, prediction, task)?);
            let y: Vec<f64> = kept.iter().map(|&r| yv[r]).collect();
            let p: Vec<f64> = kept.iter().map(|&r| pv[r]).collect();
            let report = performance::evaluate_regression((&spec.target, &y), (&spec.prediction, &p))
                .map_err(|e| in_file(table, e))?;
            let fairness = match (&groups, &spec.protected) {
                (Some(g), Some(attribute)) => Some(regression_by_group(attribute, &y, &p, g)),
                _ => None,
            };
            (Performance::Regression(report), fairness)
        }
        Task::Classification => {
            for column in [target, prediction] {
                check_labels(table, column, &kept)?;
            }
            let bool_as_digit = target.source == SourceType::Bool || prediction.source == SourceType::Bool;
            let y: Vec<String> = kept.iter().filter_map(|&r| label(target, r, bool_as_digit)).collect();
            let p: Vec<String> = kept.iter().filter_map(|&r| label(prediction, r, bool_as_digit)).collect();
            let s: Option<Vec<f64>> = score
                .map(|s| {
                    let values = s.as_numeric().ok_or_else(|| {
                        file_column(table, &s.name, "holds text but the score must be a probability")
                    })?;
                    Ok::<_, Error>(kept.iter().map(|&r| values[r]).collect())
                })
                .transpose()?;
            let pos = spec.pos_label.as_deref();
            let report = performance::evaluate_classification(
                &spec.target,
                &y,
                &p,
                s.as_deref().map(|s| (spec.score.as_deref().unwrap_or("score"), s)),
                pos,
            )
            .map_err(|e| in_file(table, e))?;
            let fairness = match (&groups, &spec.protected, &report.pos_label) {
                (Some(g), Some(attribute), Some(pos)) => {
                    let t: Vec<bool> = y.iter().map(|l| l == pos).collect();
                    let q: Vec<bool> = p.iter().map(|l| l == pos).collect();
                    Some(
                        fairness::assess(attribute, pos, &t, &q, g, spec.four_fifths)
                            .map(|r| Fairness::Classification(Box::new(r)))
                            .map_err(|e| in_file(table, e))?,
                    )
                }
                (Some(_), Some(_), None) => Some(Fairness::NotComputed(NotComputed {
                    not_computed: "parity metrics need a binary target".to_owned(),
                })),
                _ => None,
            };
            (Performance::Classification(report), fairness)
        }
    };

    Ok(Evaluation {
        data: table.path.display().to_string(),
        task,
        target: spec.target.clone(),
        prediction: spec.prediction.clone(),
        score: spec.score.clone(),
        protected: spec.protected.clone(),
        rows: table.rows,
        rows_dropped_missing: table.rows - kept.len(),
        performance,
        fairness,
        drift: None,
    })
}

fn regression_by_group(attribute: &str, y: &[f64], p: &[f64], groups: &[String]) -> Fairness {
    let mut rows: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        rows.entry(g.as_str()).or_default().push(i);
    }
    if rows.len() > fairness::MAX_GROUPS {
        return Fairness::NotComputed(NotComputed {
            not_computed: format!(
                "`{attribute}` has more than {} distinct values; fairness needs a protected attribute with few groups",
                fairness::MAX_GROUPS
            ),
        });
    }
    let groups = rows
        .into_iter()
        .map(|(g, idx)| {
            let yt: Vec<f64> = idx.iter().map(|&i| y[i]).collect();
            let yp: Vec<f64> = idx.iter().map(|&i| p[i]).collect();
            GroupError {
                group: g.to_owned(),
                count: idx.len(),
                mae: performance::mean_absolute_error(&yt, &yp),
                rmse: performance::root_mean_squared_error(&yt, &yp),
                r2: performance::r2_score(&yt, &yp),
            }
        })
        .collect();
    Fairness::Regression {
        attribute: attribute.to_owned(),
        groups,
        not_computed: "parity metrics need a binary classifier; error per group shown instead".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Categorical;
    use std::path::PathBuf;

    fn num(name: &str, v: &[f64]) -> Column {
        Column { name: name.into(), source: SourceType::Float, data: ColumnData::Numeric(v.to_vec()) }
    }

    fn cat(name: &str, v: &[Option<&str>]) -> Column {
        Column { name: name.into(), source: SourceType::String, data: ColumnData::Categorical(Categorical::from_values(v)) }
    }

    fn table(columns: Vec<Column>) -> Table {
        Table { path: PathBuf::from("scored.parquet"), rows: columns[0].len(), columns }
    }

    fn spec(score: Option<&str>, protected: Option<&str>) -> Spec {
        Spec {
            target: "y".into(),
            prediction: "p".into(),
            score: score.map(Into::into),
            protected: protected.map(Into::into),
            task: None,
            pos_label: None,
            four_fifths: fairness::FOUR_FIFTHS,
        }
    }

    #[test]
    fn drops_missing_rows_and_keeps_missing_groups() {
        let t = table(vec![
            num("y", &[1.0, 0.0, f64::NAN, 1.0]),
            num("p", &[1.0, 1.0, 0.0, 0.0]),
            cat("g", &[Some("a"), None, Some("b"), Some("b")]),
        ]);
        let e = evaluate(&t, &spec(None, Some("g"))).unwrap();
        assert_eq!(e.task, Task::Classification);
        assert_eq!(e.rows_dropped_missing, 1);
        let Some(Fairness::Classification(f)) = e.fairness else { panic!("fairness missing") };
        let names: Vec<&str> = f.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["(missing)", "a", "b"]);
    }

    #[test]
    fn errors_name_file_and_column() {
        let t = table(vec![num("y", &[f64::NAN, f64::NAN]), num("p", &[1.0, 0.0])]);
        let err = evaluate(&t, &spec(None, None)).unwrap_err();
        assert_eq!(err.to_string(), "`scored.parquet`, column `y`: all values are missing");
        let t = table(vec![num("y", &[1.0, 0.0]), num("p", &[1.0, 0.0])]);
        let err = evaluate(&t, &spec(Some("s"), None)).unwrap_err();
        assert_eq!(err.to_string(), "`scored.parquet`, column `s`: no such column");
        let t = table(vec![num("y", &[1.0, 2.0, 3.0]), cat("p", &[Some("a"), Some("b"), Some("c")])]);
        let err = evaluate(&t, &spec(None, None)).unwrap_err();
        assert!(err.to_string().starts_with("`scored.parquet`, column `p`: holds text"), "{err}");
        let t = table(vec![num("y", &[1.0, 0.0]), num("p", &[1.0, 0.0]), num("s", &[0.5, f64::INFINITY])]);
        let err = evaluate(&t, &spec(Some("s"), None)).unwrap_err();
        assert_eq!(err.to_string(), "`scored.parquet`, column `s`: score `inf` is not a probability in [0, 1]");
    }

    #[test]
    fn a_probability_as_prediction_is_caught() {
        let t = table(vec![num("y", &[1.0, 0.0, 1.0]), num("p", &[0.9, 0.2, 0.7])]);
        let err = evaluate(&t, &spec(None, None)).unwrap_err();
        assert!(err.to_string().starts_with("`scored.parquet`, column `p`: holds `0.9`, not a class label"), "{err}");
    }

    #[test]
    fn regression_is_inferred_and_grouped() {
        let t = table(vec![
            num("y", &[1.0, 2.0, 3.0, 4.0]),
            num("p", &[1.5, 2.0, 2.5, 4.0]),
            cat("g", &[Some("a"), Some("a"), Some("b"), Some("b")]),
        ]);
        let e = evaluate(&t, &spec(None, Some("g"))).unwrap();
        assert_eq!(e.task, Task::Regression);
        let Some(Fairness::Regression { groups, .. }) = e.fairness else { panic!("no group errors") };
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].mae, 0.25);
    }

    #[test]
    fn bool_target_matches_integer_prediction() {
        let y = Column {
            name: "y".into(),
            source: SourceType::Bool,
            data: ColumnData::Categorical(Categorical::from_values(&[Some("True"), Some("False")])),
        };
        let t = table(vec![y, num("p", &[1.0, 0.0])]);
        let e = evaluate(&t, &spec(None, None)).unwrap();
        let Performance::Classification(c) = e.performance else { panic!("not classification") };
        assert_eq!(c.metrics.value("accuracy"), Some(1.0));
    }
}
