//! `modelops evidence add`: attach validation evidence to a version, a
//! metric or a document (the document is uploaded first, like an artifact);
//! `modelops evidence download`: fetch a document back, verified.

use super::models::{parse_key_value, path_segment};
use super::versions::resolve_number;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record};
use anyhow::{bail, Context};
use modelops_server::wire::{ArtifactResponse, EvidenceRequest, EvidenceResponse};
use reqwest::Method;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: EvidenceCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EvidenceCommand {
    /// Attach a metric (`--metric auc=0.91`) or a document (`--document report.pdf --name validation_report`).
    Add(AddArgs),
    /// Download an evidence document of a version by its sha256, verified.
    Download {
        model: String,
        /// A number or an alias.
        version: String,
        /// The document's sha256 (`versions governance` lists them).
        sha256: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["metric", "document"])))]
pub struct AddArgs {
    model: String,
    /// A number or an alias.
    version: String,
    /// A validation metric.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_key_value)]
    metric: Option<(String, String)>,
    /// The dataset the metric was computed on.
    #[arg(long, requires = "metric")]
    dataset: Option<String>,
    /// A document file to upload and attach.
    #[arg(long, value_name = "FILE", requires = "name")]
    document: Option<PathBuf>,
    /// The document's kind, e.g. `validation_report`.
    #[arg(long, requires = "document")]
    name: Option<String>,
}

const EVIDENCE_FIELDS: &[(&str, &str)] = &[
    ("kind", "/kind"),
    ("name", "/name"),
    ("value", "/value"),
    ("dataset", "/dataset"),
    ("file", "/filename"),
    ("sha256", "/sha256"),
    ("size", "/size"),
    ("added", "/created_at"),
    ("added by", "/created_by"),
];

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let add = match args.command {
        EvidenceCommand::Add(add) => add,
        EvidenceCommand::Download { model, version, sha256, output } => {
            let number = resolve_number(&client, &model, &version).await?;
            let path = format!("/api/v1/models/{}/versions/{number}/evidence/{}", path_segment(&model), path_segment(&sha256));
            let digest = client.download(&path, &output, Some(&sha256)).await?;
            eprintln!("wrote {} (sha256 {digest})", output.display());
            return Ok(());
        }
    };
    let body = match (add.metric, add.document, add.name) {
        (Some((name, text)), None, _) => {
            let value = text.parse::<f64>().ok().filter(|v| v.is_finite());
            let value = value.with_context(|| format!("invalid `--metric {name}`: `{text}` is not a finite number"))?;
            EvidenceRequest::Metric { name, value, dataset: add.dataset.unwrap_or_default() }
        }
        (None, Some(file), Some(name)) => {
            let filename = file.file_name().and_then(|n| n.to_str()).with_context(|| format!("`{}` is not a file name", file.display()))?.to_string();
            let uploaded: ArtifactResponse = client.upload("/api/v1/artifacts", &[("filename", filename.clone())], &file).await?;
            EvidenceRequest::Document { name, sha256: uploaded.sha256, filename }
        }
        _ => bail!("give `--metric NAME=VALUE`, or `--document FILE --name NAME`"),
    };
    let number = resolve_number(&client, &add.model, &add.version).await?;
    let path = format!("/api/v1/models/{}/versions/{number}/evidence", path_segment(&add.model));
    let evidence: EvidenceResponse = client.send_json(Method::POST, &path, &body).await?;
    if args.client.json {
        print_json(&evidence)
    } else {
        print_record(&evidence, EVIDENCE_FIELDS)
    }
}
