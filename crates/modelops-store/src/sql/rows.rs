// Rows → domain values, for both backends. Included as the `rows` module of
// `sqlite.rs` and `postgres.rs`, whose hooks (`Db`, `DbRow`, `TimeCol`,
// `time_from_db`) it uses; see the crate docs in `lib.rs`.

use super::{time_from_db, Db, DbRow, TimeCol};
use crate::error::{corrupt, db_err};
use chrono::{DateTime, Utc};
use modelops_core::audit::{AuditEvent, ChainRecord, HashEncoding};
use modelops_core::auth::Role;
use modelops_core::governance::{
    ApiToken, Approval, Decision, DocumentRef, Evidence, EvidenceKind, Review, ReviewOutcome, ScheduledReview, StoredPolicy, User,
};
use modelops_core::model::{Model, ModelKind, ModelState, RiskTier, ValidationTarget};
use modelops_core::name::ModelName;
use modelops_core::version::{ArtifactRef, ModelVersion, Sha256Hex, VersionState};
use modelops_core::{Error, Result};
use serde_json::Value;
use sqlx::Row;
use std::collections::BTreeSet;

pub(super) fn to_u32(n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|_| corrupt("number", n))
}

pub(super) fn col<'r, T>(row: &'r DbRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(name).map_err(db_err)
}

fn json_col<T: serde::de::DeserializeOwned>(row: &DbRow, name: &str) -> Result<T> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| corrupt(name, e))
}

fn time_col(row: &DbRow, name: &str) -> Result<DateTime<Utc>> {
    time_from_db(col::<TimeCol>(row, name)?)
}

/// The `models.governance` column: who develops the model and the
/// validation target. A key missing from the stored JSON (every row written
/// before migration 0003 holds `{}`) reads as its default, so rows stay
/// readable as fields are added; unknown keys are ignored.
#[derive(serde::Deserialize)]
struct ModelGovernance {
    #[serde(default)]
    developers: Vec<String>,
    #[serde(default)]
    validation: Option<ValidationTarget>,
}

/// The `models.governance` text for `model`. A threshold JSON cannot hold
/// (NaN, infinite) would be written as `null` and make the row unreadable:
/// refused here, whatever the caller checked.
pub(super) fn model_governance(model: &Model) -> Result<String> {
    if let Some(v) = model.validation.as_ref().filter(|v| !v.threshold.is_finite()) {
        return Err(Error::invalid("validation.threshold", format!("`{}` is not a finite number", v.threshold)));
    }
    #[derive(serde::Serialize)]
    struct Stored<'a> {
        developers: &'a [String],
        validation: Option<&'a ValidationTarget>,
    }
    let stored = Stored { developers: &model.developers, validation: model.validation.as_ref() };
    serde_json::to_string(&stored).map_err(|e| Error::Internal(format!("cannot store a model's governance as JSON: {e}")))
}

/// What the `text` filter searches: name, description and business purpose.
pub(super) fn search_text(model: &Model) -> String {
    format!("{}\u{1f}{}\u{1f}{}", model.name, model.description, model.business_purpose).to_lowercase()
}

