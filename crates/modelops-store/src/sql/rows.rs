// Rows → domain values, for both backends. Included as the `rows` module of
// `sqlite.rs` and `postgres.rs`, whose hooks (`Db`, `DbRow`, `TimeCol`,
// `time_from_db`) it uses; see the crate docs in `lib.rs`.

use super::{time_from_db, Db, DbRow, TimeCol};
use crate::error::{corrupt, db_err};
use chrono::{DateTime, Utc};
use modelops_core::audit::{AuditEvent, ChainRecord, HashEncoding};
use modelops_core::model::{Model, ModelKind, ModelState, RiskTier};
use modelops_core::name::ModelName;
use modelops_core::version::{ArtifactRef, ModelVersion, Sha256Hex, VersionState};
use modelops_core::{Error, Result};
use serde_json::Value;
use sqlx::Row;

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

/// What the `text` filter searches: name, description and business purpose.
pub(super) fn search_text(model: &Model) -> String {
    format!("{}\u{1f}{}\u{1f}{}", model.name, model.description, model.business_purpose).to_lowercase()
}

pub(super) fn model_from_row(row: &DbRow) -> Result<Model> {
    let text = |name: &str| col::<String>(row, name);
    let kind = text("kind")?;
    let tier = text("risk_tier")?;
    let state = text("state")?;
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

pub(super) const EVENT_COLUMNS: &str = "SELECT sequence, time, actor, action, subject, before, after, prev_hash, hash, encoding FROM audit_events";
