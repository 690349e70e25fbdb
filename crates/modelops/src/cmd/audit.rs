//! `modelops audit …`: read and verify the tamper-evident audit log.

use super::models::parse_opt_flag;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_table};
use anyhow::Context;
use anyhow::bail;
use modelops_audit::{PublicKey, SignedCheckpoint};
use modelops_core::audit::AuditEvent;
use modelops_registry::Verification;
use modelops_server::wire::{
    AuditList, AuditParams, CheckpointList, CheckpointParams, CompactRangeResponse, ConsistencyParams, ConsistencyProofResponse,
    InclusionProofResponse, ProofParams, RangeParams, SignedCheckpointResponse, VerifyResponse,
};
use std::path::PathBuf;
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
    /// Verify the log. Over the API by default (the chain and every signed
    /// checkpoint); straight on a database with --database-url (no server);
    /// an export bundle with --bundle; one checkpoint, and a proof against
    /// it, with --checkpoint [--proof]; the log against checkpoints a witness
    /// kept with --witness. --key is the log's public key (text or a file).
    Verify {
        #[arg(long, env = "MODELOPS_DATABASE_URL")]
        database_url: Option<String>,
        /// The log's public key, `<origin>+<id>+<base64>`, or a file holding it.
        #[arg(long)]
        key: Option<String>,
        /// A signed checkpoint (a note file).
        #[arg(long, conflicts_with_all = ["bundle", "witness"])]
        checkpoint: Option<PathBuf>,
        /// An inclusion or consistency proof (JSON, as `audit prove -o` or the API writes it), checked against --checkpoint.
        #[arg(long, requires = "checkpoint")]
        proof: Option<PathBuf>,
        /// An export bundle folder.
        #[arg(long, conflicts_with = "witness")]
        bundle: Option<PathBuf>,
        /// A witness's folder or object-store URL; repeatable.
        #[arg(long)]
        witness: Vec<String>,
    },
    /// Print the log's public key (the server's).
    Key,
    /// Sign a checkpoint of the log now (auditors and admins).
    Checkpoint,
    /// List the signed checkpoints.
    Checkpoints {
        /// Only checkpoints of more events than this.
        #[arg(long)]
        after: Option<u64>,
    },
    /// Fetch and check the inclusion proof of event SEQ in a signed checkpoint.
    Prove {
        seq: i64,
        /// The checkpoint's size [default: the latest].
        #[arg(long)]
        checkpoint: Option<u64>,
        /// The log's public key to check with [default: the server's, fetched].
        #[arg(long)]
        key: Option<String>,
        /// Also write the proof (JSON) here, and its checkpoint beside it (`.note`).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
    /// Export events, checkpoints and proofs into a folder the same binary
    /// verifies with the public key alone (`audit verify --bundle`).
    Export {
        /// The first event: a sequence number or an RFC 3339 time [default: the first event].
        #[arg(long)]
        since: Option<String>,
        /// The folder to create.
        #[arg(short = 'o', long)]
        output: PathBuf,
    },
}

