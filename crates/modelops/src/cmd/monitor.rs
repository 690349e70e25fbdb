//! `modelops monitor …`, `modelops reference …`, `modelops labels …`,
//! `modelops alerts …`: live monitoring over the native API.

use super::models::path_segment;
use crate::client::{Client, ClientArgs};
use crate::output::{print_json, print_record, print_table};
use anyhow::{anyhow, bail, Context};
use modelops_monitor::profile::Profile;
use modelops_server::wire::{
    AlertActionWire, AlertList, AlertRuleWire, CreateMonitorRequest, DriftWire, LabelWire, LabelsRequest, LabelsResponse, MonitorList, MonitorResponse,
    PerformanceWire, ReferenceDataWire, ReferenceResponse, RetrainRequestList, SetReferenceRequest, WindowResultList, WindowWire,
};
use modelops_server::wire::ArtifactResponse;
use reqwest::Method;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: MonitorCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MonitorCommand {
    /// Create a monitor on a deployment, from flags or a JSON file (`--file`, the API's request body).
    Create(Box<CreateArgs>),
    /// List a deployment's monitors (every deployment's without one).
    List { deployment: Option<String> },
    /// A monitor's windows: drift, performance, fairness over time (`--format json|html`).
    Show {
        deployment: String,
        /// The monitor (the deployment's only one when absent).
        monitor: Option<String>,
        /// Windows starting at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// `table` (default), `json` or `html` (a report with charts over time).
        #[arg(long, default_value = "table")]
        format: String,
        /// Write the report here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Remove a monitor and its results.
    Rm { deployment: String, monitor: String },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    pub deployment: String,
    /// The monitor's name (from `--file` when absent).
    pub name: Option<String>,
    /// The whole monitor as JSON (the body of `POST /api/v1/deployments/{name}/monitors`).
    #[arg(long, conflicts_with_all = ["every", "rows"])]
    pub file: Option<PathBuf>,
    /// Tumbling time windows (`10s`, `1h`, `1d`).
    #[arg(long, conflicts_with = "rows")]
    pub every: Option<String>,
    /// Windows of this many predicted rows.
    #[arg(long)]
    pub rows: Option<u64>,
    /// Columns to watch (comma-separated); the reference profile's when absent.
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// How drift is computed: `default` (against the reference profile, from aggregates, with provisional results) or `evidently` (Evidently's numbers over every call of a closed window against the reference data kept with `reference set --store-data`).
    #[arg(long, value_parser = ["default", "evidently"])]
    pub mode: Option<String>,
    /// One drift method for every column (`ks`, `psi`, `wasserstein`, …).
    #[arg(long)]
    pub method: Option<String>,
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Dataset drift when at least this share of columns drifts (0.5).
    #[arg(long)]
    pub drift_share: Option<f64>,
    /// Performance once labels arrive: the output column of the prediction (`label`).
    #[arg(long)]
    pub prediction: Option<String>,
    /// The output column of the positive class's probability (`probabilities_1`).
    #[arg(long, requires = "prediction")]
    pub score: Option<String>,
    #[arg(long, requires = "prediction")]
    pub pos_label: Option<String>,
    /// An input column whose groups' fairness gaps are computed.
    #[arg(long, requires = "prediction")]
    pub fairness_attribute: Option<String>,
    /// Fewer rows in a window: not computed (30).
    #[arg(long)]
    pub min_rows: Option<u64>,
    /// An alert rule, `NAME=CEL` (e.g. `drift='drift.share >= 0.5'`); repeat for more.
    #[arg(long = "alert", value_name = "NAME=CONDITION")]
    pub alerts: Vec<String>,
    /// Every rule POSTs to this URL when it fires and resolves.
    #[arg(long)]
    pub webhook: Option<String>,
    /// The server's environment variable holding the webhook's HMAC secret.
    #[arg(long, requires = "webhook")]
    pub secret_env: Option<String>,
    /// Every rule rolls back the deployment's running canary.
    #[arg(long)]
    pub rollback_canary: bool,
    /// Every rule marks the deployment degraded while it fires.
    #[arg(long)]
    pub degrade: bool,
    /// Every rule opens a retraining request.
    #[arg(long)]
    pub retrain: bool,
    /// A rule fires once its condition held this long (`10m`).
    #[arg(long = "for")]
    pub for_: Option<String>,
    /// Quiet for this long after firing (`1h`).
    #[arg(long)]
    pub cooldown: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ReferenceArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: ReferenceCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReferenceCommand {
    /// Set a version's reference profile (once: it is immutable): from a profile (`.json`), from training data (CSV/Parquet, fitted here), or from a window of a deployment's recorded predictions.
    Set(Box<SetReferenceArgs>),
    /// Show a version's reference profile (`--json` for the whole profile).
    Show { model: String, version: u32 },
}

#[derive(Debug, clap::Args)]
pub struct SetReferenceArgs {
        model: String,
        version: u32,
        /// A profile (`modelops profile fit`'s JSON) or data to fit one from.
        #[arg(required_unless_present = "from_deployment")]
        file: Option<PathBuf>,
        /// Fit from this deployment's recorded predictions instead (with `--since`/`--until`).
        #[arg(long, conflicts_with = "file")]
        from_deployment: Option<String>,
        #[arg(long, requires = "from_deployment")]
        since: Option<String>,
        #[arg(long, requires = "from_deployment")]
        until: Option<String>,
        /// Treat these columns as categorical (comma-separated).
        #[arg(long, value_delimiter = ',')]
        categorical: Vec<String>,
        /// Treat these columns as numerical (comma-separated).
        #[arg(long, value_delimiter = ',')]
        numerical: Vec<String>,
        #[command(flatten)]
        estimator: EstimatorArgs,
        /// Keep the data itself with the version (uploaded as an artifact), for monitors in evidently mode, which compare whole windows with the raw reference.
        #[arg(long)]
        store_data: bool,
}

/// The columns a label-free performance estimator (CBPE, binary
/// classifiers) is fitted from: the reference's true label, the model's
/// predicted label and its score for the positive class.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct EstimatorArgs {
    /// The reference's true labels (0/1 or true/false): fits the label-free performance estimate (CBPE) beside the profile.
    #[arg(long, requires_all = ["score", "prediction"])]
    pub label: Option<String>,
    /// The model's probability of the positive class in the reference.
    #[arg(long, requires = "label")]
    pub score: Option<String>,
    /// The model's predicted label (0/1) in the reference.
    #[arg(long, requires = "label")]
    pub prediction: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct LabelsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The deployment whose calls the labels are for.
    pub deployment: String,
    /// A JSON file (`[{"request_id": …, "label": …}, …]` or `{"labels": [...]}`) or a CSV with `request_id,label` columns.
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: AlertsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AlertsCommand {
    /// Alerts, newest first.
    List {
        #[arg(long)]
        deployment: Option<String>,
        /// Only those firing now.
        #[arg(long)]
        firing: bool,
        #[arg(long, default_value_t = 100)]
        max_results: u32,
    },
    /// Retraining requests opened by alerts.
    Retrain {
        #[arg(long)]
        model: Option<String>,
    },
}

fn create_request(args: CreateArgs) -> anyhow::Result<CreateMonitorRequest> {
    if let Some(file) = &args.file {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read `{}`", file.display()))?;
        let mut request: CreateMonitorRequest = serde_json::from_str(&text).map_err(|e| anyhow!("`{}` is not a monitor: {e}", file.display()))?;
        if let Some(name) = args.name {
            request.name = name;
        }
        return Ok(request);
    }
    let name = args.name.ok_or_else(|| anyhow!("name the monitor: `modelops monitor create DEPLOYMENT NAME --every 1h`"))?;
    if args.every.is_none() && args.rows.is_none() {
        bail!("give the windows: `--every 1h` (time) or `--rows 1000` (count)");
    }
    let mut actions = Vec::new();
    if let Some(url) = args.webhook {
        actions.push(AlertActionWire { kind: "webhook".into(), url: Some(url), secret_env: args.secret_env });
    }
    for (on, kind) in [(args.rollback_canary, "rollback_canary"), (args.degrade, "degrade"), (args.retrain, "retrain")] {
        if on {
            actions.push(AlertActionWire { kind: kind.into(), url: None, secret_env: None });
        }
    }
    let alerts = args
        .alerts
        .iter()
        .map(|a| {
            let (name, condition) = a.split_once('=').ok_or_else(|| anyhow!("--alert `{a}`: expected NAME=CONDITION, e.g. drift='drift.share >= 0.5'"))?;
            Ok(AlertRuleWire { name: name.trim().into(), condition: condition.into(), for_: args.for_.clone(), cooldown: args.cooldown.clone(), actions: actions.clone() })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(CreateMonitorRequest {
        name,
        window: WindowWire { every: args.every, rows: args.rows },
        features: args.features,
        drift: DriftWire { mode: args.mode, method: args.method, threshold: args.threshold, drift_share: args.drift_share },
        performance: args.prediction.map(|prediction| PerformanceWire { prediction, score: args.score, pos_label: args.pos_label, fairness_attribute: args.fairness_attribute }),
        min_rows: args.min_rows,
        alerts,
    })
}

fn show_monitor(m: &MonitorResponse) -> anyhow::Result<()> {
    print_record(
        m,
        &[
            ("deployment", "/deployment"),
            ("name", "/name"),
            ("window", "/spec/window"),
            ("features", "/spec/features"),
            ("drift", "/spec/drift"),
            ("performance", "/spec/performance"),
            ("min rows", "/spec/min_rows"),
            ("alerts", "/spec/alerts"),
            ("firing", "/firing"),
            ("live", "/live"),
            ("created", "/created_at"),
            ("by", "/created_by"),
        ],
    )
}

/// One line per window for the table.
fn window_rows(list: &WindowResultList) -> Vec<Value> {
    list.results
        .iter()
        .map(|w| {
            let r = &w.result;
            let drift = r.get("drift");
            let drifted: Vec<String> = drift
                .and_then(|d| d.get("columns"))
                .and_then(Value::as_array)
                .map(|cols| cols.iter().filter(|c| c.get("drift_detected") == Some(&json!(true))).filter_map(|c| c.get("column").and_then(Value::as_str).map(String::from)).collect())
                .unwrap_or_default();
            let metrics = r.get("performance").and_then(|p| p.get("metrics"));
            let metric = |name: &str| metrics.and_then(|m| m.get(name)).and_then(Value::as_f64).map(|v| format!("{v:.4}")).unwrap_or_default();
            let estimated = |name: &str| r.get("estimated").and_then(|e| e.get(name)).and_then(Value::as_f64).map(|v| format!("{v:.4}")).unwrap_or_default();
            let note = r
                .get("not_computed")
                .or_else(|| drift.and_then(|d| d.get("not_computed")))
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({
                "start": w.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "version": w.version,
                "rows": w.rows,
                "state": if w.closed { "closed" } else { "open" },
                "drift_share": drift.and_then(|d| d.get("share_of_drifted_columns")).and_then(Value::as_f64).map(|v| format!("{v:.2}")),
                "dataset_drift": drift.and_then(|d| d.get("dataset_drift")),
                "drifted": drifted.join(", "),
                "labeled": r.get("labeled_rows"),
                "accuracy": metric("accuracy"),
                "roc_auc": metric("roc_auc"),
                "est_accuracy": estimated("accuracy"),
                "est_roc_auc": estimated("roc_auc"),
                "rmse": metric("rmse"),
                "note": note,
            })
        })
        .collect()
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let json_out = args.client.json;
    match args.command {
        MonitorCommand::Create(create) => {
            let deployment = create.deployment.clone();
            let request = create_request(*create)?;
            let m: MonitorResponse = client.send_json(Method::POST, &format!("/api/v1/deployments/{}/monitors", path_segment(&deployment)), &request).await?;
            if json_out {
                return print_json(&m);
            }
            show_monitor(&m)
        }
        MonitorCommand::List { deployment } => {
            let list: MonitorList = match &deployment {
                Some(d) => client.get(&format!("/api/v1/deployments/{}/monitors", path_segment(d))).await?,
                None => {
                    let deployments: modelops_server::wire::DeploymentList = client.get("/api/v1/deployments").await?;
                    let mut all = Vec::new();
                    for d in deployments.deployments {
                        let list: MonitorList = client.get(&format!("/api/v1/deployments/{}/monitors", path_segment(&d.name))).await?;
                        all.extend(list.monitors);
                    }
                    MonitorList { monitors: all }
                }
            };
            if json_out {
                return print_json(&list);
            }
            print_table(
                &list.monitors,
                &[("deployment", "/deployment"), ("name", "/name"), ("window", "/spec/window"), ("alerts", "/spec/alerts"), ("firing", "/firing"), ("windows closed", "/live/windows_closed"), ("rows read", "/live/rows_read")],
            )
        }
        MonitorCommand::Show { deployment, monitor, since, format, output } => {
            let monitor = match monitor {
                Some(m) => m,
                None => {
                    let list: MonitorList = client.get(&format!("/api/v1/deployments/{}/monitors", path_segment(&deployment))).await?;
                    match list.monitors.as_slice() {
                        [one] => one.name.clone(),
                        [] => bail!("deployment `{deployment}` has no monitor"),
                        many => bail!("deployment `{deployment}` has {} monitors ({}); name one", many.len(), many.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")),
                    }
                }
            };
            let mut query: Vec<(&str, String)> = vec![("max_results", "10000".into())];
            if let Some(since) = since {
                query.push(("since", since));
            }
            let path = format!("/api/v1/deployments/{}/monitors/{}/results", path_segment(&deployment), path_segment(&monitor));
            let list: WindowResultList = client.get_query(&path, &query).await?;
            let text = match (format.as_str(), json_out) {
                ("json", _) | (_, true) => serde_json::to_string_pretty(&list)?,
                ("html", _) => crate::cmd::monitor_report::html(&list),
                ("table", _) => {
                    if output.is_some() {
                        bail!("--output writes `--format json` or `--format html`");
                    }
                    return print_table(
                        &window_rows(&list),
                        &[
                            ("window start", "/start"),
                            ("version", "/version"),
                            ("rows", "/rows"),
                            ("state", "/state"),
                            ("drift share", "/drift_share"),
                            ("dataset drift", "/dataset_drift"),
                            ("drifted columns", "/drifted"),
                            ("labeled", "/labeled"),
                            ("accuracy", "/accuracy"),
                            ("roc auc", "/roc_auc"),
                            ("est. accuracy", "/est_accuracy"),
                            ("est. roc auc", "/est_roc_auc"),
                            ("rmse", "/rmse"),
                            ("note", "/note"),
                        ],
                    );
                }
                (other, _) => bail!("--format `{other}`: expected table, json or html"),
            };
            match output {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                None => println!("{text}"),
            }
            Ok(())
        }
        MonitorCommand::Rm { deployment, monitor } => {
            let m: MonitorResponse = client.delete_json(&format!("/api/v1/deployments/{}/monitors/{}", path_segment(&deployment), path_segment(&monitor))).await?;
            if json_out {
                return print_json(&m);
            }
            println!("removed monitor `{}` of deployment `{}`", m.name, m.deployment);
            Ok(())
        }
    }
}

/// A reference to set: the profile's text, where it came from, and the
/// label-free estimator's text when one was fitted.
pub struct ReferenceText {
    pub profile: String,
    pub source: String,
    pub estimator: Option<String>,
    /// The data file, when it is to be kept with the version.
    pub data: Option<ReferenceDataWire>,
}

/// The file name of reference data that can be kept (CSV or Parquet).
pub fn check_reference_data(file: &Path) -> anyhow::Result<String> {
    let filename = file.file_name().and_then(|n| n.to_str()).with_context(|| format!("`{}` is not a file name", file.display()))?.to_string();
    if !["parquet", "csv"].iter().any(|e| file.extension().is_some_and(|x| x.eq_ignore_ascii_case(e))) {
        bail!("--store-data keeps the data a profile is fitted from: give a CSV or Parquet file, not `{}`", file.display());
    }
    Ok(filename)
}

/// Uploads reference data to keep with the version (`--store-data`).
pub async fn upload_reference_data(client: &Client, file: &Path) -> anyhow::Result<ReferenceDataWire> {
    let filename = check_reference_data(file)?;
    let uploaded: ArtifactResponse = client.upload("/api/v1/artifacts", &[("filename", filename.clone())], file).await?;
    Ok(ReferenceDataWire { sha256: uploaded.sha256, filename })
}

/// The reference for `file`: a saved profile as it is, data fitted here
/// (with the estimator when `estimator` names its columns).
fn profile_text(file: &Path, categorical: &[String], numerical: &[String], estimator: &EstimatorArgs) -> anyhow::Result<ReferenceText> {
    let source = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        if estimator.label.is_some() {
            bail!("--label fits the estimator from data: give the training data (CSV/Parquet), not a saved profile");
        }
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read `{}`", file.display()))?;
        Profile::from_json(&text, &file.display().to_string())?;
        return Ok(ReferenceText { profile: text, source, estimator: None, data: None });
    }
    let table = super::drift::read(file, None)?;
    let profile = Profile::fit(&table, None, categorical, numerical)?;
    let estimator = match (&estimator.label, &estimator.score, &estimator.prediction) {
        (Some(label), Some(score), Some(prediction)) => {
            let fields = modelops_monitor::cbpe::Fields { score: score.clone(), label: label.clone(), prediction: prediction.clone() };
            let (cbpe, missing) = modelops_monitor::cbpe::Cbpe::fit_table(&table, fields).with_context(|| format!("`{}`", file.display()))?;
            eprintln!(
                "label-free estimator fitted on {} rows ({missing} left out for a missing value); calibration {}",
                cbpe.reference_rows,
                if cbpe.calibration.needed { "applied" } else { "not needed" }
            );
            Some(cbpe.to_json()?)
        }
        _ => None,
    };
    Ok(ReferenceText { profile: profile.to_json()?, source, estimator, data: None })
}

pub async fn run_reference(args: ReferenceArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    match args.command {
        ReferenceCommand::Set(set) => {
            let SetReferenceArgs { model, version, file, from_deployment, since, until, categorical, numerical, estimator, store_data } = *set;
            let reference = match (file, from_deployment) {
                (Some(file), _) => {
                    let mut reference = profile_text(&file, &categorical, &numerical, &estimator)?;
                    if store_data {
                        reference.data = Some(upload_reference_data(&client, &file).await?);
                    }
                    reference
                }
                (None, Some(deployment)) => {
                    let dir = tempfile::tempdir()?;
                    let parquet = dir.path().join("window.parquet");
                    let mut query = form_urlencoded::Serializer::new(String::new());
                    query.append_pair("format", "parquet");
                    if let Some(since) = &since {
                        query.append_pair("since", since);
                    }
                    if let Some(until) = &until {
                        query.append_pair("until", until);
                    }
                    client.download(&format!("/api/v1/deployments/{}/predictions?{}", path_segment(&deployment), query.finish()), &parquet, None).await?;
                    let mut reference = profile_text(&parquet, &categorical, &numerical, &estimator)?;
                    reference.source = format!("deployment {deployment} from {} until {}", since.as_deref().unwrap_or("the start"), until.as_deref().unwrap_or("now"));
                    if store_data {
                        reference.data = Some(upload_reference_data(&client, &parquet).await?);
                    }
                    reference
                }
                (None, None) => bail!("give a profile or data file, or --from-deployment"),
            };
            set_reference(&client, &model, version, reference, args.client.json).await
        }
        ReferenceCommand::Show { model, version } => {
            let r: ReferenceResponse = client.get(&format!("/api/v1/models/{}/versions/{version}/reference", path_segment(&model))).await?;
            if args.client.json {
                return print_json(&r);
            }
            let columns = r.profile.as_ref().and_then(|p| p.get("columns")).and_then(Value::as_array).map(|c| c.iter().filter_map(|c| c.get("name").and_then(Value::as_str)).collect::<Vec<_>>().join(", "));
            let data = r.data.as_ref().map_or_else(|| "not kept (default-mode monitors only)".to_string(), |d| format!("{} ({})", d.filename, d.sha256));
            print_record(&json!({"model": r.model, "version": r.version, "source": r.source, "rows": r.rows, "sha256": r.sha256, "columns": columns, "data": data, "set": r.created_at, "by": r.created_by}),
                &[("model", "/model"), ("version", "/version"), ("source", "/source"), ("rows", "/rows"), ("columns", "/columns"), ("sha256", "/sha256"), ("data", "/data"), ("set", "/set"), ("by", "/by")])
        }
    }
}

/// Sets a reference profile (shared with `versions push --reference`).
pub async fn set_reference(client: &Client, model: &str, version: u32, reference: ReferenceText, json_out: bool) -> anyhow::Result<()> {
    let request = SetReferenceRequest { profile: Value::String(reference.profile), source: Some(reference.source), estimator: reference.estimator.map(Value::String), data: reference.data };
    let r: ReferenceResponse = client.send_json(Method::PUT, &format!("/api/v1/models/{}/versions/{version}/reference", path_segment(model)), &request).await?;
    if json_out {
        return print_json(&r);
    }
    eprintln!(
        "reference profile of {} rows ({}) set on {}/{} — sha256 {}{}",
        r.rows,
        r.source,
        r.model,
        r.version,
        r.sha256,
        r.data.as_ref().map(|d| format!("; data kept: {} ({})", d.filename, d.sha256)).unwrap_or_default()
    );
    Ok(())
}

/// Reads `--reference FILE` for `versions push`.
pub fn reference_for_push(file: &Path, estimator: &EstimatorArgs) -> anyhow::Result<ReferenceText> {
    profile_text(file, &[], &[], estimator)
}

fn read_labels(file: &Path) -> anyhow::Result<Vec<LabelWire>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read `{}`", file.display()))?;
    if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers()?.clone();
        let id = headers.iter().position(|h| h == "request_id").ok_or_else(|| anyhow!("`{}` has no `request_id` column", file.display()))?;
        let label = headers.iter().position(|h| h == "label").ok_or_else(|| anyhow!("`{}` has no `label` column", file.display()))?;
        let mut out = Vec::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("`{}` line {}", file.display(), i + 2))?;
            let raw = row.get(label).unwrap_or_default();
            // Numbers and booleans as such; anything else as text.
            let value = match raw {
                "true" | "True" => json!(true),
                "false" | "False" => json!(false),
                _ => raw.parse::<i64>().map(Value::from).or_else(|_| raw.parse::<f64>().map(Value::from)).unwrap_or_else(|_| json!(raw)),
            };
            out.push(LabelWire { request_id: row.get(id).unwrap_or_default().to_string(), label: value });
        }
        return Ok(out);
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| anyhow!("`{}` is not JSON: {e}", file.display()))?;
    let list = value.get("labels").cloned().unwrap_or(value);
    serde_json::from_value(list).map_err(|e| anyhow!("`{}`: expected a list of {{\"request_id\", \"label\"}}: {e}", file.display()))
}

