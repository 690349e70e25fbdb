//! `modelops audit …`: read and verify the tamper-evident audit log.

use super::models::parse_opt_flag;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_table};
use anyhow::Context;
use modelops_registry::Verification;
use modelops_server::wire::{AuditList, AuditParams, VerifyResponse};
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

const EVENT_COLUMNS: &[(&str, &str)] =
    &[("SEQ", "/sequence"), ("TIME", "/time"), ("ACTOR", "/actor"), ("ACTION", "/action"), ("SUBJECT", "/subject"), ("HASH", "/hash")];

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let json_out = args.client.json;
    match args.command {
        AuditCommand::Log { subject, actor, action, since, until, page_size, page_token } => {
            let query = AuditParams {
                subject,
                actor,
                action,
                since: parse_opt_flag("--since", since.as_deref())?,
                until: parse_opt_flag("--until", until.as_deref())?,
                page_size,
                page_token,
            };
            let client = Client::new(&args.client)?;
            let page: AuditList = client.get_query("/api/v1/audit", &query).await?;
            if json_out {
                print_json(&page)?;
            } else {
                print_table(&page.events, EVENT_COLUMNS)?;
                if let Some(token) = &page.next_page_token {
                    eprintln!("more: --page-token {token}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { database_url } => {
            let report: VerifyResponse = match database_url {
                Some(url) => verify_offline(&url).await?,
                None => Client::new(&args.client)?.get("/api/v1/audit/verify").await?,
            };
            if json_out {
                print_json(&report)?;
            } else if report.ok {
                let head = report.head.as_ref().map_or("(empty log)", |h| h.hash.as_str());
                println!("audit chain intact: {} events, head {head}", report.events);
            } else {
                match &report.broken {
                    Some(broken) => println!("audit chain BROKEN at event {}: {}", broken.sequence, broken.reason),
                    None => println!("audit chain BROKEN (the server named no event)"),
                }
            }
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
    }
}

/// Verifies straight on a database, read-only: no server, no migrations,
/// nothing created. The report has the same shape as the API's.
async fn verify_offline(url: &str) -> anyhow::Result<VerifyResponse> {
    let store = modelops_store::open_audit_log(url)
        .await
        .with_context(|| format!("cannot open the database at `{}`", super::serve::redact(url)))?;
    let verdict = modelops_store::verify_chain(store.as_ref()).await?;
    let head = store.head().await?;
    let verified_at = modelops_core::clock::Clock::now(&modelops_core::clock::SystemClock);
    Ok(Verification { verdict, head, verified_at }.into())
}