const EVENT_COLUMNS: &[(&str, &str)] =
    &[("SEQ", "/sequence"), ("TIME", "/time"), ("ACTOR", "/actor"), ("ACTION", "/action"), ("SUBJECT", "/subject"), ("HASH", "/hash")];

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let json_out = args.client.json;
    match args.command {
        AuditCommand::Log { subject, actor, action, since, until, page_size, page_token } => {
            let query = AuditParams {
                after_sequence: None,
                sealed: None,
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
        AuditCommand::Verify { database_url, key, checkpoint, proof, bundle, witness } => {
            let key = key.as_deref().map(parse_key).transpose()?;
            if let Some(dir) = bundle {
                let key = key.context("--bundle needs --key: the log's public key, from its operator")?;
                return verify_bundle(&dir, &key, json_out);
            }
            if let Some(path) = checkpoint {
                let key = key.context("--checkpoint needs --key: the log's public key, from its operator")?;
                return verify_checkpoint(&path, proof.as_deref(), &key, json_out);
            }
            if !witness.is_empty() {
                let key = key.context("--witness needs --key: the log's public key, from its operator")?;
                return verify_witnesses(&args.client, database_url.as_deref(), &witness, &key, json_out).await;
            }
            let report: VerifyResponse = match database_url {
                Some(url) => verify_offline(&url, key.as_ref()).await?,
                None => Client::new(&args.client)?.get("/api/v1/audit/verify").await?,
            };
            if json_out {
                print_json(&report)?;
            } else if report.ok {
                let head = report.head.as_ref().map_or("(empty log)", |h| h.hash.as_str());
                println!("audit chain intact: {} events, head {head}", report.events);
                if !report.checkpoints.is_empty() {
                    println!("Merkle root reproduced at {} signed checkpoints (last: {} events)", report.checkpoints.len(), report.checkpoints[report.checkpoints.len() - 1]);
                }
            } else {
                match &report.broken {
                    Some(broken) => println!("audit chain BROKEN at event {}: {}", broken.sequence, broken.reason),
                    None => println!("audit chain BROKEN (the server named no event)"),
                }
            }
            Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
        }
        AuditCommand::Key => {
            let text = Client::new(&args.client)?.get_text("/api/v1/audit/key", &()).await?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            let signed: SignedCheckpointResponse = Client::new(&args.client)?.post("/api/v1/audit/checkpoints").await?;
            if json_out {
                print_json(&signed)?;
            } else {
                print!("{}", signed.checkpoint.note);
                for failure in &signed.witness_failures {
                    eprintln!("witness {} not written: {}", failure.witness, failure.error);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoints { after } => {
            let client = Client::new(&args.client)?;
            let mut all = Vec::new();
            let mut after = after;
            loop {
                let page: CheckpointList = client.get_query("/api/v1/audit/checkpoints", &CheckpointParams { after, page_size: Some(1000) }).await?;
                all.extend(page.checkpoints);
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            if json_out {
                print_json(&all)?;
            } else {
                print_table(&all, &[("SIZE", "/size"), ("TIME", "/time"), ("ROOT", "/root")])?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Prove { seq, checkpoint, key, output } => {
            let client = Client::new(&args.client)?;
            let key = match key {
                Some(key) => parse_key(&key)?,
                None => parse_key(client.get_text("/api/v1/audit/key", &()).await?.trim())?,
            };
            let answer: InclusionProofResponse =
                client.get_query(&format!("/api/v1/audit/events/{seq}/proof"), &ProofParams { checkpoint }).await?;
            let signed = SignedCheckpoint::open(&answer.checkpoint.note, &key)?;
            check_inclusion(&answer, &signed)?;
            if let Some(path) = &output {
                std::fs::write(path, serde_json::to_string_pretty(&answer)? + "\n").with_context(|| format!("cannot write `{}`", path.display()))?;
                let note = path.with_extension("note");
                std::fs::write(&note, &answer.checkpoint.note).with_context(|| format!("cannot write `{}`", note.display()))?;
            }
            if json_out {
                print_json(&answer)?;
            } else {
                println!(
                    "event {seq} ({} by {} on {}) is in the log of {} events signed at {}: {} hashes, root {}",
                    answer.readable_event.action,
                    answer.readable_event.actor,
                    answer.readable_event.subject,
                    signed.size,
                    signed.time.to_rfc3339(),
                    answer.hashes.len(),
                    signed.root_base64()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { since, output } => export(&args.client, since.as_deref(), &output, json_out).await,
    }
}

/// Verifies straight on a database, read-only: no server, no migrations,
/// nothing created. The report has the same shape as the API's. With the
/// key, the stored checkpoints are checked too.
async fn verify_offline(url: &str, key: Option<&PublicKey>) -> anyhow::Result<VerifyResponse> {
    let store = modelops_store::open_audit_log(url)
        .await
        .with_context(|| format!("cannot open the database at `{}`", super::serve::redact(url)))?;
    let verdict = modelops_registry::audit::verify_log(store.as_ref(), key).await?;
    let head = store.head().await?;
    let verified_at = modelops_core::clock::Clock::now(&modelops_core::clock::SystemClock);
    Ok(Verification::from_log(verdict, head, verified_at).into())
}

/// A public key given as its text or as a file holding it.
fn parse_key(given: &str) -> anyhow::Result<PublicKey> {
    let path = std::path::Path::new(given);
    let text = if !given.contains('+') && path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("cannot read the key file `{given}`"))?
    } else {
        given.to_string()
    };
    Ok(PublicKey::parse(&text)?)
}

fn verify_bundle(dir: &std::path::Path, key: &PublicKey, json_out: bool) -> anyhow::Result<ExitCode> {
    match modelops_audit::bundle::verify_bundle(dir, key) {
        Ok(report) => {
            if json_out {
                print_json(&report)?;
            } else {
                println!(
                    "bundle verified: events {}..={} of `{}`, chain intact, Merkle root reproduced at {} signed checkpoints, {} consistency proofs checked",
                    report.first_sequence, report.last_sequence, report.origin, report.log.checkpoints_matched.len(), report.consistency_proofs
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("bundle does NOT verify: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn check_inclusion(answer: &InclusionProofResponse, checkpoint: &SignedCheckpoint) -> anyhow::Result<()> {
    answer.proof().verify(checkpoint)?;
    // The event shown must be the entry proved.
    let event = AuditEvent::try_from(answer.event.clone()).map_err(|e| anyhow::anyhow!("the proof's event: {e}"))?;
    let canonical = event.canonical_bytes().map_err(|e| anyhow::anyhow!("the proof's event cannot be hashed: {e}"))?;
    if canonical != answer.entry.as_bytes() {
        bail!("the event shown with the proof is not the entry proved");
    }
    Ok(())
}

/// One checkpoint, and a proof against it.
fn verify_checkpoint(path: &std::path::Path, proof: Option<&std::path::Path>, key: &PublicKey, json_out: bool) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let checkpoint = match SignedCheckpoint::open(&text, key) {
        Ok(cp) => cp,
        Err(e) => {
            println!("checkpoint does NOT verify: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(proof) = proof else {
        if json_out {
            print_json(&serde_json::json!({"ok": true, "size": checkpoint.size, "root": checkpoint.root_base64(), "time": checkpoint.time}))?;
        } else {
            println!("checkpoint verified: `{}` signed {} events at {}, root {}", checkpoint.origin, checkpoint.size, checkpoint.time.to_rfc3339(), checkpoint.root_base64());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let text = std::fs::read_to_string(proof).with_context(|| format!("cannot read `{}`", proof.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("`{}` is not JSON", proof.display()))?;
    let outcome: anyhow::Result<String> = if value.get("sequence").is_some() {
        let answer: InclusionProofResponse = serde_json::from_value(value).with_context(|| format!("`{}` is not an inclusion proof", proof.display()))?;
        check_inclusion(&answer, &checkpoint).map(|()| {
            format!("event {} ({} by {} on {}) is in the log of {} events signed at {}", answer.sequence, answer.readable_event.action, answer.readable_event.actor, answer.readable_event.subject, checkpoint.size, checkpoint.time.to_rfc3339())
        })
    } else {
        let answer: ConsistencyProofResponse = serde_json::from_value(value).with_context(|| format!("`{}` is not a consistency proof", proof.display()))?;
        check_consistency(&answer, &checkpoint, key)
    };
    match outcome {
        Ok(message) => {
            println!("proof verified: {message}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("proof does NOT verify: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// A consistency proof file against the checkpoint given (the trusted one:
/// its older end or its newer); every failure is a verdict, not an error.
fn check_consistency(answer: &ConsistencyProofResponse, checkpoint: &SignedCheckpoint, key: &PublicKey) -> anyhow::Result<String> {
    let newer = SignedCheckpoint::open(&answer.to_checkpoint.note, key).context("the proof's newer checkpoint")?;
    let older = if checkpoint.size == answer.from {
        checkpoint.clone()
    } else {
        let from = answer.from_checkpoint.as_ref().context("the proof carries no checkpoint of its older size")?;
        SignedCheckpoint::open(&from.note, key).context("the proof's older checkpoint")?
    };
    if checkpoint.size != older.size && *checkpoint != newer {
        bail!("the proof links {} and {} events, not the checkpoint given ({} events)", answer.from, answer.to, checkpoint.size);
    }
    answer.proof().verify(&older, &newer)?;
    Ok(format!("the log of {} events extends the log of {} events unchanged", newer.size, older.size))
}

/// Compares the log (a database, or the server's) with the checkpoints
/// witnesses kept; the first one the log no longer matches is named.
async fn verify_witnesses(client_args: &ClientArgs, database_url: Option<&str>, witnesses: &[String], key: &PublicKey, json_out: bool) -> anyhow::Result<ExitCode> {
    let mut checkpoints = Vec::new();
    for location in witnesses {
        let witness = modelops_audit::witness::Witness::parse(location)?;
        for (name, text) in witness.read_all().await? {
            match SignedCheckpoint::open(&text, key) {
                Ok(cp) => checkpoints.push(cp),
                Err(e) => {
                    println!("witness {location}: checkpoint `{name}` does NOT verify: {e}");
                    return Ok(ExitCode::from(2));
                }
            }
        }
    }
    checkpoints.sort_by_key(|c| c.size);
    checkpoints.dedup_by(|a, b| a.size == b.size && a.root == b.root);
    if let Some(pair) = checkpoints.windows(2).find(|p| p[0].size == p[1].size) {
        println!("the witnesses hold two different signed checkpoints of {} events: the log was forked", pair[0].size);
        return Ok(ExitCode::from(2));
    }
    if checkpoints.is_empty() {
        bail!("the witnesses hold no checkpoint");
    }
    let outcome: Result<String, String> = match database_url {
        Some(url) => {
            let store = modelops_store::open_audit_log(url)
                .await
                .with_context(|| format!("cannot open the database at `{}`", super::serve::redact(url)))?;
            match modelops_registry::audit::verify_log_against(store.as_ref(), checkpoints.clone()).await? {
                Ok(summary) => Ok(format!("{} events; the Merkle root reproduced at all {} witnessed checkpoints", summary.events, summary.checkpoints_matched.len())),
                Err(failure) => Err(failure.to_string()),
            }
        }
        None => {
            let client = Client::new(client_args)?;
            // A fresh checkpoint when the caller may sign, else the latest.
            let note = match client.post::<SignedCheckpointResponse>("/api/v1/audit/checkpoints").await {
                Ok(signed) => signed.checkpoint.note,
                Err(_) => client.get_text("/api/v1/audit/checkpoints/latest", &()).await?,
            };
            let latest = SignedCheckpoint::open(&note, key).context("the server's latest checkpoint")?;
            let mut failure = None;
            for witnessed in &checkpoints {
                if witnessed.size > latest.size {
                    failure = Some(format!("the witnessed checkpoint of {} events signed at {} is beyond the server's log of {} events: events were removed", witnessed.size, witnessed.time.to_rfc3339(), latest.size));
                    break;
                }
                let answer: Result<ConsistencyProofResponse, _> = client
                    .get_query("/api/v1/audit/consistency", &ConsistencyParams { from: witnessed.size, to: Some(latest.size) })
                    .await;
                let checked = answer.map_err(|e| e.to_string()).and_then(|a| a.proof().verify(witnessed, &latest).map_err(|e| e.to_string()));
                if let Err(e) = checked {
                    failure = Some(format!("the log diverges from the witnessed checkpoint of {} events signed at {}: {e}", witnessed.size, witnessed.time.to_rfc3339()));
                    break;
                }
            }
            match failure {
                None => Ok(format!("the server's log of {} events extends all {} witnessed checkpoints", latest.size, checkpoints.len())),
                Some(f) => Err(f),
            }
        }
    };
    match outcome {
        Ok(message) => {
            if json_out {
                print_json(&serde_json::json!({"ok": true, "message": message}))?;
            } else {
                println!("witnesses agree: {message}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            if json_out {
                print_json(&serde_json::json!({"ok": false, "message": message}))?;
            } else {
                println!("witnesses DISAGREE: {message}");
            }
            Ok(ExitCode::from(2))
        }
    }
}

/// `audit export`: signs a checkpoint when allowed (else uses the latest),
/// then writes events from `since` to it, the checkpoints from the one
/// before `since` on, and the consistency proofs between them.
async fn export(client_args: &ClientArgs, since: Option<&str>, output: &std::path::Path, json_out: bool) -> anyhow::Result<ExitCode> {
    use modelops_audit::bundle::{BundleHeader, BundleWriter, FORMAT};
    let client = Client::new(client_args)?;
    let key = parse_key(client.get_text("/api/v1/audit/key", &()).await?.trim())?;
    // A fresh checkpoint covers everything up to now; a user who may not
    // sign exports up to the latest one.
    let latest_note = match client.post::<SignedCheckpointResponse>("/api/v1/audit/checkpoints").await {
        Ok(signed) => signed.checkpoint.note,
        Err(_) => client.get_text("/api/v1/audit/checkpoints/latest", &()).await?,
    };
    let last = SignedCheckpoint::open(&latest_note, &key).context("the server's latest checkpoint")?;
    let first: i64 = match since {
        None => 1,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n >= 1 => n,
            Ok(n) => bail!("invalid `--since`: `{n}` must be at least 1"),
            Err(_) => {
                let time = parse_opt_flag("--since", Some(text))?;
                let page: AuditList = client.get_query("/api/v1/audit", &AuditParams { since: time, page_size: Some(1), ..Default::default() }).await?;
                page.events.first().map(|e| e.sequence).with_context(|| format!("no event at or after `{text}`"))?
            }
        },
    };
    let last_sequence = i64::try_from(last.size)?;
    if first > last_sequence {
        bail!("invalid `--since`: event {first} is after the latest checkpoint ({last_sequence} events)");
    }
    let start_size = u64::try_from(first - 1)?;
    let range: CompactRangeResponse = if start_size > 0 {
        client.get_query("/api/v1/audit/range", &RangeParams { size: start_size }).await?
    } else {
        CompactRangeResponse { size: 0, hashes: Vec::new() }
    };
    // Checkpoints: the last one at or before the start (the anchor an
    // auditor may already hold), then every later one.
    let mut checkpoints = Vec::new();
    let mut after = None;
    loop {
        let page: CheckpointList = client.get_query("/api/v1/audit/checkpoints", &CheckpointParams { after, page_size: Some(1000) }).await?;
        checkpoints.extend(page.checkpoints.into_iter().filter(|c| c.size <= last.size));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let anchor = checkpoints.iter().filter(|c| c.size <= start_size).map(|c| c.size).max();
    checkpoints.retain(|c| c.size > start_size || Some(c.size) == anchor);

    let mut events_written = 0u64;
    let mut writer: Option<BundleWriter> = None;
    let mut after_sequence = first - 1;
    let mut token: Option<String> = None;
    'pages: loop {
        let page: AuditList = client
            .get_query(
                "/api/v1/audit",
                &AuditParams { after_sequence: Some(first - 1), sealed: Some(true), page_size: Some(1000), page_token: token.clone(), ..Default::default() },
            )
            .await?;
        for event in page.events {
            if event.sequence > last_sequence {
                break 'pages;
            }
            if event.sequence != after_sequence + 1 {
                bail!("the server skipped from event {after_sequence} to {}", event.sequence);
            }
            if writer.is_none() {
                let header = BundleHeader {
                    format: FORMAT.to_string(),
                    origin: key.origin().to_string(),
                    public_key: key.text().to_string(),
                    first_sequence: first,
                    last_sequence,
                    prev_hash: event.prev_hash.clone(),
                    start_range: range.hashes.clone(),
                };
                writer = Some(BundleWriter::create(output, &header)?);
            }
            let event = AuditEvent::try_from(event).map_err(|e| anyhow::anyhow!("an event from the server: {e}"))?;
            after_sequence = event.sequence;
            if let Some(w) = writer.as_mut() {
                w.event(&event)?;
            }
            events_written += 1;
        }
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let writer = writer.context("the server returned no events to export")?;
    if after_sequence != last_sequence {
        bail!("the server returned events up to {after_sequence}, the checkpoint signs {last_sequence}");
    }
    for cp in &checkpoints {
        writer.checkpoint(&SignedCheckpoint::open(&cp.note, &key).with_context(|| format!("the checkpoint of {} events", cp.size))?)?;
    }
    let mut proofs = 0;
    for pair in checkpoints.windows(2) {
        let answer: ConsistencyProofResponse =
            client.get_query("/api/v1/audit/consistency", &ConsistencyParams { from: pair[0].size, to: Some(pair[1].size) }).await?;
        writer.consistency(&answer.proof())?;
        proofs += 1;
    }
    writer.finish()?;
    if json_out {
        print_json(&serde_json::json!({"output": output, "events": events_written, "checkpoints": checkpoints.len(), "consistency_proofs": proofs}))?;
    } else {
        println!(
            "exported events {first}..={last_sequence} ({events_written}), {} checkpoints and {proofs} consistency proofs to {}\nverify: modelops audit verify --bundle {} --key '{}'",
            checkpoints.len(),
            output.display(),
            output.display(),
            key.text()
        );
    }
    Ok(ExitCode::SUCCESS)
}
