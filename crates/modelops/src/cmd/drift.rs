//! `modelops drift`: data drift between a reference (file or saved profile)
//! and a current file, offline — no server needed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use modelops_monitor::data::{read_table_with_progress, Table};
use modelops_monitor::drift::{self, DriftOptions, DriftReport, Method, Mode};
use modelops_monitor::profile::Profile;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("reference_source").required(true).args(["reference", "profile"])))]
pub struct Args {
    /// Reference data: CSV or Parquet.
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// A saved reference profile (`modelops profile fit`), instead of --reference.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Current data: CSV or Parquet.
    #[arg(long)]
    pub current: PathBuf,
    /// Columns to compare (comma-separated); default: all.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Treat these columns as categorical (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Treat these columns as numerical (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub numerical: Vec<String>,
    /// `evidently` reproduces Evidently 0.7.23; `default` uses two-sample
    /// tests against reference-fitted bins (see docs/monitoring.md).
    #[arg(long, value_enum, default_value_t = ModeArg::Default)]
    pub mode: ModeArg,
    /// One method for every column instead of the default choice.
    #[arg(long, value_parser = parse_method)]
    pub method: Option<Method>,
    /// One threshold for every column instead of the method's default.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Dataset drift when at least this share of columns drifted.
    #[arg(long, default_value_t = 0.5)]
    pub drift_share: f64,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Shorthand for `--format json`.
    #[arg(long)]
    pub json: bool,
    /// Write the report here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    Evidently,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Md,
    /// One self-contained page with a histogram per column.
    Html,
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::parse(s).ok_or_else(|| {
        let keys: Vec<&str> = Method::ALL.iter().map(|m| m.key()).collect();
        format!("unknown method `{s}`; one of {}", keys.join(", "))
    })
}

/// Files above this size get a progress bar (when stderr is a terminal).
const PROGRESS_BYTES: u64 = 16 << 20;

/// Read a table, with a progress bar on large files.
pub fn read(path: &Path, columns: Option<&[String]>) -> anyhow::Result<Table> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let bar = if size >= PROGRESS_BYTES && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(1);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {percent}%")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(format!("reading {}", path.display()));
        Some(bar)
    } else {
        None
    };
    let progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total.max(1));
            bar.set_position(done.min(total));
        }
    };
    let table = read_table_with_progress(path, columns, &progress)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(table)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options = DriftOptions {
        mode: match args.mode {
            ModeArg::Evidently => Mode::Evidently,
            ModeArg::Default => Mode::Default,
        },
        columns: args.columns.clone(),
        categorical: args.categorical.clone(),
        numerical: args.numerical.clone(),
        method: args.method,
        threshold: args.threshold,
        drift_share: args.drift_share,
    };
    let current = read(&args.current, None)?;
    let report = match (&args.reference, &args.profile) {
        (Some(reference), _) => {
            let reference = read(reference, None)?;
            drift::compare_tables(reference, current, &options)?
        }
        (None, Some(profile_path)) => {
            let profile = Profile::load(profile_path)?;
            drift::compare_profile(&profile, &profile_path.display().to_string(), &current, &options)?
        }
        (None, None) => anyhow::bail!("pass `--reference FILE` or `--profile FILE`"),
    };
    let format = if args.json { Format::Json } else { args.format };
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&report)?,
        Format::Table => render_table(&report),
        Format::Md => render_markdown(&report),
        Format::Html => {
            let view = modelops_monitor::report::DriftView::from_report(&report);
            modelops_monitor::report::render_html(&modelops_monitor::report::Report {
                title: format!("Data drift of {}", report.current.path),
                sources: vec![
                    ("reference".to_owned(), report.reference.path.clone()),
                    ("current".to_owned(), report.current.path.clone()),
                ],
                drift: Some(&view),
                evaluation: None,
            })
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))?,
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn score_text(c: &drift::ColumnDrift) -> String {
    match c.score {
        Some(s) if s != 0.0 && (s.abs() < 1e-4 || s.abs() >= 1e6) => format!("{s:.3e}"),
        Some(s) => format!("{s:.4}"),
        None => "-".to_string(),
    }
}

fn rows(report: &DriftReport) -> Vec<[String; 6]> {
    report
        .columns
        .iter()
        .map(|c| {
            [
                c.column.clone(),
                c.kind.map(|k| format!("{k:?}").to_lowercase()).unwrap_or_else(|| "-".into()),
                c.method_name.clone().unwrap_or_else(|| "-".into()),
                score_text(c),
                c.threshold.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                match (&c.not_computed, c.drift_detected) {
                    (Some(reason), _) => format!("not computed: {reason}"),
                    (None, true) => "DRIFT".into(),
                    (None, false) => "ok".into(),
                },
            ]
        })
        .collect()
}

const HEADERS: [&str; 6] = ["column", "type", "method", "score", "threshold", "drift"];

fn summary(report: &DriftReport) -> String {
    format!(
        "{} of {} columns drifted (share {:.3}, threshold {}): dataset drift {}",
        report.number_of_drifted_columns,
        report.number_of_columns,
        report.share_of_drifted_columns,
        report.drift_share,
        if report.dataset_drift { "DETECTED" } else { "not detected" }
    )
}

fn render_table(report: &DriftReport) -> String {
    let rows = rows(report);
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = format!(
        "drift ({} mode): reference {} ({} rows), current {} ({} rows)\n\n",
        match report.mode {
            Mode::Evidently => "evidently",
            Mode::Default => "default",
        },
        report.reference.path,
        report.reference.rows,
        report.current.path,
        report.current.rows
    );
    out.push_str(&line(&HEADERS.map(String::from)));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&summary(report));
    out
}

fn render_markdown(report: &DriftReport) -> String {
    let mut out = format!("# Data drift\n\n{}\n\n", summary(report));
    out.push_str(&format!("| {} |\n|{}\n", HEADERS.join(" | "), "---|".repeat(HEADERS.len())));
    for row in rows(report) {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}
