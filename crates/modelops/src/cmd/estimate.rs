//! `modelops estimate`: performance of a binary classifier on data without
//! labels yet, estimated from its scores with NannyML's confidence-based
//! performance estimation (CBPE), offline. The estimator is fitted on a
//! labelled reference file; the current file is cut into chunks of
//! consecutive rows, as NannyML's `chunk_size` does. The work is in
//! `modelops_monitor::cbpe`.
//!
//! Exit code 0 with the estimates, 2 when the inputs cannot be used (a
//! missing column, a value that is not a probability or not binary, a
//! reference with one class).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use modelops_monitor::cbpe::{self, Cbpe, CalibrationCheck, Estimate, Fields};
use modelops_monitor::data::read_table;
use serde::Serialize;

/// Estimate accuracy, ROC AUC, precision, recall and F1 of a binary
/// classifier per chunk of a current file that has no labels, from a
/// labelled reference (NannyML 0.13.1's CBPE).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Labelled reference data: CSV or Parquet with the score, prediction and label.
    #[arg(long, value_name = "FILE")]
    reference: PathBuf,
    /// Current data: CSV or Parquet with the score and prediction.
    #[arg(long, value_name = "FILE")]
    current: PathBuf,
    /// Column with the predicted probability of the positive class.
    #[arg(long)]
    score: String,
    /// Column with the predicted label (0/1 or boolean).
    #[arg(long)]
    prediction: String,
    /// Column with the true label in the reference (0/1 or boolean).
    #[arg(long)]
    label: String,
    /// Rows per chunk of the current file; the last chunk keeps what is
    /// left. Default: a tenth of the rows (NannyML's default chunker).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    chunk_size: Option<u64>,
    /// Print JSON (with the fitted estimator) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Exit code when the inputs cannot be used.
const ERROR: u8 = 2;

#[derive(Debug, Serialize)]
struct Report {
    reference: Source,
    current: Source,
    chunk_size: usize,
    calibration: CalibrationCheck,
    chunks: Vec<Chunk>,
    /// The fitted estimator, as it would be stored.
    estimator: Cbpe,
}

#[derive(Debug, Serialize)]
struct Source {
    path: String,
    rows: usize,
    /// Rows left out for a missing value in one of the columns used.
    rows_missing: usize,
}

#[derive(Debug, Serialize)]
struct Chunk {
    chunk_index: usize,
    /// First and last row of the chunk in the current file (both included,
    /// as NannyML's `start_index` and `end_index`).
    start_index: usize,
    end_index: usize,
    #[serde(flatten)]
    estimate: Estimate,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match estimate(&args) {
        Ok(report) => {
            let text =
                if args.json { serde_json::to_string_pretty(&report)? + "\n" } else { render_table(&report) };
            // A reader that stops early (`| head`) is not an error.
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("cannot write the estimates"),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(ERROR))
        }
    }
}

fn estimate(args: &Args) -> anyhow::Result<Report> {
    let fields = Fields { score: args.score.clone(), label: args.label.clone(), prediction: args.prediction.clone() };

    let names = [args.score.clone(), args.prediction.clone(), args.label.clone()];
    let reference = read_table(&args.reference, Some(&names))?;
    let in_reference = |e| anyhow::Error::new(e).context(format!("`{}`", args.reference.display()));
    let scores = cbpe::score_values(reference.require(&args.score)?).map_err(in_reference)?;
    let predictions = cbpe::binary_values(reference.require(&args.prediction)?).map_err(in_reference)?;
    let labels = cbpe::binary_values(reference.require(&args.label)?).map_err(in_reference)?;
    let (mut rs, mut rp, mut rl) = (Vec::new(), Vec::new(), Vec::new());
    for ((s, p), l) in scores.iter().zip(&predictions).zip(&labels) {
        if let (Some(s), Some(p), Some(l)) = (s, p, l) {
            rs.push(*s);
            rp.push(*p);
            rl.push(*l);
        }
    }
    let estimator = Cbpe::fit_with_fields(fields, &rs, &rl, &rp).map_err(in_reference)?;

    let names = [args.score.clone(), args.prediction.clone()];
    let current = read_table(&args.current, Some(&names))?;
    let in_current = |e| anyhow::Error::new(e).context(format!("`{}`", args.current.display()));
    let scores = cbpe::score_values(current.require(&args.score)?).map_err(in_current)?;
    let predictions = cbpe::binary_values(current.require(&args.prediction)?).map_err(in_current)?;
    let rows = current.rows;
    let chunk_size = match args.chunk_size {
        Some(n) => usize::try_from(n).context("--chunk-size is too large")?,
        None => (rows / 10).max(1),
    };
    let mut chunks = Vec::new();
    let mut missing = 0;
    for (chunk_index, start) in (0..rows).step_by(chunk_size).enumerate() {
        let end = (start + chunk_size).min(rows);
        let (mut s, mut p) = (Vec::with_capacity(end - start), Vec::with_capacity(end - start));
        for row in start..end {
            match (scores[row], predictions[row]) {
                (Some(si), Some(pi)) => {
                    s.push(si);
                    p.push(pi);
                }
                _ => missing += 1,
            }
        }
        let estimate = estimator
            .estimate(&s, &p)
            .map_err(in_current)
            .with_context(|| format!("chunk {chunk_index} (rows {start}..{})", end - 1))?;
        chunks.push(Chunk { chunk_index, start_index: start, end_index: end - 1, estimate });
    }
    Ok(Report {
        reference: Source { path: display(&args.reference), rows: reference.rows, rows_missing: reference.rows - rs.len() },
        current: Source { path: display(&args.current), rows, rows_missing: missing },
        chunk_size,
        calibration: estimator.calibration.clone(),
        chunks,
        estimator,
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn render_table(report: &Report) -> String {
    let cell = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
    let headers = ["chunk", "rows", "start", "end", "accuracy", "roc_auc", "precision", "recall", "f1"];
    let rows: Vec<[String; 9]> = report
        .chunks
        .iter()
        .map(|c| {
            let e = &c.estimate;
            [
                c.chunk_index.to_string(),
                e.rows.to_string(),
                c.start_index.to_string(),
                c.end_index.to_string(),
                cell(e.accuracy),
                cell(e.roc_auc),
                cell(e.precision),
                cell(e.recall),
                cell(e.f1),
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[String]| {
        cells.iter().zip(widths).map(|(c, w)| format!("{c:>w$}")).collect::<Vec<_>>().join("  ") + "\n"
    };
    let e = &report.estimator;
    let mut out = format!(
        "estimated performance (CBPE): reference {} ({} rows; accuracy {:.4}, ROC AUC {:.4}), current {} ({} rows)\n",
        report.reference.path, e.reference_rows, e.reference_accuracy, e.reference_roc_auc, report.current.path, report.current.rows
    );
    out.push_str(&format!("calibration: {}\n", report.calibration.reason));
    for (what, source) in [("reference", &report.reference), ("current", &report.current)] {
        if source.rows_missing > 0 {
            out.push_str(&format!("{what}: {} rows left out for a missing value\n", source.rows_missing));
        }
    }
    out.push('\n');
    out.push_str(&line(&headers.map(String::from)));
    for row in &rows {
        out.push_str(&line(row));
    }
    for c in &report.chunks {
        for (metric, reason) in &c.estimate.not_computed {
            out.push_str(&format!("chunk {}: {metric} not estimated: {reason}\n", c.chunk_index));
        }
    }
    out
}
