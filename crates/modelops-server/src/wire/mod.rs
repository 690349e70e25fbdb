//! Wire types of the native REST API: what goes over HTTP as JSON.
//!
//! They are separate from the domain types on purpose, so the API can stay
//! stable while the domain evolves: requests convert into domain values with
//! explicit, validating `TryFrom`s that name the bad field; domain values
//! convert into responses with `From`. All are `Serialize + Deserialize`, so
//! the CLI reads responses with the same types. Requests refuse unknown
//! fields; times are RFC 3339; names are snake_case.

use chrono::{DateTime, Utc};
use modelops_core::audit::{AuditEvent, ChainBreak, ChainHead};
use modelops_core::model::{Model, ModelPatch, NewModel};
use modelops_core::name::ModelName;
use modelops_core::version::{self as core_version, ArtifactSpec, ModelVersion, NewVersion, Sha256Hex, VersionPatch};
use modelops_core::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

use modelops_core::model::{ModelKind as CoreModelKind, ModelState as CoreModelState, RiskTier as CoreRiskTier};
use modelops_core::page::{Direction as CoreDirection, ModelOrder as CoreModelOrder};
use modelops_core::version::{DataType as CoreDataType, VersionState as CoreVersionState};

/// Mirrors a core enum on the wire, with conversions both ways.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident => $core:ident { $($variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),* }

        impl From<$name> for $core {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => $core::$variant),* }
            }
        }

        impl From<$core> for $name {
            fn from(value: $core) -> Self {
                match value { $($core::$variant => $name::$variant),* }
            }
        }
    };
}

wire_enum!(
    /// How a model's artifact is executed.
    ModelKind => CoreModelKind { Onnx, Rules, Statistical, Llm, External, Mlflow }
);
wire_enum!(
    /// Model-risk tier; governance policies are written per tier.
    RiskTier => CoreRiskTier { Low, Medium, High, Critical }
);
wire_enum!(
    /// A model is never deleted; retiring keeps its record.
    ModelState => CoreModelState { Active, Retired }
);
wire_enum!(
    /// Lifecycle state of a version.
    VersionState => CoreVersionState { Draft, InValidation, Approved, Production, Retired, Rejected }
);
wire_enum!(
    /// Element type of a signature field.
    DataType => CoreDataType { Bool, Int32, Int64, Float32, Float64, String, Bytes, Datetime }
);
wire_enum!(
    /// Sort key of a model listing; ties are broken by name.
    ModelOrder => CoreModelOrder { Name, CreatedAt, UpdatedAt }
);
wire_enum!(
    /// Sort direction.
    Direction => CoreDirection { Asc, Desc }
);

// ---------------------------------------------------------------- errors

/// Every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `not_found`, `already_exists`,
    /// `invalid_input`, `conflict`, `forbidden`, `unavailable`, `internal`,
    /// `payload_too_large`, `unsupported_media_type`, `method_not_allowed`.
    pub code: String,
    /// What went wrong, with the offending value in backticks.
    pub message: String,
    /// The JSON path, query parameter or path segment at fault, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `forbidden`: every failing condition, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<DenialReasonWire>,
}

/// One condition that refused an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DenialReasonWire {
    /// Stable name of the condition, e.g. `role`.
    pub condition: String,
    pub message: String,
}

impl From<modelops_core::error::DenialReason> for DenialReasonWire {
    fn from(r: modelops_core::error::DenialReason) -> Self {
        Self { condition: r.condition, message: r.message }
    }
}

// ---------------------------------------------------------------- models

/// Registers a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateModelRequest {
    /// Unique; 1–128 characters, no `/`, no control characters, no leading
    /// or trailing whitespace.
    pub name: String,
    pub kind: ModelKind,
    pub risk_tier: RiskTier,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub description: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub owner: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub team: String,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub business_purpose: String,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub intended_use: String,
    /// Restrictions on use.
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub restrictions: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Names of models whose output this model consumes.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Users who may push versions besides the owner and the team; for high
    /// and critical tiers none of them may approve a version.
    #[serde(default)]
    pub developers: Vec<String>,
    /// The validation metric versions must reach (policies read it).
    #[serde(default)]
    pub validation: Option<ValidationTargetWire>,
}

