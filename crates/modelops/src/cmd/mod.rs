//! One module per subcommand. Add a variant to [`Command`] and a match arm in
//! [`run`]; keep the logic in the module.

use std::process::ExitCode;

mod evaluate;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Performance and fairness of a scored CSV/Parquet file (offline).
    Evaluate(evaluate::Args),
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Evaluate(args) => evaluate::run(args),
    }
}
