//! The engine: one task that follows every monitored deployment's
//! prediction log, summarises its rows into windows, writes each window's
//! result, evaluates the alert rules and acts; and the use cases every
//! surface (REST, CLI) calls.
//!
//! Following the log rather than the request path keeps inference free of
//! monitoring (the recorder's one enqueue is all a call pays), makes a
//! window's numbers those of the recorded rows — the same rows `modelops
//! predictions export` writes — and makes restarts lossless: what is not
//! in a closed window is read again from the log. The engine keeps per
//! monitor a cursor (the last record id read) and the open windows'
//! aggregates; it persists only the end of the last closed window (time
//! windows) or the last record of each version's closed windows (count
//! windows) and the alert rules' states.
//!
//! Time windows are tumbling and aligned to the Unix epoch; a window closes
//! `grace` after its end (the recorder writes within its flush interval),
//! and a record arriving later for a closed window is counted as late, not
//! merged. Count windows hold exactly `rows` rows of one version (a call
//! may be split between two windows).

use crate::alert::{self, Delivery};
use crate::spec::{self, Columns};
use crate::window::{self, Part, WindowAgg};
use chrono::{DateTime, TimeZone, Utc};
use modelops_core::auth::{Action, Principal};
use modelops_core::deployment::{PredictionQuery, PredictionRecord};
use modelops_core::monitoring::{ActionKind, Alert, AlertState, DriftMode, LabelOutcome, Monitor, MonitorSpec, ReferenceData, ReferenceProfile, RetrainRequest, WindowResult};
use modelops_core::version::Sha256Hex;
use modelops_core::name::{quote, ModelName};
use modelops_core::{Error, Result};
use modelops_deploy::service::Deployments;
use modelops_expr::Expression;
use modelops_monitor::cbpe::Cbpe;
use modelops_monitor::data::Table;
use modelops_monitor::drift::{compare_aggregates, DriftOptions, Method, Mode, Profile, Source};
use modelops_monitor::evaluation::{evaluate, Spec as EvalSpec};
use modelops_registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A reference to set on a version (`Watch::set_reference`).
#[derive(Debug, Clone, Default)]
pub struct ReferenceInput<'a> {
    /// `modelops profile fit`'s JSON.
    pub profile: &'a str,
    /// Where it came from; the profile's own `source` when empty.
    pub source: &'a str,
    /// The label-free estimator (CBPE) fitted beside it, as JSON.
    pub estimator: Option<&'a str>,
    /// The data file to keep with it (an uploaded artifact).
    pub data: Option<ReferenceData>,
}

/// The engine's settings.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// How often the logs are read and windows closed.
    pub tick: Duration,
    /// How long after its end a time window closes.
    pub grace: Duration,
    /// The most raw values a window keeps per column (K-S, Wasserstein).
    pub reservoir: usize,
    /// Records read from the log per query.
    pub read_batch: u32,
    /// How often an open window's provisional result is rewritten.
    pub provisional_every: Duration,
    pub webhook: alert::WebhookConfig,
    /// Monitors are followed only while this replica holds the background
    /// lease: windows written and alerts raised once, not once per replica.
    pub leadership: modelops_core::replica::Leadership,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            tick: Duration::from_secs(1),
            grace: Duration::from_secs(3),
            reservoir: 100_000,
            // Measured (bench/monitoring.sh, 1M one-row calls): 5,000 →
            // ~165k rows/s, 10,000 → ~215k, 20,000 → ~203k with more memory.
            read_batch: 10_000,
            provisional_every: Duration::from_secs(5),
            webhook: alert::WebhookConfig::default(),
            leadership: modelops_core::replica::Leadership::always(),
        }
    }
}

/// The most labelled rows a window's performance is computed over.
const MAX_LABELLED_RECORDS: usize = 1_000_000;
/// The most calls a window's label-free estimate or evidently-mode drift
/// reads again from the log.
const MAX_WINDOW_RECORDS: usize = 1_000_000;
/// Records read per query when reading a window's labelled calls.
const LABELLED_PAGE: u32 = 10_000;
/// Batches read per monitor per tick, so one busy deployment does not
/// starve the others.
const BATCHES_PER_TICK: usize = 50;

/// A rule's state for one version, persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct RuleState {
    /// Since when the condition has held (for `for_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_since: Option<DateTime<Utc>>,
    /// The firing alert's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    firing: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_fired: Option<DateTime<Utc>>,
    /// The start of the newest window judged: an older window whose
    /// result changes (late labels) never overrides a newer verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_window: Option<DateTime<Utc>>,
}

/// What survives a restart.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct PersistedState {
    /// Time windows: every window ending at or before this is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    closed_until: Option<DateTime<Utc>>,
    /// Count windows, per version: the number of its open window and the
    /// last record id in its closed windows.
    #[serde(default)]
    count_windows: BTreeMap<u32, (i64, i64)>,
    /// `rule@version` → state.
    #[serde(default)]
    rules: BTreeMap<String, RuleState>,
}

/// Key of an open window: its start (ms since the epoch; the window number
/// for count windows) and the version.
type Key = (i64, u32);

struct Run {
    monitor: Monitor,
    model: ModelName,
    rules: Vec<(modelops_core::monitoring::AlertRule, Option<Expression>)>,
    /// Read records with `at >=` this (time windows).
    since: DateTime<Utc>,
    cursor: Option<i64>,
    /// The time of the last record read, and whether the last read reached
    /// the head of the log: a time window closes only once the reader is
    /// past its end (catching up on a backlog, later batches may still
    /// hold its records).
    read_at: Option<DateTime<Utc>>,
    caught_up: bool,
    /// Whether a reference profile watches a column of the call itself
    /// (`latency_us`, say, when it was fitted on an export): then the log
    /// is read whole, not only the tensors (`PredictionQuery::payload_only`).
    call_columns: bool,
    windows: BTreeMap<Key, WindowAgg>,
    last_provisional: Option<std::time::Instant>,
    state: PersistedState,
    stats: RunStats,
}

/// Counters of one monitor since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunStats {
    pub records_read: u64,
    pub rows_read: u64,
    pub late_records: u64,
    pub unreadable_records: u64,
    pub windows_closed: u64,
    pub open_windows: u64,
    pub last_error: Option<String>,
}

/// A monitor with what the engine knows of it now.
#[derive(Debug, Clone, Serialize)]
pub struct MonitorStatus {
    #[serde(flatten)]
    pub monitor: Monitor,
    pub live: Option<RunStats>,
    /// Alert rules firing now, as `rule@version`.
    pub firing: Vec<String>,
}

/// The latest closed window of a monitor and version, for `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct WindowGauges {
    pub deployment: String,
    pub monitor: String,
    pub version: u32,
    pub rows: u64,
    /// `(column, score, detected, method)`.
    pub drift: Vec<(String, f64, bool, String)>,
    pub drift_share: Option<f64>,
    pub dataset_drift: Option<bool>,
    pub performance: BTreeMap<String, f64>,
    pub estimated: BTreeMap<String, f64>,
    pub fairness: BTreeMap<String, f64>,
}

/// What `/metrics` reads from monitoring.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WatchMetrics {
    pub windows: Vec<WindowGauges>,
    /// `(deployment, monitor, rule)` of every firing alert.
    pub firing: Vec<(String, String, String)>,
    pub degraded: Vec<String>,
    /// `(deployment, monitor, stats)`.
    pub monitors: Vec<(String, String, RunStats)>,
    pub webhook_attempts: u64,
    pub webhook_failures: u64,
}

/// A model's version: `(model, version)`.
type VersionKey = (String, u32);
/// A monitor: `(deployment, monitor)`.
type MonitorKey = (String, String);