/// The metric a validation must report, and the value it must reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidationTargetWire {
    pub metric: String,
    pub threshold: f64,
}

impl From<ValidationTargetWire> for modelops_core::model::ValidationTarget {
    fn from(v: ValidationTargetWire) -> Self {
        Self { metric: v.metric, threshold: v.threshold }
    }
}

impl From<modelops_core::model::ValidationTarget> for ValidationTargetWire {
    fn from(v: modelops_core::model::ValidationTarget) -> Self {
        Self { metric: v.metric, threshold: v.threshold }
    }
}

fn parse_dependencies(deps: Vec<String>) -> Result<Vec<ModelName>, Error> {
    deps.into_iter().enumerate().map(|(i, d)| ModelName::parse_field(&format!("dependencies[{i}]"), d)).collect()
}

impl TryFrom<CreateModelRequest> for NewModel {
    type Error = Error;
    fn try_from(r: CreateModelRequest) -> Result<Self, Error> {
        let new = NewModel {
            name: ModelName::parse(r.name)?,
            kind: r.kind.into(),
            description: r.description,
            owner: r.owner,
            team: r.team,
            business_purpose: r.business_purpose,
            intended_use: r.intended_use,
            restrictions: r.restrictions,
            risk_tier: r.risk_tier.into(),
            tags: r.tags,
            dependencies: parse_dependencies(r.dependencies)?,
            developers: r.developers,
            validation: r.validation.map(Into::into),
        };
        // Validated by the use case, once for every surface.
        Ok(new)
    }
}

/// A partial update of a model: absent fields stay as they are. Name and kind
/// never change; tags have their own endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModelRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100_000)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256)]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 256)]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100_000)]
    pub business_purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100_000)]
    pub intended_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100_000)]
    pub restrictions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_tier: Option<RiskTier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependencies: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developers: Option<Vec<String>>,
    /// A new validation target; `{"metric": "", ...}` is refused, and
    /// `clear_validation: true` removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationTargetWire>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clear_validation: bool,
}

