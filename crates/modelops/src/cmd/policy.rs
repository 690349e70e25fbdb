//! `modelops policy …`: the governance policy. `show` and `load` talk to
//! the server; `check` parses a file offline with the server's own parser,
//! so a CI job can refuse a bad policy before anyone loads it.

use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_table, text_of, time};
use anyhow::{anyhow, Context};
use modelops_governance::policy::{Policy, PolicyFormat, PolicySummary};
use modelops_server::wire::{LoadPolicyRequest, PolicyResponse};
use reqwest::Method;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// The server's active policy: hash, who loaded it when, the gates per tier.
    Show {
        /// Print the policy file's text instead.
        #[arg(long)]
        source: bool,
    },
    /// Parse a policy file (.toml, .yaml, .yml) offline; exit 1 naming FILE:LINE if it is bad.
    Check { file: PathBuf },
    /// Load a policy file into the server (admins).
    Load { file: PathBuf },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        PolicyCommand::Check { file } => check(&file, args.client.json).map(|()| ExitCode::SUCCESS),
        PolicyCommand::Show { source } => super::block_on(show(&args.client, source)).map(|()| ExitCode::SUCCESS),
        PolicyCommand::Load { file } => super::block_on(load(&args.client, &file)).map(|()| ExitCode::SUCCESS),
    }
}

/// The file's text and its format, from its extension.
fn read_policy_file(file: &Path) -> anyhow::Result<(String, PolicyFormat)> {
    let format = PolicyFormat::from_extension(&file.to_string_lossy())
        .with_context(|| format!("`{}`: a policy file's name ends in .toml, .yaml or .yml", file.display()))?;
    let source = std::fs::read_to_string(file).with_context(|| format!("cannot read the policy file `{}`", file.display()))?;
    Ok((source, format))
}

fn check(file: &Path, json_out: bool) -> anyhow::Result<()> {
    let (source, format) = read_policy_file(file)?;
    // One line, as every error: the TOML parser's problems may span several.
    let policy = Policy::parse(&source, format, &file.display().to_string())
        .map_err(|e| anyhow!("{}", crate::client::lines_joined(&e.to_string())))?;
    let summary = policy.summary();
    let conditions = count_conditions(&summary);
    if json_out {
        print_json(&json!({"ok": true, "sha256": policy.sha256().to_string(), "conditions": conditions, "summary": summary}))
    } else {
        println!("ok: sha256 {}, {conditions} conditions", policy.sha256());
        Ok(())
    }
}

async fn show(args: &ClientArgs, source: bool) -> anyhow::Result<()> {
    let policy: PolicyResponse = Client::new(args)?.get("/api/v1/policy").await?;
    if source {
        print!("{}", policy.source);
        if !policy.source.ends_with('\n') {
            println!();
        }
        return Ok(());
    }
    if args.json {
        return print_json(&policy);
    }
    println!("sha256: {}", policy.sha256);
    println!("format: {}", policy.format);
    match (&policy.loaded_at, &policy.loaded_by) {
        (Some(at), Some(by)) => println!("loaded: {} by {by}", time(at)),
        _ => println!("loaded: never (the shipped defaults)"),
    }
    // The summary in the policy crate's own type: tiers and gates in their order, not the alphabet's.
    let summary: PolicySummary = crate::client::decode_json(&serde_json::to_vec(&policy.summary)?)
        .map_err(|e| anyhow!("the server's policy summary is not one this CLI reads: {e}"))?;
    print_gates(&summary)
}

async fn load(args: &ClientArgs, file: &Path) -> anyhow::Result<()> {
    let (source, format) = read_policy_file(file)?;
    let origin = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
    let body = LoadPolicyRequest { source, format: format.as_str().to_string(), origin };
    let policy: PolicyResponse = Client::new(args)?.send_json(Method::PUT, "/api/v1/policy", &body).await?;
    if args.json {
        return print_json(&policy);
    }
    if policy.changed {
        println!("loaded: sha256 {} is the active policy now", policy.sha256);
    } else {
        println!("unchanged: sha256 {} was already the active policy", policy.sha256);
    }
    Ok(())
}

/// How many gate conditions a policy holds, over every tier and gate.
fn count_conditions(summary: &PolicySummary) -> usize {
    summary.tiers.values().flat_map(|gates| gates.values()).map(Vec::len).sum()
}

/// The review cadence per tier, then one row per condition of each gate (a
/// gate without conditions lets every version through).
fn print_gates(summary: &PolicySummary) -> anyhow::Result<()> {
    let cadence: Vec<String> = summary.review_cadence_days.iter().map(|(tier, days)| format!("{} {days} days", text_of(tier))).collect();
    println!("reviews: {}", cadence.join(", "));
    let mut rows = Vec::new();
    for (tier, gates) in &summary.tiers {
        for (target, conditions) in gates {
            let row = |name: &str, when: &str| json!({"tier": tier, "gate": target, "name": name, "when": when});
            if conditions.is_empty() {
                rows.push(row("(none: always allowed)", ""));
            }
            rows.extend(conditions.iter().map(|c| row(&c.name, c.when.trim())));
        }
    }
    print_table(&rows, &[("TIER", "/tier"), ("GATE", "/gate"), ("CONDITION", "/name"), ("WHEN", "/when")])
}
