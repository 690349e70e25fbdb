//! Live monitoring on the wire (shared with the CLI): reference profiles,
//! monitors and their alert rules, window results, labels, alerts and
//! retraining requests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// A reference profile to set on a version: the JSON `modelops profile fit`
/// writes, as text (its sha256 is of this text) or as an object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetReferenceRequest {
    #[schema(value_type = Object)]
    pub profile: Value,
    /// Where it came from (a file name, a window); the profile's own
    /// `source` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The label-free performance estimator (CBPE) fitted on the same
    /// reference's scores and labels (`modelops reference set … --label`),
    /// as text or an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub estimator: Option<Value>,
    /// The file the profile was fitted from, uploaded first
    /// (`POST /api/v1/artifacts`), kept with the version: evidently-mode
    /// monitors compare whole windows with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ReferenceDataWire>,
}

/// Reference data kept as an artifact.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceDataWire {
    pub sha256: String,
    /// `.parquet` or `.csv`: how it reads.
    pub filename: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReferenceResponse {
    pub model: String,
    pub version: u32,
    pub sha256: String,
    pub source: String,
    pub rows: u64,
    /// Whether a label-free performance estimator (CBPE) came with it.
    #[serde(default)]
    pub estimator: bool,
    /// The reference data kept with it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ReferenceDataWire>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// The profile itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub profile: Option<Value>,
}

/// How windows are cut: `every` (a duration: `30s`, `1h`, `1d`) or `rows`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftWire {
    /// `default` (against the reference profile, from aggregates, in
    /// bounded memory) or `evidently` (Evidently's numbers over every call
    /// of a closed window against the reference data kept with the
    /// version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// One method for every column (`ks`, `wasserstein`, `psi`,
    /// `jensenshannon`, `chisquare`, `z`, `kl_div`, `hellinger`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The dataset drifts when at least this share of columns does (0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_share: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PerformanceWire {
    /// The output column of the predicted label or value (`label`).
    pub prediction: String,
    /// The output column of the positive class's probability (`probabilities_1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_label: Option<String>,
    /// An input column: fairness gaps between its groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness_attribute: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertActionWire {
    /// `webhook`, `degrade`, `rollback_canary` or `retrain`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The server's environment variable holding the webhook's HMAC secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleWire {
    pub name: String,
    /// CEL over the window's result: `drift.share >= 0.5`,
    /// `drift.detected['income']`, `performance['accuracy'] < 0.8`.
    pub condition: String,
    /// How long the condition must hold before the alert fires (`10m`).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// After firing, quiet for this long (`1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<String>,
    #[serde(default)]
    pub actions: Vec<AlertActionWire>,
}

/// A monitor as asked for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMonitorRequest {
    pub name: String,
    pub window: WindowWire,
    /// Columns to watch (inputs and outputs as the exported table names
    /// them); all of the reference profile's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub drift: DriftWire,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<PerformanceWire>,
    /// Fewer rows in a window: "not computed" (30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u64>,
    #[serde(default)]
    pub alerts: Vec<AlertRuleWire>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorResponse {
    pub deployment: String,
    pub name: String,
    /// The monitor as stored (durations in milliseconds).
    #[schema(value_type = Object)]
    pub spec: Value,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    /// What the engine has done since this server started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub live: Option<Value>,
    /// Rules firing now, as `rule@version`.
    #[serde(default)]
    pub firing: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorList {
    pub monitors: Vec<MonitorResponse>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultParams {
    /// Windows starting at or after this RFC 3339 time.
    pub since: Option<String>,
    /// At most this many windows (1–10,000; 1,000).
    pub max_results: Option<u32>,
}

/// One window of one serving version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WindowResultResponse {
    pub version: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub rows: u64,
    /// False while the window is open (a provisional result).
    pub closed: bool,
    /// `drift` (the drift report), `performance`, `labeled_rows`,
    /// `fairness`, or `not_computed` with the reason.
    #[schema(value_type = Object)]
    pub result: Value,
    pub computed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WindowResultList {
    pub deployment: String,
    pub monitor: String,
    pub results: Vec<WindowResultResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelWire {
    pub request_id: String,
    /// A number, string or boolean; or an array of one per row of the call.
    #[schema(value_type = Object)]
    pub label: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    pub labels: Vec<LabelWire>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LabelsResponse {
    /// Labels joined to a recorded call.
    pub joined: u64,
    /// Labels whose request id no recorded call has (kept; joined if the
    /// call is recorded later).
    pub unknown: u64,
    /// The first 100 unknown request ids.
    pub unknown_request_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    pub deployment: Option<String>,
    /// Only alerts firing now.
    pub firing: Option<bool>,
    /// At most this many (1–1,000; 100), newest first.
    pub max_results: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertResponse {
    pub id: i64,
    pub deployment: String,
    pub monitor: String,
    pub rule: String,
    /// `firing` or `resolved`.
    pub state: String,
    pub version: u32,
    pub window_start: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The condition, the values it saw, the actions taken, every webhook attempt.
    #[schema(value_type = Object)]
    pub detail: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertResponse>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetrainParams {
    pub model: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetrainRequestResponse {
    pub id: i64,
    pub model: String,
    pub deployment: String,
    pub alert: i64,
    pub reason: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RetrainRequestList {
    pub requests: Vec<RetrainRequestResponse>,
}
