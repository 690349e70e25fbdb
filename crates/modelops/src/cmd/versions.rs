//! `modelops versions …`: immutable model versions and their artifacts, and
//! their lifecycle: submit, approve or reject, promote, and the governance
//! record (approvals, evidence, reviews).

use super::models::{parse_key_value, parse_opt_flag, path_segment};
use crate::client::{decode_json, Client, ClientArgs};
use crate::output::{print_json, print_record, print_table, text_of, time};
use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use modelops_server::wire::{
    ArtifactInput, ArtifactResponse, CreateVersionRequest, DecisionRequest, DecisionResponse, GateResponse, GovernanceResponse, LineageWire,
    ListVersionsParams, ModelCardWire, SignatureWire, TransitionResponse, UpdateVersionRequest, VersionList, VersionResponse, VersionState,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: VersionsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VersionsCommand {
    /// Upload an artifact and register it as the model's next version.
    Push(Box<PushArgs>),
    /// List a model's versions, newest first.
    List {
        model: String,
        /// Only versions in this state (draft, in_validation, approved, production, retired, rejected).
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        page_size: Option<u32>,
        #[arg(long)]
        page_token: Option<String>,
    },
    /// Show a version, by number or alias.
    Show { model: String, version: String },
    /// Download a version's artifact, verified against its sha256.
    Download {
        model: String,
        version: String,
        /// Where to write it [default: the artifact's file name, here].
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Change a version's description or model card (audited).
    Update {
        model: String,
        version: String,
        #[arg(long)]
        description: Option<String>,
        /// A JSON file with the model card: markdown, intended_use, limitations,
        /// ethical_considerations, evaluation_data, metrics.
        #[arg(long)]
        card: Option<PathBuf>,
    },
    /// Retire a version; its record stays, aliases pointing at it go.
    Retire { model: String, version: String },
    /// Submit a draft for validation (through the `in_validation` gate).
    Submit { model: String, version: String },
    /// Approve a version in validation; it becomes `approved` once the gate allows.
    Approve(DecisionArgs),
    /// Reject a version in validation.
    Reject(DecisionArgs),
    /// Promote an approved version to production (through the `production` gate; moves `champion`).
    Promote { model: String, version: String },
    /// A version's approvals, evidence, reviews and next review date.
    Governance { model: String, version: String },
}

#[derive(Debug, clap::Args)]
pub struct DecisionArgs {
    model: String,
    /// A number or an alias.
    version: String,
    /// Why; recorded with the decision.
    #[arg(long)]
    comment: Option<String>,
    /// Conditions attached to the decision, as text.
    #[arg(long)]
    conditions: Option<String>,
    /// When the decision stops counting: YYYY-MM-DD (that day's start, UTC) or an RFC 3339 time.
    #[arg(long, value_name = "DATE", value_parser = parse_expiry)]
    expires: Option<DateTime<Utc>>,
}

impl DecisionArgs {
    fn request(&self) -> DecisionRequest {
        DecisionRequest { comment: self.comment.clone().unwrap_or_default(), conditions: self.conditions.clone().unwrap_or_default(), expires_at: self.expires }
    }
}

/// `2027-01-31` (midnight UTC starting that day) or `2027-01-31T12:00:00Z`.
fn parse_expiry(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|_| format!("`{text}` is neither YYYY-MM-DD nor an RFC 3339 time"))
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    model: String,
    /// The artifact file (streamed; any size).
    file: PathBuf,
    #[arg(long)]
    description: Option<String>,
    /// Training dataset URI.
    #[arg(long)]
    dataset_uri: Option<String>,
    /// Training dataset sha256.
    #[arg(long)]
    dataset_sha256: Option<String>,
    /// Training dataset row count.
    #[arg(long)]
    dataset_rows: Option<u64>,
    /// Commit of the training code.
    #[arg(long)]
    code_commit: Option<String>,
    /// Hyperparameter `name=value` (repeatable; values parsed as JSON when they can be).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    params: Vec<(String, String)>,
    /// Training metric `name=number` (repeatable).
    #[arg(long = "metric", value_name = "NAME=NUMBER", value_parser = parse_key_value)]
    metrics: Vec<(String, String)>,
    /// The version this one was derived from.
    #[arg(long)]
    parent: Option<u32>,
    #[arg(long)]
    mlflow_run_id: Option<String>,
    /// A JSON file with the signature: {"inputs": [{"name", "dtype"}], "outputs": [...]}.
    #[arg(long)]
    signature: Option<PathBuf>,
    /// A JSON file with the model card.
    #[arg(long)]
    card: Option<PathBuf>,
    /// A tag `key=value` (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    tags: Vec<(String, String)>,
    /// Training data (CSV/Parquet, fitted here) or a saved profile (`.json`): the version's reference profile for live monitoring, set right after the push.
    #[arg(long)]
    reference: Option<PathBuf>,
    #[command(flatten)]
    estimator: super::monitor::EstimatorArgs,
    /// Keep the reference data itself with the version, for monitors in evidently mode.
    #[arg(long, requires = "reference")]
    store_reference_data: bool,
}

const VERSION_COLUMNS: &[(&str, &str)] = &[
    ("VERSION", "/version"),
    ("STATE", "/state"),
    ("ALIASES", "/aliases"),
    ("SHA256", "/artifact/sha256"),
    ("SIZE", "/artifact/size"),
    ("CREATED", "/created_at"),
    ("BY", "/created_by"),
];

const VERSION_FIELDS: &[(&str, &str)] = &[
    ("model", "/model"),
    ("version", "/version"),
    ("state", "/state"),
    ("aliases", "/aliases"),
    ("description", "/description"),
    ("artifact", "/artifact/filename"),
    ("sha256", "/artifact/sha256"),
    ("size", "/artifact/size"),
    ("dataset", "/lineage/dataset_uri"),
    ("dataset sha256", "/lineage/dataset_sha256"),
    ("dataset rows", "/lineage/dataset_rows"),
    ("code commit", "/lineage/code_commit"),
    ("parameters", "/lineage/hyperparameters"),
    ("metrics", "/lineage/training_metrics"),
    ("parent", "/lineage/parent_version"),
    ("tags", "/tags"),
    ("created", "/created_at"),
    ("created by", "/created_by"),
];

/// `3` → `/versions/3`; anything else is an alias → `/aliases/<alias>`.
pub fn version_path(model: &str, version: &str) -> String {
    let model = path_segment(model);
    let alias = version.strip_prefix('@').unwrap_or(version);
    if version.chars().all(|c| c.is_ascii_digit()) && !version.is_empty() {
        format!("/api/v1/models/{model}/versions/{version}")
    } else {
        format!("/api/v1/models/{model}/aliases/{}", path_segment(alias))
    }
}

/// Reads a JSON file given with `--signature` or `--card` as its wire type;
/// an unknown or mistyped field is refused naming the file and the field.
fn read_json_file<T: DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {what} file `{}`", path.display()))?;
    decode_json(&bytes).map_err(|e| {
        let at = e.position().map(|(line, column)| format!(" (line {line}, column {column})")).unwrap_or_default();
        anyhow!("invalid {what} file `{}`: {e}{at}", path.display())
    })
}

