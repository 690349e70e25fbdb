//! One module per subcommand. Add a variant to [`Command`] and a match arm in
//! [`run`]; keep the logic in the module.

use std::process::ExitCode;

mod alias;
mod audit;
mod deploy;
mod drift;
mod estimate;
mod evaluate;
mod evidence;
mod gate;
mod gc;
mod jobs;
mod login;
mod models;
mod monitor;
mod monitor_report;
mod policy;
mod predict;
mod profile;
mod report;
mod reviews;
mod replicas;
mod serve;
mod tag;
mod tokens;
mod users;
mod versions;

pub(crate) use serve::write_secret;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the server (REST API, health) on one port.
    Serve(crate::config::ServerArgs),
    /// Apply database migrations and exit.
    Migrate(crate::config::ServerArgs),
    /// Break-glass, offline: a new token for `admin` straight through the database (for whoever runs the server).
    AdminToken(crate::config::ServerArgs),
    /// The model inventory: create, list, show, update, retire.
    Models(models::Args),
    /// Model versions: push, list, show, download, update, retire; submit, approve, reject, promote.
    Versions(versions::Args),
    /// Movable names for versions (`champion`, set by promotion; `staging`, `challenger`).
    Alias(alias::Args),
    /// Tags on models and versions.
    Tag(tag::Args),
    /// Validation evidence on a version: metrics and documents.
    Evidence(evidence::Args),
    /// Ask a gate whether a version may move now (exit 0 allowed, 1 denied, 2 error).
    Gate(gate::Args),
    /// Run a version on rows from a JSON or CSV file: `NAME` (production), `NAME@ALIAS` or `NAME/VERSION`.
    Predict(predict::Args),
    /// Periodic reviews of production versions.
    Reviews(reviews::Args),
    /// Deployments: named endpoints moving a model's traffic (direct, A/B, canary, shadow).
    Deploy(deploy::Args),
    /// Roll a deployment back: stop its canary, or return to the version served before.
    Rollback(deploy::RollbackArgs),
    /// Predictions recorded by deployments: list them, export a window to Parquet.
    Predictions(deploy::PredictionsArgs),
    /// Live monitors on deployments: create, list, show their windows (table, JSON, HTML), remove.
    Monitor(monitor::Args),
    /// A version's reference profile, what live monitors compare with: set (once), show.
    Reference(monitor::ReferenceArgs),
    /// Send ground-truth labels for a deployment's recorded calls (JSON or CSV of request_id,label).
    Labels(monitor::LabelsArgs),
    /// Alerts raised by monitors, and the retraining requests they opened.
    Alerts(monitor::AlertsArgs),
    /// Retraining jobs and their runs: define a model's job, list runs, show one, read its output.
    Jobs(jobs::Args),
    /// Start a run of a model's retraining job now (`--wait` follows it to its end).
    Retrain(jobs::RetrainArgs),
    /// The governance policy: show the server's, check a file offline, load one.
    Policy(policy::Args),
    /// Inventory, model and EU AI Act Annex IV reports (Markdown, HTML, JSON).
    Report(report::Args),
    /// The audit log: read it, verify its hash chain.
    Audit(audit::Args),
    /// Save an API token for the server, once the server accepts it (from --token, MODELOPS_TOKEN or stdin).
    Login(login::Args),
    /// Forget the token saved for the server.
    Logout(login::Args),
    /// Show who the token in use belongs to.
    Whoami(login::Args),
    /// Users and their roles (admins).
    Users(users::Args),
    /// API tokens: create, list, revoke.
    Tokens(tokens::Args),
    /// Remove uploaded artifacts no version references (admins; --dry-run lists them).
    Gc(gc::Args),
    /// Performance and fairness of a scored CSV/Parquet file (offline).
    Evaluate(evaluate::Args),
    /// Estimated performance of a binary classifier on unlabelled data, from a labelled reference (NannyML's CBPE; offline).
    Estimate(estimate::Args),
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
        Command::AdminToken(args) => block_on(serve::admin_token(args)).map(|()| ExitCode::SUCCESS),
        Command::Models(args) => block_on(models::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Versions(args) => block_on(versions::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Alias(args) => block_on(alias::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Tag(args) => block_on(tag::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Evidence(args) => block_on(evidence::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Gate(args) => Ok(gate::run(args)),
        Command::Predict(args) => block_on(predict::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Reviews(args) => block_on(reviews::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Deploy(args) => block_on(deploy::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Rollback(args) => block_on(deploy::rollback(args)).map(|()| ExitCode::SUCCESS),
        Command::Predictions(args) => block_on(deploy::predictions(args)).map(|()| ExitCode::SUCCESS),
        Command::Monitor(args) => block_on(monitor::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Reference(args) => block_on(monitor::run_reference(args)).map(|()| ExitCode::SUCCESS),
        Command::Labels(args) => block_on(monitor::run_labels(args)).map(|()| ExitCode::SUCCESS),
        Command::Alerts(args) => block_on(monitor::run_alerts(args)).map(|()| ExitCode::SUCCESS),
        Command::Jobs(args) => block_on(jobs::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Retrain(args) => block_on(jobs::retrain(args)),
        Command::Policy(args) => policy::run(args),
        Command::Report(args) => block_on(report::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => block_on(audit::run(args)),
        Command::Login(args) => block_on(login::login(args)).map(|()| ExitCode::SUCCESS),
        Command::Logout(args) => block_on(login::logout(args)).map(|()| ExitCode::SUCCESS),
        Command::Whoami(args) => block_on(login::whoami(args)).map(|()| ExitCode::SUCCESS),
        Command::Users(args) => block_on(users::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Tokens(args) => block_on(tokens::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Gc(args) => block_on(gc::run(args)).map(|()| ExitCode::SUCCESS),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Estimate(args) => estimate::run(args),
        Command::Drift(args) => drift::run(args),
        Command::Profile(command) => profile::run(command),
    }
}

/// `90`, `90s`, `15m`, `12h`, `7d` → seconds (durations on the command line).
pub(crate) fn parse_seconds(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| format!("`{text}` is not a duration such as `90s`, `15m`, `12h` or `7d`"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => return Err(format!("`{text}`: the unit must be `s`, `m`, `h` or `d`")),
    };
    n.checked_mul(scale).ok_or_else(|| format!("`{text}` is too long"))
}

/// Runs an async command on a runtime that lives as long as the command.
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(future)
}
