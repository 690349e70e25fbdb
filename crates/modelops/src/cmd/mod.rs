//! One module per subcommand. Add a variant to [`Command`] and a match arm in
//! [`run`]; keep the logic in the module.

use std::process::ExitCode;

mod alias;
mod audit;
mod drift;
mod evaluate;
mod gc;
mod models;
mod profile;
mod serve;
mod tag;
mod versions;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the server (REST API, health) on one port.
    Serve(crate::config::ServerArgs),
    /// Apply database migrations and exit.
    Migrate(crate::config::ServerArgs),
    /// The model inventory: create, list, show, update, retire.
    Models(models::Args),
    /// Model versions: push, list, show, download, update, retire.
    Versions(versions::Args),
    /// Movable names for versions (champion, challenger).
    Alias(alias::Args),
    /// Tags on models and versions.
    Tag(tag::Args),
    /// The audit log: read it, verify its hash chain.
    Audit(audit::Args),
    /// Remove uploaded artifacts no version references (admins; --dry-run lists them).
    Gc(gc::Args),
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
        Command::Serve(args) => block_on(serve::serve(args)).map(|()| ExitCode::SUCCESS),
        Command::Migrate(args) => block_on(serve::migrate(args)).map(|()| ExitCode::SUCCESS),
        Command::Models(args) => block_on(models::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Versions(args) => block_on(versions::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Alias(args) => block_on(alias::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Tag(args) => block_on(tag::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => block_on(audit::run(args)),
        Command::Gc(args) => block_on(gc::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Profile(command) => profile::run(command),
    }
}

/// Runs an async command on a runtime that lives as long as the command.
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(future)
}
