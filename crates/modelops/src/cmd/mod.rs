//! One module per subcommand. Add a variant to [`Command`] and a match arm in
//! [`run`]; keep the logic in the module.

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
}

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
    }
}