pub(super) fn model_from_row(row: &DbRow) -> Result<Model> {
    let text = |name: &str| col::<String>(row, name);
    let kind = text("kind")?;
    let tier = text("risk_tier")?;
    let state = text("state")?;
    let governance: ModelGovernance = json_col(row, "governance")?;
    Ok(Model {
        name: ModelName::from_stored(text("name")?),
        kind: ModelKind::parse_field("kind", &kind).map_err(|e| corrupt("model kind", e))?,
        description: text("description")?,
        owner: text("owner")?,
        team: text("team")?,
        business_purpose: text("business_purpose")?,
        intended_use: text("intended_use")?,
        restrictions: text("restrictions")?,
        risk_tier: RiskTier::parse_field("risk_tier", &tier).map_err(|e| corrupt("risk tier", e))?,
        tags: json_col(row, "tags")?,
        dependencies: json_col::<Vec<String>>(row, "dependencies")?.into_iter().map(ModelName::from_stored).collect(),
        developers: governance.developers,
        validation: governance.validation,
        aliases: json_col(row, "aliases")?,
        state: ModelState::parse_field("state", &state).map_err(|e| corrupt("model state", e))?,
        latest_version: col::<Option<i64>>(row, "latest_version")?.map(to_u32).transpose()?,
        created_at: time_col(row, "created_at")?,
        created_by: text("created_by")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

pub(super) fn version_from_row(row: &DbRow) -> Result<ModelVersion> {
    let text = |name: &str| col::<String>(row, name);
    let state = text("state")?;
    let size: i64 = col(row, "artifact_size")?;
    let mut aliases: Vec<String> = json_col(row, "aliases")?;
    aliases.sort();
    Ok(ModelVersion {
        model: ModelName::from_stored(text("model_name")?),
        number: to_u32(col(row, "number")?)?,
        state: VersionState::parse_field("state", &state).map_err(|e| corrupt("version state", e))?,
        artifact: ArtifactRef {
            sha256: Sha256Hex::parse_field("artifact.sha256", text("artifact_sha256")?).map_err(|e| corrupt("artifact digest", e))?,
            size: u64::try_from(size).map_err(|_| corrupt("artifact size", size))?,
            filename: text("artifact_filename")?,
        },
        lineage: json_col(row, "lineage")?,
        signature: json_col(row, "signature")?,
        card: json_col(row, "card")?,
        description: text("description")?,
        tags: json_col(row, "tags")?,
        aliases,
        created_at: time_col(row, "created_at")?,
        created_by: text("created_by")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

/// Reads `before`/`after` leniently: text that no longer parses (someone
/// edited the file) still reaches the chain verifier, as a JSON string, so it
/// is reported as a broken link instead of failing the read.
fn stored_json(row: &DbRow, name: &str) -> Result<Option<Value>> {
    let text: Option<String> = col(row, name)?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))))
}

fn event_fields(row: &DbRow, sequence: i64) -> Result<AuditEvent> {
    Ok(AuditEvent {
        sequence,
        time: time_col(row, "time")?,
        actor: col(row, "actor")?,
        action: col(row, "action")?,
        subject: col(row, "subject")?,
        before: stored_json(row, "before")?,
        after: stored_json(row, "after")?,
        encoding: {
            let stored: i64 = col(row, "encoding")?;
            HashEncoding::from_stored(stored).ok_or_else(|| corrupt("audit encoding", format!("`{stored}` is not an encoding modelops writes")))?
        },
        prev_hash: col(row, "prev_hash")?,
        hash: col(row, "hash")?,
        personal: match col::<Option<String>>(row, "personal")? {
            Some(text) => serde_json::from_str(&text).map_err(|e| corrupt("audit personal", e))?,
            None => Vec::new(),
        },
    })
}

/// A stored audit row for the verifier: a column that no longer decodes
/// (an edited time, a hash turned into a number in SQLite's loose typing)
/// makes the row [`ChainRecord::Unreadable`], which the verifier reports as
/// the broken link, rather than an error that fails the verification.
pub(super) fn chain_record_from_row(row: &DbRow) -> Result<ChainRecord> {
    let sequence: i64 = col(row, "sequence")?;
    Ok(match event_fields(row, sequence) {
        Ok(event) => ChainRecord::Event(event),
        Err(e) => ChainRecord::Unreadable { sequence, reason: format!("the stored row cannot be read ({e}): it was altered outside modelops") },
    })
}

/// A stored audit event for listing: an unreadable row is a server-side
/// fault here, and `modelops audit verify` names it.
pub(super) fn event_from_row(row: &DbRow) -> Result<AuditEvent> {
    let sequence: i64 = col(row, "sequence")?;
    event_fields(row, sequence).map_err(|e| Error::Internal(format!("audit event {sequence} cannot be read ({e}); `modelops audit verify` reports where the chain is broken")))
}

pub(super) const EVENT_COLUMNS: &str = "SELECT sequence, time, actor, action, subject, before, after, prev_hash, hash, encoding, personal FROM audit_events";

// ------------------------------------------------------------ governance

fn opt_time_col(row: &DbRow, name: &str) -> Result<Option<DateTime<Utc>>> {
    col::<Option<TimeCol>>(row, name)?.map(time_from_db).transpose()
}

/// Roles as stored: a JSON array of their names.
pub(super) fn roles_to_db(roles: &BTreeSet<Role>) -> Result<String> {
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    serde_json::to_string(&names).map_err(|e| Error::Internal(format!("cannot store roles as JSON: {e}")))
}

fn roles_col(row: &DbRow, name: &str) -> Result<BTreeSet<Role>> {
    let names: Vec<String> = json_col(row, name)?;
    names.iter().map(|n| Role::parse_field(name, n).map_err(|e| corrupt("role", e))).collect()
}

fn model_name_col(row: &DbRow) -> Result<ModelName> {
    Ok(ModelName::from_stored(col::<String>(row, "model_name")?))
}

fn number_col(row: &DbRow) -> Result<u32> {
    to_u32(col(row, "number")?)
}

/// Columns `name, roles, team, disabled, created_at, created_by, updated_at`.
pub(super) fn user_from_row(row: &DbRow) -> Result<User> {
    Ok(User {
        name: col(row, "name")?,
        roles: roles_col(row, "roles")?,
        team: col(row, "team")?,
        disabled: col(row, "disabled")?,
        created_at: time_col(row, "created_at")?,
        created_by: col(row, "created_by")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

/// Columns `token_id, token_name, user_name, token_created_at,
/// token_created_by, expires_at, revoked_at` (prefixed where a user's
/// columns of the same name are read beside them).
pub(super) fn token_from_row(row: &DbRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: col(row, "token_id")?,
        name: col(row, "token_name")?,
        user: col(row, "user_name")?,
        created_at: time_col(row, "token_created_at")?,
        created_by: col(row, "token_created_by")?,
        expires_at: opt_time_col(row, "expires_at")?,
        revoked_at: opt_time_col(row, "revoked_at")?,
        scope: match col::<Option<String>>(row, "token_scope")? {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| crate::error::corrupt("token scope", e))?),
            None => None,
        },
    })
}

pub(super) fn approval_from_row(row: &DbRow) -> Result<Approval> {
    let decision: String = col(row, "decision")?;
    Ok(Approval {
        model: model_name_col(row)?,
        version: number_col(row)?,
        approver: col(row, "approver")?,
        roles: roles_col(row, "roles")?,
        decision: Decision::parse_field("decision", &decision).map_err(|e| corrupt("decision", e))?,
        comment: col(row, "comment")?,
        conditions: col(row, "conditions")?,
        expires_at: opt_time_col(row, "expires_at")?,
        created_at: time_col(row, "created_at")?,
    })
}

pub(super) fn evidence_from_row(row: &DbRow) -> Result<Evidence> {
    let kind: String = col(row, "kind")?;
    let document = match col::<Option<String>>(row, "document_sha256")? {
        None => None,
        Some(sha256) => {
            let size: Option<i64> = col(row, "document_size")?;
            let size = size.ok_or_else(|| corrupt("evidence document", "a digest without a size"))?;
            Some(DocumentRef {
                sha256: Sha256Hex::parse_field("document.sha256", sha256).map_err(|e| corrupt("document digest", e))?,
                size: u64::try_from(size).map_err(|_| corrupt("document size", size))?,
                filename: col::<Option<String>>(row, "document_filename")?
                    .ok_or_else(|| corrupt("evidence document", "a digest without a filename"))?,
            })
        }
    };
    Ok(Evidence {
        model: model_name_col(row)?,
        version: number_col(row)?,
        kind: EvidenceKind::parse_field("kind", &kind).map_err(|e| corrupt("evidence kind", e))?,
        name: col(row, "name")?,
        value: col(row, "value")?,
        dataset: col(row, "dataset")?,
        document,
        created_at: time_col(row, "created_at")?,
        created_by: col(row, "created_by")?,
    })
}

pub(super) fn review_from_row(row: &DbRow) -> Result<Review> {
    let outcome: String = col(row, "outcome")?;
    Ok(Review {
        model: model_name_col(row)?,
        version: number_col(row)?,
        reviewer: col(row, "reviewer")?,
        outcome: ReviewOutcome::parse_field("outcome", &outcome).map_err(|e| corrupt("review outcome", e))?,
        comment: col(row, "comment")?,
        reviewed_at: time_col(row, "reviewed_at")?,
        next_review_at: time_col(row, "next_review_at")?,
    })
}

pub(super) fn scheduled_review_from_row(row: &DbRow) -> Result<ScheduledReview> {
    Ok(ScheduledReview {
        model: model_name_col(row)?,
        version: number_col(row)?,
        next_review_at: time_col(row, "next_review_at")?,
        last_reviewed_at: opt_time_col(row, "last_reviewed_at")?,
    })
}

pub(super) fn policy_from_row(row: &DbRow) -> Result<StoredPolicy> {
    Ok(StoredPolicy {
        sha256: Sha256Hex::parse_field("sha256", col::<String>(row, "sha256")?).map_err(|e| corrupt("policy digest", e))?,
        source: col(row, "source")?,
        format: col(row, "format")?,
        loaded_at: time_col(row, "loaded_at")?,
        loaded_by: col(row, "loaded_by")?,
    })
}
