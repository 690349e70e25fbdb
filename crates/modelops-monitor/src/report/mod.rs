//! Reports for people: one self-contained HTML page ([`render_html`]) with
//! drift, performance and fairness, and plain-text / Markdown renderings of
//! an [`Evaluation`] for the terminal ([`evaluation_text`],
//! [`evaluation_markdown`]).
//!
//! The HTML page is built from view types ([`DriftView`]) rather than from
//! the drift engine's result types directly, so the page does not change
//! when a statistic gains a field; the drift command fills the view.

pub mod html;
mod svg;
mod text;

use serde::Serialize;

pub use html::{escape, fmt_num};
pub use text::{evaluation_markdown, evaluation_text};

use crate::drift;
use crate::evaluation::Evaluation;

/// Reference and current distribution of one column, as shares (each side
/// sums to 1 over its bins).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Histogram {
    /// `edges.len() == reference.len() + 1`.
    Numeric { edges: Vec<f64>, reference: Vec<f64>, current: Vec<f64> },
    Categorical { categories: Vec<String>, reference: Vec<f64>, current: Vec<f64> },
}

/// One column's drift verdict as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    pub name: String,
    /// `numerical`, `categorical`, …
    pub kind: String,
    pub method: String,
    pub score: Option<f64>,
    pub threshold: Option<f64>,
    /// `None` when not computed.
    pub drifted: Option<bool>,
    pub not_computed: Option<String>,
    pub histogram: Option<Histogram>,
}

/// Dataset-level drift as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftView {
    pub dataset_drift: bool,
    pub drifted: usize,
    /// Columns with a verdict (computed ones).
    pub columns_total: usize,
    pub not_computed: usize,
    /// Share of drifted columns at which the dataset counts as drifted.
    pub drift_share: f64,
    /// A sentence on the mode / methods used.
    pub note: String,
    pub columns: Vec<ColumnDrift>,
}

impl DriftView {
    /// The view of a drift engine result: counts become shares, open-ended
    /// outer bins get a finite width for drawing.
    pub fn from_report(report: &drift::DriftReport) -> Self {
        let mode = match report.mode {
            drift::Mode::Evidently => "Evidently 0.7.23-compatible mode",
            drift::Mode::Default => "Default mode: two-sample tests against reference-fitted bins",
        };
        let columns: Vec<ColumnDrift> = report.columns.iter().map(column_view).collect();
        let not_computed = columns.iter().filter(|c| c.not_computed.is_some()).count();
        DriftView {
            dataset_drift: report.dataset_drift,
            drifted: report.number_of_drifted_columns,
            columns_total: report.number_of_columns,
            not_computed,
            drift_share: report.drift_share,
            note: format!(
                "{mode}; reference {} rows, current {} rows.",
                report.reference.rows, report.current.rows
            ),
            columns,
        }
    }
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts.iter().map(|&c| if total == 0 { 0.0 } else { c as f64 / total as f64 }).collect()
}

/// Replace infinite outer edges by one neighbouring bin width.
fn finite_edges(edges: &[f64]) -> Vec<f64> {
    let mut e = edges.to_vec();
    let n = e.len();
    if n >= 3 {
        if !e[0].is_finite() {
            let w = if e[2].is_finite() && e[1].is_finite() { e[2] - e[1] } else { 1.0 };
            e[0] = e[1] - w.abs().max(f64::MIN_POSITIVE);
        }
        if !e[n - 1].is_finite() {
            let w = if e[n - 2].is_finite() && e[n - 3].is_finite() { e[n - 2] - e[n - 3] } else { 1.0 };
            e[n - 1] = e[n - 2] + w.abs().max(f64::MIN_POSITIVE);
        }
    }
    e
}

fn column_view(c: &drift::ColumnDrift) -> ColumnDrift {
    let histogram = c.histogram.as_ref().map(|h| match h {
        drift::Histogram::Bins { edges, reference, current } => Histogram::Numeric {
            edges: finite_edges(edges),
            reference: shares(reference),
            current: shares(current),
        },
        drift::Histogram::Categories { labels, reference, current } => Histogram::Categorical {
            categories: labels.clone(),
            reference: shares(reference),
            current: shares(current),
        },
    });
    ColumnDrift {
        name: c.column.clone(),
        kind: match c.kind {
            Some(drift::ColumnKind::Numerical) => "numerical".to_owned(),
            Some(drift::ColumnKind::Categorical) => "categorical".to_owned(),
            None => "–".to_owned(),
        },
        method: c.method_name.clone().unwrap_or_else(|| "–".to_owned()),
        score: c.score,
        threshold: c.threshold,
        drifted: c.not_computed.is_none().then_some(c.drift_detected),
        not_computed: c.not_computed.clone(),
        histogram,
    }
}

/// What goes into one HTML report.
#[derive(Debug, Clone, Default)]
pub struct Report<'a> {
    pub title: String,
    /// (what, file) pairs shown under the title: `("reference", "ref.parquet")`.
    pub sources: Vec<(String, String)>,
    pub drift: Option<&'a DriftView>,
    pub evaluation: Option<&'a Evaluation>,
}

/// The report as one HTML document: inline CSS and SVG, no script, no
/// network.
pub fn render_html(report: &Report<'_>) -> String {
    html::page(report)
}