/// `--metric name=number` pairs as training metrics; JSON has no NaN or infinity.
fn parse_metrics(metrics: &[(String, String)]) -> anyhow::Result<BTreeMap<String, f64>> {
    metrics
        .iter()
        .map(|(name, text)| match text.parse::<f64>() {
            Ok(number) if number.is_finite() => Ok((name.clone(), number)),
            _ => bail!("invalid `--metric {name}`: `{text}` is not a finite number"),
        })
        .collect()
}

/// `--param name=value` pairs as hyperparameters: JSON when the value parses
/// as JSON (`6`, `true`, `[1,2]`), a string otherwise.
fn parse_params(params: &[(String, String)]) -> BTreeMap<String, Value> {
    params.iter().map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone())))).collect()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.json;
    let show = |v: &VersionResponse| -> anyhow::Result<()> {
        if json_out {
            print_json(v)
        } else {
            print_record(v, VERSION_FIELDS)
        }
    };
    match args.command {
        VersionsCommand::Push(push) => {
            let PushArgs {
                model,
                file,
                description,
                dataset_uri,
                dataset_sha256,
                dataset_rows,
                code_commit,
                params,
                metrics,
                parent,
                mlflow_run_id,
                signature,
                card,
                tags,
                reference,
                estimator,
                store_reference_data,
            } = *push;
            // Fitted before the upload: a bad reference file fails fast.
            let reference_file = reference.clone();
            if store_reference_data {
                // Refused before anything is created: a version must not be left without its reference.
                if let Some(file) = &reference_file {
                    super::monitor::check_reference_data(file)?;
                }
            }
            let reference = reference.map(|p| super::monitor::reference_for_push(&p, &estimator)).transpose()?;
            // Check everything local before sending gigabytes.
            let filename = file
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("`{}` is not a file name", file.display()))?
                .to_string();
            let signature: SignatureWire = signature.map(|p| read_json_file(&p, "signature")).transpose()?.unwrap_or_default();
            let card: ModelCardWire = card.map(|p| read_json_file(&p, "model card")).transpose()?.unwrap_or_default();
            let lineage = LineageWire {
                dataset_uri,
                dataset_sha256,
                dataset_rows,
                code_commit,
                hyperparameters: parse_params(&params),
                training_metrics: parse_metrics(&metrics)?,
                parent_version: parent,
                mlflow_run_id,
                retrain: None,
            };

            let uploaded: ArtifactResponse = client.upload("/api/v1/artifacts", &[("filename", filename.clone())], &file).await?;
            let body = CreateVersionRequest {
                artifact: ArtifactInput { sha256: uploaded.sha256, filename },
                lineage,
                signature,
                card,
                description: description.unwrap_or_default(),
                tags: tags.into_iter().collect(),
            };
            let version: VersionResponse = client.send_json(Method::POST, &format!("/api/v1/models/{}/versions", path_segment(&model)), &body).await?;
            if let Some(mut reference) = reference {
                if store_reference_data {
                    if let Some(file) = &reference_file {
                        reference.data = Some(super::monitor::upload_reference_data(&client, file).await?);
                    }
                }
                super::monitor::set_reference(&client, &model, version.version, reference, false).await?;
            }
            show(&version)
        }
        VersionsCommand::List { model, state, page_size, page_token } => {
            let query = ListVersionsParams { state: parse_opt_flag("--state", state.as_deref())?, page_size, page_token, ..Default::default() };
            let page: VersionList = client.get_query(&format!("/api/v1/models/{}/versions", path_segment(&model)), &query).await?;
            if json_out {
                return print_json(&page);
            }
            print_table(&page.versions, VERSION_COLUMNS)?;
            if let Some(token) = &page.next_page_token {
                eprintln!("more: --page-token {token}");
            }
            Ok(())
        }
        VersionsCommand::Show { model, version } => show(&client.get(&version_path(&model, &version)).await?),
        VersionsCommand::Download { model, version, output } => {
            let meta: VersionResponse = client.get(&version_path(&model, &version)).await?;
            let number = meta.version;
            // Never let a stored file name climb out of the current folder.
            let safe_name = Path::new(&meta.artifact.filename).file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("artifact"));
            let dest = output.unwrap_or(safe_name);
            let path = format!("/api/v1/models/{}/versions/{number}/artifact", path_segment(&model));
            let digest = client.download(&path, &dest, Some(&meta.artifact.sha256)).await?;
            if json_out {
                print_json(&json!({"path": dest, "sha256": digest, "version": number}))
            } else {
                println!("{} (version {number}, sha256 {digest}, verified)", dest.display());
                Ok(())
            }
        }
        VersionsCommand::Update { model, version, description, card } => {
            let body = UpdateVersionRequest { description, card: card.map(|p| read_json_file(&p, "model card")).transpose()? };
            if body == UpdateVersionRequest::default() {
                bail!("nothing to update: give --description or --card");
            }
            let number = resolve_number(&client, &model, &version).await?;
            let v: VersionResponse = client.send_json(Method::PATCH, &format!("/api/v1/models/{}/versions/{number}", path_segment(&model)), &body).await?;
            show(&v)
        }
        VersionsCommand::Retire { model, version } => {
            let number = resolve_number(&client, &model, &version).await?;
            show(&client.post(&format!("/api/v1/models/{}/versions/{number}/retire", path_segment(&model))).await?)
        }
        VersionsCommand::Submit { model, version } => {
            let path = lifecycle_path(&client, &model, &version, "submit").await?;
            let moved: TransitionResponse = client.post(&path).await?;
            if json_out {
                return print_json(&moved);
            }
            println!("{model} version {} is now {}", moved.version.version, text_of(&moved.version.state));
            Ok(())
        }
        VersionsCommand::Approve(decision) => decide(&client, json_out, &decision, "approve").await,
        VersionsCommand::Reject(decision) => decide(&client, json_out, &decision, "reject").await,
        VersionsCommand::Promote { model, version } => {
            let path = lifecycle_path(&client, &model, &version, "promote").await?;
            let moved: TransitionResponse = client.post(&path).await?;
            if json_out {
                return print_json(&moved);
            }
            let number = moved.version.version;
            match moved.previous_production {
                Some(previous) if previous != number => {
                    println!("{model} version {number} is now in production (champion); version {previous} went back to approved")
                }
                _ => println!("{model} version {number} is now in production (champion)"),
            }
            Ok(())
        }
        VersionsCommand::Governance { model, version } => {
            let number = resolve_number(&client, &model, &version).await?;
            let record: GovernanceResponse = client.get(&format!("/api/v1/models/{}/versions/{number}/governance", path_segment(&model))).await?;
            if json_out {
                print_json(&record)
            } else {
                print_governance(&record)
            }
        }
    }
}

