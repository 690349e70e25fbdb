//! Wire types of governance: users, tokens, decisions, gates, evidence,
//! reviews and policies.

use super::{VersionResponse, ModelName};
use chrono::{DateTime, Utc};
use modelops_core::auth::Role as CoreRole;
use modelops_core::governance::{
    ApiToken, Approval, Decision as CoreDecision, Evidence, GateTarget as CoreGateTarget, NewEvidence, ReviewOutcome as CoreReviewOutcome,
    Review, User,
};
use modelops_core::version::Sha256Hex;
use modelops_core::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::{IntoParams, ToSchema};

wire_enum!(
    /// A role; each endpoint names the roles it needs (docs/roles.md).
    Role => CoreRole { Viewer, Developer, Validator, Approver, Deployer, Admin, Auditor }
);
wire_enum!(
    /// A validator's decision.
    Decision => CoreDecision { Approve, Reject }
);
wire_enum!(
    /// The outcome of a periodic review.
    ReviewOutcome => CoreReviewOutcome { Satisfactory, Findings, Unsatisfactory }
);
wire_enum!(
    /// A state a gate guards.
    GateTarget => CoreGateTarget { InValidation, Approved, Production }
);

fn roles_out(roles: &BTreeSet<CoreRole>) -> Vec<Role> {
    roles.iter().copied().map(Into::into).collect()
}

// ---------------------------------------------------------------- users and tokens

/// Creates a user (admins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1–128 visible characters.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// At least one.
    #[schema(min_items = 1)]
    pub roles: Vec<Role>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub team: String,
}

impl From<CreateUserRequest> for modelops_core::governance::NewUser {
    fn from(r: CreateUserRequest) -> Self {
        Self { name: r.name, roles: r.roles.into_iter().map(Into::into).collect(), team: r.team }
    }
}

/// Changes a user's roles or team, or disables them (admins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

impl TryFrom<UpdateUserRequest> for modelops_core::governance::UserPatch {
    type Error = Error;
    fn try_from(r: UpdateUserRequest) -> Result<Self, Error> {
        if r == UpdateUserRequest::default() {
            return Err(Error::invalid("body", "the update names no field to change"));
        }
        Ok(Self { roles: r.roles.map(|roles| roles.into_iter().map(Into::into).collect()), team: r.team, disabled: r.disabled })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub name: String,
    pub roles: Vec<Role>,
    pub team: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        Self { roles: roles_out(&u.roles), name: u.name, team: u.team, disabled: u.disabled, created_at: u.created_at, created_by: u.created_by, updated_at: u.updated_at }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserResponse>,
}

/// Who the caller is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmIResponse {
    pub name: String,
    pub roles: Vec<Role>,
    pub team: Option<String>,
}

impl From<&modelops_core::auth::Principal> for WhoAmIResponse {
    fn from(p: &modelops_core::auth::Principal) -> Self {
        Self { name: p.name().to_string(), roles: roles_out(p.roles()), team: p.team().map(str::to_string) }
    }
}

/// Creates an API token: for the caller, or for `user` (admins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What or who uses it (`laptop`, `ci`).
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Days until it expires: 1 to 3650; 90 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// Public id, part of the token text; used to revoke.
    pub id: String,
    pub name: String,
    pub user: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenResponse {
    fn from(t: ApiToken) -> Self {
        Self { id: t.id, name: t.name, user: t.user, created_at: t.created_at, created_by: t.created_by, expires_at: t.expires_at, revoked_at: t.revoked_at }
    }
}

/// A new token: `token` is shown this once and stored only as a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NewTokenResponse {
    pub token: String,
    #[serde(flatten)]
    pub record: TokenResponse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenResponse>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListTokensParams {
    /// Whose tokens (admins may name anyone; `*` lists everyone's). The caller's by default.
    pub user: Option<String>,
}

// ---------------------------------------------------------------- lifecycle

/// A decision's comment, conditions and expiry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub comment: String,
    /// Conditions attached to the approval.
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub conditions: String,
    /// After this the approval no longer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<DecisionRequest> for modelops_core::governance::DecisionInput {
    fn from(r: DecisionRequest) -> Self {
        Self { comment: r.comment, conditions: r.conditions, expires_at: r.expires_at }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalResponse {
    pub approver: String,
    pub roles: Vec<Role>,
    pub decision: Decision,
    pub comment: String,
    pub conditions: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Approval> for ApprovalResponse {
    fn from(a: Approval) -> Self {
        Self {
            roles: roles_out(&a.roles),
            approver: a.approver,
            decision: a.decision.into(),
            comment: a.comment,
            conditions: a.conditions,
            expires_at: a.expires_at,
            created_at: a.created_at,
        }
    }
}

/// One condition of a gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConditionResponse {
    pub name: String,
    pub passed: bool,
    pub message: String,
}

/// A gate's decision: allowed, or every failing condition with its reason,
/// and the sha256 of the policy that decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateResponse {
    pub allowed: bool,
    pub policy_sha256: String,
    pub tier: super::RiskTier,
    pub target: GateTarget,
    pub conditions: Vec<ConditionResponse>,
}

