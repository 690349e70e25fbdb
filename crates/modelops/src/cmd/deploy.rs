//! `modelops deploy …`, `modelops rollback NAME`, `modelops predictions …`:
//! deployments over the native API.

use super::models::path_segment;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use anyhow::{anyhow, bail};
use modelops_server::wire::{
    CanaryWire, CreateDeploymentRequest, DeploymentList, DeploymentResponse, HoldWire, PredictionPage, RouteWire, ShadowWire, StepWire,
    UpdateDeploymentRequest,
};
use reqwest::Method;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: DeployCommand,
}

/// Where traffic goes: one version, or a split.
#[derive(Debug, Default, clap::Args)]
pub struct RouteArgs {
    /// All traffic to this version.
    #[arg(long, conflicts_with = "route")]
    pub version: Option<u32>,
    /// A version and its weight in percent, `VERSION=WEIGHT`; repeat to split (weights sum to 100).
    #[arg(long = "route", value_name = "VERSION=WEIGHT")]
    pub route: Vec<String>,
    /// `direct`, `ab`, `canary` or `shadow` (implied by the routes when absent).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Mirror a share of traffic to a version, `VERSION[=PERCENT]` (100 % when no percent); repeat for more.
    #[arg(long = "shadow", value_name = "VERSION[=PERCENT]")]
    pub shadow: Vec<String>,
    /// A request header whose value keeps a caller on one version (A/B).
    #[arg(long)]
    pub sticky_header: Option<String>,
    /// Share of calls whose predictions are recorded, 0–1.
    #[arg(long)]
    pub sampling: Option<f64>,
    #[arg(long)]
    pub description: Option<String>,
}

