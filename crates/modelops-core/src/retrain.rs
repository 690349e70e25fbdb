//! Retraining, the closed loop's vocabulary: a model's retraining job (what
//! runs, what triggers it, the rollout its result takes), the runs of that
//! job and the states a run passes through on its way back to production,
//! and the scope of the short-lived token a run is given.
//!
//! The rules here are structural (a command has a program, a schedule
//! parses, the cool-down and time limit are bounded); what a run does next
//! is decided by `modelops-retrain` over the registry's use cases.

use crate::deployment::{CanaryStep, Hold};
use crate::error::{Error, Result};
use crate::model::string_enum;
use crate::name::{quote, ModelName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;

/// A run's time limit when the job gives none: one hour.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;
/// The longest a run may take: a day.
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;
/// The pause after a triggered run before another trigger starts one, when
/// the job gives none: an hour (a drifting window keeps firing alerts; one
/// retrain answers them all).
pub const DEFAULT_COOLDOWN_SECONDS: u64 = 3600;
/// The longest cool-down: 30 days.
pub const MAX_COOLDOWN_SECONDS: u64 = 30 * 86_400;
/// The tail of a run's output that is kept (stdout and stderr together).
pub const MAX_LOG_BYTES: usize = 64 * 1024;
/// Arguments of a command, and environment variables a job may set.
pub const MAX_ARGS: usize = 64;
/// Environment variables the server sets for a run; a job may not set them.
pub const RESERVED_ENV_PREFIX: &str = "MODELOPS_";

/// What a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobRunner {
    /// A local program run as a child process of the server (no shell):
    /// `argv[0]` is the program, found on `PATH` or relative to `dir`.
    Command {
        argv: Vec<String>,
        /// The working directory (the run's own work folder when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir: Option<String>,
        /// Extra environment variables (not `MODELOPS_*`, which the server sets).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
    },
    /// An HTTP endpoint told to start the run (an Airflow DAG trigger, a
    /// Kubeflow pipeline run, any CI endpoint): it is POSTed the run, where
    /// to fetch the window and the token to register the result with; the
    /// job ends when a version is registered with that token, when the
    /// endpoint refuses the POST, or at the time limit.
    Webhook {
        url: String,
        /// The server's environment variable holding the HMAC-SHA256 secret
        /// the body is signed with (the secret itself is never stored).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_env: Option<String>,
    },
}

/// A shadow stage before the canary: the new version is mirrored every
/// call of the deployment and its decisions compared with the serving
/// version's; too few agreeing stops the rollout before any customer sees
/// the new version (a policy change's blast radius, bounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowStage {
    /// Calls compared before the verdict.
    pub calls: u64,
    /// The share of compared calls whose decisions must agree, 0–1.
    pub min_agreement: f64,
    /// The output compared (the first output when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The most calls a shadow stage compares.
pub const MAX_SHADOW_CALLS: u64 = 1_000_000;

/// The rollout a retrained version takes once the gates allow it: a canary
/// on a deployment, which promotes or rolls back by itself, optionally
/// after a shadow stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutTemplate {
    pub deployment: ModelName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowStage>,
    /// The canary's steps (percent of traffic, increasing) and their holds.
    pub steps: Vec<CanaryStep>,
    /// The CEL rollback condition (the deployments' default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}
fn default_cooldown() -> u64 {
    DEFAULT_COOLDOWN_SECONDS
}
fn default_true() -> bool {
    true
}

/// A model's retraining job as defined by its developers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub runner: JobRunner,
    /// A run still going after this long is stopped and recorded as timed out.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// After a triggered run starts, alerts and schedules start no other
    /// run for this long (a run by hand is not held back).
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: u64,
    /// Whether an alert rule with a `retrain` action starts a run.
    #[serde(default = "default_true")]
    pub on_alert: bool,
    /// A schedule in cron syntax (five fields, UTC: `0 3 * * 1` is Mondays
    /// at 03:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The canary the result takes once approved; without one the loop
    /// stops at `approved` and leaves the rollout to a deployer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutTemplate>,
}