/// An evaluation as pretty JSON (`modelops evaluate --format json`).
pub fn evaluation_json(evaluation: &Evaluation) -> crate::Result<String> {
    serde_json::to_string_pretty(evaluation).map_err(|e| crate::Error::Internal(format!("cannot serialise evaluation: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Categorical, Column, ColumnData, SourceType, Table};
    use crate::evaluation::{evaluate, Spec};

    pub(crate) fn sample_evaluation(group: &str) -> Evaluation {
        let n = 40;
        let y: Vec<f64> = (0..n).map(|i| f64::from(i % 2)).collect();
        let p: Vec<f64> = (0..n).map(|i| f64::from((i / 2) % 2)).collect();
        let s: Vec<f64> = (0..n).map(|i| f64::from(i) / f64::from(n)).collect();
        let g: Vec<Option<&str>> = (0..n).map(|i| Some(if i < 25 { group } else { "other" })).collect();
        let col = |name: &str, v: Vec<f64>| Column { name: name.into(), source: SourceType::Float, data: ColumnData::Numeric(v) };
        let table = Table {
            path: "scored.parquet".into(),
            rows: n as usize,
            columns: vec![
                col("y", y),
                col("p", p),
                col("s", s),
                Column { name: "g".into(), source: SourceType::String, data: ColumnData::Categorical(Categorical::from_values(&g)) },
            ],
        };
        let spec = Spec {
            target: "y".into(),
            prediction: "p".into(),
            score: Some("s".into()),
            protected: Some("g".into()),
            task: None,
            pos_label: None,
            four_fifths: 0.8,
        };
        evaluate(&table, &spec).unwrap()
    }

    fn sample_drift(name: &str) -> DriftView {
        DriftView {
            dataset_drift: true,
            drifted: 1,
            columns_total: 2,
            not_computed: 1,
            drift_share: 0.5,
            note: "default mode".into(),
            columns: vec![
                ColumnDrift {
                    name: name.into(),
                    kind: "categorical".into(),
                    method: "chi-square".into(),
                    score: Some(0.001),
                    threshold: Some(0.05),
                    drifted: Some(true),
                    not_computed: None,
                    histogram: Some(Histogram::Categorical {
                        categories: vec![name.into(), "b".into()],
                        reference: vec![0.5, 0.5],
                        current: vec![0.8, 0.2],
                    }),
                },
                ColumnDrift {
                    name: "x".into(),
                    kind: "numerical".into(),
                    method: "ks".into(),
                    score: Some(0.4),
                    threshold: Some(0.05),
                    drifted: Some(false),
                    not_computed: None,
                    histogram: Some(Histogram::Numeric {
                        edges: vec![0.0, 1.0, 2.0],
                        reference: vec![0.5, 0.5],
                        current: vec![0.4, 0.6],
                    }),
                },
                ColumnDrift {
                    name: "empty".into(),
                    kind: "numerical".into(),
                    method: "–".into(),
                    score: None,
                    threshold: None,
                    drifted: None,
                    not_computed: Some("all values are missing".into()),
                    histogram: None,
                },
            ],
        }
    }

    #[test]
    fn user_strings_never_reach_the_page_unescaped() {
        let evil = "<script>alert('x')</script>";
        let eval = sample_evaluation(evil);
        let drift = sample_drift(evil);
        let html = render_html(&Report {
            title: evil.into(),
            sources: vec![("data".into(), evil.into())],
            drift: Some(&drift),
            evaluation: Some(&eval),
        });
        assert!(!html.contains("<script"), "raw script tag in report");
        assert!(html.contains("&lt;script&gt;"));
        for section in ["id=\"summary\"", "id=\"drift\"", "id=\"performance\"", "id=\"fairness\""] {
            assert!(html.contains(section), "missing {section}");
        }
        // The only URL is the SVG namespace: nothing is fetched.
        assert_eq!(html.matches("https:").count(), 0);
        assert_eq!(html.matches("http:").count(), html.matches("http://www.w3.org/2000/svg").count());
    }

    #[test]
    fn drift_results_become_shares_with_finite_edges() {
        use crate::data::Table;
        let numeric = |name: &str, v: Vec<f64>| Column { name: name.into(), source: SourceType::Float, data: ColumnData::Numeric(v) };
        let reference = Table {
            path: "ref.csv".into(),
            rows: 200,
            columns: vec![numeric("x", (0..200).map(f64::from).collect()), numeric("e", vec![f64::NAN; 200])],
        };
        let current = Table {
            path: "cur.csv".into(),
            rows: 200,
            columns: vec![numeric("x", (0..200).map(|i| f64::from(i) + 80.0).collect()), numeric("e", vec![f64::NAN; 200])],
        };
        let report = drift::compare(&reference, &current, &drift::DriftOptions::default()).unwrap();
        let view = DriftView::from_report(&report);
        let x = view.columns.iter().find(|c| c.name == "x").unwrap();
        assert_eq!(x.drifted, Some(true));
        let Some(Histogram::Numeric { edges, reference, current }) = &x.histogram else { panic!("no histogram") };
        assert!(edges.iter().all(|e| e.is_finite()));
        assert!((reference.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((current.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let e = view.columns.iter().find(|c| c.name == "e").unwrap();
        assert_eq!(e.drifted, None);
        assert!(e.not_computed.is_some());
        assert_eq!(view.not_computed, 1);
        let html = render_html(&Report { title: "drift".into(), drift: Some(&view), ..Report::default() });
        assert!(html.contains("id=\"drift\"") && html.contains("Not computed"));
    }

    #[test]
    fn a_report_with_only_performance_renders() {
        let eval = sample_evaluation("a");
        let html = render_html(&Report { title: "t".into(), evaluation: Some(&eval), ..Report::default() });
        assert!(html.contains("id=\"performance\"") && !html.contains("id=\"drift\""));
        assert!(html.matches("<svg").count() >= 2);
    }
}
