//! The native `predict` route's body and answer (shared with the CLI).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Rows to run a version on: `rows` (records: one object per row keyed by
/// input name, or, for a model with one vector input, one array per row) or
/// `columns` (input name → one value per row). `null` in a float input is a
/// missing value (NaN).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub columns: Option<Map<String, Value>>,
    /// One explanation per row: the rule that fired, per-feature
    /// contributions, reason codes or TreeSHAP values.
    #[serde(default)]
    pub explain: bool,
    /// Passed to the runtime (LLM sampling: `temperature`, `max_tokens`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub parameters: Map<String, Value>,
}

/// The answer: one object per row keyed by output name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PredictResponse {
    pub model: String,
    pub version: u32,
    #[schema(value_type = Vec<Object>)]
    pub predictions: Vec<Map<String, Value>>,
    /// The class label of each column of a probability output.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub class_labels: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub explanations: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageWire>,
}

/// Tokens and cost of an LLM call.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UsageWire {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: f64,
    pub upstream_latency_ms: f64,
}

/// What one version served since start-up.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InferenceMetrics {
    pub model: String,
    pub version: u32,
    pub calls: u64,
    pub rows: u64,
    pub errors: u64,
    pub upstream_timeouts: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: f64,
    pub mean_latency_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InferenceMetricsList {
    pub versions: Vec<InferenceMetrics>,
}
