//! The lifecycle of a version (submit, approve, reject, promote), its gates,
//! evidence and periodic reviews.

use super::{ReadErrors, WriteErrors};
use crate::error::ApiResult;
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::wire::{
    DecisionRequest, DecisionResponse, DueParams, DueReviewList, EvidenceRequest, EvidenceResponse, GateParams, GateResponse, GovernanceResponse,
    ReviewRequest, ReviewResponse, TransitionResponse,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modelops_core::governance::{Decision, NewEvidence};
use modelops_registry::Registry;

impl JsonRequest for DecisionRequest {}
impl JsonRequest for EvidenceRequest {}
impl JsonRequest for ReviewRequest {}

/// Submits a draft for validation, through the `in_validation` gate. For the
/// model's developers.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/submit", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, description = "The version, now in validation", body = TransitionResponse), WriteErrors))]
pub(crate) async fn submit(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<TransitionResponse>> {
    Ok(Json(registry.submit_version(&principal, &path.model()?, path.version()?).await?.into()))
}

/// Approves a version in validation. The author never may; for high and
/// critical models no listed developer may. The version becomes `approved`
/// once the `approved` gate allows; until then `gate` lists what is missing.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/approve", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = DecisionRequest,
    responses((status = 200, description = "The approval and the version's state after it", body = DecisionResponse), WriteErrors))]
pub(crate) async fn approve(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> ApiResult<Json<DecisionResponse>> {
    let outcome = registry.decide(&principal, &path.model()?, path.version()?, Decision::Approve, request.into()).await?;
    Ok(Json(outcome.into()))
}

/// Rejects a version in validation (separation of duties as for approval).
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/reject", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = DecisionRequest,
    responses((status = 200, description = "The rejection; the version is `rejected`", body = DecisionResponse), WriteErrors))]
pub(crate) async fn reject(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<DecisionRequest>,
) -> ApiResult<Json<DecisionResponse>> {
    let outcome = registry.decide(&principal, &path.model()?, path.version()?, Decision::Reject, request.into()).await?;
    Ok(Json(outcome.into()))
}

/// Promotes an approved version to production through the `production`
/// gate: `champion` moves to it and the previous production version returns
/// to `approved`. Rolling back is promoting an earlier approved version.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/promote", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, description = "The version, now in production", body = TransitionResponse), WriteErrors))]
pub(crate) async fn promote(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<TransitionResponse>> {
    Ok(Json(registry.promote_version(&principal, &path.model()?, path.version()?).await?.into()))
}

/// Asks a gate without changing anything: may the version move to `to` now,
/// and if not, every failing condition with its reason. For CI pipelines.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/gate", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), GateParams),
    responses((status = 200, description = "The gate's decision (`allowed` false lists the failing conditions)", body = GateResponse), ReadErrors))]
pub(crate) async fn gate(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiQuery(params): ApiQuery<GateParams>,
) -> ApiResult<Json<GateResponse>> {
    Ok(Json(registry.check_gate(&principal, &path.model()?, path.version()?, params.to.into()).await?.into()))
}

/// Approvals, evidence, reviews and the next review date of a version.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/governance", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, description = "The version's governance record", body = GovernanceResponse), ReadErrors))]
pub(crate) async fn governance(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<GovernanceResponse>> {
    Ok(Json(registry.version_governance(&principal, &path.model()?, path.version()?).await?.into()))
}

/// Attaches evidence: a validation metric, or a document (a validation
/// report in any format) uploaded first with `POST /api/v1/artifacts`.
/// Append-only.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/evidence", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = EvidenceRequest,
    responses((status = 201, description = "The evidence as recorded", body = EvidenceResponse), WriteErrors))]
pub(crate) async fn add_evidence(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<EvidenceRequest>,
) -> ApiResult<(StatusCode, Json<EvidenceResponse>)> {
    let model = path.model()?;
    let number = path.version()?;
    let evidence = registry.add_evidence(&principal, &model, number, NewEvidence::try_from(request)?).await?;
    Ok((StatusCode::CREATED, Json(evidence.into())))
}

/// Records a periodic review of the production version; the next one is
/// scheduled from the tier's cadence.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/reviews", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = ReviewRequest,
    responses((status = 201, description = "The review", body = ReviewResponse), WriteErrors))]
pub(crate) async fn record_review(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<ReviewRequest>,
) -> ApiResult<(StatusCode, Json<ReviewResponse>)> {
    let review = registry.record_review(&principal, &path.model()?, path.version()?, request.outcome.into(), &request.comment).await?;
    Ok((StatusCode::CREATED, Json(review.into())))
}

/// Production versions whose periodic review is due within `within_days`
/// (default 30; 0: overdue only), soonest first.
#[utoipa::path(get, path = "/api/v1/reviews/due", tag = "lifecycle",
    params(DueParams),
    responses((status = 200, description = "Reviews due", body = DueReviewList), ReadErrors))]
pub(crate) async fn reviews_due(State(registry): State<Registry>, Actor(principal): Actor, ApiQuery(params): ApiQuery<DueParams>) -> ApiResult<Json<DueReviewList>> {
    let days = params.within_days.unwrap_or(30);
    if days > 3650 {
        return Err(crate::error::ApiError::invalid("within_days", format!("`{days}` is more than 3650 days")));
    }
    let due = registry.reviews_due(&principal, chrono::Duration::days(i64::from(days))).await?;
    Ok(Json(DueReviewList { reviews: due.into_iter().map(Into::into).collect() }))
}

/// Downloads an evidence document of a version (a validation report), by
/// its sha256, verified like artifacts.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/evidence/{sha256}", tag = "lifecycle",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"),
           ("sha256" = String, Path, description = "The document's sha256, lowercase hex")),
    responses(
        (status = 200, description = "The document's bytes", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("x-modelops-sha256" = String, description = "sha256 of the content, lowercase hex"))),
        ReadErrors))]
pub(crate) async fn download_evidence(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<axum::response::Response> {
    let sha256 = path.sha256()?;
    let (document, download) = registry.download_evidence(&principal, &path.model()?, path.version()?, &sha256).await?;
    Ok(super::versions::stored_file_response(download, &document.sha256, &document.filename))
}
