//! What a gate's conditions see: the declared context. The registry fills a
//! [`GateContext`] from the state it read under the write lock; the policy
//! evaluates every condition of the gate over it. The field names here are
//! the names policies use (`version.card.intended_use`, `approvals`, …), so
//! renaming one breaks policies: add, never rename.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything a condition may read. Times are CEL timestamps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateContext {
    pub version: VersionFacts,
    pub model: ModelFacts,
    /// Approvals in force (not expired), at most one per approver (their
    /// latest decision), oldest first: `approvals.size() >= 2` counts
    /// distinct approvers.
    pub approvals: Vec<ApprovalFacts>,
    pub evidence: EvidenceFacts,
    /// Who asks for the transition.
    pub actor: ActorFacts,
    pub now: DateTime<Utc>,
    /// The transition asked for: `submit`, `approve` or `promote`, and the
    /// state it leads to.
    pub transition: TransitionFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionFacts {
    pub model: String,
    pub number: i64,
    pub state: String,
    /// Who created the version.
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    pub aliases: Vec<String>,
    pub card: CardFacts,
    pub lineage: LineageFacts,
    pub signature: SignatureFacts,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardFacts {
    pub markdown: String,
    pub intended_use: String,
    pub limitations: String,
    pub ethical_considerations: String,
    pub evaluation_data: String,
    pub metrics: BTreeMap<String, f64>,
}

/// Absent lineage values are empty strings and `-1` (no `null` for
/// conditions to trip over).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineageFacts {
    pub dataset_uri: String,
    pub dataset_sha256: String,
    pub dataset_rows: i64,
    pub code_commit: String,
    pub training_metrics: BTreeMap<String, f64>,
    pub parent_version: i64,
    pub mlflow_run_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureFacts {
    /// Input feature names.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    pub name: String,
    pub kind: String,
    pub tier: String,
    pub owner: String,
    pub team: String,
    pub developers: Vec<String>,
    pub business_purpose: String,
    pub intended_use: String,
    pub restrictions: String,
    pub tags: BTreeMap<String, String>,
    /// The metric validation must report (`""` when the model sets none)
    /// and the value it must reach.
    pub validation_metric: String,
    pub validation_threshold: f64,
    /// The version in production (champion), `-1` when none.
    pub production_version: i64,
    /// Whether the production version's periodic review is overdue.
    pub review_overdue: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalFacts {
    pub by: String,
    /// The approver's roles when deciding.
    pub roles: Vec<String>,
    pub comment: String,
    pub conditions: String,
    pub at: DateTime<Utc>,
    /// Whether the approval has an expiry date at all.
    pub expires: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceFacts {
    pub metrics: Vec<MetricFacts>,
    pub documents: Vec<DocumentFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricFacts {
    pub name: String,
    pub value: f64,
    pub dataset: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentFacts {
    /// The document's kind, e.g. `validation_report`.
    pub name: String,
    pub filename: String,
    pub sha256: String,
    pub by: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorFacts {
    pub name: String,
    pub roles: Vec<String>,
    pub team: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionFacts {
    pub name: String,
    pub to: String,
}
