//! `modelops gate`: may a version move to a state now? For CI pipelines:
//! exit code 0 when the gate allows, 1 when it denies, 2 when it could not
//! be asked (bad arguments, no server, 401, 404).

use super::models::{parse_flag, path_segment};
use super::versions::{print_conditions, resolve_number};
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, text_of};
use modelops_server::wire::{GateParams, GateResponse};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    model: String,
    /// A number or an alias.
    version: String,
    /// in_validation, approved or production.
    #[arg(long, value_name = "STATE")]
    to: String,
}

/// Exit code when the gate could not be asked at all.
const ERROR: u8 = 2;

pub fn run(args: Args) -> ExitCode {
    match super::block_on(ask(&args)) {
        Ok(gate) if gate.allowed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(ERROR)
        }
    }
}

async fn ask(args: &Args) -> anyhow::Result<GateResponse> {
    let query = GateParams { to: parse_flag("--to", &args.to)? };
    let client = Client::new(&args.client)?;
    let number = resolve_number(&client, &args.model, &args.version).await?;
    let gate: GateResponse = client.get_query(&format!("/api/v1/models/{}/versions/{number}/gate", path_segment(&args.model)), &query).await?;
    if args.client.json {
        print_json(&gate)?;
    } else {
        let verdict = if gate.allowed { "allowed" } else { "denied" };
        println!("{verdict}: {} version {number} → {} (tier {})", args.model, text_of(&gate.target), text_of(&gate.tier));
        print_conditions(&gate, true);
        println!("policy sha256 {}", gate.policy_sha256);
    }
    Ok(gate)
}