/// A canary of a new version.
#[derive(Debug, Default, clap::Args)]
pub struct CanaryArgs {
    /// Start a canary of this version from the one serving all traffic.
    #[arg(long)]
    pub canary: Option<u32>,
    /// The canary's steps in percent, increasing, e.g. `5,25,50,100`.
    #[arg(long, value_delimiter = ',', requires = "canary")]
    pub steps: Vec<u32>,
    /// Each step holds until the canary answered this many calls in it (100 when no hold is given).
    #[arg(long, requires = "canary")]
    pub hold_requests: Option<u64>,
    /// … and until this long has passed (`30s`, `5m`).
    #[arg(long, requires = "canary")]
    pub hold_duration: Option<String>,
    /// The CEL condition that rolls the canary back (the shipped default when absent).
    #[arg(long, requires = "canary")]
    pub condition: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
pub enum DeployCommand {
    /// Create a deployment: `--version N` (all traffic), `--route V=W …` (a split), `--canary V --steps …`.
    Create {
        name: String,
        /// The model it serves.
        #[arg(long)]
        model: String,
        #[command(flatten)]
        routes: RouteArgs,
        #[command(flatten)]
        canary: CanaryArgs,
    },
    /// List deployments.
    List {
        #[arg(long)]
        model: Option<String>,
        /// Retired ones too.
        #[arg(long)]
        all: bool,
    },
    /// Show a deployment with its live statistics.
    Show { name: String },
    /// Change a deployment: new routes, a canary, shadows, sampling.
    Set {
        name: String,
        #[command(flatten)]
        routes: RouteArgs,
        #[command(flatten)]
        canary: CanaryArgs,
        /// Remove every shadow.
        #[arg(long, conflicts_with = "shadow")]
        no_shadows: bool,
        /// Refuse the change if the deployment is no longer at this revision.
        #[arg(long)]
        revision: Option<u64>,
    },
    /// Retire a deployment (it serves nothing more; its records stay).
    Rm { name: String },
}

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The deployment.
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct PredictionsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: PredictionsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PredictionsCommand {
    /// List recorded predictions, oldest first.
    List {
        name: String,
        /// From this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 100)]
        max_results: u32,
    },
    /// Export a window of recorded predictions to a Parquet file (one row per predicted row).
    Export {
        name: String,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// The Parquet file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

fn parse_route(text: &str) -> anyhow::Result<RouteWire> {
    let (version, weight) = text.split_once('=').ok_or_else(|| anyhow!("--route `{text}`: expected VERSION=WEIGHT, e.g. 3=90"))?;
    Ok(RouteWire {
        version: version.trim().parse().map_err(|_| anyhow!("--route `{text}`: `{version}` is not a version number"))?,
        weight: weight.trim().parse().map_err(|_| anyhow!("--route `{text}`: `{weight}` is not a weight in percent"))?,
    })
}

fn parse_shadow(text: &str) -> anyhow::Result<ShadowWire> {
    let (version, percent) = text.split_once('=').unwrap_or((text, "100"));
    Ok(ShadowWire {
        version: version.trim().parse().map_err(|_| anyhow!("--shadow `{text}`: `{version}` is not a version number"))?,
        percent: percent.trim().parse().map_err(|_| anyhow!("--shadow `{text}`: `{percent}` is not a percentage"))?,
    })
}

fn canary_wire(args: CanaryArgs) -> anyhow::Result<Option<CanaryWire>> {
    let Some(version) = args.canary else { return Ok(None) };
    if args.steps.is_empty() {
        bail!("--canary needs --steps, e.g. --steps 5,25,50,100");
    }
    let hold = (args.hold_requests.is_some() || args.hold_duration.is_some()).then_some(HoldWire { requests: args.hold_requests, duration: args.hold_duration });
    Ok(Some(CanaryWire { version, steps: args.steps.into_iter().map(StepWire::Weight).collect(), hold, condition: args.condition }))
}

fn routes_wire(routes: &[String]) -> anyhow::Result<Option<Vec<RouteWire>>> {
    if routes.is_empty() {
        return Ok(None);
    }
    routes.iter().map(|r| parse_route(r)).collect::<anyhow::Result<Vec<_>>>().map(Some)
}

fn show(d: &DeploymentResponse, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(d);
    }
    print_record(
        d,
        &[
            ("name", "/name"),
            ("model", "/model"),
            ("strategy", "/strategy"),
            ("state", "/state"),
            ("reason", "/reason"),
            ("revision", "/revision"),
            ("sticky header", "/sticky_header"),
            ("sampling", "/sampling"),
            ("previous", "/previous"),
            ("updated", "/updated_at"),
            ("by", "/updated_by"),
        ],
    )?;
    let live = d.live.as_ref();
    println!("routes:");
    for route in &d.routes {
        let stats = live
            .and_then(|l| l["routes"].as_array())
            .and_then(|routes| routes.iter().find(|r| r["version"] == route.version))
            .map(|r| {
                let s = &r["stats"];
                format!(
                    "  {} calls, error rate {:.4}, p50 {:.2} ms, p99 {:.2} ms",
                    s["requests"],
                    s["error_rate"].as_f64().unwrap_or(0.0),
                    s["p50_ms"].as_f64().unwrap_or(0.0),
                    s["p99_ms"].as_f64().unwrap_or(0.0)
                )
            })
            .unwrap_or_default();
        println!("  version {:>4}  {:>3} %{stats}", route.version, route.weight);
    }
    for shadow in &d.shadows {
        println!("  version {:>4}  shadow, {} % mirrored", shadow.version, shadow.percent);
    }
    if let Some(canary) = &d.canary {
        let weights: Vec<String> = canary.steps.iter().map(|s| s.weight.to_string()).collect();
        println!("canary: version {} over {} — step {} of {} [{}]", canary.version, canary.stable, canary.step, canary.steps.len(), weights.join(", "));
        println!("  rollback when: {}", canary.condition);
        if let Some(tripped) = live.and_then(|l| l["canary"]["tripped"].as_str()) {
            println!("  tripped: {tripped}");
        }
    }
    if let Some(records) = live.map(|l| &l["records"]) {
        println!(
            "records: {} written, {} queued, {} dropped (queue full), {} failed, {} not sampled",
            records["written"],
            records["queued"],
            records["dropped"],
            records["failed"],
            live.map_or(serde_json::Value::Null, |l| l["sampled_out"].clone())
        );
    }
    Ok(())
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json = args.client.json;
    match args.command {
        DeployCommand::Create { name, model, routes, canary } => {
            let request = CreateDeploymentRequest {
                name,
                model,
                description: routes.description,
                strategy: routes.strategy,
                version: routes.version,
                routes: routes_wire(&routes.route)?,
                shadows: routes.shadow.iter().map(|s| parse_shadow(s)).collect::<anyhow::Result<_>>()?,
                sticky_header: routes.sticky_header,
                canary: canary_wire(canary)?,
                sampling: routes.sampling,
            };
            let d: DeploymentResponse = client.send_json(Method::POST, "/api/v1/deployments", &request).await?;
            show(&d, json)
        }
        DeployCommand::List { model, all } => {
            let mut query: Vec<(&str, String)> = vec![];
            if let Some(model) = model {
                query.push(("model", model));
            }
            if all {
                query.push(("include_retired", "true".into()));
            }
            let list: DeploymentList = client.get_query("/api/v1/deployments", &query).await?;
            if json {
                return print_json(&list);
            }
            print_table(
                &list.deployments,
                &[("name", "/name"), ("model", "/model"), ("strategy", "/strategy"), ("state", "/state"), ("routes", "/routes"), ("revision", "/revision")],
            )
        }
        DeployCommand::Show { name } => {
            let d: DeploymentResponse = client.get(&format!("/api/v1/deployments/{}", path_segment(&name))).await?;
            show(&d, json)
        }
        DeployCommand::Set { name, routes, canary, no_shadows, revision } => {
            let shadows = if no_shadows {
                Some(vec![])
            } else if routes.shadow.is_empty() {
                None
            } else {
                Some(routes.shadow.iter().map(|s| parse_shadow(s)).collect::<anyhow::Result<_>>()?)
            };
            let request = UpdateDeploymentRequest {
                revision,
                description: routes.description,
                strategy: routes.strategy,
                version: routes.version,
                routes: routes_wire(&routes.route)?,
                shadows,
                sticky_header: routes.sticky_header,
                canary: canary_wire(canary)?,
                sampling: routes.sampling,
            };
            let d: DeploymentResponse = client.send_json(Method::PATCH, &format!("/api/v1/deployments/{}", path_segment(&name)), &request).await?;
            show(&d, json)
        }
        DeployCommand::Rm { name } => {
            let d: DeploymentResponse = client.delete_json(&format!("/api/v1/deployments/{}", path_segment(&name))).await?;
            if json {
                print_json(&d)
            } else {
                println!("retired deployment {}", d.name);
                Ok(())
            }
        }
    }
}

pub async fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let d: DeploymentResponse = client.post(&format!("/api/v1/deployments/{}/rollback", path_segment(&args.name))).await?;
    if args.client.json {
        return print_json(&d);
    }
    println!("{}", d.reason.as_deref().unwrap_or("rolled back"));
    Ok(())
}

pub async fn predictions(args: PredictionsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    match args.command {
        PredictionsCommand::List { name, since, until, max_results } => {
            let mut query: Vec<(&str, String)> = vec![("max_results", max_results.to_string())];
            query.extend(since.map(|s| ("since", s)));
            query.extend(until.map(|u| ("until", u)));
            let page: PredictionPage = client.get_query(&format!("/api/v1/deployments/{}/predictions", path_segment(&name)), &query).await?;
            if args.client.json {
                return print_json(&page);
            }
            print_table(
                &page.records,
                &[("id", "/id"), ("at", "/at"), ("version", "/version"), ("route", "/route"), ("latency µs", "/latency_us"), ("error", "/error"), ("request", "/request_id")],
            )
        }
        PredictionsCommand::Export { name, since, until, output } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("format", "parquet");
            if let Some(since) = &since {
                query.append_pair("since", since);
            }
            if let Some(until) = &until {
                query.append_pair("until", until);
            }
            let path = format!("/api/v1/deployments/{}/predictions?{}", path_segment(&name), query.finish());
            let digest = client.download(&path, &output, None).await?;
            let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
            if args.client.json {
                return print_json(&serde_json::json!({ "path": output, "bytes": size, "sha256": digest }));
            }
            println!("wrote {} ({size} bytes)", output.display());
            Ok(())
        }
    }
}
