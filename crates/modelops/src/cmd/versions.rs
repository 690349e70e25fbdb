//! `modelops versions …`: immutable model versions and their artifacts.

use super::models::{parse_key_value, path_segment};
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

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

fn read_json_file(path: &PathBuf, what: &str) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {what} file `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{what} file `{}` is not valid JSON", path.display()))
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.json;
    let show = |v: &Value| -> anyhow::Result<()> {
        if json_out {
            print_json(v)
        } else {
            print_record(v, VERSION_FIELDS);
            Ok(())
        }
    };
    match args.command {
        VersionsCommand::Push(push) => {
            // Check everything local before sending gigabytes.
            let filename = push
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("`{}` is not a file name", push.file.display()))?
                .to_string();
            let signature = push.signature.as_ref().map(|p| read_json_file(p, "signature")).transpose()?;
            let card = push.card.as_ref().map(|p| read_json_file(p, "model card")).transpose()?;
            let mut metrics = Map::new();
            for (name, value) in &push.metrics {
                let number: f64 = value.parse().with_context(|| format!("invalid `--metric {name}`: `{value}` is not a number"))?;
                metrics.insert(name.clone(), json!(number));
            }
            let params: Map<String, Value> = push
                .params
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::from_str(v).unwrap_or_else(|_| json!(v))))
                .collect();

            let uploaded: Value = client.upload("/api/v1/artifacts", &[("filename", filename.clone())], &push.file).await?;
            let sha256 = uploaded["sha256"].as_str().context("the server's upload answer has no `sha256`")?;

            let mut lineage = Map::new();
            let optional = [
                ("dataset_uri", push.dataset_uri.map(Value::from)),
                ("dataset_sha256", push.dataset_sha256.map(Value::from)),
                ("dataset_rows", push.dataset_rows.map(Value::from)),
                ("code_commit", push.code_commit.map(Value::from)),
                ("parent_version", push.parent.map(Value::from)),
                ("mlflow_run_id", push.mlflow_run_id.map(Value::from)),
            ];
            for (k, v) in optional {
                if let Some(v) = v {
                    lineage.insert(k.into(), v);
                }
            }
            if !params.is_empty() {
                lineage.insert("hyperparameters".into(), Value::Object(params));
            }
            if !metrics.is_empty() {
                lineage.insert("training_metrics".into(), Value::Object(metrics));
            }
            let mut body = Map::new();
            body.insert("artifact".into(), json!({"sha256": sha256, "filename": filename}));
            body.insert("lineage".into(), Value::Object(lineage));
            if let Some(d) = push.description {
                body.insert("description".into(), json!(d));
            }
            if let Some(s) = signature {
                body.insert("signature".into(), s);
            }
            if let Some(c) = card {
                body.insert("card".into(), c);
            }
            if !push.tags.is_empty() {
                body.insert("tags".into(), json!(push.tags.into_iter().collect::<std::collections::BTreeMap<String, String>>()));
            }
            let version: Value = client.send_json(Method::POST, &format!("/api/v1/models/{}/versions", path_segment(&push.model)), &body).await?;
            show(&version)
        }
        VersionsCommand::List { model, state, page_size, page_token } => {
            let query: Vec<(&str, String)> = [("state", state), ("page_size", page_size.map(|n| n.to_string())), ("page_token", page_token)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            let page: Value = client.get_query(&format!("/api/v1/models/{}/versions", path_segment(&model)), &query).await?;
            if json_out {
                return print_json(&page);
            }
            print_table(page["versions"].as_array().context("the server's answer has no `items`")?, VERSION_COLUMNS);
            if let Some(token) = page["next_page_token"].as_str() {
                eprintln!("more: --page-token {token}");
            }
            Ok(())
        }
        VersionsCommand::Show { model, version } => show(&client.get(&version_path(&model, &version)).await?),
        VersionsCommand::Download { model, version, output } => {
            let meta: Value = client.get(&version_path(&model, &version)).await?;
            let number = meta["version"].as_u64().context("the server's answer has no version `number`")?;
            let sha256 = meta["artifact"]["sha256"].as_str().context("the version has no artifact sha256")?;
            let filename = meta["artifact"]["filename"].as_str().unwrap_or("artifact");
            // Never let a stored file name climb out of the current folder.
            let safe_name = std::path::Path::new(filename).file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("artifact"));
            let dest = output.unwrap_or(safe_name);
            let path = format!("/api/v1/models/{}/versions/{number}/artifact", path_segment(&model));
            let digest = client.download(&path, &dest, Some(sha256)).await?;
            if json_out {
                print_json(&json!({"path": dest, "sha256": digest, "version": number}))
            } else {
                println!("{} (version {number}, sha256 {digest}, verified)", dest.display());
                Ok(())
            }
        }
        VersionsCommand::Update { model, version, description, card } => {
            let mut body = Map::new();
            if let Some(d) = description {
                body.insert("description".into(), json!(d));
            }
            if let Some(p) = card {
                body.insert("card".into(), read_json_file(&p, "model card")?);
            }
            if body.is_empty() {
                bail!("nothing to update: give --description or --card");
            }
            let number = resolve_number(&client, &model, &version).await?;
            let v: Value = client.send_json(Method::PATCH, &format!("/api/v1/models/{}/versions/{number}", path_segment(&model)), &body).await?;
            show(&v)
        }
        VersionsCommand::Retire { model, version } => {
            let number = resolve_number(&client, &model, &version).await?;
            let v: Value = client.send_json(Method::POST, &format!("/api/v1/models/{}/versions/{number}/retire", path_segment(&model)), &json!({})).await?;
            show(&v)
        }
    }
}

/// A version number as given, or the one an alias points at.
pub async fn resolve_number(client: &Client, model: &str, version: &str) -> anyhow::Result<u64> {
    if let Ok(n) = version.parse::<u64>() {
        return Ok(n);
    }
    let meta: Value = client.get(&version_path(model, version)).await?;
    meta["version"].as_u64().context("the server's answer has no version `number`")
}