struct Inner {
    registry: Registry,
    deployments: Deployments,
    config: WatchConfig,
    runs: tokio::sync::Mutex<HashMap<MonitorKey, Run>>,
    /// Reference profiles by version; `None`: the version has none (yet).
    profiles: Mutex<HashMap<VersionKey, Option<Arc<Profile>>>>,
    estimators: Mutex<HashMap<VersionKey, Arc<Cbpe>>>,
    /// Reference data read for evidently-mode monitors, by version.
    reference_data: Mutex<HashMap<VersionKey, Arc<Table>>>,
    gauges: RwLock<BTreeMap<(String, String, u32), WindowGauges>>,
    /// Each monitor's counters and firing rules, as of the last pass.
    status: RwLock<HashMap<MonitorKey, (RunStats, Vec<String>)>>,
    degraded: RwLock<BTreeMap<String, BTreeSet<String>>>,
    delivery: Delivery,
    wake: tokio::sync::Notify,
}

/// Live monitoring. Cheap to clone.
#[derive(Clone)]
pub struct Watch {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn at_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Watch {
    pub fn new(registry: Registry, deployments: Deployments, config: WatchConfig) -> Self {
        let delivery = Delivery::new(registry.clone(), config.webhook.clone());
        Watch {
            inner: Arc::new(Inner {
                registry,
                deployments,
                config,
                runs: tokio::sync::Mutex::new(HashMap::new()),
                profiles: Mutex::new(HashMap::new()),
                reference_data: Mutex::new(HashMap::new()),
                estimators: Mutex::new(HashMap::new()),
                gauges: RwLock::new(BTreeMap::new()),
                status: RwLock::new(HashMap::new()),
                degraded: RwLock::new(BTreeMap::new()),
                delivery,
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Spawns the engine's loop on the current runtime.
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if this.inner.config.leadership.is_leader() {
                    this.run_once().await;
                } else {
                    // What this replica followed while it led is another's
                    // now; it starts again from the stored state if it leads
                    // again, and its gauges stop speaking for the monitors.
                    this.inner.runs.lock().await.clear();
                    this.inner.status.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                    this.inner.gauges.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                    this.inner.degraded.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                }
                tokio::select! {
                    () = this.inner.wake.notified() => {}
                    () = tokio::time::sleep(this.inner.config.tick) => {}
                }
            }
        })
    }

    /// Waits for the webhook deliveries in flight (tests, shutdown).
    pub async fn settle(&self) {
        self.inner.delivery.settle().await;
    }

    // ------------------------------------------------------------ use cases

    /// Sets a version's reference profile from the profile's JSON (as
    /// `modelops profile fit` writes it), validated first; with `data`, the
    /// file it was fitted from (an uploaded artifact, which must read and
    /// hold the profile's columns) is kept for evidently-mode monitors.
    pub async fn set_reference(&self, principal: &Principal, model: &ModelName, version: u32, input: ReferenceInput<'_>) -> Result<ReferenceProfile> {
        let ReferenceInput { profile: profile_json, source, estimator, data } = input;
        // Who may comes before what is wrong with the input.
        self.inner.registry.check_access(principal, Action::ReferenceSet, &format!("model/{model}/version/{version}")).await?;
        let profile = Profile::from_json(profile_json, "profile").map_err(|e| Error::invalid("profile", e.to_string()))?;
        let source = if source.is_empty() { profile.source.clone() } else { source.to_string() };
        modelops_core::model::check_text("source", &source, 1024)?;
        if let Some(text) = estimator {
            Cbpe::from_json(text).map_err(|e| Error::invalid("estimator", e.to_string()))?;
        }
        if let Some(data) = &data {
            let table = self.read_reference_data(data).await?;
            if let Some(missing) = profile.columns.iter().find(|c| table.column(&c.name).is_none()) {
                return Err(Error::invalid("data", format!("`{}` has no column `{}`, which the profile has", data.filename, missing.name)));
            }
        }
        let reference = ReferenceProfile {
            model: model.clone(),
            version,
            sha256: hex::encode(Sha256::digest(profile_json.as_bytes())),
            profile: profile_json.to_string(),
            source,
            rows: profile.rows as u64,
            estimator: estimator.map(str::to_string),
            data,
            created_at: Utc::now(),
            created_by: String::new(),
        };
        self.inner.registry.set_reference(principal, reference).await
    }

    pub async fn reference(&self, principal: &Principal, model: &ModelName, version: u32) -> Result<ReferenceProfile> {
        self.inner.registry.reference(principal, model, version).await
    }

    /// Reads kept reference data (Parquet or CSV, by its file name) into a
    /// table, as `modelops drift --reference` reads the same file.
    async fn read_reference_data(&self, data: &ReferenceData) -> Result<Table> {
        data.validate()?;
        let sha = Sha256Hex::parse_field("data.sha256", data.sha256.clone())?;
        let extension = std::path::Path::new(&data.filename).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !self.inner.registry.artifacts().exists(&sha).await.map_err(Error::from)? {
            return Err(Error::invalid("data.sha256", format!("no artifact `{sha}` has been uploaded; upload the file first (`POST /api/v1/artifacts`)")));
        }
        let bytes = self.inner.registry.read_artifact(&sha).await?;
        let filename = data.filename.clone();
        tokio::task::spawn_blocking(move || -> Result<Table> {
            let dir = tempfile::tempdir().map_err(|e| Error::Internal(format!("a temporary directory for the reference data: {e}")))?;
            let path = dir.path().join(format!("reference.{}", extension.unwrap_or_default()));
            std::fs::write(&path, &bytes).map_err(|e| Error::Internal(format!("writing the reference data: {e}")))?;
            let mut table = modelops_monitor::data::read_table(&path, None).map_err(|e| Error::invalid("data", format!("`{filename}` does not read: {e}")))?;
            table.path = std::path::PathBuf::from(filename);
            Ok(table)
        })
        .await
        .map_err(|e| Error::Internal(format!("reading the reference data: {e}")))?
    }

