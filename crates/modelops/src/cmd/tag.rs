//! `modelops tag …`: tags on models and versions.

use super::models::path_segment;
use super::versions::resolve_number;
use crate::client::{Client, ClientArgs};
use crate::output::print_json;
use modelops_server::wire::{SetTagRequest, TagResponse};
use reqwest::Method;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: TagCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TagCommand {
    /// Set a tag on a model, or on one of its versions with --version.
    Set {
        model: String,
        key: String,
        value: String,
        #[arg(long)]
        version: Option<String>,
    },
    /// Remove a tag.
    Rm {
        model: String,
        key: String,
        #[arg(long)]
        version: Option<String>,
    },
}

async fn tag_path(client: &Client, model: &str, version: Option<&str>, key: &str) -> anyhow::Result<String> {
    let base = format!("/api/v1/models/{}", path_segment(model));
    Ok(match version {
        Some(v) => format!("{base}/versions/{}/tags/{}", resolve_number(client, model, v).await?, path_segment(key)),
        None => format!("{base}/tags/{}", path_segment(key)),
    })
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    match args.command {
        TagCommand::Set { model, key, value, version } => {
            let path = tag_path(&client, &model, version.as_deref(), &key).await?;
            let tag: TagResponse = client.send_json(Method::PUT, &path, &SetTagRequest { value }).await?;
            if args.client.json {
                print_json(&tag)
            } else {
                println!("tagged {}={}", tag.key, tag.value);
                Ok(())
            }
        }
        TagCommand::Rm { model, key, version } => {
            let path = tag_path(&client, &model, version.as_deref(), &key).await?;
            client.delete(&path).await?;
            if args.client.json {
                print_json(&json!({"deleted": key}))
            } else {
                println!("removed tag {key}");
                Ok(())
            }
        }
    }
}
