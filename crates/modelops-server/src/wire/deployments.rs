//! Deployments and prediction records on the wire (shared with the CLI).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// A version and its share of traffic, in whole percent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteWire {
    #[schema(minimum = 1)]
    pub version: u32,
    #[schema(maximum = 100)]
    pub weight: u32,
}

/// A version that sees `percent` of the calls; its answers are recorded
/// and discarded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowWire {
    #[schema(minimum = 1)]
    pub version: u32,
    #[serde(default = "all")]
    pub percent: f64,
}

fn all() -> f64 {
    100.0
}

/// How long a canary step holds: until the canary has answered `requests`
/// calls in it and `duration` (`30s`, `5m`, `500ms`) has passed — both
/// when both are given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// A canary step: its weight alone (held as the canary's `hold` says), or
/// a weight with a hold of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StepWire {
    Weight(u32),
    Held(HeldStepWire),
}

/// A step with a hold of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeldStepWire {
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// A canary: the new version, its steps (percent of traffic, increasing),
/// how long each holds, and the CEL condition that rolls it back (the
/// shipped default when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CanaryWire {
    #[schema(minimum = 1)]
    pub version: u32,
    /// E.g. `[5, 25, 50, 100]`.
    pub steps: Vec<StepWire>,
    /// The hold of steps that give none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// `POST /api/v1/deployments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeploymentRequest {
    /// The endpoint's name: `/v2/models/{name}/infer` serves it.
    pub name: String,
    /// The model it serves.
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `direct`, `ab`, `canary` or `shadow`; implied by the routes when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// One version taking all traffic (or give `routes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteWire>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<ShadowWire>,
    /// A request header whose value keeps a caller on one version (`ab`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryWire>,
    /// Share of calls recorded, 0–1 (1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<f64>,
}

/// `PATCH /api/v1/deployments/{name}`: only what is given changes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDeploymentRequest {
    /// The revision this change is made against: refused (409) when the
    /// deployment changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteWire>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadows: Option<Vec<ShadowWire>>,
    /// An empty string removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_header: Option<String>,
    /// Starts a canary from the version serving all traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<f64>,
}

/// A canary step as stored: weight and hold (duration in milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CanaryStepResponse {
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// A canary under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CanaryResponse {
    pub version: u32,
    /// The version it replaces, which serves the rest.
    pub stable: u32,
    /// The current step, from 1.
    pub step: usize,
    pub steps: Vec<CanaryStepResponse>,
    pub condition: String,
    pub step_started_at: DateTime<Utc>,
}

/// A deployment, and what it served since this server started (`live`:
/// calls, errors, records kept and not kept, each route's statistics since
/// its current step, the canary's judge).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentResponse {
    pub name: String,
    pub model: String,
    pub description: String,
    pub strategy: String,
    pub routes: Vec<RouteWire>,
    pub shadows: Vec<ShadowWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky_header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryResponse>,
    pub sampling: f64,
    /// `stable`, `progressing`, `rolled_back` or `retired`.
    pub state: String,
    /// Why it is in its state (a rollback's reason, a canary's last step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Versions that served all traffic before, oldest first.
    pub previous: Vec<u32>,
    pub revision: u64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub live: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentList {
    pub deployments: Vec<DeploymentResponse>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeploymentListParams {
    /// Only the deployments of this model.
    pub model: Option<String>,
    /// Retired deployments too.
    #[serde(default)]
    pub include_retired: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PredictionParams {
    /// Records at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Records before this time (RFC 3339).
    pub until: Option<String>,
    /// From a previous page's `next_page_token`.
    pub page_token: Option<String>,
    /// Records per page, 1–1000 (100 when absent); ignored by `parquet`.
    #[param(minimum = 1, maximum = 1000)]
    pub max_results: Option<u32>,
    /// `json` (pages) or `parquet` (the whole window in one file: one row
    /// per predicted row, inputs and outputs as columns).
    pub format: Option<String>,
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictionRecordResponse {
    pub id: i64,
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub version: u32,
    /// `primary` (the answer given) or `shadow` (mirrored, discarded).
    pub route: String,
    /// Open Inference Protocol tensors.
    #[schema(value_type = Vec<Object>)]
    pub inputs: Value,
    #[schema(value_type = Vec<Object>)]
    pub outputs: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_us: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictionPage {
    pub records: Vec<PredictionRecordResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}