impl JobSpec {
    /// The structural rules; the rollout's condition is compiled by the
    /// caller, which owns the condition language's schema.
    pub fn validate(&self) -> Result<()> {
        match &self.runner {
            JobRunner::Command { argv, dir, env } => {
                if argv.is_empty() || argv[0].trim().is_empty() {
                    return Err(Error::invalid("runner.argv", "give the program to run and its arguments, e.g. [\"python\", \"train.py\"]"));
                }
                if argv.len() > MAX_ARGS {
                    return Err(Error::invalid("runner.argv", format!("{} arguments; at most {MAX_ARGS}", argv.len())));
                }
                for (i, arg) in argv.iter().enumerate() {
                    if arg.contains('\0') || arg.len() > 4096 {
                        return Err(Error::invalid(format!("runner.argv[{i}]"), "contains NUL or is longer than 4096 bytes"));
                    }
                }
                if let Some(dir) = dir {
                    if dir.is_empty() || dir.contains('\0') {
                        return Err(Error::invalid("runner.dir", format!("{} is not a directory path", quote(dir))));
                    }
                }
                if env.len() > MAX_ARGS {
                    return Err(Error::invalid("runner.env", format!("{} variables; at most {MAX_ARGS}", env.len())));
                }
                for (key, value) in env {
                    let valid = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.starts_with(|c: char| c.is_ascii_digit());
                    if !valid {
                        return Err(Error::invalid(format!("runner.env.{key}"), "is not an environment variable name (letters, digits, `_`)"));
                    }
                    if key.starts_with(RESERVED_ENV_PREFIX) {
                        return Err(Error::invalid(format!("runner.env.{key}"), "`MODELOPS_*` variables are set by the server for each run"));
                    }
                    if value.contains('\0') || value.len() > 4096 {
                        return Err(Error::invalid(format!("runner.env.{key}"), "contains NUL or is longer than 4096 bytes"));
                    }
                }
            }
            JobRunner::Webhook { url, secret_env } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(Error::invalid("runner.url", format!("{} is not an http(s) URL", quote(url))));
                }
                // Anyone who may read the job reads its URL: no credentials in it.
                let authority = url.split("://").nth(1).unwrap_or("").split(['/', '?', '#']).next().unwrap_or("");
                if authority.contains('@') {
                    return Err(Error::invalid("runner.url", "must not carry a user or password (anyone who reads the job would read them); sign with `secret_env` instead"));
                }
                if let Some(name) = secret_env {
                    if name.is_empty() || name.len() > 256 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(Error::invalid("runner.secret_env", format!("{} is not an environment variable name", quote(name))));
                    }
                    // The server's own settings are not signing keys (a
                    // known body signed with one would let it be guessed).
                    if name.starts_with(RESERVED_ENV_PREFIX) {
                        return Err(Error::invalid("runner.secret_env", format!("{} is one of the server's own settings (`MODELOPS_*`), not a webhook secret", quote(name))));
                    }
                }
            }
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > MAX_TIMEOUT_SECONDS {
            return Err(Error::invalid("timeout_seconds", format!("`{}` is not between 1 and {MAX_TIMEOUT_SECONDS} (a day)", self.timeout_seconds)));
        }
        if self.cooldown_seconds > MAX_COOLDOWN_SECONDS {
            return Err(Error::invalid("cooldown_seconds", format!("`{}` is more than {MAX_COOLDOWN_SECONDS} (30 days)", self.cooldown_seconds)));
        }
        if let Some(schedule) = &self.schedule {
            parse_schedule(schedule)?;
        }
        if let Some(output) = self.rollout.as_ref().and_then(|r| r.shadow.as_ref()).and_then(|s| s.output.as_deref()) {
            if output.is_empty() || output.len() > 256 || output.chars().any(char::is_control) {
                return Err(Error::invalid("rollout.shadow.output", format!("{} is not an output name", quote(output))));
            }
        }
        if let Some(shadow) = self.rollout.as_ref().and_then(|r| r.shadow.as_ref()) {
            if shadow.calls == 0 || shadow.calls > MAX_SHADOW_CALLS {
                return Err(Error::invalid("rollout.shadow.calls", format!("`{}` is not between 1 and {MAX_SHADOW_CALLS}", shadow.calls)));
            }
            if !(0.0..=1.0).contains(&shadow.min_agreement) {
                return Err(Error::invalid("rollout.shadow.min_agreement", format!("`{}` is not a share between 0 and 1", shadow.min_agreement)));
            }
        }
        if let Some(rollout) = &self.rollout {
            let plan = crate::deployment::CanaryPlan { version: 1, steps: rollout.steps.clone(), condition: rollout.condition.clone().unwrap_or_else(|| "true".into()) };
            plan.check().map_err(|e| match e {
                Error::InvalidInput { field, reason } => Error::InvalidInput { field: field.replacen("canary", "rollout", 1), reason },
                other => other,
            })?;
        }
        Ok(())
    }

    /// When the schedule next fires after `after` (`None` without one).
    pub fn next_scheduled(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let cron = parse_schedule(self.schedule.as_deref()?).ok()?;
        cron.find_next_occurrence(&after, false).ok()
    }
}

