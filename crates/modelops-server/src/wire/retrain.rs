//! Retraining on the wire (shared with the CLI): a model's job, its runs
//! and their output.

use super::{HoldWire, StepWire};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// What a job runs: `command` (a local program, no shell) or `webhook`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerWire {
    /// `command` or `webhook`.
    pub kind: String,
    /// Command: the program and its arguments, e.g. `["python", "train.py"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// Command: the working directory (the run's own folder when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Command: extra environment variables (not `MODELOPS_*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Webhook: where to POST the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Webhook: the server's environment variable holding the HMAC secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

/// A shadow stage before the canary: the new version mirrors every call
/// and its decisions are compared with the serving version's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowStageWire {
    /// Calls compared before the verdict.
    pub calls: u64,
    /// The share of compared calls whose decisions must agree, 0–1.
    pub min_agreement: f64,
    /// The output compared (the first output when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The rollout a retrained version takes once approved: an optional
/// shadow stage, then a canary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutWire {
    pub deployment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowStageWire>,
    /// E.g. `[10, 50, 100]`.
    pub steps: Vec<StepWire>,
    /// The hold of steps that give none (100 calls when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldWire>,
    /// The CEL rollback condition (the deployments' default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// `PUT /api/v1/models/{name}/retrain-job`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpecWire {
    pub runner: RunnerWire,
    /// A run still going after this long is stopped (3600 when absent; at most a day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// After a triggered run starts, alerts and the schedule start no other
    /// for this long (3600 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u64>,
    /// Whether alert rules with a `retrain` action start a run (true when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_alert: Option<bool>,
    /// Cron, five fields, UTC (`0 3 * * 1`: Mondays at 03:00).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutWire>,
    /// The user runs act as (the caller when absent; someone else: admins only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetrainJobResponse {
    pub model: String,
    pub spec: JobSpecWire,
    /// Runs act as this user, through a token scoped to the run.
    pub run_as: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetrainJobList {
    pub jobs: Vec<RetrainJobResponse>,
}

/// The window of predictions that triggered a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriggerWindowWire {
    pub deployment: String,
    pub monitor: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRunResponse {
    pub id: i64,
    pub model: String,
    /// `alert`, `schedule` or `manual`.
    pub trigger: String,
    pub requested_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TriggerWindowWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_version: Option<u32>,
    /// The version the job registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// `running`, `failed`, `timed_out`, `no_version`, `awaiting_approval`,
    /// `canary`, `promoted`, `rolled_back`, `rejected` or `approved`.
    pub state: String,
    /// Why the run is where it is (whose approval it waits for, why it failed).
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_ended_at: Option<DateTime<Utc>>,
    /// The job's duration in seconds, once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRunList {
    pub runs: Vec<JobRunResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRunLog {
    pub run: i64,
    /// The job's stdout and stderr, interleaved; the last 64 KiB.
    pub log: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobRunParams {
    pub model: Option<String>,
    /// At most this many runs, newest first (50 when absent, at most 1000).
    pub limit: Option<u32>,
}

/// A retrained version's lineage: the run and what triggered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetrainLineageWire {
    pub job_run: i64,
    pub trigger: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TriggerWindowWire>,
}
