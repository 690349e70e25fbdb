//! `modelops audit …`: read and verify the tamper-evident audit log.

use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_table};
use anyhow::Context;
use serde_json::{json, Value};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// List events, oldest first.
    Log {
        /// Exact subject (`model/credit-risk`), or a prefix ending in `*`.
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        /// E.g. `model.create`, `alias.set`.
        #[arg(long)]
        action: Option<String>,
        /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        page_size: Option<u32>,
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Recompute the hash chain and name the first broken link. Over the API
    /// by default; straight on a database with --database-url (no server needed).
    Verify {
        #[arg(long, env = "MODELOPS_DATABASE_URL")]
        database_url: Option<String>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let json_out = args.client.json;
    match args.command {
        AuditCommand::Log { subject, actor, action, since, until, page_size, page_token } => {
            let client = Client::new(&args.client)?;
            let query: Vec<(&str, String)> = [
                ("subject", subject),
                ("actor", actor),
                ("action", action),
                ("since", since),
                ("until", until),
                ("page_size", page_size.map(|n| n.to_string())),
                ("page_token", page_token),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let page: Value = client.get_query("/api/v1/audit", &query).await?;
            if json_out {
                print_json(&page)?;
            } else {
                let items = page["events"].as_array().context("the server's answer has no `items`")?;
                print_table(items, &[("SEQ", "/sequence"), ("TIME", "/time"), ("ACTOR", "/actor"), ("ACTION", "/action"), ("SUBJECT", "/subject"), ("HASH", "/hash")]);
                if let Some(token) = page["next_page_token"].as_str() {
                    eprintln!("more: --page-token {token}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { database_url } => {
            let report: Value = match database_url {
                Some(url) => verify_offline(&url).await?,
                None => Client::new(&args.client)?.get("/api/v1/audit/verify").await?,
            };
            let ok = report["ok"].as_bool().unwrap_or(false);
            if json_out {
                print_json(&report)?;
            } else if ok {
                println!(
                    "audit chain intact: {} events, head {}",
                    report["events"],
                    report.pointer("/head/hash").and_then(Value::as_str).unwrap_or("(empty log)")
                );
            } else {
                println!(
                    "audit chain BROKEN at event {}: {}",
                    report.pointer("/broken/sequence").unwrap_or(&Value::Null),
                    report.pointer("/broken/reason").and_then(Value::as_str).unwrap_or("")
                );
            }
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
    }
}

/// Verifies straight on a database, read-only: no server, no migrations,
/// nothing created.
async fn verify_offline(url: &str) -> anyhow::Result<Value> {
    let store = modelops_store::open_audit_log(url)
        .await
        .with_context(|| format!("cannot open the database at `{}`", super::serve::redact(url)))?;
    Ok(match modelops_store::verify_chain(store.as_ref()).await? {
        Ok(summary) => json!({"ok": true, "events": summary.events, "head": summary.head}),
        Err(broken) => json!({"ok": false, "broken": broken}),
    })
}