/// A cron schedule: five fields (minute hour day-of-month month
/// day-of-week), or six with seconds first; UTC.
pub fn parse_schedule(text: &str) -> Result<croner::Cron> {
    if text.len() > 256 || text.chars().any(char::is_control) {
        return Err(Error::invalid("schedule", format!("{} is not a cron schedule (five fields, e.g. `0 3 * * 1`)", quote(text))));
    }
    let fields = text.split_whitespace().count();
    if !(5..=6).contains(&fields) {
        return Err(Error::invalid("schedule", format!("{} has {fields} fields; cron takes 5 (minute hour day month weekday), e.g. `0 3 * * 1`", quote(text))));
    }
    croner::Cron::from_str(text).map_err(|e| Error::invalid("schedule", format!("{} is not a cron schedule: {e}", quote(text))))
}

/// The steps a rollout takes when the CLI gives only percentages: each
/// holds for `requests` calls.
pub fn steps_of(weights: &[u32], requests: Option<u64>, duration_ms: Option<u64>) -> Vec<CanaryStep> {
    weights.iter().map(|&weight| CanaryStep { weight, hold: Hold { requests, duration_ms } }).collect()
}

/// A model's retraining job as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainJob {
    pub model: ModelName,
    pub spec: JobSpec,
    /// Runs act as this user (the one who last defined the job), through a
    /// token scoped to the run.
    pub run_as: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

string_enum!(
    /// What started a run.
    RunTrigger {
        // An alert rule with a `retrain` action fired (drift, performance,
        // the label-free estimate: whatever the rule watches).
        Alert => "alert",
        Schedule => "schedule",
        // `modelops retrain NAME`, `POST /api/v1/models/{name}/retrain`.
        Manual => "manual",
    }
);

string_enum!(
    /// Where a run stands. `running` is the job itself; after it, the loop
    /// carries the version it produced through the gates and the canary.
    RunState {
        Running => "running",
        // The job failed (a non-zero exit, the webhook refused or reported
        // failure), ran past its time limit, or ended without registering a
        // version. Alerted; not retried.
        Failed => "failed",
        TimedOut => "timed_out",
        NoVersion => "no_version",
        // The version waits for a gate: submitted for validation, or for
        // the approvals the policy asks for (the run's reason says whose).
        AwaitingApproval => "awaiting_approval",
        // The version shadows the deployment: its decisions are compared.
        Shadow => "shadow",
        // The canary of the version runs.
        Canary => "canary",
        // The canary completed: the version serves all traffic.
        Promoted => "promoted",
        // The canary tripped: the champion keeps serving. Alerted.
        RolledBack => "rolled_back",
        // A validator rejected the version, or it was retired.
        Rejected => "rejected",
        // Approved, and the job has no rollout: a deployer takes it on.
        Approved => "approved",
        // Stopped by a person before its end.
        Cancelled => "cancelled",
    }
);

impl RunState {
    /// Whether the run has come to its end.
    pub fn is_final(self) -> bool {
        !matches!(self, RunState::Running | RunState::AwaitingApproval | RunState::Shadow | RunState::Canary)
    }
}

/// The window of predictions that triggered a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerWindow {
    pub deployment: ModelName,
    pub monitor: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The serving version the window was cut for.
    pub version: u32,
}

/// One run of a model's retraining job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    /// Assigned by the store.
    pub id: i64,
    pub model: ModelName,
    pub trigger: RunTrigger,
    /// Who asked (a user for a run by hand; `system` otherwise).
    pub requested_by: String,
    /// The alert and the retraining request it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TriggerWindow>,
    /// The version serving (the champion) when the run started: the new
    /// version's parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_version: Option<u32>,
    /// The version the job registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub state: RunState,
    /// Why the run is where it is, in a sentence.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub started_at: DateTime<Utc>,
    /// When the job itself ended (the process exited, the webhook's job
    /// registered its version or failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_ended_at: Option<DateTime<Utc>>,
    /// When the run reached a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// When the current stage (the shadow, the canary) began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_started_at: Option<DateTime<Utc>>,
    /// When the replica running the job last said it still does (a run
    /// `running` without a recent one is an orphan: its replica stopped).
    /// Kept in its own column, not in the stored body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// The id of the token the run was given (revoked when the job ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl JobRun {
    /// The job's duration, once it ended.
    pub fn job_seconds(&self) -> Option<f64> {
        self.job_ended_at.map(|end| (end - self.started_at).num_milliseconds() as f64 / 1000.0)
    }

    /// The audit subject of a run.
    pub fn subject(&self) -> String {
        run_subject(&self.model, self.id)
    }
}

pub fn run_subject(model: &ModelName, id: i64) -> String {
    format!("model/{model}/retrain/{id}")
}

pub fn job_subject(model: &ModelName) -> String {
    format!("model/{model}/retrain-job")
}

