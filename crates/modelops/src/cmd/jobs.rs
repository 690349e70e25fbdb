//! `modelops jobs …` and `modelops retrain NAME`: a model's retraining job,
//! its runs, their output.

use super::models::path_segment;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use anyhow::{bail, Context};
use modelops_server::wire::{HoldWire, JobRunList, JobRunLog, JobRunResponse, JobSpecWire, RetrainJobList, RetrainJobResponse, RolloutWire, RunnerWire, ShadowStageWire, StepWire};
use reqwest::Method;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: JobsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum JobsCommand {
    /// Define (or replace) a model's retraining job: `-- PROGRAM ARGS…` (run by the server, no shell) or `--webhook URL`.
    Define(Box<DefineArgs>),
    /// A model's job definition (every model's without one).
    Definition { model: Option<String> },
    /// Remove a model's job (runs under way go on).
    Remove { model: String },
    /// Runs, newest first.
    List {
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One run: trigger, window, state and why, version, times.
    Show { run: i64 },
    /// A run's output (stdout and stderr, the last 64 KiB).
    Logs { run: i64 },
    /// Stop a run waiting for people or shadowing a deployment.
    Cancel { run: i64 },
}

#[derive(Debug, clap::Args)]
pub struct DefineArgs {
    pub model: String,
    /// Call this URL to start a run (an Airflow DAG trigger, a CI endpoint) instead of a local program.
    #[arg(long, conflicts_with = "argv")]
    pub webhook: Option<String>,
    /// The server's environment variable holding the webhook's HMAC secret.
    #[arg(long, requires = "webhook")]
    pub secret_env: Option<String>,
    /// The program's working directory (the run's own folder when absent).
    #[arg(long)]
    pub dir: Option<String>,
    /// `KEY=VALUE` for the program's environment (repeat).
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// A run still going after this long is stopped: `90s`, `15m`, `2h` [default: 1h].
    #[arg(long, value_parser = super::parse_seconds)]
    pub timeout: Option<u64>,
    /// After a triggered run starts, alerts and the schedule start no other for this long [default: 1h].
    #[arg(long, value_parser = super::parse_seconds)]
    pub cooldown: Option<u64>,
    /// Alerts with a `retrain` action do not start runs.
    #[arg(long)]
    pub no_alerts: bool,
    /// A cron schedule, five fields, UTC (`0 3 * * 1`: Mondays at 03:00).
    #[arg(long)]
    pub schedule: Option<String>,
    /// Roll the approved version out as a canary on this deployment.
    #[arg(long)]
    pub deployment: Option<String>,
    /// The canary's steps in percent, e.g. `10,50,100`.
    #[arg(long, value_delimiter = ',', requires = "deployment")]
    pub steps: Vec<u32>,
    /// Each step holds until the canary answered this many calls (100 when no hold is given).
    #[arg(long, requires = "deployment")]
    pub hold_requests: Option<u64>,
    /// Each step holds at least this long (`30s`, `5m`).
    #[arg(long, requires = "deployment")]
    pub hold_duration: Option<String>,
    /// The CEL condition that rolls the canary back (the deployments' default when absent).
    #[arg(long, requires = "deployment")]
    pub condition: Option<String>,
    /// Before the canary, mirror every call to the new version and compare this many decisions.
    #[arg(long, requires = "deployment")]
    pub shadow_calls: Option<u64>,
    /// The share of shadowed decisions that must agree for the canary to start (0–1).
    #[arg(long, requires = "shadow_calls")]
    pub min_agreement: Option<f64>,
    /// The output compared in the shadow stage (the first output when absent).
    #[arg(long, requires = "shadow_calls")]
    pub shadow_output: Option<String>,
    /// Runs act as this user (you when absent; someone else: admins, who alone define command jobs).
    #[arg(long)]
    pub run_as: Option<String>,
    /// The program and its arguments, after `--`.
    #[arg(last = true)]
    pub argv: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RetrainArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    pub model: String,
    /// Wait until the run ends (promoted, rolled back, failed…) or waits for a person, printing each step.
    #[arg(long)]
    pub wait: bool,
}

fn spec(args: DefineArgs) -> anyhow::Result<(String, JobSpecWire)> {
    let runner = match args.webhook {
        Some(url) => RunnerWire { kind: "webhook".into(), url: Some(url), secret_env: args.secret_env, ..RunnerWire::default() },
        None => {
            if args.argv.is_empty() {
                bail!("give the program to run after `--` (e.g. `modelops jobs define {} -- python train.py`) or `--webhook URL`", args.model);
            }
            let mut env = BTreeMap::new();
            for pair in &args.env {
                let (k, v) = pair.split_once('=').with_context(|| format!("--env `{pair}` is not KEY=VALUE"))?;
                env.insert(k.to_string(), v.to_string());
            }
            RunnerWire { kind: "command".into(), argv: Some(args.argv), dir: args.dir, env: (!env.is_empty()).then_some(env), ..RunnerWire::default() }
        }
    };
    let rollout = match args.deployment {
        Some(deployment) => {
            if args.steps.is_empty() {
                bail!("--deployment needs --steps, e.g. --steps 10,50,100");
            }
            let hold = (args.hold_requests.is_some() || args.hold_duration.is_some()).then_some(HoldWire { requests: args.hold_requests, duration: args.hold_duration });
            let shadow = args.shadow_calls.map(|calls| ShadowStageWire { calls, min_agreement: args.min_agreement.unwrap_or(1.0), output: args.shadow_output });
            Some(RolloutWire { deployment, shadow, steps: args.steps.into_iter().map(StepWire::Weight).collect(), hold, condition: args.condition })
        }
        None => None,
    };
    Ok((
        args.model,
        JobSpecWire {
            runner,
            timeout_seconds: args.timeout,
            cooldown_seconds: args.cooldown,
            on_alert: Some(!args.no_alerts),
            schedule: args.schedule,
            rollout,
            run_as: args.run_as,
        },
    ))
}

fn show_job(job: &RetrainJobResponse) -> anyhow::Result<()> {
    let runs = match &job.spec.runner.argv {
        Some(argv) => argv.join(" "),
        None => format!("POST {}", job.spec.runner.url.as_deref().unwrap_or("")),
    };
    let rollout = job.spec.rollout.as_ref().map(|r| {
        let steps: Vec<String> = r
            .steps
            .iter()
            .map(|s| match s {
                StepWire::Weight(w) => format!("{w}%"),
                StepWire::Held(h) => format!("{}%", h.weight),
            })
            .collect();
        let shadow = r.shadow.as_ref().map_or_else(String::new, |s| format!("shadow for {} calls (≥ {:.1}% agreeing), then ", s.calls, s.min_agreement * 100.0));
        format!("{shadow}canary on `{}`: {}", r.deployment, steps.join(" → "))
    });
    let view = serde_json::json!({
        "model": job.model, "runs": runs, "run_as": job.run_as,
        "timeout": job.spec.timeout_seconds.map(|s| format!("{s} s")), "cooldown": job.spec.cooldown_seconds.map(|s| format!("{s} s")),
        "on_alert": job.spec.on_alert, "schedule": job.spec.schedule, "rollout": rollout, "condition": job.spec.rollout.as_ref().and_then(|r| r.condition.clone()),
        "updated": job.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    print_record(
        &view,
        &[
            ("model", "/model"),
            ("runs", "/runs"),
            ("as", "/run_as"),
            ("timeout", "/timeout"),
            ("cool-down", "/cooldown"),
            ("on alerts", "/on_alert"),
            ("schedule", "/schedule"),
            ("rollout", "/rollout"),
            ("rollback when", "/condition"),
            ("updated", "/updated"),
        ],
    )
}

fn show_run(run: &JobRunResponse) -> anyhow::Result<()> {
    let window = run.window.as_ref().map(|w| {
        format!("{} / {} version {}: {} → {}", w.deployment, w.monitor, w.version, w.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), w.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    });
    let view = serde_json::json!({
        "run": run.id, "model": run.model, "trigger": run.trigger, "by": run.requested_by, "alert": run.alert, "window": window,
        "parent": run.parent_version, "version": run.version, "state": run.state, "reason": run.reason, "exit": run.exit_code,
        "started": run.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "job": run.job_seconds.map(|s| format!("{s:.1} s")),
        "ended": run.ended_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    });
    print_record(
        &view,
        &[
            ("run", "/run"),
            ("model", "/model"),
            ("trigger", "/trigger"),
            ("requested by", "/by"),
            ("alert", "/alert"),
            ("window", "/window"),
            ("parent version", "/parent"),
            ("new version", "/version"),
            ("state", "/state"),
            ("why", "/reason"),
            ("exit code", "/exit"),
            ("started", "/started"),
            ("job took", "/job"),
            ("ended", "/ended"),
        ],
    )
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json = args.client.json;
    match args.command {
        JobsCommand::Define(define) => {
            let (model, body) = spec(*define)?;
            let job: RetrainJobResponse = client.send_json(Method::PUT, &format!("/api/v1/models/{}/retrain-job", path_segment(&model)), &body).await?;
            if json {
                return print_json(&job);
            }
            show_job(&job)
        }
        JobsCommand::Definition { model: Some(model) } => {
            let job: RetrainJobResponse = client.get(&format!("/api/v1/models/{}/retrain-job", path_segment(&model))).await?;
            if json {
                return print_json(&job);
            }
            show_job(&job)
        }
        JobsCommand::Definition { model: None } => {
            let list: RetrainJobList = client.get("/api/v1/retrain-jobs").await?;
            if json {
                return print_json(&list);
            }
            let rows: Vec<serde_json::Value> = list
                .jobs
                .iter()
                .map(|j| {
                    serde_json::json!({
                        "model": j.model,
                        "runs": j.spec.runner.argv.as_ref().map_or_else(|| format!("POST {}", j.spec.runner.url.as_deref().unwrap_or("")), |a| a.join(" ")),
                        "schedule": j.spec.schedule, "on_alert": j.spec.on_alert,
                        "rollout": j.spec.rollout.as_ref().map(|r| r.deployment.clone()), "as": j.run_as,
                    })
                })
                .collect();
            print_table(&rows, &[("model", "/model"), ("runs", "/runs"), ("on alerts", "/on_alert"), ("schedule", "/schedule"), ("rollout on", "/rollout"), ("as", "/as")])
        }
        JobsCommand::Remove { model } => {
            client.delete(&format!("/api/v1/models/{}/retrain-job", path_segment(&model))).await?;
            eprintln!("removed the retraining job of `{model}`");
            Ok(())
        }
        JobsCommand::List { model, limit } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(m) = model {
                query.push(("model", m));
            }
            let list: JobRunList = client.get_query("/api/v1/retrain-runs", &query).await?;
            if json {
                return print_json(&list);
            }
            print_table(
                &list.runs,
                &[
                    ("run", "/id"),
                    ("model", "/model"),
                    ("trigger", "/trigger"),
                    ("state", "/state"),
                    ("parent", "/parent_version"),
                    ("version", "/version"),
                    ("started", "/started_at"),
                    ("job s", "/job_seconds"),
                    ("why", "/reason"),
                ],
            )
        }
        JobsCommand::Show { run } => {
            let run: JobRunResponse = client.get(&format!("/api/v1/retrain-runs/{run}")).await?;
            if json {
                return print_json(&run);
            }
            show_run(&run)
        }
        JobsCommand::Cancel { run } => {
            let run: JobRunResponse = client.post(&format!("/api/v1/retrain-runs/{run}/cancel")).await?;
            if json {
                return print_json(&run);
            }
            show_run(&run)
        }
        JobsCommand::Logs { run } => {
            let log: JobRunLog = client.get(&format!("/api/v1/retrain-runs/{run}/log")).await?;
            if json {
                return print_json(&log);
            }
            print!("{}", log.log);
            Ok(())
        }
    }
}

/// `modelops retrain NAME [--wait]`.
pub async fn retrain(args: RetrainArgs) -> anyhow::Result<std::process::ExitCode> {
    let client = Client::new(&args.client)?;
    let run: JobRunResponse = client.post(&format!("/api/v1/models/{}/retrain", path_segment(&args.model))).await?;
    if !args.wait {
        if args.client.json {
            print_json(&run)?;
        } else {
            eprintln!("started retraining run {} of `{}`; follow it with `modelops jobs show {}`", run.id, run.model, run.id);
            println!("{}", run.id);
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let mut last = (String::new(), String::new());
    let run = loop {
        let now: JobRunResponse = client.get(&format!("/api/v1/retrain-runs/{}", run.id)).await?;
        if (now.state.clone(), now.reason.clone()) != last {
            eprintln!("run {}: {} — {}", now.id, now.state, now.reason);
            last = (now.state.clone(), now.reason.clone());
        }
        // A run waiting for people has done what it can by itself.
        if now.ended_at.is_some() || now.state == "awaiting_approval" && now.reason.contains("waits for approval") {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if args.client.json {
        print_json(&run)?;
    } else {
        show_run(&run)?;
    }
    let fine = matches!(run.state.as_str(), "promoted" | "approved" | "awaiting_approval");
    Ok(if fine { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::from(1) })
}
