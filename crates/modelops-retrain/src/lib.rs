//! The closed loop: retraining runs, from the trigger to the version's
//! promotion or rollback.
//!
//! Owns: the use cases every surface calls for retraining (`define_job`,
//! `retrain` by hand, `runs`, `run`, `log`, `window`), and the loop that
//! runs unattended — it answers alerts' retraining requests and schedules
//! by starting runs (the registry decides, under its write lock, whether a
//! run may start: one per model, the cool-down), runs the job (`runner`: a
//! child process with a time limit and its output kept, or a webhook),
//! feeds it the triggering window as Parquet with its ground truth and the
//! parent's reference profile (`window`), and then carries the version the
//! job registered through the same gates as any version: submitted for
//! validation, approved by the policy when it asks for nobody, otherwise
//! waiting — saying for whom — until people approve; then a canary with the
//! job's rollout template, which promotes or rolls back by itself
//! (`modelops-deploy`'s controller). Failures and rollbacks raise alerts.
//! Every step is an audited registry use case.
//!
//! Must not depend on: HTTP servers, SQL or a concrete store, the runtimes.

mod runner;
mod shadow;
mod window;

use chrono::{DateTime, Utc};
use modelops_core::auth::Principal;
use modelops_core::deployment::{DeploymentState, ShadowRoute, Strategy};
use modelops_core::governance::GateTarget;
use modelops_core::monitoring::{Alert, AlertState, RetrainRequest};
use modelops_core::name::ModelName;
use modelops_core::retrain::{JobRun, JobSpec, RetrainJob, RolloutTemplate, RunState, TriggerWindow};
use modelops_core::version::VersionState;
use modelops_core::{Error, Result};
use modelops_deploy::plan::{CanaryRequest, ChangeRequest};
use modelops_deploy::Deployments;
use modelops_registry::retrain::{AlertCause, RunCause, StartOutcome};
use modelops_registry::Registry;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use window::GROUND_TRUTH;

/// The name alerts raised by the loop carry as their monitor.
pub const ALERT_MONITOR: &str = "retraining";

/// A `running` run whose job has not said it still runs for this long is
/// an orphan (the job saves its output, and so its heartbeat, every
/// [`runner::HEARTBEAT`]).
pub const ORPHAN_AFTER: chrono::Duration = chrono::Duration::seconds(30);

/// Where and how runs execute.
#[derive(Debug, Clone)]
pub struct RetrainConfig {
    /// How often requests, schedules and runs are looked at.
    pub tick: Duration,
    /// The server's URL as a job reaches it (`MODELOPS_SERVER`).
    pub server_url: String,
    /// Each run's work folder is made here (`run-<id>`) and removed when
    /// the job ends.
    pub work_root: PathBuf,
    /// The `modelops` binary a job may call (`MODELOPS_BIN`).
    pub binary: Option<PathBuf>,
    /// The most calls a run's window holds.
    pub max_window_calls: usize,
    /// Requests, schedules and runs are looked at only while this replica
    /// holds the background lease (a job keeps running on the replica that
    /// started it).
    pub leadership: modelops_core::replica::Leadership,
}

impl Default for RetrainConfig {
    /// The server sets `server_url` and `work_root` (under its data
    /// folder); this default's folder is one of its own in the temporary
    /// folder, so two instances in one process never share run folders.
    fn default() -> Self {
        static INSTANCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let instance = INSTANCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            tick: Duration::from_millis(500),
            server_url: "http://127.0.0.1:5000".into(),
            work_root: std::env::temp_dir().join(format!("modelops-retrain-{}-{instance}", std::process::id())),
            binary: std::env::current_exe().ok(),
            max_window_calls: 1_000_000,
            leadership: modelops_core::replica::Leadership::always(),
        }
    }
}

/// When a model's schedule was last looked at, and its job's definition
/// time then.
type ScheduleSeen = (DateTime<Utc>, DateTime<Utc>);