/// What a run's token may do: act as a developer of this model only, and
/// register one version, whose lineage then names the run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenScope {
    pub model: ModelName,
    pub run: i64,
}

/// What a retrained version's lineage says about where it came from (set
/// by the registry from the run whose token registered it, never by the
/// client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrainLineage {
    pub job_run: i64,
    pub trigger: RunTrigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TriggerWindow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(argv: &[&str]) -> JobSpec {
        JobSpec {
            runner: JobRunner::Command { argv: argv.iter().map(|s| s.to_string()).collect(), dir: None, env: BTreeMap::new() },
            timeout_seconds: 60,
            cooldown_seconds: 0,
            on_alert: true,
            schedule: None,
            rollout: None,
        }
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::InvalidInput { field, .. } => field,
            other => panic!("not an input error: {other}"),
        }
    }

    #[test]
    fn a_job_needs_a_program_a_bounded_time_and_a_real_schedule() {
        command(&["python", "train.py"]).validate().unwrap();
        assert_eq!(field_of(command(&[]).validate().unwrap_err()), "runner.argv");
        let mut spec = command(&["x"]);
        spec.timeout_seconds = 0;
        assert_eq!(field_of(spec.validate().unwrap_err()), "timeout_seconds");
        spec.timeout_seconds = MAX_TIMEOUT_SECONDS + 1;
        assert_eq!(field_of(spec.validate().unwrap_err()), "timeout_seconds");
        let mut spec = command(&["x"]);
        spec.schedule = Some("61 * * * *".into());
        assert_eq!(field_of(spec.validate().unwrap_err()), "schedule");
        spec.schedule = Some("every day".into());
        assert_eq!(field_of(spec.validate().unwrap_err()), "schedule");
        spec.schedule = Some("0 3 * * 1".into());
        spec.validate().unwrap();
        let monday = DateTime::parse_from_rfc3339("2026-12-07T03:00:00Z").unwrap().with_timezone(&Utc);
        let sunday = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(spec.next_scheduled(sunday), Some(monday));
    }

    #[test]
    fn the_server_owns_the_modelops_variables() {
        let mut spec = command(&["x"]);
        if let JobRunner::Command { env, .. } = &mut spec.runner {
            env.insert("MODELOPS_TOKEN".into(), "mine".into());
        }
        assert_eq!(field_of(spec.validate().unwrap_err()), "runner.env.MODELOPS_TOKEN");
    }

    #[test]
    fn a_rollout_is_checked_like_a_canary() {
        let mut spec = command(&["x"]);
        spec.rollout = Some(RolloutTemplate { deployment: ModelName::parse("fraud").unwrap(), shadow: None, steps: steps_of(&[50, 20], Some(10), None), condition: None });
        assert_eq!(field_of(spec.validate().unwrap_err()), "rollout.steps");
        spec.rollout = Some(RolloutTemplate { deployment: ModelName::parse("fraud").unwrap(), shadow: None, steps: steps_of(&[20, 100], Some(10), None), condition: None });
        spec.validate().unwrap();
        let shadow = |calls, min_agreement| Some(ShadowStage { calls, min_agreement, output: None });
        spec.rollout.as_mut().unwrap().shadow = shadow(0, 0.9);
        assert_eq!(field_of(spec.validate().unwrap_err()), "rollout.shadow.calls");
        spec.rollout.as_mut().unwrap().shadow = shadow(500, 1.5);
        assert_eq!(field_of(spec.validate().unwrap_err()), "rollout.shadow.min_agreement");
        spec.rollout.as_mut().unwrap().shadow = shadow(500, 0.9);
        spec.validate().unwrap();
    }

    #[test]
    fn a_webhook_is_an_http_url() {
        let mut spec = command(&["x"]);
        spec.runner = JobRunner::Webhook { url: "ftp://x".into(), secret_env: None };
        assert_eq!(field_of(spec.validate().unwrap_err()), "runner.url");
        spec.runner = JobRunner::Webhook { url: "https://airflow.example/hook".into(), secret_env: Some("MODELOPS_DATABASE_URL".into()) };
        assert_eq!(field_of(spec.validate().unwrap_err()), "runner.secret_env");
        spec.runner = JobRunner::Webhook { url: "https://bob:pw@airflow.example/hook".into(), secret_env: None };
        assert_eq!(field_of(spec.validate().unwrap_err()), "runner.url");
        spec.runner = JobRunner::Webhook { url: "https://airflow.example/api/v1/dags/retrain/dagRuns?x=a@b".into(), secret_env: Some("AIRFLOW_SECRET".into()) };
        spec.validate().unwrap();
        assert!(!RunState::Canary.is_final());
        assert!(RunState::RolledBack.is_final());
    }
}