/// `/api/v1/models/<model>/versions/<number>/<action>`, an alias resolved first.
async fn lifecycle_path(client: &Client, model: &str, version: &str, action: &str) -> anyhow::Result<String> {
    let number = resolve_number(client, model, version).await?;
    Ok(format!("/api/v1/models/{}/versions/{number}/{action}", path_segment(model)))
}

async fn decide(client: &Client, json_out: bool, args: &DecisionArgs, action: &str) -> anyhow::Result<()> {
    let path = lifecycle_path(client, &args.model, &args.version, action).await?;
    let outcome: DecisionResponse = client.send_json(Method::POST, &path, &args.request()).await?;
    if json_out {
        return print_json(&outcome);
    }
    let v = &outcome.version;
    let verb = if action == "approve" { "approval" } else { "rejection" };
    println!("{verb} recorded; {} version {} is now {}", args.model, v.version, text_of(&v.state));
    if v.state == VersionState::InValidation {
        if let Some(gate) = outcome.gate.as_ref().filter(|g| !g.allowed) {
            println!("the `approved` gate still needs:");
            print_conditions(gate, false);
        }
    }
    Ok(())
}

/// A gate's conditions as `  ✓ name: message` lines; only the failing ones unless `all`.
pub fn print_conditions(gate: &GateResponse, all: bool) {
    for c in gate.conditions.iter().filter(|c| all || !c.passed) {
        let mark = if c.passed { '✓' } else { '✗' };
        if c.message.is_empty() {
            println!("  {mark} {}", c.name);
        } else {
            println!("  {mark} {}: {}", c.name, c.message);
        }
    }
}

