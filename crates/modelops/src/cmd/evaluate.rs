//! `modelops evaluate`: performance and fairness of a scored table (CSV or
//! Parquet with the label, the prediction and optionally a score and a
//! protected attribute). Offline; the work is in `modelops_monitor`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use modelops_monitor::data::read_table;
use modelops_monitor::drift::{self, DriftOptions};
use modelops_monitor::evaluation::{evaluate, Spec};
use modelops_monitor::fairness::FOUR_FIFTHS;
use modelops_monitor::performance::Task;
use modelops_monitor::report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Md,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    Classification,
    Regression,
}

/// Performance (accuracy, precision, recall, F1, ROC AUC, log loss; or MAE,
/// RMSE, R²) and fairness over a protected attribute (selection rate,
/// demographic parity, equalized odds, equal opportunity, four-fifths flag).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scored data: CSV (.csv/.tsv) or Parquet.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Column with the true label or value.
    #[arg(long)]
    target: String,
    /// Column with the predicted label or value.
    #[arg(long)]
    prediction: String,
    /// Column with the predicted probability of the positive class (enables
    /// ROC AUC and log loss).
    #[arg(long)]
    score: Option<String>,
    /// Column with the protected attribute to assess fairness over.
    #[arg(long)]
    protected: Option<String>,
    /// Default: classification if the target is text/boolean or has at most
    /// two distinct values, else regression.
    #[arg(long, value_enum)]
    task: Option<TaskArg>,
    /// The positive class (default: 1 or true).
    #[arg(long)]
    pos_label: Option<String>,
    /// Also compare every column shared with this reference file (CSV or
    /// Parquet) for drift, in default mode; the HTML report then has all three.
    #[arg(long, value_name = "FILE")]
    reference: Option<PathBuf>,
    /// Demographic parity ratio below which the four-fifths flag is raised.
    #[arg(long, default_value_t = FOUR_FIFTHS)]
    four_fifths_threshold: f64,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write to FILE instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut columns: Vec<String> = Vec::new();
    for name in [Some(&args.target), Some(&args.prediction), args.score.as_ref(), args.protected.as_ref()].into_iter().flatten() {
        if !columns.contains(name) {
            columns.push(name.clone());
        }
    }
    // With a reference, every column is read: the drift section covers them all.
    let table = read_table(&args.data, if args.reference.is_some() { None } else { Some(&columns) })?;
    let spec = Spec {
        target: args.target,
        prediction: args.prediction,
        score: args.score,
        protected: args.protected,
        task: args.task.map(|t| match t {
            TaskArg::Classification => Task::Classification,
            TaskArg::Regression => Task::Regression,
        }),
        pos_label: args.pos_label,
        four_fifths: args.four_fifths_threshold,
    };
    let mut evaluation = evaluate(&table, &spec)?;
    if let Some(path) = &args.reference {
        let reference = read_table(path, None)?;
        let shared: Vec<String> =
            table.names().filter(|name| reference.column(name).is_some()).map(str::to_owned).collect();
        if shared.is_empty() {
            anyhow::bail!("`{}` and `{}` share no column to compare for drift", path.display(), args.data.display());
        }
        let options = DriftOptions { columns: Some(shared), ..DriftOptions::default() };
        evaluation.drift = Some(drift::compare(&reference, &table, &options)?);
    }
    let drift_view = evaluation.drift.as_ref().map(report::DriftView::from_report);
    let text = match args.format {
        Format::Table => report::evaluation_text(&evaluation),
        Format::Md => report::evaluation_markdown(&evaluation),
        Format::Json => report::evaluation_json(&evaluation)? + "\n",
        Format::Html => report::render_html(&report::Report {
            title: format!("Evaluation of {}", display_name(&args.data)),
            sources: std::iter::once(("data".to_owned(), args.data.display().to_string()))
                .chain(args.reference.iter().map(|r| ("reference".to_owned(), r.display().to_string())))
                .collect(),
            drift: drift_view.as_ref(),
            evaluation: Some(&evaluation),
        }),
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn display_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
