//! `modelops profile`: fit a reference profile once from training data and
//! save it; `modelops drift --profile` then compares current windows with it.

use std::path::PathBuf;
use std::process::ExitCode;

use modelops_monitor::profile::Profile;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Fit a reference profile from a CSV or Parquet file.
    Fit(FitArgs),
}

#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// Training / reference data: CSV or Parquet.
    pub data: PathBuf,
    /// Where to write the profile (JSON).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Columns to profile (comma-separated); default: all.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Treat these columns as categorical (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Treat these columns as numerical (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub numerical: Vec<String>,
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Fit(args) => {
            let table = super::drift::read(&args.data, args.columns.as_deref())?;
            let profile = Profile::fit(&table, args.columns.as_deref(), &args.categorical, &args.numerical)?;
            profile.save(&args.out)?;
            let usable = profile.columns.iter().filter(|c| c.kind.is_some()).count();
            eprintln!(
                "profile of {} rows, {} columns ({} usable) written to {}",
                profile.rows,
                profile.columns.len(),
                usable,
                args.out.display()
            );
            for c in profile.columns.iter().filter(|c| c.kind.is_none()) {
                eprintln!("  {}: not usable: {}", c.name, c.unusable.as_deref().unwrap_or(""));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
