//! Retraining in the governed inventory: a model's job defined by its
//! developers, a run started (by hand, by an alert's request, by the
//! schedule) with a token scoped to it, and the run's progress as the
//! server moves it on — each change written with its audit event in one
//! transaction, under the write lock, where "one run per model at a time"
//! and the cool-down are decided.
//!
//! What a run does — the process, the window it is fed, the canary — is
//! `modelops-retrain`'s; it calls these.

use crate::{event, lock_active_model, snapshot, Registry};
use chrono::{DateTime, Utc};
use modelops_core::governance::CHAMPION;
use modelops_core::auth::{Action, Principal, Role};
use modelops_core::error::Denial;
use modelops_core::monitoring::RetrainRequest;
use modelops_core::name::{quote, ModelName};
use modelops_core::repo::WriteTx;
use modelops_core::retrain::{job_subject, JobRun, JobRunner, JobSpec, RetrainJob, RetrainLineage, RunState, RunTrigger, TokenScope, TriggerWindow};
use modelops_core::{Error, Result};
use serde_json::json;

/// Triggered runs stop after this many failed in a row (since the job was
/// last defined): a broken job is not retried forever. A run by hand, or
/// defining the job again, starts the count afresh.
pub const MAX_FAILED_IN_A_ROW: usize = 3;

/// How long a run's token outlives the run's time limit: the job may still
/// be registering its version when the limit strikes.
const TOKEN_GRACE: chrono::Duration = chrono::Duration::minutes(10);

/// Why a run is asked for.
#[derive(Debug, Clone)]
pub enum RunCause {
    /// By a person: refused (409) rather than skipped when it cannot start.
    Manual,
    /// An alert's retraining request, with the window that fired it.
    Alert(Box<AlertCause>),
    Schedule,
}

/// The request an alert opened and the window that fired it.
#[derive(Debug, Clone)]
pub struct AlertCause {
    pub request: RetrainRequest,
    pub window: Option<TriggerWindow>,
}

impl RunCause {
    fn trigger(&self) -> RunTrigger {
        match self {
            RunCause::Manual => RunTrigger::Manual,
            RunCause::Alert(_) => RunTrigger::Alert,
            RunCause::Schedule => RunTrigger::Schedule,
        }
    }
}

/// What asking for a run did.
#[derive(Debug)]
pub enum StartOutcome {
    Started(Box<Started>),
    /// A triggered run that did not start, and why (recorded on its request).
    Skipped(String),
}

/// A run that started: the run, its job, and its token's text (given to
/// the job once, never stored).
#[derive(Debug)]
pub struct Started {
    pub run: JobRun,
    pub job: RetrainJob,
    pub token: String,
}

/// The lineage of a version registered with a run's token, and the run
/// with the version recorded (stored by the caller in the same transaction).
pub(crate) async fn lineage_for_run(tx: &mut dyn WriteTx, scope: &TokenScope, number: u32) -> Result<(RetrainLineage, JobRun)> {
    let mut run = tx.job_run_in(scope.run).await?.ok_or_else(|| Error::not_found("retraining run", scope.run.to_string()))?;
    if run.state != RunState::Running {
        return Err(Error::Conflict(format!("retraining run {} is `{}`: its token registers nothing more", run.id, run.state)));
    }
    if let Some(v) = run.version {
        return Err(Error::Conflict(format!("retraining run {} registered version {v} already; a run registers one version", run.id)));
    }
    run.version = Some(number);
    run.updated_at = tx.now();
    let lineage = RetrainLineage { job_run: run.id, trigger: run.trigger, alert: run.alert, window: run.window.clone() };
    Ok((lineage, run))
}

