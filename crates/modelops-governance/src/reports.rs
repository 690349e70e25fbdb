//! The governance reports, rendered from the registry's own data: the model
//! inventory (SR 11-7 / SR 26-2 fields), the per-model governance report
//! (versions, approvals, evidence, reviews, gate decisions and an audit
//! excerpt with how to verify it) and a draft of the EU AI Act Annex IV
//! technical documentation, each as Markdown, HTML or JSON.
//!
//! The registry gathers the data into the plain structs below and calls a
//! `render_*` function; nothing here reads a store or a clock. Markdown and
//! HTML are written from one document model (`doc`), so both say the same
//! thing and every string from the registry is escaped in one place: cell
//! text cannot break a Markdown table, and the HTML page is one
//! self-contained file with inline CSS, no script and a Content-Security-Policy
//! that forbids fetching anything. JSON is the report struct itself.

mod annex_iv;
mod doc;
mod inventory;
mod model;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use modelops_core::audit::{AuditEvent, ChainHead};
use modelops_core::governance::{Approval, Evidence, Review};
use modelops_core::model::{Model, ModelKind, ModelState, RiskTier};
use modelops_core::name::{quote, ModelName};
use modelops_core::version::ModelVersion;
use modelops_core::{Error, Result};
use serde::Serialize;

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Markdown,
    Html,
    Json,
}

impl ReportFormat {
    pub const ALL: &'static [ReportFormat] = &[ReportFormat::Markdown, ReportFormat::Html, ReportFormat::Json];

    /// Parses `md`, `markdown`, `html` or `json`, naming `field` and the
    /// accepted values on error.
    pub fn parse_field(field: &str, value: &str) -> Result<Self> {
        match value {
            "md" | "markdown" => Ok(ReportFormat::Markdown),
            "html" => Ok(ReportFormat::Html),
            "json" => Ok(ReportFormat::Json),
            other => Err(Error::invalid(field, format!("{} is not one of `md`, `markdown`, `html`, `json`", quote(other)))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "markdown",
            ReportFormat::Html => "html",
            ReportFormat::Json => "json",
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "md",
            ReportFormat::Html => "html",
            ReportFormat::Json => "json",
        }
    }

    /// The media type to serve the rendered report with.
    pub fn media_type(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "text/markdown; charset=utf-8",
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Json => "application/json",
        }
    }
}

impl std::fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// ------------------------------------------------------------ inventory

/// The model inventory: one row per model.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryReport {
    pub generated_at: DateTime<Utc>,
    /// The sha256 of the policy in force when the report was generated.
    pub policy_sha256: String,
    pub rows: Vec<InventoryRow>,
}

/// One model's inventory entry, with the fields SR 11-7 §VI asks for.
#[derive(Debug, Clone, Serialize)]
pub struct InventoryRow {
    pub name: ModelName,
    pub kind: ModelKind,
    /// The model's business purpose.
    pub purpose: String,
    pub intended_use: String,
    pub restrictions: String,
    pub owner: String,
    pub team: String,
    pub developers: Vec<String>,
    /// Who approved the production version, or the latest approved one.
    pub validators: Vec<String>,
    pub tier: RiskTier,
    /// The model's state (active or retired).
    pub state: ModelState,
    /// E.g. `in production (v3)`, `approved (v2), not in production`,
    /// `in validation (v4)`, `no versions`, `retired`.
    pub status: String,
    pub production_version: Option<u32>,
    pub last_validation: Option<DateTime<Utc>>,
    pub next_validation: Option<DateTime<Utc>>,
    /// Exceptions to policy, as the registry words them.
    pub open_exceptions: Vec<String>,
}

// ------------------------------------------------------------ model report

/// One model's governance record.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    pub generated_at: DateTime<Utc>,
    pub policy_sha256: String,
    pub model: Model,
    /// Oldest first.
    pub versions: Vec<VersionRecord>,
    /// Oldest first.
    pub gate_decisions: Vec<GateDecisionRecord>,
    /// The model's audit events, oldest first.
    pub audit: Vec<AuditEvent>,
    /// The head of the whole chain when the report was generated.
    pub chain_head: Option<ChainHead>,
}

/// A version with its governance records.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    pub version: ModelVersion,
    pub approvals: Vec<Approval>,
    pub evidence: Vec<Evidence>,
    pub reviews: Vec<Review>,
    pub next_review_at: Option<DateTime<Utc>>,
}

/// A gate's verdict on a transition, as the audit log recorded it.
#[derive(Debug, Clone, Serialize)]
pub struct GateDecisionRecord {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub version: u32,
    pub transition: String,
    pub allowed: bool,
    pub policy_sha256: String,
    /// `(condition, message)` of each failing condition.
    pub failed: Vec<(String, String)>,
    /// The audit event that recorded the decision.
    pub audit_sequence: i64,
}

// ------------------------------------------------------------ Annex IV

/// What the registry knows toward the Annex IV technical documentation.
#[derive(Debug, Clone, Serialize)]
pub struct AnnexIvReport {
    pub generated_at: DateTime<Utc>,
    pub policy_sha256: String,
    pub model: Model,
    /// The production version, else the latest.
    pub version: Option<VersionRecord>,
    /// The systems the model interacts with (the models it consumes).
    pub dependencies: Vec<String>,
}

// ------------------------------------------------------------ rendering

pub fn render_inventory(r: &InventoryReport, f: ReportFormat) -> String {
    match f {
        ReportFormat::Markdown => inventory::document(r).markdown(),
        ReportFormat::Html => inventory::document(r).html(),
        ReportFormat::Json => json(r),
    }
}

pub fn render_model(r: &ModelReport, f: ReportFormat) -> String {
    match f {
        ReportFormat::Markdown => model::document(r).markdown(),
        ReportFormat::Html => model::document(r).html(),
        ReportFormat::Json => json(r),
    }
}

/// The Annex IV draft; its JSON is the report with a `missing` array added.
pub fn render_annex_iv(r: &AnnexIvReport, f: ReportFormat) -> String {
    match f {
        ReportFormat::Markdown => annex_iv::document(r).markdown(),
        ReportFormat::Html => annex_iv::document(r).html(),
        ReportFormat::Json => {
            #[derive(Serialize)]
            struct WithMissing<'a> {
                #[serde(flatten)]
                report: &'a AnnexIvReport,
                missing: Vec<String>,
            }
            json(&WithMissing { report: r, missing: annex_iv_missing(r) })
        }
    }
}

/// The Annex IV items the registry could not fill, in Annex IV order, e.g.
/// `8. EU declaration of conformity`.
pub fn annex_iv_missing(r: &AnnexIvReport) -> Vec<String> {
    annex_iv::points(r).iter().flat_map(|p| p.items.iter()).filter(|i| i.content.is_none()).map(|i| i.title()).collect()
}

/// Pretty JSON. The report types hold only string-keyed maps, so this does
/// not fail; if it ever did, the answer is still JSON and says why.
fn json<T: Serialize>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("{}\n", serde_json::json!({ "error": format!("cannot serialize the report: {e}") })),
    }
}

/// A time as the reports show it: RFC 3339, UTC, whole seconds.
fn fmt_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
