//! One module per subcommand. Add a variant to [`Command`] and a match arm in
//! [`run`]; keep the logic in the module.

use std::process::ExitCode;

mod drift;
mod evaluate;
mod profile;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Performance and fairness of a scored CSV/Parquet file (offline).
    Evaluate(evaluate::Args),
    /// Data drift between a reference (file or profile) and a current file (offline).
    Drift(drift::Args),
    /// Reference profiles for drift: fit once from training data, reuse per window.
    #[command(subcommand)]
    Profile(profile::Command),
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Evaluate(args) => evaluate::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Profile(command) => profile::run(command),
    }
}
