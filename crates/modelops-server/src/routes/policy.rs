//! The active policy, and the governance reports.

use super::{ReadErrors, WriteErrors};
use crate::error::ApiResult;
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::wire::{LoadPolicyRequest, PolicyResponse, ReportParams};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelops_registry::reports::{Report, ReportFormat};
use modelops_registry::{Policy, PolicyFormat, Registry};

impl JsonRequest for LoadPolicyRequest {}

fn policy_response(policy: &Policy, stored: Option<modelops_core::governance::StoredPolicy>, changed: bool) -> ApiResult<PolicyResponse> {
    let summary = serde_json::to_value(policy.summary()).map_err(|e| crate::error::ApiError::internal(format!("cannot render the policy summary: {e}")))?;
    Ok(PolicyResponse {
        sha256: policy.sha256().to_string(),
        format: policy.format().as_str().to_string(),
        loaded_at: stored.as_ref().map(|s| s.loaded_at),
        loaded_by: stored.map(|s| s.loaded_by),
        changed,
        summary,
        source: policy.source().to_string(),
    })
}

/// The active policy: its hash, its gates per tier and its source.
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy",
    responses((status = 200, description = "The active policy", body = PolicyResponse), ReadErrors))]
pub(crate) async fn get_policy(State(registry): State<Registry>, _actor: Actor) -> ApiResult<Json<PolicyResponse>> {
    let (policy, stored) = registry.active_policy().await?;
    Ok(Json(policy_response(&policy, stored, false)?))
}

/// Loads a policy file (admins). A file that does not parse, or a condition
/// that does not type-check, is refused naming the file, line and problem,
/// and the active policy stays. The load is recorded with the policy's hash.
#[utoipa::path(put, path = "/api/v1/policy", tag = "policy",
    request_body = LoadPolicyRequest,
    responses((status = 200, description = "The policy now active (`changed` false when it already was)", body = PolicyResponse), WriteErrors))]
pub(crate) async fn load_policy(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiJson(request): ApiJson<LoadPolicyRequest>,
) -> ApiResult<Json<PolicyResponse>> {
    let format = PolicyFormat::parse_field("format", &request.format)?;
    let origin = if request.origin.is_empty() { "policy" } else { request.origin.as_str() };
    modelops_core::model::check_text("origin", origin, modelops_core::model::MAX_SHORT_TEXT_LEN)?;
    let (policy, changed) = registry.load_policy(&principal, &request.source, format, origin).await?;
    let (_, stored) = registry.active_policy().await?;
    Ok(Json(policy_response(&policy, stored, changed)?))
}

fn report_response(text: String, format: ReportFormat) -> Response {
    let content_type = match format {
        ReportFormat::Markdown => "text/markdown; charset=utf-8",
        ReportFormat::Html => "text/html; charset=utf-8",
        ReportFormat::Json => "application/json",
    };
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

fn format_of(params: &ReportParams) -> ApiResult<ReportFormat> {
    Ok(ReportFormat::parse_field("format", params.format.as_deref().unwrap_or("md"))?)
}

/// The model inventory with the SR 11-7 fields.
#[utoipa::path(get, path = "/api/v1/reports/inventory", tag = "reports",
    params(ReportParams),
    responses((status = 200, description = "The report (Markdown, HTML or JSON, as `format` asks)",
        content((String = "text/markdown; charset=utf-8"), (String = "text/html; charset=utf-8"), (Object = "application/json"))), ReadErrors))]
pub(crate) async fn inventory_report(State(registry): State<Registry>, Actor(principal): Actor, ApiQuery(params): ApiQuery<ReportParams>) -> ApiResult<Response> {
    let format = format_of(&params)?;
    Ok(report_response(registry.report(&principal, Report::Inventory, format).await?, format))
}

/// A model's governance report: versions, approvals, evidence, gate
/// decisions with reasons, and an audit excerpt with how to verify it.
#[utoipa::path(get, path = "/api/v1/reports/models/{name}", tag = "reports",
    params(("name" = String, Path, description = "Model name"), ReportParams),
    responses((status = 200, description = "The report (Markdown, HTML or JSON, as `format` asks)",
        content((String = "text/markdown; charset=utf-8"), (String = "text/html; charset=utf-8"), (Object = "application/json"))), ReadErrors))]
pub(crate) async fn model_report(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> ApiResult<Response> {
    let format = format_of(&params)?;
    Ok(report_response(registry.report(&principal, Report::Model(path.model()?), format).await?, format))
}

/// An EU AI Act Annex IV technical-documentation draft filled from what the
/// registry knows, with the missing items listed.
#[utoipa::path(get, path = "/api/v1/reports/models/{name}/annex-iv", tag = "reports",
    params(("name" = String, Path, description = "Model name"), ReportParams),
    responses((status = 200, description = "The draft (Markdown, HTML or JSON, as `format` asks)",
        content((String = "text/markdown; charset=utf-8"), (String = "text/html; charset=utf-8"), (Object = "application/json"))), ReadErrors))]
pub(crate) async fn annex_iv_report(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiQuery(params): ApiQuery<ReportParams>,
) -> ApiResult<Response> {
    let format = format_of(&params)?;
    Ok(report_response(registry.report(&principal, Report::AnnexIv(path.model()?), format).await?, format))
}