impl Registry {
    /// Defines (or replaces) a model's retraining job. For the model's
    /// developers; runs act as the one who defined it. `spec` is checked
    /// here (structure) and by the caller (the rollout's condition); a
    /// rollout's deployment must exist and serve this model.
    ///
    /// Runs act as `run_as` — by default the caller; naming someone else
    /// is for admins (who alone define `command` jobs, and define them for
    /// the developer whose work the versions are).
    pub async fn define_retrain_job(&self, principal: &Principal, model: &ModelName, spec: JobSpec, run_as: Option<&str>) -> Result<RetrainJob> {
        spec.validate()?;
        let subject = job_subject(model);
        let permit = self.authorize(principal, Action::RetrainDefine, &subject).await?;
        if matches!(spec.runner, JobRunner::Command { .. }) && !principal.has_role(Role::Admin) {
            let denial = Denial::single(
                "runner",
                "a `command` job runs a program on the server's host as the server's own user: only admins define one (developers: a `webhook` job)",
            );
            return Err(self.record_denial(principal, Action::RetrainDefine, &subject, denial, None).await);
        }
        if spec.rollout.is_some() && !(principal.has_role(Role::Deployer) || principal.has_role(Role::Admin)) {
            let denial = Denial::single("rollout", "a rollout moves a deployment's traffic by itself: only deployers and admins give a job one");
            return Err(self.record_denial(principal, Action::RetrainDefine, &subject, denial, None).await);
        }
        if let Some(rollout) = &spec.rollout {
            let deployment = self.find_deployment(&rollout.deployment).await?.ok_or_else(|| {
                Error::invalid("rollout.deployment", format!("deployment `{}` does not exist; create it first (`modelops deploy create`)", rollout.deployment))
            })?;
            if &deployment.model != model {
                return Err(Error::invalid("rollout.deployment", format!("deployment `{}` serves model `{}`, not `{model}`", rollout.deployment, deployment.model)));
            }
        }
        // Checked and normalised like every user name (NFC, printable, no
        // invisible characters), before it reaches the database.
        let run_as = match run_as {
            Some(name) => Principal::new(name, []).map_err(|e| match e {
                Error::InvalidInput { reason, .. } => Error::invalid("run_as", reason),
                other => other,
            })?.name().to_string(),
            None => principal.name().to_string(),
        };
        if run_as != principal.name() && !principal.has_role(Role::Admin) {
            let denial = Denial::single("run_as", "only admins define a job that runs as someone else");
            return Err(self.record_denial(principal, Action::RetrainDefine, &subject, denial, None).await);
        }
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer(tx, principal, &m, &[], Action::RetrainDefine, &subject).await?;
        match tx.lock_user(&run_as).await? {
            Some(user) if !user.disabled => {}
            Some(_) => return Err(Error::invalid("run_as", format!("user {} is disabled", quote(&run_as)))),
            None => return Err(Error::invalid("run_as", format!("user {} does not exist", quote(&run_as)))),
        }
        let before = tx.retrain_job_in(model).await?;
        let now = tx.now();
        let job = RetrainJob {
            model: model.clone(),
            spec,
            run_as,
            created_at: before.as_ref().map_or(now, |b| b.created_at),
            updated_at: now,
        };
        tx.put_retrain_job(&job).await?;
        let pending = event(tx.as_ref(), Action::RetrainDefine, subject, before.as_ref().map(snapshot).transpose()?, Some(snapshot(&job)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Removes a model's job; runs under way go on.
    pub async fn delete_retrain_job(&self, principal: &Principal, model: &ModelName) -> Result<()> {
        let subject = job_subject(model);
        let permit = self.authorize(principal, Action::RetrainDefine, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let m = lock_active_model(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer(tx, principal, &m, &[], Action::RetrainDefine, &subject).await?;
        let before = tx.retrain_job_in(model).await?.ok_or_else(|| Error::not_found("retraining job of model", model.as_str()))?;
        tx.delete_retrain_job(model).await?;
        let pending = event(tx.as_ref(), Action::RetrainDefine, subject, Some(snapshot(&before)?), None);
        tx.record(pending).await?;
        tx.commit().await
    }

    pub async fn retrain_job(&self, principal: &Principal, model: &ModelName) -> Result<RetrainJob> {
        self.authorize(principal, Action::Read, &job_subject(model)).await?;
        self.store().retrain_job(model).await?.ok_or_else(|| Error::not_found("retraining job of model", model.as_str()))
    }

    pub async fn retrain_jobs(&self, principal: &Principal) -> Result<Vec<RetrainJob>> {
        self.authorize(principal, Action::Read, "retrain").await?;
        self.store().retrain_jobs().await
    }

    pub async fn job_runs(&self, principal: &Principal, model: Option<&ModelName>, limit: u32) -> Result<Vec<JobRun>> {
        self.authorize(principal, Action::Read, "retrain").await?;
        self.store().job_runs(model, limit).await
    }

    pub async fn job_run(&self, principal: &Principal, id: i64) -> Result<JobRun> {
        self.authorize(principal, Action::Read, "retrain").await?;
        self.store().job_run(id).await?.ok_or_else(|| Error::not_found("retraining run", id.to_string()))
    }

    /// A run's output (the tail kept). Jobs print what they like, paths
    /// and data included: for those who may read recorded predictions.
    pub async fn job_run_log(&self, principal: &Principal, id: i64) -> Result<String> {
        self.authorize(principal, Action::PredictionsRead, "retrain").await?;
        self.store().job_run_log(id).await
    }

    /// Starts a run of the model's job: one transaction checks that the
    /// model has a job, that no run of it is under way and (for an alert
    /// or the schedule) that the cool-down is over and the job takes the
    /// trigger; records the run, mints its scoped token (expiring after
    /// the time limit) and answers the request. `principal` is the person
    /// for a run by hand, the system otherwise.
    pub async fn start_job_run(&self, principal: &Principal, model: &ModelName, cause: RunCause) -> Result<StartOutcome> {
        let trigger = cause.trigger();
        let subject = job_subject(model);
        let permit = self.authorize(principal, Action::RetrainStart, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let skip = |why: String| -> Result<StartOutcome> {
            match trigger {
                RunTrigger::Manual => Err(Error::Conflict(why)),
                _ => Ok(StartOutcome::Skipped(why)),
            }
        };
        let request_id = match &cause {
            RunCause::Alert(cause) => Some(cause.request.id),
            _ => None,
        };
        let outcome = self.start_in(tx.as_mut(), principal, model, &cause).await;
        let outcome = match outcome {
            Err(Error::Forbidden(denial)) => {
                drop(tx);
                return Err(self.record_denial(principal, Action::RetrainStart, &subject, denial, None).await);
            }
            Ok(Ok(started)) => started,
            Ok(Err(why)) => {
                let out = skip(why.clone());
                if out.is_ok() {
                    if let Some(id) = request_id {
                        tx.set_retrain_request_state(id, &format!("skipped: {why}")).await?;
                        tx.commit().await?;
                    }
                }
                return out;
            }
            Err(e) => return Err(e),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// The checks and writes of [`Registry::start_job_run`]; `Ok(Err(why))`
    /// when the run does not start.
    async fn start_in(&self, tx: &mut dyn WriteTx, principal: &Principal, model: &ModelName, cause: &RunCause) -> Result<std::result::Result<StartOutcome, String>> {
        let trigger = cause.trigger();
        let m = match lock_active_model(tx, model).await {
            Ok(m) => m,
            Err(Error::NotFound { .. }) if trigger != RunTrigger::Manual => return Ok(Err(format!("model `{model}` does not exist or is retired"))),
            Err(e) => return Err(e),
        };
        if trigger == RunTrigger::Manual {
            m.ensure_developer(principal).or_else(|e| if principal.has_role(modelops_core::auth::Role::Deployer) { Ok(()) } else { Err(e) })?;
        }
        let Some(job) = tx.retrain_job_in(model).await? else {
            return Ok(Err(format!("model `{model}` has no retraining job; define one with `modelops jobs define {model} …`")));
        };
        if trigger == RunTrigger::Alert && !job.spec.on_alert {
            return Ok(Err("the job does not start on alerts (`on_alert` is false)".into()));
        }
        if let Some(active) = tx.active_job_run_in(model).await? {
            return Ok(Err(format!("run {} of model `{model}` is still `{}` (one run per model at a time)", active.id, active.state)));
        }
        let now = tx.now();
        if trigger != RunTrigger::Manual {
            let recent = self.store().job_runs(Some(model), MAX_FAILED_IN_A_ROW as u32).await?;
            let failed = |r: &&JobRun| matches!(r.state, RunState::Failed | RunState::TimedOut | RunState::NoVersion) && r.started_at >= job.updated_at;
            if recent.iter().take_while(failed).count() >= MAX_FAILED_IN_A_ROW {
                return Ok(Err(format!(
                    "the last {MAX_FAILED_IN_A_ROW} runs of model `{model}` failed: alerts and the schedule start no more until the job is defined again or a run by hand succeeds"
                )));
            }
            if let Some(last) = tx.last_triggered_run_in(model).await? {
                let ready = last + chrono::Duration::seconds(job.spec.cooldown_seconds as i64);
                if now < ready {
                    return Ok(Err(format!(
                        "in the cool-down: the last triggered run started at {}, the next may start from {}",
                        modelops_core::clock::format_time(&last),
                        modelops_core::clock::format_time(&ready)
                    )));
                }
            }
        }
        let user = tx.lock_user(&job.run_as).await?;
        match user {
            Some(u) if !u.disabled => {}
            _ => return Ok(Err(format!("the job runs as {}, who is disabled or no longer exists; define the job again", quote(&job.run_as)))),
        }
        let (alert, request, window) = match cause {
            RunCause::Alert(cause) => (Some(cause.request.alert_id), Some(cause.request.id), cause.window.clone()),
            _ => (None, None, None),
        };
        let mut run = JobRun {
            id: 0,
            model: model.clone(),
            trigger,
            requested_by: principal.name().to_string(),
            alert,
            request,
            window,
            parent_version: m.aliases.get(CHAMPION).copied(),
            version: None,
            state: RunState::Running,
            reason: "the job is running".into(),
            exit_code: None,
            started_at: now,
            job_ended_at: None,
            ended_at: None,
            updated_at: now,
            stage_started_at: None,
            heartbeat_at: None,
            token: None,
        };
        run.id = tx.insert_job_run(&run).await?;
        let expires = now + chrono::Duration::seconds(job.spec.timeout_seconds as i64) + TOKEN_GRACE;
        let scope = TokenScope { model: model.clone(), run: run.id };
        let token = Self::insert_scoped_token(tx, &job.run_as, &format!("retraining run {}", run.id), Some(expires), Some(scope)).await?;
        run.token = Some(token.token.id.clone());
        tx.update_job_run(&run).await?;
        if let Some(id) = request {
            tx.set_retrain_request_state(id, &format!("started run {}", run.id)).await?;
        }
        let after = json!({ "run": snapshot(&run)?, "job": snapshot(&job.spec)? });
        let pending = event(tx, Action::RetrainStart, run.subject(), None, Some(after));
        tx.record(pending).await?;
        Ok(Ok(StartOutcome::Started(Box::new(Started { run, job, token: token.secret }))))
    }

    /// The server moves a run on: `next` is the run as it now stands (its
    /// state, reason, version, times), moved from `from` — if the stored run
    /// is no longer there (another replica or a person moved it meanwhile,
    /// or it ended) nothing changes and the answer is a conflict. Audited
    /// with the state it left. With `revoke_token`, or when the run ends,
    /// its token is revoked in the same transaction.
    pub async fn progress_job_run(&self, next: &JobRun, from: RunState, revoke_token: bool) -> Result<JobRun> {
        self.move_run(&Principal::system(), Action::RetrainProgress, next, from, revoke_token).await
    }

    /// A person stops a run (`cancelled`): audited as theirs, its token
    /// revoked. The caller checked the state and undid what the run had
    /// set up (a shadow).
    pub async fn cancel_job_run(&self, principal: &Principal, next: &JobRun, from: RunState) -> Result<JobRun> {
        self.move_run(principal, Action::RetrainCancel, next, from, true).await
    }

    async fn move_run(&self, principal: &Principal, action: Action, next: &JobRun, from: RunState, revoke_token: bool) -> Result<JobRun> {
        let subject = next.subject();
        let permit = self.authorize(principal, action, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let before = tx.job_run_in(next.id).await?.ok_or_else(|| Error::not_found("retraining run", next.id.to_string()))?;
        if before.state != from || before.state.is_final() {
            return Err(Error::Conflict(format!("retraining run {} is `{}` now, not `{from}`: it moved meanwhile", next.id, before.state)));
        }
        let mut run = next.clone();
        run.updated_at = tx.now();
        if run.state.is_final() && run.ended_at.is_none() {
            run.ended_at = Some(run.updated_at);
        }
        // A version the job registered meanwhile is the store's to know.
        if run.version.is_none() {
            run.version = before.version;
        }
        tx.update_job_run(&run).await?;
        let mut after = snapshot(&run)?;
        if let (true, Some(id)) = (revoke_token || run.state.is_final(), &run.token) {
            if let Some(token) = tx.lock_token(id).await? {
                if token.revoked_at.is_none() {
                    let revoked = modelops_core::governance::ApiToken { revoked_at: Some(run.updated_at), ..token };
                    tx.update_token(&revoked).await?;
                    after["token_revoked"] = json!(id);
                }
            }
        }
        let pending = event(tx.as_ref(), action, subject, Some(json!({ "state": before.state.as_str(), "version": before.version })), Some(after));
        tx.record(pending).await?;
        tx.commit().await?;
        self.forget_cached_tokens();
        Ok(run)
    }

    /// Runs not yet at their end, for the loop.
    pub async fn active_job_runs(&self) -> Result<Vec<JobRun>> {
        self.store().active_job_runs().await
    }

    /// Retraining requests opened by alerts and not yet answered.
    pub async fn open_retrain_requests(&self) -> Result<Vec<RetrainRequest>> {
        self.store().open_retrain_requests().await
    }

    /// A model's job, for the loop.
    pub async fn store_retrain_job(&self, model: &ModelName) -> Result<Option<RetrainJob>> {
        self.store().retrain_job(model).await
    }

    /// Every model's job, for the schedule.
    pub async fn all_retrain_jobs(&self) -> Result<Vec<RetrainJob>> {
        self.store().retrain_jobs().await
    }

    /// When the model's last run by the schedule or an alert started.
    pub async fn last_job_run_start(&self, model: &ModelName) -> Result<Option<DateTime<Utc>>> {
        Ok(self.store().job_runs(Some(model), 1).await?.first().map(|r| r.started_at))
    }

    /// Replaces a run's kept output and says the job still runs
    /// (bookkeeping: not audited).
    pub async fn put_job_run_log(&self, id: i64, log: &str) -> Result<()> {
        self.store().put_job_run_log(id, log, self.now()).await
    }

    /// Who may stop a run: the model's developers, and deployers.
    pub async fn authorize_cancel(&self, principal: &Principal, run: &JobRun) -> Result<()> {
        let subject = run.subject();
        self.authorize(principal, Action::RetrainCancel, &subject).await?;
        if principal.has_role(Role::Deployer) || principal.has_role(Role::Admin) {
            return Ok(());
        }
        let model = self.get_model(&run.model).await?;
        match model.ensure_developer(principal) {
            Err(Error::Forbidden(denial)) => Err(self.record_denial(principal, Action::RetrainCancel, &subject, denial, None).await),
            other => other,
        }
    }

    /// The version a scoped principal's run registered: what its token
    /// may still change (`None` before it registers one).
    pub(crate) async fn run_version(&self, run: i64) -> Result<Option<u32>> {
        Ok(self.store().job_run(run).await?.and_then(|r| r.version))
    }
}
