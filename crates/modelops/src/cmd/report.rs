//! `modelops report …`: the governance reports the server renders from its
//! own data (inventory, a model's governance report, an EU AI Act Annex IV
//! draft), as Markdown, HTML or JSON, to stdout or a file.

use super::models::path_segment;
use crate::client::{Client, ClientArgs};
use anyhow::Context;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ReportCommand,
    /// md, html or json [default: md; json with --json].
    #[arg(long, global = true, value_parser = ["md", "html", "json"])]
    pub format: Option<String>,
    /// Write the report here instead of stdout.
    #[arg(long, short, global = true, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Every model with the SR 11-7 inventory fields.
    Inventory,
    /// A model's versions, approvals, evidence, gate decisions and audit excerpt.
    Model { name: String },
    /// An EU AI Act Annex IV technical-documentation draft, with what is missing.
    AnnexIv { name: String },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let format = args.format.clone().unwrap_or_else(|| if args.client.json { "json" } else { "md" }.to_string());
    let path = match &args.command {
        ReportCommand::Inventory => "/api/v1/reports/inventory".to_string(),
        ReportCommand::Model { name } => format!("/api/v1/reports/models/{}", path_segment(name)),
        ReportCommand::AnnexIv { name } => format!("/api/v1/reports/models/{}/annex-iv", path_segment(name)),
    };
    let text = client.get_text(&path, &[("format", format.as_str())]).await?;
    match &args.out {
        Some(file) => {
            std::fs::write(file, &text).with_context(|| format!("cannot write `{}`", file.display()))?;
            eprintln!("report written to {}", file.display());
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                stdout.write_all(b"\n")?;
            }
        }
    }
    Ok(())
}