pub async fn run_labels(args: LabelsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let labels = read_labels(&args.file)?;
    let mut total = LabelsResponse { joined: 0, unknown: 0, unknown_request_ids: Vec::new() };
    for chunk in labels.chunks(50_000) {
        let answer: LabelsResponse = client
            .send_json(Method::POST, &format!("/api/v1/deployments/{}/labels", path_segment(&args.deployment)), &LabelsRequest { labels: chunk.to_vec() })
            .await?;
        total.joined += answer.joined;
        total.unknown += answer.unknown;
        total.unknown_request_ids.extend(answer.unknown_request_ids.into_iter().take(100 - total.unknown_request_ids.len().min(100)));
    }
    if args.client.json {
        return print_json(&total);
    }
    println!("{} labels joined to recorded calls, {} for unknown request ids", total.joined, total.unknown);
    if !total.unknown_request_ids.is_empty() {
        println!("unknown: {}", total.unknown_request_ids.join(", "));
    }
    Ok(())
}

pub async fn run_alerts(args: AlertsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    match args.command {
        AlertsCommand::List { deployment, firing, max_results } => {
            let mut query: Vec<(&str, String)> = vec![("max_results", max_results.to_string())];
            if let Some(d) = deployment {
                query.push(("deployment", d));
            }
            if firing {
                query.push(("firing", "true".into()));
            }
            let list: AlertList = client.get_query("/api/v1/alerts", &query).await?;
            if args.client.json {
                return print_json(&list);
            }
            let rows: Vec<Value> = list
                .alerts
                .iter()
                .map(|a| {
                    let deliveries = a.detail.get("deliveries").and_then(Value::as_array);
                    let delivered = deliveries.map(|d| {
                        let ok = d.iter().filter(|x| x.get("status").and_then(Value::as_u64).is_some_and(|s| (200..300).contains(&s))).count();
                        format!("{ok} ok / {} attempts", d.len())
                    });
                    json!({
                        "id": a.id, "deployment": a.deployment, "monitor": a.monitor, "rule": a.rule, "state": a.state,
                        "version": a.version, "fired": a.fired_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "resolved": a.resolved_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                        "actions": a.detail.get("actions").and_then(Value::as_array).map(|x| x.iter().filter_map(|a| a.get("kind").and_then(Value::as_str)).collect::<Vec<_>>().join(", ")),
                        "webhooks": delivered,
                    })
                })
                .collect();
            print_table(
                &rows,
                &[("id", "/id"), ("deployment", "/deployment"), ("monitor", "/monitor"), ("rule", "/rule"), ("state", "/state"), ("version", "/version"), ("fired", "/fired"), ("resolved", "/resolved"), ("actions", "/actions"), ("webhooks", "/webhooks")],
            )
        }
        AlertsCommand::Retrain { model } => {
            let query: Vec<(&str, String)> = model.map(|m| vec![("model", m)]).unwrap_or_default();
            let list: RetrainRequestList = client.get_query("/api/v1/retrain-requests", &query).await?;
            if args.client.json {
                return print_json(&list);
            }
            print_table(&list.requests, &[("id", "/id"), ("model", "/model"), ("deployment", "/deployment"), ("alert", "/alert"), ("state", "/state"), ("reason", "/reason"), ("created", "/created_at")])
        }
    }
}