    /// A version's kept reference data, read once.
    async fn reference_data(&self, model: &ModelName, version: u32) -> Result<Option<Arc<Table>>> {
        let key = (model.as_str().to_string(), version);
        if let Some(t) = self.inner.reference_data.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            return Ok(Some(t.clone()));
        }
        let Some(data) = self.inner.registry.monitor_store().reference(model, version).await?.and_then(|r| r.data) else { return Ok(None) };
        let table = Arc::new(self.read_reference_data(&data).await.map_err(|e| Error::Internal(format!("the reference data of {model}/{version}: {e}")))?);
        self.inner.reference_data.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, table.clone());
        Ok(Some(table))
    }

    /// Creates a monitor, its features and conditions checked against the
    /// deployment's versions' signatures.
    pub async fn create_monitor(&self, principal: &Principal, deployment: &ModelName, spec: MonitorSpec) -> Result<Monitor> {
        self.inner.registry.check_access(principal, Action::MonitorCreate, &format!("deployment/{deployment}/monitor/{}", spec.name)).await?;
        spec.check()?;
        let d = self.inner.registry.get_deployment(principal, deployment).await?;
        let mut columns = Columns::default();
        let mut versions: BTreeSet<u32> = d.routes.iter().map(|r| r.version).collect();
        versions.extend(d.shadows.iter().map(|s| s.version));
        if let Some(c) = &d.canary {
            versions.insert(c.plan.version);
            versions.insert(c.stable);
        }
        for v in &versions {
            columns.merge(Columns::of(&self.inner.deployments.served_signature(&d.model, *v).await?));
        }
        spec::check(&spec, deployment.as_str(), &columns)?;
        if spec.drift.mode == DriftMode::Evidently {
            // A version set up for the default mode only would never get a
            // verdict: say so now rather than in every window.
            for v in &versions {
                if let Some(r) = self.inner.registry.monitor_store().reference(&d.model, *v).await? {
                    if r.data.is_none() {
                        return Err(Error::invalid(
                            "drift.mode",
                            format!("evidently mode compares windows with the reference data, and version {v} of `{}` kept only its profile (set the reference of a new version with `modelops reference set … --store-data`)", d.model),
                        ));
                    }
                }
            }
        }
        let monitor = Monitor { deployment: deployment.clone(), spec, created_at: Utc::now(), created_by: String::new() };
        let created = self.inner.registry.create_monitor(principal, monitor).await?;
        self.inner.wake.notify_one();
        Ok(created)
    }

    pub async fn delete_monitor(&self, principal: &Principal, deployment: &ModelName, name: &str) -> Result<Monitor> {
        let gone = self.inner.registry.delete_monitor(principal, deployment, name).await?;
        self.inner.wake.notify_one();
        Ok(gone)
    }

    pub async fn monitors(&self, principal: &Principal, deployment: Option<&ModelName>) -> Result<Vec<MonitorStatus>> {
        let monitors = self.inner.registry.monitors(principal, deployment).await?;
        Ok(monitors.into_iter().map(|m| self.with_status(m)).collect())
    }

    pub async fn monitor(&self, principal: &Principal, deployment: &ModelName, name: &str) -> Result<MonitorStatus> {
        let m = self.inner.registry.monitor(principal, deployment, name).await?;
        Ok(self.with_status(m))
    }

    fn with_status(&self, monitor: Monitor) -> MonitorStatus {
        let key = (monitor.deployment.as_str().to_string(), monitor.spec.name.clone());
        let status = self.inner.status.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
        let (live, firing) = match status {
            Some((stats, firing)) => (Some(stats), firing),
            None => (None, Vec::new()),
        };
        MonitorStatus { monitor, live, firing }
    }

    pub async fn results(&self, principal: &Principal, deployment: &ModelName, name: &str, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<WindowResult>> {
        self.inner.registry.monitor_results(principal, deployment, name, since, limit).await
    }

    /// Records labels: each a scalar (or one per row of its call, as an
    /// array) of one JSON type across the batch. Unknown request ids are
    /// counted and named; the windows of the joined calls get their
    /// performance recomputed on the next tick.
    pub async fn record_labels(&self, principal: &Principal, deployment: &ModelName, labels: &[(String, Value)]) -> Result<LabelOutcome> {
        self.inner.registry.check_access(principal, Action::LabelsRecord, &format!("deployment/{deployment}")).await?;
        let mut kind: Option<&'static str> = None;
        let mut stored = Vec::with_capacity(labels.len());
        for (i, (id, label)) in labels.iter().enumerate() {
            if id.is_empty() || id.len() > 256 {
                return Err(Error::invalid(format!("labels[{i}].request_id"), format!("{} is not a request id (1 to 256 characters)", quote(id))));
            }
            let this = label_kind(label).ok_or_else(|| {
                Error::invalid(format!("labels[{i}].label"), format!("`{label}` is not a label: a number, a string, a boolean, or an array of one of them per row"))
            })?;
            match kind {
                Some(k) if k != this => {
                    return Err(Error::invalid(format!("labels[{i}].label"), format!("`{label}` is a {this} where the batch's labels are {k}s")));
                }
                _ => kind = Some(this),
            }
            stored.push((id.clone(), label.to_string()));
        }
        // The registry notes the labelled calls in the store for the engine,
        // which may run on another replica; here it is woken in case it runs here.
        let (outcome, times) = self.inner.registry.record_labels(principal, deployment, &stored).await?;
        if !times.is_empty() {
            self.inner.wake.notify_one();
        }
        Ok(outcome)
    }

    pub async fn alerts(&self, principal: &Principal, deployment: Option<&ModelName>, firing_only: bool, limit: u32) -> Result<Vec<Alert>> {
        self.inner.registry.alerts(principal, deployment, firing_only, limit).await
    }

    pub async fn retrain_requests(&self, principal: &Principal, model: Option<&ModelName>) -> Result<Vec<RetrainRequest>> {
        self.inner.registry.retrain_requests(principal, model).await
    }

    /// Whether alerts marked `deployment` degraded, and by which rules.
    pub fn degraded(&self, deployment: &str) -> Vec<String> {
        let d = self.inner.degraded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        d.get(deployment).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    /// The numbers `/metrics` exposes.
    pub fn metrics(&self) -> WatchMetrics {
        let windows = self.inner.gauges.read().unwrap_or_else(std::sync::PoisonError::into_inner).values().cloned().collect();
        let status = self.inner.status.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut firing = Vec::new();
        let mut monitors = Vec::new();
        for ((d, m), (stats, rules)) in status.iter() {
            monitors.push((d.clone(), m.clone(), stats.clone()));
            for r in rules {
                firing.push((d.clone(), m.clone(), r.split('@').next().unwrap_or(r).to_string()));
            }
        }
        monitors.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        firing.sort();
        let degraded = self.inner.degraded.read().unwrap_or_else(std::sync::PoisonError::into_inner).iter().filter(|(_, r)| !r.is_empty()).map(|(d, _)| d.clone()).collect();
        let (attempts, failures) = self.inner.delivery.counts();
        WatchMetrics { windows, firing, degraded, monitors, webhook_attempts: attempts, webhook_failures: failures }
    }

    // ------------------------------------------------------------ engine

    /// One pass: follow every monitor's log, close due windows, act on
    /// their alerts, recompute relabelled windows.
    pub async fn run_once(&self) {
        let monitors = match self.inner.registry.monitor_store().monitors(None).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "live monitoring cannot read its monitors");
                return;
            }
        };
        let mut runs = self.inner.runs.lock().await;
        let wanted: BTreeSet<(String, String)> = monitors.iter().map(|m| (m.deployment.as_str().to_string(), m.spec.name.clone())).collect();
        runs.retain(|k, _| wanted.contains(k));
        for monitor in monitors {
            let key = (monitor.deployment.as_str().to_string(), monitor.spec.name.clone());
            if runs.get(&key).is_some_and(|r| r.monitor.created_at != monitor.created_at) {
                runs.remove(&key);
            }
            if !runs.contains_key(&key) {
                match self.open_run(monitor).await {
                    Ok(run) => {
                        runs.insert(key.clone(), run);
                    }
                    Err(e) => {
                        tracing::warn!(deployment = %key.0, monitor = %key.1, error = %e, "cannot start a monitor");
                        continue;
                    }
                }
            }
            let Some(run) = runs.get_mut(&key) else { continue };
            if let Err(e) = self.advance(run).await {
                tracing::warn!(deployment = %key.0, monitor = %key.1, error = %e, "monitor pass failed; retried next tick");
                run.stats.last_error = Some(e.to_string());
            }
        }
        self.recompute_relabelled(&mut runs).await;
        let mut status = HashMap::new();
        let mut degraded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (key, run) in runs.iter() {
            let mut stats = run.stats.clone();
            stats.open_windows = run.windows.len() as u64;
            let firing: Vec<String> = run.state.rules.iter().filter(|(_, s)| s.firing.is_some()).map(|(k, _)| k.clone()).collect();
            for f in &firing {
                let rule = f.split('@').next().unwrap_or(f);
                if run.rules.iter().any(|(r, _)| r.name == rule && r.actions.iter().any(|a| a.kind == ActionKind::Degrade)) {
                    degraded.entry(key.0.clone()).or_default().insert(format!("{}/{}", key.1, f));
                }
            }
            status.insert(key.clone(), (stats, firing));
        }
        *self.inner.status.write().unwrap_or_else(std::sync::PoisonError::into_inner) = status;
        *self.inner.degraded.write().unwrap_or_else(std::sync::PoisonError::into_inner) = degraded;
        let live: BTreeSet<(String, String)> = runs.keys().cloned().collect();
        self.inner.gauges.write().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|(d, m, _), _| live.contains(&(d.clone(), m.clone())));
    }

    async fn open_run(&self, monitor: Monitor) -> Result<Run> {
        let store = self.inner.registry.monitor_store();
        let deployment = store.get_deployment(&monitor.deployment).await?.ok_or_else(|| Error::not_found("deployment", &monitor.deployment))?;
        let state: PersistedState = match store.monitor_state(&monitor.deployment, &monitor.spec.name).await? {
            Some(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(deployment = %monitor.deployment, monitor = %monitor.spec.name, error = %e, "unreadable monitor state; starting afresh");
                PersistedState::default()
            }),
            None => PersistedState::default(),
        };
        let rules = monitor
            .spec
            .alerts
            .iter()
            .map(|r| {
                let compiled = spec::compile_stored(r).map_err(|e| tracing::warn!(rule = %r.name, error = %e, "an alert rule no longer compiles; it never fires")).ok();
                (r.clone(), compiled)
            })
            .collect();
        let (since, cursor) = match (monitor.spec.window.every_ms, state.closed_until) {
            (Some(_), Some(closed)) => (closed, None),
            (Some(every), None) => {
                let every = i64::try_from(every).unwrap_or(i64::MAX);
                (at_millis(monitor.created_at.timestamp_millis().div_euclid(every) * every), None)
            }
            (None, _) => {
                let after = state.count_windows.values().map(|(_, last)| *last).min();
                (monitor.created_at, after)
            }
        };
        Ok(Run {
            model: deployment.model.clone(),
            monitor,
            rules,
            since,
            cursor,
            read_at: None,
            caught_up: false,
            call_columns: false,
            windows: BTreeMap::new(),
            last_provisional: None,
            state,
            stats: RunStats::default(),
        })
    }

    async fn profile(&self, model: &ModelName, version: u32) -> Result<Option<Arc<Profile>>> {
        let key = (model.as_str().to_string(), version);
        if let Some(p) = self.inner.profiles.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key) {
            if p.is_some() {
                return Ok(p.clone());
            }
        }
        let stored = self.inner.registry.monitor_store().reference(model, version).await?;
        let profile = match stored {
            Some(r) => {
                if let Some(text) = &r.estimator {
                    let estimator = Cbpe::from_json(text).map_err(|e| Error::Internal(format!("the estimator of {model}/{version}: {e}")))?;
                    self.inner.estimators.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.clone(), Arc::new(estimator));
                }
                Some(Arc::new(Profile::from_json(&r.profile, "stored profile").map_err(|e| Error::Internal(format!("the reference profile of {model}/{version}: {e}")))?))
            }
            None => None,
        };
        self.inner.profiles.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, profile.clone());
        Ok(profile)
    }

    async fn advance(&self, run: &mut Run) -> Result<()> {
        if !self.follow(run).await? {
            // A profile watches the calls' own columns: read again, whole.
            self.follow(run).await?;
        }
        if let Some(every) = run.monitor.spec.window.every_ms {
            self.close_due(run, i64::try_from(every).unwrap_or(i64::MAX)).await?;
        }
        self.provisional(run).await;
        Ok(())
    }

    /// Reads the log from the run's cursor into its windows, up to
    /// `BATCHES_PER_TICK` batches. `false` when it stopped at a batch that
    /// must be read whole (`Run::call_columns`, now set), before merging it.
    async fn follow(&self, run: &mut Run) -> Result<bool> {
        // Reading the log and summarising what was read take turns on two
        // threads: the next batch is read (by the store's connection) while
        // the last is summarised (on the blocking pool), which nearly halves
        // a backlog's catch-up time on two cores.
        let (deployment, since, limit, payload_only) = (run.monitor.deployment.clone(), run.since, self.inner.config.read_batch, !run.call_columns);
        let read = |after_id: Option<i64>| {
            let store = self.inner.registry.monitor_store();
            let query = PredictionQuery {
                deployment: deployment.clone(),
                since: Some(since),
                until: None,
                after_id,
                limit,
                payload_only,
            };
            tokio::spawn(async move { store.list_predictions(&query).await })
        };
        let mut next = Some(read(run.cursor));
        for batch in 0..BATCHES_PER_TICK {
            let Some(reading) = next.take() else { break };
            let records = reading.await.map_err(|e| Error::Internal(format!("reading the prediction log: {e}")))??;
            let full = records.len() as u32 >= self.inner.config.read_batch;
            run.caught_up = !full;
            let Some(last) = records.last() else { break };
            let (cursor, read_at) = (run.cursor, run.read_at);
            run.cursor = Some(last.id);
            run.read_at = run.read_at.max(Some(last.at));
            if full && batch + 1 < BATCHES_PER_TICK {
                next = Some(read(run.cursor));
            }
            if payload_only && self.watches_call_columns(run, &records).await? {
                (run.cursor, run.read_at, run.call_columns) = (cursor, read_at, true);
                return Ok(false);
            }
            self.ingest(run, records).await?;
            if run.monitor.spec.window.rows.is_some() {
                self.close_full(run).await?;
            }
        }
        Ok(true)
    }

    /// Whether the profile of a version among `records` watches a column
    /// the payload-only read leaves empty.
    async fn watches_call_columns(&self, run: &Run, records: &[PredictionRecord]) -> Result<bool> {
        let versions: BTreeSet<u32> = records.iter().map(|r| r.version).collect();
        for version in versions {
            if let Some(profile) = self.profile(&run.model, version).await? {
                if window::watches_call_columns(&profile, run.monitor.spec.features.as_deref()) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Merges records into their windows.
    async fn ingest(&self, run: &mut Run, records: Vec<PredictionRecord>) -> Result<()> {
        run.stats.records_read += records.len() as u64;
        let mut by_version: BTreeMap<u32, Vec<PredictionRecord>> = BTreeMap::new();
        for r in records {
            by_version.entry(r.version).or_default().push(r);
        }
        let spec = run.monitor.spec.clone();
        let options = drift_options(&spec);
        for (version, records) in by_version {
            let profile = self.profile(&run.model, version).await?;
            match spec.window.every_ms {
                Some(every) => {
                    let every = i64::try_from(every).unwrap_or(i64::MAX);
                    let closed_until = run.state.closed_until.map(|t| t.timestamp_millis());
                    let mut groups: BTreeMap<i64, Vec<PredictionRecord>> = BTreeMap::new();
                    for r in records {
                        let start = r.at.timestamp_millis().div_euclid(every) * every;
                        if closed_until.is_some_and(|c| start < c) {
                            run.stats.late_records += 1;
                            continue;
                        }
                        groups.entry(start).or_default().push(r);
                    }
                    for (start, records) in groups {
                        let (profile, spec, options) = (profile.clone(), spec.clone(), options.clone());
                        let part = tokio::task::spawn_blocking(move || summarise_all(&records, profile.as_deref(), &spec, &options))
                            .await
                            .map_err(|e| Error::Internal(format!("summarising a window: {e}")))?;
                        let part = match part {
                            Ok(p) => p,
                            Err(e) => {
                                run.stats.unreadable_records += 1;
                                tracing::warn!(error = %e, "recorded predictions that do not read are left out of monitoring");
                                continue;
                            }
                        };
                        run.stats.rows_read += part.rows;
                        let window = run.windows.entry((start, version)).or_insert_with(|| WindowAgg::new(at_millis(start), at_millis(start.saturating_add(every))));
                        window.merge(&part, self.inner.config.reservoir);
                    }
                }
                None => {
                    let size = spec.window.rows.unwrap_or(1);
                    let (seq, last_closed) = run.state.count_windows.get(&version).copied().unwrap_or((0, 0));
                    let records: Vec<PredictionRecord> = records.into_iter().filter(|r| r.id > last_closed).collect();
                    if records.is_empty() {
                        continue;
                    }
                    let open_rows = run.windows.get(&(seq, version)).map_or(0, |w| w.rows);
                    let (profile, spec, options) = (profile.clone(), spec.clone(), options.clone());
                    let parts = tokio::task::spawn_blocking(move || split_counted(&records, profile.as_deref(), &spec, &options, open_rows, size))
                        .await
                        .map_err(|e| Error::Internal(format!("summarising a window: {e}")))?;
                    let parts = match parts {
                        Ok(p) => p,
                        Err(e) => {
                            run.stats.unreadable_records += 1;
                            tracing::warn!(error = %e, "recorded predictions that do not read are left out of monitoring");
                            continue;
                        }
                    };
                    for (i, part) in parts.into_iter().enumerate() {
                        run.stats.rows_read += part.rows;
                        let key = (seq + i as i64, version);
                        let start = part.first_at.unwrap_or_default();
                        let window = run.windows.entry(key).or_insert_with(|| WindowAgg::new(start, start));
                        if let Some(last) = part.last_at {
                            window.end = window.end.max(last + chrono::Duration::microseconds(1));
                        }
                        window.merge(&part, self.inner.config.reservoir);
                    }
                }
            }
        }
        Ok(())
    }

    /// Count windows: closes those that are full.
    async fn close_full(&self, run: &mut Run) -> Result<()> {
        let size = run.monitor.spec.window.rows.unwrap_or(u64::MAX);
        let full: Vec<Key> = run.windows.iter().filter(|(_, w)| w.rows >= size).map(|(k, _)| *k).collect();
        for key in full {
            let Some(window) = run.windows.remove(&key) else { continue };
            self.close(run, key.1, &window).await?;
            run.state.count_windows.insert(key.1, (key.0 + 1, window.last_id));
            self.save_state(run).await?;
        }
        Ok(())
    }

    /// Time windows: closes those whose end is `grace` past.
    async fn close_due(&self, run: &mut Run, every: i64) -> Result<()> {
        let now = Utc::now().timestamp_millis();
        let grace = millis(self.inner.config.grace);
        // Past its end by the grace period, and the log read past it too.
        let read = if run.caught_up { i64::MAX } else { run.read_at.map_or(i64::MIN, |t| t.timestamp_millis()) };
        let due: Vec<Key> = run
            .windows
            .keys()
            .filter(|(start, _)| {
                let closes = start.saturating_add(every).saturating_add(grace);
                closes <= now && closes <= read
            })
            .copied()
            .collect();
        if due.is_empty() {
            // Nothing recorded for a while: the closed frontier still moves,
            // so a restart does not read an idle log from far back.
            let frontier = now.saturating_sub(grace).div_euclid(every) * every;
            if run.windows.is_empty() && run.state.closed_until.is_none_or(|c| c.timestamp_millis() < frontier) && run.cursor.is_some() {
                run.state.closed_until = Some(at_millis(frontier));
                self.save_state(run).await?;
            }
            return Ok(());
        }
        for key in due {
            let Some(window) = run.windows.remove(&key) else { continue };
            self.close(run, key.1, &window).await?;
            let end = window.end;
            if run.state.closed_until.is_none_or(|c| c < end) && run.windows.keys().all(|(s, _)| *s >= end.timestamp_millis()) {
                run.state.closed_until = Some(end);
            }
        }
        self.save_state(run).await
    }

    async fn save_state(&self, run: &Run) -> Result<()> {
        let text = serde_json::to_string(&run.state).map_err(|e| Error::Internal(e.to_string()))?;
        self.inner.registry.monitor_store().put_monitor_state(&run.monitor.deployment, &run.monitor.spec.name, &text).await
    }

    /// Rewrites the open windows' provisional results now and then.
    async fn provisional(&self, run: &mut Run) {
        if run.last_provisional.is_some_and(|t| t.elapsed() < self.inner.config.provisional_every) {
            return;
        }
        run.last_provisional = Some(std::time::Instant::now());
        let dirty: Vec<Key> = run.windows.iter().filter(|(_, w)| w.dirty).map(|(k, _)| *k).collect();
        for key in dirty {
            let Some(window) = run.windows.get(&key).cloned() else { continue };
            match self.compute(run, key.1, &window, false).await {
                Ok(result) => {
                    if let Err(e) = self.inner.registry.monitor_store().put_result(&result).await {
                        tracing::warn!(error = %e, "cannot store a provisional window result");
                        continue;
                    }
                    if let Some(w) = run.windows.get_mut(&key) {
                        w.dirty = false;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot compute a provisional window result"),
            }
        }
    }

    /// Computes, stores and acts on a closed window.
    async fn close(&self, run: &mut Run, version: u32, window: &WindowAgg) -> Result<()> {
        let result = self.compute(run, version, window, true).await?;
        self.inner.registry.monitor_store().put_result(&result).await?;
        run.stats.windows_closed += 1;
        self.publish(run, &result);
        self.judge(run, &result).await;
        Ok(())
    }

    /// The result of a window: drift from its aggregates, performance from
    /// its labelled calls.
    async fn compute(&self, run: &Run, version: u32, window: &WindowAgg, closed: bool) -> Result<WindowResult> {
        let spec = &run.monitor.spec;
        let deployment = &run.monitor.deployment;
        let mut body = serde_json::Map::new();
        if window.rows < spec.min_rows {
            body.insert("not_computed".into(), json!(format!("{} rows in the window, fewer than the monitor's min_rows {}", window.rows, spec.min_rows)));
        } else {
            let drift = match self.profile(&run.model, version).await? {
                None => json!({"not_computed": format!("version {version} of `{}` has no reference profile (set one with `modelops reference set`)", run.model)}),
                Some(_) if spec.drift.mode == DriftMode::Evidently && !closed => json!({"not_computed": "evidently mode computes a window's drift when it closes"}),
                Some(profile) if spec.drift.mode == DriftMode::Evidently => self.evidently_drift(run, version, window, &profile).await?,
                Some(profile) => {
                    let columns: Vec<(String, modelops_monitor::drift::ColumnAggregate)> = window::watched(&profile, spec.features.as_deref())
                        .into_iter()
                        .map(|c| (c.name.clone(), window.columns.get(&c.name).cloned().unwrap_or_default()))
                        .collect();
                    let source = Source { path: format!("deployment `{deployment}` version {version}, {} to {}", window.start.to_rfc3339(), window.end.to_rfc3339()), rows: usize::try_from(window.rows).unwrap_or(usize::MAX) };
                    let options = drift_options(spec);
                    let reference = format!("reference profile of {}/{version}", run.model);
                    let report = tokio::task::spawn_blocking(move || compare_aggregates(&profile, &reference, &source, &columns, &options))
                        .await
                        .map_err(|e| Error::Internal(format!("computing drift: {e}")))?;
                    match report {
                        Ok(r) => serde_json::to_value(r).map_err(|e| Error::Internal(e.to_string()))?,
                        Err(e) => json!({"not_computed": e.to_string()}),
                    }
                }
            };
            body.insert("drift".into(), drift);
            if let Some(estimated) = self.estimated(run, version, window.start, window.end).await? {
                body.insert("estimated".into(), estimated);
            }
            if spec.performance.is_some() {
                let (performance, fairness, labelled) = self.performance(run, version, window.start, window.end).await?;
                body.insert("performance".into(), performance);
                body.insert("labeled_rows".into(), json!(labelled));
                if let Some(f) = fairness {
                    body.insert("fairness".into(), f);
                }
            }
        }
        Ok(WindowResult {
            deployment: deployment.clone(),
            monitor: spec.name.clone(),
            version,
            start: window.start,
            end: window.end,
            rows: window.rows,
            closed,
            body: Value::Object(body),
            computed_at: Utc::now(),
        })
    }

    /// Performance (and fairness) over the window's labelled calls of
    /// `version`: `(performance, fairness, labelled rows)`.
    async fn performance(&self, run: &Run, version: u32, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(Value, Option<Value>, u64)> {
        let Some(settings) = run.monitor.spec.performance.clone() else { return Ok((Value::Null, None, 0)) };
        let store = self.inner.registry.monitor_store();
        let mut records = Vec::new();
        let mut labels = Vec::new();
        let mut after = None;
        loop {
            let page = store.labeled_predictions(&run.monitor.deployment, start, end, after, LABELLED_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.0.id);
            let n = page.len();
            for (record, label) in page {
                if record.version == version && record.error.is_none() {
                    labels.push(serde_json::from_str::<Value>(&label).unwrap_or(Value::Null));
                    records.push(record);
                }
            }
            if n < LABELLED_PAGE as usize || records.len() >= MAX_LABELLED_RECORDS {
                break;
            }
        }
        if records.is_empty() {
            return Ok((json!({"not_computed": "no labels yet for this window's calls"}), None, 0));
        }
        let name = format!("labelled calls of deployment `{}` version {version}", run.monitor.deployment);
        let computed = tokio::task::spawn_blocking(move || -> std::result::Result<(Value, Option<Value>, u64), String> {
            let table = window::labelled_table(&records, &labels, &name).map_err(|e| e.to_string())?;
            let rows = table.rows as u64;
            let eval = evaluate(
                &table,
                &EvalSpec {
                    target: window::LABEL_COLUMN.to_string(),
                    prediction: settings.prediction.clone(),
                    score: settings.score.clone(),
                    protected: settings.fairness_attribute.clone(),
                    task: None,
                    pos_label: settings.pos_label.clone(),
                    four_fifths: 0.8,
                },
            )
            .map_err(|e| e.to_string())?;
            let value = serde_json::to_value(&eval).map_err(|e| e.to_string())?;
            Ok((value.get("performance").cloned().unwrap_or(Value::Null), value.get("fairness").cloned().filter(|f| !f.is_null()), rows))
        })
        .await
        .map_err(|e| Error::Internal(format!("computing performance: {e}")))?;
        Ok(match computed {
            Ok(x) => x,
            Err(reason) => (json!({ "not_computed": reason }), None, 0),
        })
    }

    /// The label-free performance estimate (CBPE) of the window's calls of
    /// `version`, when the monitor names a score column and the version's
    /// reference came with an estimator. Computed from the window's calls
    /// read again from the log (at most [`MAX_LABELLED_RECORDS`]).
    async fn estimated(&self, run: &Run, version: u32, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Option<Value>> {
        let Some(settings) = &run.monitor.spec.performance else { return Ok(None) };
        let Some(score) = settings.score.clone() else { return Ok(None) };
        let key = (run.model.as_str().to_string(), version);
        let Some(estimator) = self.inner.estimators.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned() else {
            return Ok(Some(json!({"not_computed": format!("the reference of version {version} has no label-free estimator (set it with `modelops reference set … --label COL --score COL --prediction COL`)")})));
        };
        let (records, _) = self.window_records(run, version, start, end, |r| r.error.is_none()).await?;
        let prediction = settings.prediction.clone();
        let computed = tokio::task::spawn_blocking(move || -> std::result::Result<Value, String> {
            let table = window::table_of(&records, "window").map_err(|e| e.to_string())?;
            let (estimate, missing) = estimator.estimate_table(&table, &score, &prediction).map_err(|e| e.to_string())?;
            let mut value = serde_json::to_value(&estimate).map_err(|e| e.to_string())?;
            if let Some(o) = value.as_object_mut() {
                o.insert("rows_left_out".into(), json!(missing));
                o.insert("method".into(), json!("cbpe"));
            }
            Ok(value)
        })
        .await
        .map_err(|e| Error::Internal(format!("estimating performance: {e}")))?;
        Ok(Some(computed.unwrap_or_else(|reason| json!({ "not_computed": reason }))))
    }

    /// The window's calls of `version` that `keep` keeps, read again from
    /// the log, at most `MAX_WINDOW_RECORDS`; and whether there were more.
    async fn window_records(&self, run: &Run, version: u32, start: DateTime<Utc>, end: DateTime<Utc>, keep: impl Fn(&PredictionRecord) -> bool) -> Result<(Vec<PredictionRecord>, bool)> {
        let store = self.inner.registry.monitor_store();
        let mut records = Vec::new();
        let mut after = None;
        loop {
            let query = PredictionQuery { deployment: run.monitor.deployment.clone(), since: Some(start), until: Some(end), after_id: after, limit: LABELLED_PAGE, payload_only: false };
            let page = store.list_predictions(&query).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            let n = page.len();
            records.extend(page.into_iter().filter(|r| r.version == version && keep(r)));
            if records.len() > MAX_WINDOW_RECORDS {
                records.truncate(MAX_WINDOW_RECORDS);
                return Ok((records, true));
            }
            if n < LABELLED_PAGE as usize {
                break;
            }
        }
        Ok((records, false))
    }

    /// The calls of `version` with ids `first..=last` (a count window),
    /// at most `MAX_WINDOW_RECORDS`; and whether there were more.
    async fn records_by_id(&self, run: &Run, version: u32, first: i64, last: i64) -> Result<(Vec<PredictionRecord>, bool)> {
        let store = self.inner.registry.monitor_store();
        let mut records = Vec::new();
        let mut after = Some(first.saturating_sub(1));
        loop {
            let query = PredictionQuery { deployment: run.monitor.deployment.clone(), since: None, until: None, after_id: after, limit: LABELLED_PAGE, payload_only: false };
            let page = store.list_predictions(&query).await?;
            let Some(tail) = page.last() else { break };
            after = Some(tail.id);
            let (n, past_end) = (page.len(), tail.id >= last);
            records.extend(page.into_iter().filter(|r| r.id <= last && r.version == version));
            if records.len() > MAX_WINDOW_RECORDS {
                records.truncate(MAX_WINDOW_RECORDS);
                return Ok((records, true));
            }
            if past_end || n < LABELLED_PAGE as usize {
                break;
            }
        }
        Ok((records, false))
    }

    /// A closed window's drift in evidently mode: every call of the window
    /// against the reference data, by `modelops-monitor`'s Evidently port
    /// (the numbers `modelops drift --mode evidently` gives for the
    /// exported window and the reference file).
    async fn evidently_drift(&self, run: &Run, version: u32, window: &WindowAgg, profile: &Profile) -> Result<Value> {
        // What fails here is reported on the window, never loses it.
        let reference = match self.reference_data(&run.model, version).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(json!({"not_computed": format!("evidently mode compares windows with the reference data, and version {version} of `{}` kept only its profile", run.model)})),
            Err(e) => return Ok(json!({ "not_computed": e.to_string() })),
        };
        // A time window is its calls' times; a count window its calls' ids
        // (ids follow the order calls were recorded, times when they began).
        let read = match run.monitor.spec.window.every_ms {
            Some(_) => self.window_records(run, version, window.start, window.end, |_| true).await,
            None => self.records_by_id(run, version, window.first_id, window.last_id).await,
        };
        let (records, more) = match read {
            Ok(r) => r,
            Err(e) => return Ok(json!({ "not_computed": format!("reading the window's calls again: {e}") })),
        };
        if more {
            return Ok(json!({"not_computed": format!("evidently mode compares whole windows of at most {MAX_WINDOW_RECORDS} calls; this one has more (use the default mode, or smaller windows)")}));
        }
        let spec = &run.monitor.spec;
        let mut options = drift_options(spec);
        options.mode = Mode::Evidently;
        options.columns = Some(window::watched(profile, spec.features.as_deref()).into_iter().map(|c| c.name.clone()).collect());
        let name = format!("deployment `{}` version {version}, {} to {}", run.monitor.deployment, window.start.to_rfc3339(), window.end.to_rfc3339());
        let expected_rows = run.monitor.spec.window.rows.map(|_| window.rows);
        let report = tokio::task::spawn_blocking(move || -> std::result::Result<Value, String> {
            let current = window::table_of(&records, &name).map_err(|e| e.to_string())?;
            if expected_rows.is_some_and(|rows| rows != current.rows as u64) {
                return Err("a call's rows straddle this count window's edge, and evidently mode compares whole calls: use a time window for calls of many rows".to_string());
            }
            let report = modelops_monitor::drift::compare_tables((*reference).clone(), current, &options).map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| Error::Internal(format!("computing drift: {e}")))?;
        Ok(report.unwrap_or_else(|reason| json!({ "not_computed": reason })))
    }

    /// Recomputes the performance of windows whose calls got labels.
    async fn recompute_relabelled(&self, runs: &mut HashMap<(String, String), Run>) {
        let pending = match self.inner.registry.monitor_store().take_relabels().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read which windows got labels; retried next pass");
                return;
            }
        };
        let mut by_deployment: BTreeMap<String, BTreeSet<DateTime<Utc>>> = BTreeMap::new();
        for (deployment, at) in pending {
            by_deployment.entry(deployment).or_default().insert(at);
        }
        for (deployment, times) in by_deployment {
            let Some(first) = times.first().copied() else { continue };
            for run in runs.values_mut().filter(|r| r.monitor.deployment.as_str() == deployment && r.monitor.spec.performance.is_some()) {
                let store = self.inner.registry.monitor_store();
                let since = match run.monitor.spec.window.every_ms {
                    Some(every) => {
                        let every = i64::try_from(every).unwrap_or(i64::MAX);
                        at_millis(first.timestamp_millis().div_euclid(every) * every)
                    }
                    None => first - chrono::Duration::days(366),
                };
                let results = match store.results(&run.monitor.deployment, &run.monitor.spec.name, Some(since), 100_000).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read window results to recompute");
                        continue;
                    }
                };
                for mut result in results {
                    if !result.closed || !times.iter().any(|t| *t >= result.start && *t < result.end) || result.body.get("not_computed").is_some() {
                        continue;
                    }
                    match self.performance(run, result.version, result.start, result.end).await {
                        Ok((performance, fairness, labelled)) => {
                            if let Some(body) = result.body.as_object_mut() {
                                body.insert("performance".into(), performance);
                                body.insert("labeled_rows".into(), json!(labelled));
                                if let Some(f) = fairness {
                                    body.insert("fairness".into(), f);
                                }
                            }
                            result.computed_at = Utc::now();
                            if let Err(e) = store.put_result(&result).await {
                                tracing::warn!(error = %e, "cannot store a recomputed window result");
                                continue;
                            }
                            self.publish(run, &result);
                            self.judge(run, &result).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot recompute a window's performance"),
                    }
                }
            }
        }
    }

    /// The latest closed window's numbers, for `/metrics`.
    fn publish(&self, run: &Run, result: &WindowResult) {
        let body = &result.body;
        let drift = body.get("drift");
        let columns = drift.and_then(|d| d.get("columns")).and_then(Value::as_array).cloned().unwrap_or_default();
        let gauges = WindowGauges {
            deployment: result.deployment.as_str().to_string(),
            monitor: result.monitor.clone(),
            version: result.version,
            rows: result.rows,
            drift: columns
                .iter()
                .filter_map(|c| {
                    Some((
                        c.get("column")?.as_str()?.to_string(),
                        c.get("score")?.as_f64()?,
                        c.get("drift_detected")?.as_bool()?,
                        c.get("method").and_then(Value::as_str).unwrap_or("").to_string(),
                    ))
                })
                .collect(),
            drift_share: drift.and_then(|d| d.get("share_of_drifted_columns")).and_then(Value::as_f64),
            dataset_drift: drift.and_then(|d| d.get("dataset_drift")).and_then(Value::as_bool),
            performance: numbers(body.get("performance").and_then(|p| p.get("metrics"))),
            estimated: numbers(body.get("estimated")),
            fairness: numbers(body.get("fairness")),
        };
        let key = (gauges.deployment.clone(), run.monitor.spec.name.clone(), result.version);
        self.inner.gauges.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key, gauges);
    }

    /// Evaluates the rules over a closed window and acts.
    async fn judge(&self, run: &mut Run, result: &WindowResult) {
        if result.body.get("not_computed").is_some() {
            return;
        }
        let context = context_of(result);
        let now = Utc::now();
        let mut changed = false;
        for (rule, expression) in run.rules.clone() {
            let Some(expression) = expression else { continue };
            let key = format!("{}@{}", rule.name, result.version);
            let holds = match spec::evaluate(&expression, &context) {
                Ok(b) => b,
                Err(e) => {
                    // A condition over numbers not computed yet (no labels:
                    // `performance['accuracy']` has no key) says nothing.
                    tracing::debug!(rule = %rule.name, error = %e, "alert condition not evaluated");
                    continue;
                }
            };
            let mut state = run.state.rules.get(&key).cloned().unwrap_or_default();
            if state.last_window.is_some_and(|w| result.start < w) {
                continue;
            }
            state.last_window = Some(result.start);
            if holds {
                let since = *state.pending_since.get_or_insert(now);
                let held = (now - since).num_milliseconds() >= i64::try_from(rule.for_ms).unwrap_or(i64::MAX);
                let cooled = state.last_fired.is_none_or(|t| (now - t).num_milliseconds() >= i64::try_from(rule.cooldown_ms).unwrap_or(i64::MAX));
                if state.firing.is_none() && held && cooled {
                    match self.fire(run, &rule, result, &context).await {
                        Ok(id) => {
                            state.firing = Some(id);
                            state.last_fired = Some(now);
                        }
                        Err(e) => tracing::error!(rule = %rule.name, error = %e, "cannot fire an alert"),
                    }
                }
            } else {
                state.pending_since = None;
                if let Some(id) = state.firing.take() {
                    let alert = Alert {
                        id,
                        deployment: run.monitor.deployment.clone(),
                        monitor: run.monitor.spec.name.clone(),
                        rule: rule.name.clone(),
                        state: AlertState::Resolved,
                        version: result.version,
                        window_start: result.start,
                        fired_at: state.last_fired.unwrap_or(now),
                        resolved_at: Some(now),
                        detail: Value::Null,
                    };
                    let why = format!("`{}` is false over the window starting {}", rule.condition, result.start.to_rfc3339());
                    if let Err(e) = self.inner.registry.resolve_alert(&alert, &why).await {
                        tracing::error!(rule = %rule.name, error = %e, "cannot resolve an alert");
                        state.firing = Some(id);
                    } else {
                        for action in rule.actions.iter().filter(|a| a.kind == ActionKind::Webhook) {
                            self.inner.delivery.send(&alert, action, payload(&alert, &rule.condition, result, &context, "alert.resolve"));
                        }
                    }
                }
            }
            if run.state.rules.get(&key) != Some(&state) {
                run.state.rules.insert(key, state);
                changed = true;
            }
        }
        if changed {
            if let Err(e) = self.save_state(run).await {
                tracing::warn!(error = %e, "cannot save the alert rules' state");
            }
        }
    }

    async fn fire(&self, run: &Run, rule: &modelops_core::monitoring::AlertRule, result: &WindowResult, context: &Value) -> Result<i64> {
        let mut actions = Vec::new();
        let mut rolled_back = Value::Null;
        for action in &rule.actions {
            match action.kind {
                ActionKind::RollbackCanary => {
                    let reason = format!(
                        "alert `{}` of monitor `{}` fired on version {}: `{}` over the window starting {}",
                        rule.name,
                        run.monitor.spec.name,
                        result.version,
                        rule.condition,
                        result.start.to_rfc3339()
                    );
                    rolled_back = match self.inner.deployments.trip_canary(&run.monitor.deployment, result.version, reason).await {
                        Ok(Some(status)) => json!({"rolled_back": true, "serving": status.deployment.routes}),
                        Ok(None) => json!({"rolled_back": false, "reason": format!("no canary of version {} was running", result.version)}),
                        Err(e) => json!({"rolled_back": false, "reason": e.to_string()}),
                    };
                    actions.push(json!({"kind": "rollback_canary", "outcome": rolled_back}));
                }
                ActionKind::Degrade => actions.push(json!({"kind": "degrade", "outcome": "deployment marked degraded until the alert resolves"})),
                ActionKind::Retrain => actions.push(json!({"kind": "retrain", "outcome": "retraining request opened"})),
                ActionKind::Webhook => actions.push(json!({"kind": "webhook", "url": action.url})),
            }
        }
        let alert = Alert {
            id: 0,
            deployment: run.monitor.deployment.clone(),
            monitor: run.monitor.spec.name.clone(),
            rule: rule.name.clone(),
            state: AlertState::Firing,
            version: result.version,
            window_start: result.start,
            fired_at: Utc::now(),
            resolved_at: None,
            detail: json!({
                "condition": rule.condition,
                "window": {"start": result.start, "end": result.end, "rows": result.rows},
                "context": context,
                "actions": actions,
                "deliveries": [],
            }),
        };
        let retrain = rule.actions.iter().any(|a| a.kind == ActionKind::Retrain);
        let (alert, request) = self.inner.registry.fire_alert(alert, &run.model, retrain).await?;
        tracing::warn!(deployment = %alert.deployment, monitor = %alert.monitor, rule = %alert.rule, version = alert.version, retrain_request = ?request, rollback = %rolled_back, "alert fired");
        for action in rule.actions.iter().filter(|a| a.kind == ActionKind::Webhook) {
            self.inner.delivery.send(&alert, action, payload(&alert, &rule.condition, result, context, "alert.fire"));
        }
        Ok(alert.id)
    }
}

/// The JSON kind of a label, or `None` for what is not a label.
fn label_kind(label: &Value) -> Option<&'static str> {
    match label {
        Value::Number(_) => Some("number"),
        Value::String(_) => Some("string"),
        Value::Bool(_) => Some("boolean"),
        Value::Array(items) if !items.is_empty() => {
            let first = label_kind(&items[0]).filter(|k| *k != "array")?;
            items.iter().all(|i| label_kind(i) == Some(first)).then_some(first)
        }
        _ => None,
    }
}

fn drift_options(spec: &MonitorSpec) -> DriftOptions {
    DriftOptions {
        mode: Mode::Default,
        columns: None,
        categorical: Vec::new(),
        numerical: Vec::new(),
        method: spec.drift.method.as_deref().and_then(Method::parse),
        threshold: spec.drift.threshold,
        drift_share: spec.drift.drift_share,
    }
}

/// Summarises `records` (one version, one window) whole.
fn summarise_all(records: &[PredictionRecord], profile: Option<&Profile>, spec: &MonitorSpec, options: &DriftOptions) -> Result<Part> {
    let table = window::table_for(records, "recorded predictions", profile, spec.features.as_deref())?;
    let mut part = Part {
        rows: table.rows as u64,
        first_id: records.first().map_or(0, |r| r.id),
        last_id: records.last().map_or(0, |r| r.id),
        first_at: records.first().map(|r| r.at),
        last_at: records.last().map(|r| r.at),
        columns: Vec::new(),
    };
    if let Some(profile) = profile {
        part.columns = window::summarise(&table, 0..table.rows, profile, spec.features.as_deref(), options);
    }
    Ok(part)
}

/// Splits `records` (one version, in id order) into parts that fill the
/// open window (holding `open_rows`) and then windows of `size` rows.
fn split_counted(records: &[PredictionRecord], profile: Option<&Profile>, spec: &MonitorSpec, options: &DriftOptions, open_rows: u64, size: u64) -> Result<Vec<Part>> {
    let table = window::table_for(records, "recorded predictions", profile, spec.features.as_deref())?;
    let owners = window::record_of_rows(&table);
    let mut parts = Vec::new();
    let mut at = 0usize;
    let mut room = size.saturating_sub(open_rows).max(1);
    while at < table.rows {
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(table.rows - at);
        let range = at..at + take;
        let (first, last) = (&records[owners[range.start]], &records[owners[range.end - 1]]);
        let mut part = Part { rows: take as u64, first_id: first.id, last_id: last.id, first_at: Some(first.at), last_at: Some(last.at), columns: Vec::new() };
        if let Some(profile) = profile {
            part.columns = window::summarise(&table, range, profile, spec.features.as_deref(), options);
        }
        parts.push(part);
        at += take;
        room = size;
    }
    Ok(parts)
}

/// Numeric fields of a JSON object that are metrics (not row counts).
fn numbers(value: Option<&Value>) -> BTreeMap<String, f64> {
    const COUNTS: [&str; 3] = ["rows", "rows_left_out", "labeled_rows"];
    value
        .and_then(Value::as_object)
        .map(|o| o.iter().filter(|(k, _)| !COUNTS.contains(&k.as_str())).filter_map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect())
        .unwrap_or_default()
}

/// The context alert conditions read (see [`spec::schema`]).
fn context_of(result: &WindowResult) -> Value {
    let body = &result.body;
    let drift = body.get("drift").filter(|d| d.get("not_computed").is_none());
    let columns = drift.and_then(|d| d.get("columns")).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut scores = serde_json::Map::new();
    let mut detected = serde_json::Map::new();
    for c in &columns {
        let Some(name) = c.get("column").and_then(Value::as_str) else { continue };
        if let Some(s) = c.get("score").and_then(Value::as_f64) {
            scores.insert(name.to_string(), json!(s));
            detected.insert(name.to_string(), json!(c.get("drift_detected").and_then(Value::as_bool).unwrap_or(false)));
        }
    }
    json!({
        "rows": result.rows,
        "version": result.version,
        "drift": {
            "computed": drift.is_some(),
            "share": drift.and_then(|d| d.get("share_of_drifted_columns")).and_then(Value::as_f64).unwrap_or(0.0),
            "dataset_drift": drift.and_then(|d| d.get("dataset_drift")).and_then(Value::as_bool).unwrap_or(false),
            "drifted_columns": drift.and_then(|d| d.get("number_of_drifted_columns")).and_then(Value::as_u64).unwrap_or(0),
            "columns": drift.and_then(|d| d.get("number_of_columns")).and_then(Value::as_u64).unwrap_or(0),
            "scores": scores,
            "detected": detected,
        },
        "performance": numbers(body.get("performance").and_then(|p| p.get("metrics"))),
        "labeled_rows": body.get("labeled_rows").and_then(Value::as_u64).unwrap_or(0),
        "estimated": numbers(body.get("estimated")),
        "fairness": numbers(body.get("fairness")),
    })
}

/// The body a webhook receives.
fn payload(alert: &Alert, condition: &str, result: &WindowResult, context: &Value, event: &str) -> Value {
    json!({
        "event": event,
        "alert": alert.id,
        "state": alert.state.as_str(),
        "deployment": alert.deployment,
        "monitor": alert.monitor,
        "rule": alert.rule,
        "condition": condition,
        "version": alert.version,
        "window": {"start": result.start, "end": result.end, "rows": result.rows},
        "values": context,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
    })
}
