//! `modelops alias …`: movable names for versions (`staging`, `challenger`).
//! `champion` is the production version: setting it is a promotion (the
//! `promote` roles and the `production` gate), and it cannot be removed.

use super::models::path_segment;
use super::versions::resolve_number;
use crate::client::{Client, ClientArgs};
use crate::output::print_json;
use modelops_server::wire::{SetAliasRequest, VersionResponse};
use reqwest::Method;
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AliasCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AliasCommand {
    /// Point an alias at a version (moving it if it exists); `champion` promotes.
    Set { model: String, alias: String, version: String },
    /// Remove an alias (not `champion`).
    Rm { model: String, alias: String },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    match args.command {
        AliasCommand::Set { model, alias, version } => {
            let number = resolve_number(&client, &model, &version).await?;
            let path = format!("/api/v1/models/{}/aliases/{}", path_segment(&model), path_segment(&alias));
            let v: VersionResponse = client.send_json(Method::PUT, &path, &SetAliasRequest { version: number }).await?;
            if args.client.json {
                print_json(&v)
            } else {
                println!("{model}@{alias} → version {}", v.version);
                Ok(())
            }
        }
        AliasCommand::Rm { model, alias } => {
            let path = format!("/api/v1/models/{}/aliases/{}", path_segment(&model), path_segment(&alias));
            client.delete(&path).await?;
            if args.client.json {
                print_json(&json!({"deleted": alias}))
            } else {
                println!("removed {model}@{alias}");
                Ok(())
            }
        }
    }
}