/// The retraining use cases and the loop. Cheap to clone.
#[derive(Clone)]
pub struct Retraining {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    deployments: Deployments,
    config: RetrainConfig,
    http: reqwest::Client,
    /// Runs whose job this process is running (their tasks report back).
    executing: Mutex<HashSet<i64>>,
    /// Reasons last written per run, so a waiting run is not rewritten
    /// (and audited) on every tick.
    said: Mutex<HashMap<i64, String>>,
    /// When each model's schedule was last looked at, and the job's
    /// definition time then (a redefined job starts its schedule afresh).
    scheduled: Mutex<HashMap<ModelName, ScheduleSeen>>,
    wake: tokio::sync::Notify,
}

impl Retraining {
    pub fn new(registry: Registry, deployments: Deployments, config: RetrainConfig) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                registry,
                deployments,
                config,
                http,
                executing: Mutex::new(HashSet::new()),
                said: Mutex::new(HashMap::new()),
                scheduled: Mutex::new(HashMap::new()),
                wake: tokio::sync::Notify::new(),
            }),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    // ------------------------------------------------------------ use cases

    /// Defines (or replaces) a model's job: the rollout's condition is
    /// compiled here, against the canary's schema, before anything is stored.
    pub async fn define_job(&self, principal: &Principal, model: &ModelName, spec: JobSpec, run_as: Option<&str>) -> Result<RetrainJob> {
        if let Some(condition) = spec.rollout.as_ref().and_then(|r| r.condition.as_deref()) {
            modelops_deploy::condition::Condition::compile(condition).map_err(|e| match e {
                Error::InvalidInput { reason, .. } => Error::invalid("rollout.condition", reason),
                other => other,
            })?;
        }
        self.inner.registry.define_retrain_job(principal, model, spec, run_as).await
    }

    /// A run by hand: refused (409) when the model has no job or a run is
    /// under way; otherwise started at once.
    pub async fn retrain(&self, principal: &Principal, model: &ModelName) -> Result<JobRun> {
        match self.inner.registry.start_job_run(principal, model, RunCause::Manual).await? {
            StartOutcome::Started(started) => {
                let run = started.run.clone();
                self.launch(*started);
                Ok(run)
            }
            StartOutcome::Skipped(why) => Err(Error::Conflict(why)),
        }
    }

    /// The window a run was fed, as Parquet (for webhook jobs, which run
    /// elsewhere). Only the run's own token or those who may read
    /// recorded predictions.
    pub async fn window(&self, principal: &Principal, id: i64) -> Result<Vec<u8>> {
        let own = principal.scope().is_some_and(|s| s.run == id);
        if !own {
            self.inner.registry.check_access(principal, modelops_core::auth::Action::PredictionsRead, &format!("retrain/{id}")).await?;
        }
        let run = self.inner.registry.job_run(principal, id).await?;
        let Some(window) = &run.window else {
            return Err(Error::not_found("window of retraining run", id.to_string()));
        };
        let batch = window::export(&self.inner.registry, window, self.inner.config.max_window_calls).await?;
        let mut out = Vec::new();
        modelops_deploy::export::write_parquet(&batch, &mut out)?;
        Ok(out)
    }

    // ------------------------------------------------------------ the loop

    /// Runs the loop until the process ends.
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                if this.inner.config.leadership.is_leader() {
                    this.run_once().await;
                }
                tokio::select! {
                    () = this.inner.wake.notified() => {}
                    () = tokio::time::sleep(this.inner.config.tick) => {}
                }
            }
        })
    }

    /// One pass: requests, schedules, runs under way.
    pub async fn run_once(&self) {
        if let Err(e) = self.answer_requests().await {
            tracing::error!(error = %e, "retraining: cannot answer retraining requests");
        }
        if let Err(e) = self.follow_schedules().await {
            tracing::error!(error = %e, "retraining: cannot follow schedules");
        }
        match self.inner.registry.active_job_runs().await {
            Ok(runs) => {
                self.adopt_orphans(&runs).await;
                for run in runs {
                    if let Err(e) = self.drive(run.clone()).await {
                        tracing::error!(run = run.id, model = %run.model, error = %e, "retraining: cannot move a run on");
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "retraining: cannot read the runs under way"),
        }
    }

    /// Runs `running` whose job no replica runs any more — no heartbeat
    /// for [`ORPHAN_AFTER`] and not this process's: their job is gone with
    /// the replica that ran it. One that had registered its version moves
    /// on to the gates; the others end as failed (a person or the next
    /// trigger starts another).
    async fn adopt_orphans(&self, runs: &[JobRun]) {
        let now = self.inner.registry.now();
        for run in runs.iter().filter(|r| r.state == RunState::Running) {
            let executing = self.inner.executing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&run.id);
            let alive = run.heartbeat_at.unwrap_or(run.started_at);
            if executing || now - alive < ORPHAN_AFTER {
                continue;
            }
            let mut next = JobRun { job_ended_at: Some(now), ..run.clone() };
            let outcome = if let Some(v) = run.version {
                next.state = RunState::AwaitingApproval;
                next.reason = format!("the job registered version {v}; the replica running it stopped before the job ended");
                self.inner.registry.progress_job_run(&next, RunState::Running, true).await
            } else {
                next.state = RunState::Failed;
                next.reason = "the replica running the job stopped (no heartbeat) before it ended".into();
                self.inner.registry.progress_job_run(&next, RunState::Running, true).await
            };
            match outcome {
                Ok(run) if run.state == RunState::Failed => self.raise(&run, "run_failed").await,
                Ok(_) | Err(Error::Conflict(_)) => {}
                Err(e) => tracing::error!(run = run.id, error = %e, "retraining: cannot take over a run"),
            }
        }
    }

    async fn answer_requests(&self) -> Result<()> {
        for request in self.inner.registry.open_retrain_requests().await? {
            let window = self.window_of(&request).await;
            let cause = RunCause::Alert(Box::new(AlertCause { request: request.clone(), window }));
            match self.inner.registry.start_job_run(&Principal::system(), &request.model, cause).await {
                Ok(StartOutcome::Started(started)) => {
                    tracing::info!(run = started.run.id, model = %started.run.model, alert = request.alert_id, "retraining run started by an alert");
                    self.launch(*started);
                }
                Ok(StartOutcome::Skipped(why)) => tracing::info!(model = %request.model, request = request.id, %why, "retraining request skipped"),
                Err(e) => tracing::error!(model = %request.model, request = request.id, error = %e, "retraining request not answered"),
            }
        }
        Ok(())
    }

    /// The window whose alert opened `request`: its deployment, monitor,
    /// start and end (from the window's result).
    async fn window_of(&self, request: &RetrainRequest) -> Option<TriggerWindow> {
        let store = self.inner.registry.monitor_store();
        let alerts = store.alerts(Some(&request.deployment), false, 10_000).await.ok()?;
        let alert = alerts.into_iter().find(|a| a.id == request.alert_id)?;
        let results = store.results(&alert.deployment, &alert.monitor, Some(alert.window_start), 50).await.ok()?;
        let result = results.into_iter().find(|r| r.start == alert.window_start && r.version == alert.version)?;
        Some(TriggerWindow { deployment: alert.deployment, monitor: alert.monitor, start: result.start, end: result.end, version: alert.version })
    }

    async fn follow_schedules(&self) -> Result<()> {
        let now = self.inner.registry.now();
        for job in self.inner.registry.all_retrain_jobs().await? {
            if job.spec.schedule.is_none() {
                continue;
            }
            let since = {
                let mut seen = self.inner.scheduled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let entry = seen.entry(job.model.clone()).or_insert((now, job.updated_at));
                if entry.1 != job.updated_at {
                    *entry = (now, job.updated_at);
                }
                entry.0
            };
            let Some(due) = job.spec.next_scheduled(since) else { continue };
            if due > now {
                continue;
            }
            self.inner.scheduled.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(job.model.clone(), (now, job.updated_at));
            match self.inner.registry.start_job_run(&Principal::system(), &job.model, RunCause::Schedule).await {
                Ok(StartOutcome::Started(started)) => {
                    tracing::info!(run = started.run.id, model = %started.run.model, "retraining run started by the schedule");
                    self.launch(*started);
                }
                Ok(StartOutcome::Skipped(why)) => tracing::info!(model = %job.model, %why, "scheduled retraining skipped"),
                Err(e) => tracing::error!(model = %job.model, error = %e, "scheduled retraining not started"),
            }
        }
        Ok(())
    }

    /// Runs the job on its own task; when it ends the run is recorded and
    /// moved on at once.
    fn launch(&self, started: modelops_registry::retrain::Started) {
        let modelops_registry::retrain::Started { run, job, token } = started;
        self.inner.executing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(run.id);
        let this = self.clone();
        tokio::spawn(async move {
            let id = run.id;
            let ended = runner::execute(&this, &run, &job, token).await;
            let result = this.finish_job(run, ended).await;
            // No longer this process's job: the loop (and the line below)
            // may move the run on.
            this.inner.executing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
            let result = match result {
                Ok(Some(run)) => this.drive(run).await,
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                tracing::error!(run = id, error = %e, "retraining: cannot record the end of a job or move its run on");
            }
            this.inner.wake.notify_one();
        });
    }

    /// Records how the job ended; returns the run when it registered a
    /// version (for the gates), after alerting when it did not.
    async fn finish_job(&self, run: JobRun, ended: runner::Ended) -> Result<Option<JobRun>> {
        let registry = &self.inner.registry;
        // The version the job registered is in the store's copy.
        let stored = registry.job_run(&Principal::system(), run.id).await?;
        let mut next = JobRun { version: stored.version, ..run };
        next.job_ended_at = Some(registry.now());
        next.exit_code = ended.exit_code;
        let (state, reason) = match (&ended.outcome, next.version) {
            (runner::Outcome::Succeeded, Some(v)) => (RunState::AwaitingApproval, format!("the job registered version {v}")),
            (runner::Outcome::Succeeded, None) => (RunState::NoVersion, "the job ended without registering a version".to_string()),
            (runner::Outcome::Failed(why), _) => (RunState::Failed, why.clone()),
            (runner::Outcome::TimedOut(limit), _) => (RunState::TimedOut, format!("the job ran past its time limit of {limit} s and was stopped")),
        };
        next.state = state;
        next.reason = reason;
        // A command's job is over: its token goes. A webhook's job may still
        // be setting its version's reference: its token (which changes only
        // that version now) goes when the run ends.
        let run = registry.progress_job_run(&next, RunState::Running, ended.command).await?;
        if run.state == RunState::AwaitingApproval {
            Ok(Some(run))
        } else {
            self.raise(&run, "run_failed").await;
            Ok(None)
        }
    }

    /// Moves a run that waits on its version: the gates, then the canary,
    /// then its outcome.
    async fn drive(&self, run: JobRun) -> Result<()> {
        let executing = self.inner.executing.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&run.id);
        if executing || run.state == RunState::Running {
            return Ok(());
        }
        let registry = &self.inner.registry;
        let Some(number) = run.version else { return Ok(()) };
        let version = registry.get_version(&run.model, number).await?;
        match run.state {
            RunState::AwaitingApproval => match version.state {
                VersionState::Draft => {
                    // Asked first (which records nothing), so that a gate
                    // that keeps refusing does not fill the log with denials.
                    let gate = registry.pending_gate(&run.model, number, GateTarget::InValidation).await?;
                    if !gate.allowed {
                        let missing: Vec<String> = gate.failures().map(|c| c.message.clone()).collect();
                        return self.say(run, RunState::AwaitingApproval, format!("version {number} cannot be submitted for validation: {}", missing.join("; "))).await;
                    }
                    registry.submit_version(&Principal::system(), &run.model, number).await?;
                    Box::pin(self.drive(run)).await
                }
                VersionState::InValidation => {
                    let gate = registry.approve_by_policy(&run.model, number, run.id).await?;
                    if gate.allowed {
                        return Box::pin(self.drive(run)).await;
                    }
                    let missing: Vec<String> = gate.failures().map(|c| c.message.clone()).collect();
                    self.say(run, RunState::AwaitingApproval, format!("version {number} waits for approval: {}", missing.join("; "))).await
                }
                VersionState::Approved => self.roll_out(run, number).await,
                VersionState::Production => self.say(run, RunState::Promoted, format!("version {number} was promoted to production")).await,
                VersionState::Rejected => self.say(run, RunState::Rejected, format!("version {number} was rejected")).await,
                VersionState::Retired => self.say(run, RunState::Rejected, format!("version {number} was retired")).await,
            },
            RunState::Shadow if matches!(version.state, VersionState::Rejected | VersionState::Retired) => {
                self.remove_shadow(&run, number).await?;
                self.say(run, RunState::Rejected, format!("version {number} was {} while it shadowed the deployment", version.state)).await
            }
            RunState::Shadow => self.follow_shadow(run, number).await,
            RunState::Canary => self.follow_canary(run, number).await,
            _ => Ok(()),
        }
    }

    /// Starts the job's rollout: the shadow stage when it has one, else a
    /// canary of `number` on its deployment.
    async fn roll_out(&self, run: JobRun, number: u32) -> Result<()> {
        let job = self.inner.registry.store_retrain_job(&run.model).await?;
        let Some(rollout) = job.and_then(|j| j.spec.rollout) else {
            return self.say(run, RunState::Approved, format!("version {number} is approved; the job has no rollout, so a deployer takes it from here")).await;
        };
        let Some(stage) = &rollout.shadow else {
            return self.start_canary(run, number, &rollout, String::new()).await;
        };
        let Some(d) = self.inner.registry.find_deployment(&rollout.deployment).await? else {
            return self.say(run, RunState::AwaitingApproval, format!("version {number} is approved; deployment `{}` does not exist", rollout.deployment)).await;
        };
        let mut shadows: Vec<ShadowRoute> = d.shadows.iter().filter(|s| s.version != number).cloned().collect();
        shadows.push(ShadowRoute { version: number, percent: 100.0 });
        let request = ChangeRequest { shadows: Some(shadows), ..ChangeRequest::default() };
        let started = self.inner.registry.now();
        match self.inner.deployments.change(&Principal::system(), &rollout.deployment, request).await {
            Ok(_) => {
                let serving = d.stable_version().map_or_else(|| "the serving versions".to_string(), |v| format!("version {v}"));
                let reason = format!(
                    "version {number} shadows `{}` on every call: its decisions are compared with {serving}'s over {} calls (at least {:.1}% must agree)",
                    rollout.deployment,
                    stage.calls,
                    stage.min_agreement * 100.0
                );
                let run = JobRun { stage_started_at: Some(started), ..run };
                self.say(run, RunState::Shadow, reason).await
            }
            Err(e) => self.refused(run, number, e).await,
        }
    }

    /// Takes the run's version out of the deployment's shadows.
    async fn remove_shadow(&self, run: &JobRun, number: u32) -> Result<()> {
        let job = self.inner.registry.store_retrain_job(&run.model).await?;
        let Some(name) = job.and_then(|j| j.spec.rollout).map(|r| r.deployment) else { return Ok(()) };
        let Some(d) = self.inner.registry.find_deployment(&name).await? else { return Ok(()) };
        let shadows: Vec<ShadowRoute> = d.shadows.iter().filter(|s| s.version != number).cloned().collect();
        if shadows.len() != d.shadows.len() {
            let request = ChangeRequest { shadows: Some(shadows), ..ChangeRequest::default() };
            self.inner.deployments.change(&Principal::system(), &name, request).await?;
        }
        Ok(())
    }

    /// Stops a run that waits for people or shadows a deployment (its
    /// shadow removed). A running job ends by itself or at its time limit;
    /// a canary is rolled back with the deployment (`modelops rollback`),
    /// which ends the run. For the model's developers and deployers.
    pub async fn cancel(&self, principal: &Principal, id: i64) -> Result<JobRun> {
        let registry = &self.inner.registry;
        registry.check_access(principal, modelops_core::auth::Action::RetrainCancel, &format!("retrain/{id}")).await?;
        let run = registry.job_run(principal, id).await?;
        registry.authorize_cancel(principal, &run).await?;
        match run.state {
            RunState::Running => return Err(Error::Conflict(format!("run {id}'s job is running: it ends by itself or at its time limit"))),
            RunState::Canary => {
                return Err(Error::Conflict(format!("run {id}'s canary is under way: roll the deployment back (`modelops rollback`) and the run ends `rolled_back`")))
            }
            state if state.is_final() => return Err(Error::Conflict(format!("run {id} is `{state}` already"))),
            RunState::Shadow => {
                if let Some(v) = run.version {
                    self.remove_shadow(&run, v).await?;
                }
            }
            _ => {}
        }
        let from = run.state;
        // Who cancelled is the event's actor (sealed like every person's name).
        let next = JobRun { state: RunState::Cancelled, reason: format!("cancelled while `{from}`"), ..run };
        registry.cancel_job_run(principal, &next, from).await
    }

    /// The canary of `number`; `prefix` says what came before it.
    async fn start_canary(&self, run: JobRun, number: u32, rollout: &RolloutTemplate, prefix: String) -> Result<()> {
        let request = ChangeRequest {
            canary: Some(CanaryRequest { version: number, steps: rollout.steps.clone(), condition: rollout.condition.clone() }),
            ..ChangeRequest::default()
        };
        let started = self.inner.registry.now();
        match self.inner.deployments.change(&Principal::system(), &rollout.deployment, request).await {
            Ok(status) => {
                let d = status.deployment;
                let weights: Vec<String> = rollout.steps.iter().map(|s| format!("{}%", s.weight)).collect();
                let from = d.canary.as_ref().map_or(0, |c| c.stable);
                let reason = format!("{prefix}canary of version {number} on deployment `{}` against version {from}, steps {}", rollout.deployment, weights.join(" → "));
                let run = JobRun { stage_started_at: Some(started), ..run };
                self.say(run, RunState::Canary, reason).await
            }
            // After a shadow that passed, a canary that cannot start yet is
            // tried again from the shadow state (not the shadow again).
            Err(e) if run.state == RunState::Shadow && !matches!(e, Error::Forbidden(_)) => {
                self.say(run, RunState::Shadow, format!("{prefix}its canary cannot start yet: {e}")).await
            }
            Err(e) => self.refused(run, number, e).await,
        }
    }

    /// A rollout change the deployment refused: a refusal that will not
    /// change by waiting ends the run; anything else is tried again.
    async fn refused(&self, run: JobRun, number: u32, error: Error) -> Result<()> {
        match error {
            Error::Forbidden(denial) => {
                let reasons: Vec<String> = denial.reasons().iter().map(|r| r.message.clone()).collect();
                let run = self.say_returning(run, RunState::Approved, format!("version {number} is approved but its rollout was refused: {}", reasons.join("; "))).await?;
                self.raise(&run, "rollout_refused").await;
                Ok(())
            }
            e => self.say(run, RunState::AwaitingApproval, format!("version {number} is approved; its rollout cannot start yet: {e}")).await,
        }
    }

    /// The shadow stage: once enough calls are compared, the shadow leaves
    /// and the canary starts — or, with too few decisions agreeing, the
    /// rollout stops there.
    async fn follow_shadow(&self, run: JobRun, number: u32) -> Result<()> {
        let job = self.inner.registry.store_retrain_job(&run.model).await?;
        let Some(rollout) = job.and_then(|j| j.spec.rollout) else {
            return self.say(run, RunState::Approved, "the job's rollout was removed while its shadow ran".into()).await;
        };
        let Some(stage) = rollout.shadow.clone() else {
            return self.start_canary(run, number, &rollout, String::new()).await;
        };
        let since = run.stage_started_at.unwrap_or(run.updated_at);
        let (compared, agreed) = shadow::agreement(&self.inner.registry, &rollout.deployment, since, number, stage.output.as_deref(), stage.calls).await?;
        if compared < stage.calls {
            return Ok(());
        }
        // The shadow's work is done either way.
        self.remove_shadow(&run, number).await?;
        let share = agreed as f64 / compared as f64;
        let verdict = format!("decisions agreed on {:.1}% of {compared} shadowed calls ({agreed})", share * 100.0);
        if share >= stage.min_agreement {
            self.start_canary(run, number, &rollout, format!("{verdict}, at least the {:.1}% asked; ", stage.min_agreement * 100.0)).await
        } else {
            let reason = format!("{verdict}, below the {:.1}% the rollout asks: version {number} served nobody; the champion keeps serving", stage.min_agreement * 100.0);
            let run = self.say_returning(run, RunState::RolledBack, reason).await?;
            self.raise(&run, "shadow_disagreed").await;
            Ok(())
        }
    }

    /// A canary under way: done when the deployment no longer runs it.
    async fn follow_canary(&self, run: JobRun, number: u32) -> Result<()> {
        let job = self.inner.registry.store_retrain_job(&run.model).await?;
        let Some(name) = job.and_then(|j| j.spec.rollout).map(|r| r.deployment) else {
            return self.say(run, RunState::Approved, "the job's rollout was removed while its canary ran".into()).await;
        };
        let Some(d) = self.inner.registry.find_deployment(&name).await? else {
            return self.say(run, RunState::RolledBack, format!("deployment `{name}` is gone")).await;
        };
        if d.canary.as_ref().is_some_and(|c| c.plan.version == number) {
            return Ok(());
        }
        let serving_all = d.routes.len() == 1 && d.routes[0].version == number && d.routes[0].weight == 100;
        if serving_all && matches!(d.strategy, Strategy::Direct | Strategy::Shadow) {
            let why = d.reason.clone().unwrap_or_default();
            return self.say(run, RunState::Promoted, format!("version {number} serves all of `{name}`: {why}")).await;
        }
        let why = if d.state == DeploymentState::RolledBack { d.reason.clone().unwrap_or_default() } else { format!("deployment `{name}` no longer runs the canary of version {number}") };
        let run = self.say_returning(run, RunState::RolledBack, format!("{why}; the champion keeps serving")).await?;
        self.raise(&run, "canary_rolled_back").await;
        Ok(())
    }

    /// Records a run's new state and reason, unless nothing changed.
    async fn say(&self, run: JobRun, state: RunState, reason: String) -> Result<()> {
        self.say_returning(run, state, reason).await.map(drop)
    }

    async fn say_returning(&self, mut run: JobRun, state: RunState, reason: String) -> Result<JobRun> {
        if run.state == state && run.reason == reason {
            return Ok(run);
        }
        {
            let said = self.inner.said.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if state == run.state && said.get(&run.id) == Some(&reason) {
                return Ok(run);
            }
        }
        let from = run.state;
        run.state = state;
        run.reason = reason.clone();
        let run = match self.inner.registry.progress_job_run(&run, from, false).await {
            Ok(run) => run,
            // Another replica, or a person, moved it first: theirs stands.
            Err(Error::Conflict(why)) => {
                tracing::debug!(run = run.id, %why, "retraining: run moved meanwhile");
                return Ok(run);
            }
            Err(e) => return Err(e),
        };
        tracing::info!(run = run.id, model = %run.model, state = %run.state, reason = %run.reason, "retraining");
        let mut said = self.inner.said.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if run.state.is_final() {
            said.remove(&run.id);
        } else {
            said.insert(run.id, reason);
        }
        Ok(run)
    }

    /// An alert for a run that failed or whose version was rolled back:
    /// on the rollout's deployment, else the triggering window's, else a
    /// deployment named like the model.
    async fn raise(&self, run: &JobRun, rule: &str) {
        let job = self.inner.registry.store_retrain_job(&run.model).await.ok().flatten();
        let deployment = job
            .and_then(|j| j.spec.rollout.map(|r| r.deployment))
            .or_else(|| run.window.as_ref().map(|w| w.deployment.clone()))
            .unwrap_or_else(|| run.model.clone());
        let now = self.inner.registry.now();
        let alert = Alert {
            id: 0,
            deployment,
            monitor: ALERT_MONITOR.into(),
            rule: rule.into(),
            state: AlertState::Firing,
            version: run.version.or(run.parent_version).unwrap_or(0),
            window_start: run.started_at,
            fired_at: now,
            resolved_at: None,
            detail: json!({ "run": run.id, "model": run.model, "state": run.state.as_str(), "reason": run.reason, "exit_code": run.exit_code, "version": run.version }),
        };
        match self.inner.registry.fire_alert(alert, &run.model, false).await {
            Ok((alert, _)) => tracing::warn!(run = run.id, alert = alert.id, rule, reason = %run.reason, "retraining alert"),
            Err(e) => tracing::error!(run = run.id, error = %e, "retraining: cannot raise an alert"),
        }
    }
}