impl TryFrom<UpdateModelRequest> for ModelPatch {
    type Error = Error;
    fn try_from(r: UpdateModelRequest) -> Result<Self, Error> {
        let patch = ModelPatch {
            description: r.description,
            owner: r.owner,
            team: r.team,
            business_purpose: r.business_purpose,
            intended_use: r.intended_use,
            restrictions: r.restrictions,
            risk_tier: r.risk_tier.map(Into::into),
            dependencies: r.dependencies.map(parse_dependencies).transpose()?,
            developers: r.developers,
            validation: match (r.validation, r.clear_validation) {
                (Some(_), true) => return Err(Error::invalid("clear_validation", "give `validation` or `clear_validation`, not both")),
                (Some(v), false) => Some(Some(v.into())),
                (None, true) => Some(None),
                (None, false) => None,
            },
        };
        if patch.is_empty() {
            return Err(Error::invalid("body", "the update names no field to change"));
        }
        Ok(patch)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelResponse {
    pub name: String,
    pub kind: ModelKind,
    pub description: String,
    pub owner: String,
    pub team: String,
    pub business_purpose: String,
    pub intended_use: String,
    pub restrictions: String,
    pub risk_tier: RiskTier,
    pub tags: BTreeMap<String, String>,
    pub dependencies: Vec<String>,
    pub developers: Vec<String>,
    pub validation: Option<ValidationTargetWire>,
    /// Alias → version number; `champion` is the production version.
    pub aliases: BTreeMap<String, u32>,
    pub state: ModelState,
    pub latest_version: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl From<Model> for ModelResponse {
    fn from(m: Model) -> Self {
        Self {
            name: m.name.into(),
            kind: m.kind.into(),
            description: m.description,
            owner: m.owner,
            team: m.team,
            business_purpose: m.business_purpose,
            intended_use: m.intended_use,
            restrictions: m.restrictions,
            risk_tier: m.risk_tier.into(),
            tags: m.tags,
            dependencies: m.dependencies.into_iter().map(String::from).collect(),
            developers: m.developers,
            validation: m.validation.map(Into::into),
            aliases: m.aliases,
            state: m.state.into(),
            latest_version: m.latest_version,
            created_at: m.created_at,
            created_by: m.created_by,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub models: Vec<ModelResponse>,
    /// Present when more models follow; pass it back as `page_token`.
    pub next_page_token: Option<String>,
}

/// Filters, order and paging of a model listing. All given filters must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListModelsParams {
    pub kind: Option<ModelKind>,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub risk_tier: Option<RiskTier>,
    /// `key` (tag present) or `key=value`.
    #[param(min_length = 1)]
    pub tag: Option<String>,
    pub name_prefix: Option<String>,
    pub state: Option<ModelState>,
    /// Case-insensitive text over name, description and business purpose.
    pub q: Option<String>,
    pub order_by: Option<ModelOrder>,
    pub direction: Option<Direction>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

// ---------------------------------------------------------------- artifacts

/// Query of a streamed artifact upload; the body is the raw content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadArtifactParams {
    /// The file's name, echoed back; not part of the address.
    #[param(max_length = 256)]
    pub filename: Option<String>,
    /// The digest the client expects; other content is refused and not kept.
    #[param(pattern = "^[0-9a-f]{64}$")]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactResponse {
    pub sha256: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// `false` when identical content was already stored.
    pub created: bool,
}

/// Asks for unreferenced artifacts to be removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// List what would be removed, remove nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Only artifacts uploaded longer ago than this are removed (default one
    /// day), so uploads in progress and versions about to be created from a
    /// fresh upload are never affected.
    #[serde(default)]
    #[schema(maximum = 315_360_000)]
    pub grace_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GcArtifact {
    pub sha256: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// What a collection removed (or, in a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GcResponse {
    pub dry_run: bool,
    pub removed: Vec<GcArtifact>,
    pub removed_bytes: u64,
    /// Artifacts some version points at.
    pub referenced: u64,
    /// Unreferenced artifacts kept because they are within the grace period.
    pub kept_recent: u64,
    /// Objects in the artifact area that are not artifacts; never touched.
    pub skipped: Vec<String>,
}

impl From<modelops_artifacts::GcReport> for GcResponse {
    fn from(r: modelops_artifacts::GcReport) -> Self {
        Self {
            dry_run: matches!(r.mode, modelops_artifacts::GcMode::DryRun),
            removed: r.removed.into_iter().map(|a| GcArtifact { sha256: a.sha256.into(), size: a.size, last_modified: a.last_modified }).collect(),
            removed_bytes: r.removed_bytes,
            referenced: r.referenced,
            kept_recent: r.kept_recent,
            skipped: r.skipped,
        }
    }
}

// ---------------------------------------------------------------- versions

/// The uploaded artifact a new version points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactInput {
    /// As answered by `POST /api/v1/artifacts`: 64 lowercase hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    #[schema(min_length = 1, max_length = 256)]
    pub filename: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactInfo {
    pub sha256: String,
    pub size: u64,
    pub filename: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineageWire {
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub dataset_uri: Option<String>,
    #[serde(default)]
    pub dataset_sha256: Option<String>,
    #[serde(default)]
    pub dataset_rows: Option<u64>,
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub code_commit: Option<String>,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Object>)]
    pub hyperparameters: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub training_metrics: BTreeMap<String, f64>,
    /// Another version of the same model this one was derived from.
    #[serde(default)]
    pub parent_version: Option<u32>,
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub mlflow_run_id: Option<String>,
    /// The retraining run that registered the version and the window that
    /// triggered it: set by the server from the run's token (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrain: Option<RetrainLineageWire>,
}

impl TryFrom<LineageWire> for core_version::Lineage {
    type Error = Error;
    fn try_from(l: LineageWire) -> Result<Self, Error> {
        Ok(Self {
            dataset_uri: l.dataset_uri,
            dataset_sha256: l.dataset_sha256.map(|s| Sha256Hex::parse_field("lineage.dataset_sha256", s)).transpose()?,
            dataset_rows: l.dataset_rows,
            code_commit: l.code_commit,
            hyperparameters: l.hyperparameters,
            training_metrics: l.training_metrics,
            parent_version: l.parent_version,
            mlflow_run_id: l.mlflow_run_id,
            retrain: match l.retrain {
                None => None,
                Some(_) => return Err(Error::invalid("lineage.retrain", "is set by the server for versions a retraining run registers, never by the client")),
            },
        })
    }
}

impl From<core_version::Lineage> for LineageWire {
    fn from(l: core_version::Lineage) -> Self {
        Self {
            dataset_uri: l.dataset_uri,
            dataset_sha256: l.dataset_sha256.map(String::from),
            dataset_rows: l.dataset_rows,
            code_commit: l.code_commit,
            hyperparameters: l.hyperparameters,
            training_metrics: l.training_metrics,
            parent_version: l.parent_version,
            mlflow_run_id: l.mlflow_run_id,
            retrain: l.retrain.map(|r| RetrainLineageWire {
                job_run: r.job_run,
                trigger: r.trigger.as_str().into(),
                alert: r.alert,
                window: r.window.map(|w| TriggerWindowWire { deployment: w.deployment.to_string(), monitor: w.monitor, start: w.start, end: w.end, version: w.version }),
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureFieldWire {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    pub dtype: DataType,
    /// Dimensions beyond the batch axis; `-1` for variable. Empty for scalars.
    #[serde(default)]
    pub shape: Vec<i64>,
    /// Whether NaN (a missing value) may be sent in this field at inference.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_nan: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureWire {
    #[serde(default)]
    pub inputs: Vec<SignatureFieldWire>,
    #[serde(default)]
    pub outputs: Vec<SignatureFieldWire>,
}

fn fields_to_core(fields: Vec<SignatureFieldWire>) -> Vec<core_version::SignatureField> {
    fields.into_iter().map(|f| core_version::SignatureField { name: f.name, dtype: f.dtype.into(), shape: f.shape, allow_nan: f.allow_nan }).collect()
}

fn fields_from_core(fields: Vec<core_version::SignatureField>) -> Vec<SignatureFieldWire> {
    fields.into_iter().map(|f| SignatureFieldWire { name: f.name, dtype: f.dtype.into(), shape: f.shape, allow_nan: f.allow_nan }).collect()
}

impl From<SignatureWire> for core_version::Signature {
    fn from(s: SignatureWire) -> Self {
        Self { inputs: fields_to_core(s.inputs), outputs: fields_to_core(s.outputs) }
    }
}

impl From<core_version::Signature> for SignatureWire {
    fn from(s: core_version::Signature) -> Self {
        Self { inputs: fields_from_core(s.inputs), outputs: fields_from_core(s.outputs) }
    }
}

/// A model card: Markdown plus the structured fields gates and reports read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelCardWire {
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub markdown: String,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub intended_use: String,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub limitations: String,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub ethical_considerations: String,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub evaluation_data: String,
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
}

impl From<ModelCardWire> for core_version::ModelCard {
    fn from(c: ModelCardWire) -> Self {
        Self {
            markdown: c.markdown,
            intended_use: c.intended_use,
            limitations: c.limitations,
            ethical_considerations: c.ethical_considerations,
            evaluation_data: c.evaluation_data,
            metrics: c.metrics,
        }
    }
}

impl From<core_version::ModelCard> for ModelCardWire {
    fn from(c: core_version::ModelCard) -> Self {
        Self {
            markdown: c.markdown,
            intended_use: c.intended_use,
            limitations: c.limitations,
            ethical_considerations: c.ethical_considerations,
            evaluation_data: c.evaluation_data,
            metrics: c.metrics,
        }
    }
}

/// Creates the next version of a model from an uploaded artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersionRequest {
    pub artifact: ArtifactInput,
    #[serde(default)]
    pub lineage: LineageWire,
    #[serde(default)]
    pub signature: SignatureWire,
    #[serde(default)]
    pub card: ModelCardWire,
    #[serde(default)]
    #[schema(max_length = 100_000)]
    pub description: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl TryFrom<CreateVersionRequest> for NewVersion {
    type Error = Error;
    fn try_from(r: CreateVersionRequest) -> Result<Self, Error> {
        let new = NewVersion {
            artifact: ArtifactSpec { sha256: Sha256Hex::parse_field("artifact.sha256", r.artifact.sha256)?, filename: r.artifact.filename },
            lineage: r.lineage.try_into()?,
            signature: r.signature.into(),
            card: r.card.into(),
            description: r.description,
            tags: r.tags,
        };
        // Validated by the use case, once for every surface.
        Ok(new)
    }
}

/// A partial update of a version: only the description and the model card
/// change after creation; artifact, lineage and signature are immutable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVersionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100_000)]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<ModelCardWire>,
}

impl TryFrom<UpdateVersionRequest> for VersionPatch {
    type Error = Error;
    fn try_from(r: UpdateVersionRequest) -> Result<Self, Error> {
        let patch = VersionPatch { description: r.description, card: r.card.map(Into::into) };
        if patch.is_empty() {
            return Err(Error::invalid("body", "the update names no field to change"));
        }
        Ok(patch)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionResponse {
    pub model: String,
    /// 1, 2, 3… per model.
    pub version: u32,
    pub state: VersionState,
    pub artifact: ArtifactInfo,
    pub lineage: LineageWire,
    pub signature: SignatureWire,
    pub card: ModelCardWire,
    pub description: String,
    pub tags: BTreeMap<String, String>,
    /// Aliases pointing at this version.
    pub aliases: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
}

impl From<ModelVersion> for VersionResponse {
    fn from(v: ModelVersion) -> Self {
        Self {
            model: v.model.into(),
            version: v.number,
            state: v.state.into(),
            artifact: ArtifactInfo { sha256: v.artifact.sha256.into(), size: v.artifact.size, filename: v.artifact.filename },
            lineage: v.lineage.into(),
            signature: v.signature.into(),
            card: v.card.into(),
            description: v.description,
            tags: v.tags,
            aliases: v.aliases,
            created_at: v.created_at,
            created_by: v.created_by,
            updated_at: v.updated_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    pub versions: Vec<VersionResponse>,
    /// Present when more versions follow; pass it back as `page_token`.
    pub next_page_token: Option<String>,
}

/// Filters and paging of a version listing (newest first by default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListVersionsParams {
    pub state: Option<VersionState>,
    /// `key` (tag present) or `key=value`.
    #[param(min_length = 1)]
    pub tag: Option<String>,
    pub direction: Option<Direction>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

// ---------------------------------------------------------------- aliases and tags

/// Points an alias at a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAliasRequest {
    #[schema(minimum = 1)]
    pub version: u32,
}

/// Sets a tag's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTagRequest {
    #[schema(max_length = 100_000)]
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TagResponse {
    pub key: String,
    pub value: String,
}

// ---------------------------------------------------------------- audit

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEventResponse {
    pub sequence: i64,
    pub time: DateTime<Utc>,
    pub actor: String,
    /// E.g. `model.create`.
    pub action: String,
    /// E.g. `model/credit-risk/version/3`.
    pub subject: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    /// The canonical form the hash covers: 1 (the first release's) or 2
    /// (RFC 8785).
    #[serde(default = "jcs")]
    pub encoding: i64,
    pub prev_hash: String,
    pub hash: String,
}

fn jcs() -> i64 {
    modelops_core::audit::HashEncoding::Jcs.as_stored()
}

impl TryFrom<AuditEventResponse> for AuditEvent {
    type Error = String;

    /// The event as stored, to re-hash it (an export bundle).
    fn try_from(e: AuditEventResponse) -> Result<Self, String> {
        Ok(AuditEvent {
            sequence: e.sequence,
            time: e.time,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            before: e.before,
            after: e.after,
            encoding: modelops_core::audit::HashEncoding::try_from(e.encoding)?,
            prev_hash: e.prev_hash,
            hash: e.hash,
            personal: Vec::new(),
        })
    }
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(e: AuditEvent) -> Self {
        Self {
            sequence: e.sequence,
            time: e.time,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            before: e.before,
            after: e.after,
            encoding: e.encoding.as_stored(),
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub events: Vec<AuditEventResponse>,
    pub next_page_token: Option<String>,
}

/// Filters and paging of the audit log (oldest first).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Exact subject, or a prefix when it ends with `*` (`model/credit-risk*`).
    pub subject: Option<String>,
    pub actor: Option<String>,
    /// E.g. `version.create`.
    pub action: Option<String>,
    /// RFC 3339; events at or after.
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339; events before; later than `since` when both are given.
    pub until: Option<DateTime<Utc>>,
    /// Events after this sequence number (an export resuming).
    pub after_sequence: Option<i64>,
    /// `true`: events as hashed, personal values as `sealed:` commitments
    /// (what an export bundle carries); default: as people read them.
    pub sealed: Option<bool>,
    #[param(minimum = 1, maximum = 1000)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainHeadWire {
    pub sequence: i64,
    pub hash: String,
}

impl From<ChainHead> for ChainHeadWire {
    fn from(h: ChainHead) -> Self {
        Self { sequence: h.sequence, hash: h.hash }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChainBreakWire {
    /// The first event at which the chain does not hold.
    pub sequence: i64,
    pub reason: String,
}

impl From<ChainBreak> for ChainBreakWire {
    fn from(b: ChainBreak) -> Self {
        Self { sequence: b.sequence, reason: b.reason }
    }
}

/// The result of re-computing the audit hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerifyResponse {
    pub ok: bool,
    /// When the chain was hashed. The server reuses a verification for up to
    /// a minute, so this can be a little earlier than the request.
    pub verified_at: DateTime<Utc>,
    /// Events checked (up to the break, when there is one).
    pub events: u64,
    pub head: Option<ChainHeadWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<ChainBreakWire>,
    /// Sizes of the signed checkpoints whose Merkle root the events
    /// reproduced (their signatures checked with the log's key).
    #[serde(default)]
    pub checkpoints: Vec<u64>,
    /// The Merkle root of all events, hex, when every one verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

impl From<modelops_registry::Verification> for VerifyResponse {
    fn from(v: modelops_registry::Verification) -> Self {
        let head = v.head.map(Into::into);
        match v.verdict {
            Ok(summary) => VerifyResponse {
                ok: true,
                verified_at: v.verified_at,
                events: summary.events,
                head,
                broken: None,
                checkpoints: v.checkpoints,
                root: v.root,
            },
            // Events before the broken one verified.
            Err(broken) => VerifyResponse {
                ok: false,
                verified_at: v.verified_at,
                events: u64::try_from(broken.sequence.saturating_sub(1)).unwrap_or(0),
                head,
                broken: Some(broken.into()),
                checkpoints: Vec::new(),
                root: None,
            },
        }
    }
}

// ---------------------------------------------------------------- health

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: String,
}

// After `wire_enum!`, which it uses.
mod audit_log;
mod governance;
mod predict;
mod deployments;
mod monitoring;
mod retrain;
pub use audit_log::*;
pub use retrain::*;
pub use monitoring::*;
pub use predict::*;
pub use deployments::*;
pub use governance::*;