const APPROVAL_COLUMNS: &[(&str, &str)] = &[
    ("DECISION", "/decision"),
    ("BY", "/approver"),
    ("ROLES", "/roles"),
    ("COMMENT", "/comment"),
    ("CONDITIONS", "/conditions"),
    ("EXPIRES", "/expires_at"),
    ("AT", "/created_at"),
];

const EVIDENCE_COLUMNS: &[(&str, &str)] = &[
    ("KIND", "/kind"),
    ("NAME", "/name"),
    ("VALUE", "/value"),
    ("DATASET", "/dataset"),
    ("FILE", "/filename"),
    ("SHA256", "/sha256"),
    ("BY", "/created_by"),
    ("AT", "/created_at"),
];

const REVIEW_COLUMNS: &[(&str, &str)] =
    &[("OUTCOME", "/outcome"), ("BY", "/reviewer"), ("COMMENT", "/comment"), ("REVIEWED", "/reviewed_at"), ("NEXT", "/next_review_at")];

fn print_governance(record: &GovernanceResponse) -> anyhow::Result<()> {
    let v = &record.version;
    println!("{} version {}: {}", v.model, v.version, text_of(&v.state));
    if let Some(next) = record.next_review_at {
        println!("next review: {}", time(&next));
    }
    let section = |title: &str, empty: bool| {
        println!();
        if empty {
            println!("{title}: none");
        } else {
            println!("{title}:");
        }
        !empty
    };
    if section("approvals", record.approvals.is_empty()) {
        print_table(&record.approvals, APPROVAL_COLUMNS)?;
    }
    if section("evidence", record.evidence.is_empty()) {
        print_table(&record.evidence, EVIDENCE_COLUMNS)?;
    }
    if section("reviews", record.reviews.is_empty()) {
        print_table(&record.reviews, REVIEW_COLUMNS)?;
    }
    Ok(())
}

/// A version number as given, or the one an alias points at.
pub async fn resolve_number(client: &Client, model: &str, version: &str) -> anyhow::Result<u32> {
    if let Ok(n) = version.parse::<u32>() {
        return Ok(n);
    }
    let meta: VersionResponse = client.get(&version_path(model, version)).await?;
    Ok(meta.version)
}