impl From<modelops_registry::GateDecision> for GateResponse {
    fn from(g: modelops_registry::GateDecision) -> Self {
        Self {
            allowed: g.allowed,
            policy_sha256: g.policy_sha256.to_string(),
            tier: g.tier.into(),
            target: g.target.into(),
            conditions: g.conditions.into_iter().map(|c| ConditionResponse { name: c.name, passed: c.passed, message: c.message }).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GateParams {
    /// The state to check the way to.
    pub to: GateTarget,
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DecisionResponse {
    pub version: VersionResponse,
    pub approval: ApprovalResponse,
    /// For an approval: the `approved` gate after it (what is still missing
    /// while the version stays in validation).
    pub gate: Option<GateResponse>,
}

impl From<modelops_registry::DecisionOutcome> for DecisionResponse {
    fn from(o: modelops_registry::DecisionOutcome) -> Self {
        Self { version: o.version.into(), approval: o.approval.into(), gate: o.gate.map(Into::into) }
    }
}

/// A transition that went through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TransitionResponse {
    pub version: VersionResponse,
    pub gate: Option<GateResponse>,
    /// For a promotion: the version that was in production before.
    pub previous_production: Option<u32>,
}

impl From<modelops_registry::TransitionOutcome> for TransitionResponse {
    fn from(o: modelops_registry::TransitionOutcome) -> Self {
        Self { version: o.version.into(), gate: o.gate.map(Into::into), previous_production: o.previous_production }
    }
}

// ---------------------------------------------------------------- evidence

/// Evidence to attach: a metric, or a document uploaded with `POST /api/v1/artifacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EvidenceRequest {
    Metric {
        /// E.g. `auc`.
        #[schema(pattern = "^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
        name: String,
        value: f64,
        /// The dataset it was computed on.
        #[serde(default)]
        dataset: String,
    },
    Document {
        /// The document's kind, e.g. `validation_report`.
        #[schema(pattern = "^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
        name: String,
        sha256: String,
        filename: String,
    },
}

impl TryFrom<EvidenceRequest> for NewEvidence {
    type Error = Error;
    fn try_from(r: EvidenceRequest) -> Result<Self, Error> {
        Ok(match r {
            EvidenceRequest::Metric { name, value, dataset } => NewEvidence::Metric { name, value, dataset },
            EvidenceRequest::Document { name, sha256, filename } => NewEvidence::Document { name, sha256: Sha256Hex::parse_field("sha256", sha256)?, filename },
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceResponse {
    pub kind: String,
    pub name: String,
    pub value: Option<f64>,
    pub dataset: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub filename: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

impl From<Evidence> for EvidenceResponse {
    fn from(e: Evidence) -> Self {
        let (sha256, size, filename) = match e.document {
            Some(d) => (Some(d.sha256.to_string()), Some(d.size), Some(d.filename)),
            None => (None, None, None),
        };
        Self { kind: e.kind.to_string(), name: e.name, value: e.value, dataset: e.dataset, sha256, size, filename, created_at: e.created_at, created_by: e.created_by }
    }
}

// ---------------------------------------------------------------- reviews

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub outcome: ReviewOutcome,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReviewResponse {
    pub model: String,
    pub version: u32,
    pub reviewer: String,
    pub outcome: ReviewOutcome,
    pub comment: String,
    pub reviewed_at: DateTime<Utc>,
    pub next_review_at: DateTime<Utc>,
}

impl From<Review> for ReviewResponse {
    fn from(r: Review) -> Self {
        Self { model: r.model.into(), version: r.version, reviewer: r.reviewer, outcome: r.outcome.into(), comment: r.comment, reviewed_at: r.reviewed_at, next_review_at: r.next_review_at }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DueParams {
    /// Reviews due within this many days (0: only overdue ones); 30 when absent.
    #[param(minimum = 0, maximum = 3650)]
    pub within_days: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DueReviewResponse {
    pub model: String,
    pub version: u32,
    pub tier: super::RiskTier,
    pub owner: String,
    pub next_review_at: DateTime<Utc>,
    pub last_reviewed_at: Option<DateTime<Utc>>,
    pub overdue: bool,
}

impl From<modelops_registry::DueReview> for DueReviewResponse {
    fn from(d: modelops_registry::DueReview) -> Self {
        Self {
            model: d.model.into(),
            version: d.version,
            tier: d.tier.into(),
            owner: d.owner,
            next_review_at: d.next_review_at,
            last_reviewed_at: d.last_reviewed_at,
            overdue: d.overdue,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DueReviewList {
    pub reviews: Vec<DueReviewResponse>,
}

/// Everything governance holds about a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GovernanceResponse {
    pub version: VersionResponse,
    pub approvals: Vec<ApprovalResponse>,
    pub evidence: Vec<EvidenceResponse>,
    pub reviews: Vec<ReviewResponse>,
    pub next_review_at: Option<DateTime<Utc>>,
}

impl From<modelops_registry::VersionGovernance> for GovernanceResponse {
    fn from(g: modelops_registry::VersionGovernance) -> Self {
        Self {
            version: g.version.into(),
            approvals: g.approvals.into_iter().map(Into::into).collect(),
            evidence: g.evidence.into_iter().map(Into::into).collect(),
            reviews: g.reviews.into_iter().map(Into::into).collect(),
            next_review_at: g.next_review_at,
        }
    }
}

// ---------------------------------------------------------------- policy and reports

/// A policy file to load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadPolicyRequest {
    /// The file's text.
    pub source: String,
    /// `toml` or `yaml`.
    #[schema(pattern = "^(toml|yaml)$")]
    pub format: String,
    /// The file's name, for error messages and the audit log.
    #[serde(default)]
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PolicyResponse {
    pub sha256: String,
    pub format: String,
    /// Absent for the shipped defaults before they were recorded.
    pub loaded_at: Option<DateTime<Utc>>,
    pub loaded_by: Option<String>,
    /// Whether this request changed the active policy.
    pub changed: bool,
    /// Tiers, gates, conditions and review cadences.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    pub source: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// `md` (default), `markdown`, `html` or `json`.
    #[param(pattern = "^(md|markdown|html|json)$")]
    pub format: Option<String>,
}

/// Parses a model name from a request body field.
pub fn model_name(field: &str, value: String) -> Result<ModelName, Error> {
    ModelName::parse_field(field, value)
}
