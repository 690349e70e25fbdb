//! Deployments: named endpoints moving a model's traffic between versions
//! (direct, A/B, canary with automatic rollback, shadow), their rollback,
//! their native predict route and their recorded predictions.

use super::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::inference::records;
use crate::wire::{
    CanaryResponse, CanaryStepResponse, CanaryWire, CreateDeploymentRequest, DeploymentList, DeploymentListParams, DeploymentResponse, ErrorBody,
    HoldWire, PredictRequest, PredictResponse, PredictionPage, PredictionParams, PredictionRecordResponse, RouteWire, ShadowWire, StepWire,
    UpdateDeploymentRequest,
};
use crate::ApiState;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use modelops_core::deployment::{parse_duration, CanaryStep, Hold, PredictionQuery, PredictionRecord, Route, ShadowRoute, Strategy};
use modelops_core::name::ModelName;
use modelops_deploy::plan::{CanaryRequest, ChangeRequest, CreateRequest};
use modelops_deploy::{DeploymentStatus, Deployments};
use modelops_registry::Registry;
use modelops_serving::PredictInput;

impl JsonRequest for CreateDeploymentRequest {}
impl JsonRequest for UpdateDeploymentRequest {}

impl FromRef<ApiState> for Deployments {
    fn from_ref(state: &ApiState) -> Self {
        state.deployments.clone()
    }
}

/// The response header naming the version that answered a deployment's call.
pub const VERSION_HEADER: &str = "x-modelops-version";

fn strategy(field: &str, text: Option<String>) -> Result<Option<Strategy>, ApiError> {
    Ok(text.map(|s| Strategy::parse_field(field, &s)).transpose()?)
}

fn hold_of(field: &str, requests: Option<u64>, duration: Option<&str>) -> Result<Hold, ApiError> {
    let duration_ms = duration
        .map(|d| parse_duration(&format!("{field}.duration"), d).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
        .transpose()?;
    Ok(Hold { requests, duration_ms })
}

fn canary(wire: CanaryWire) -> Result<CanaryRequest, ApiError> {
    let steps = canary_steps("canary", wire.steps, wire.hold)?;
    Ok(CanaryRequest { version: wire.version, steps, condition: wire.condition })
}

/// Steps as given (a weight, or a weight with its own hold) with the hold
/// of those that give none (100 calls when absent); errors name
/// `{field}.hold`, `{field}.steps[i]`.
pub(crate) fn canary_steps(field: &str, steps: Vec<StepWire>, hold: Option<HoldWire>) -> Result<Vec<CanaryStep>, ApiError> {
    let default = match &hold {
        Some(HoldWire { requests, duration }) => hold_of(&format!("{field}.hold"), *requests, duration.as_deref())?,
        None => Hold { requests: Some(100), duration_ms: None },
    };
    steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| match step {
            StepWire::Weight(weight) => Ok(CanaryStep { weight, hold: default }),
            StepWire::Held(step) => {
                let own = hold_of(&format!("{field}.steps[{i}]"), step.requests, step.duration.as_deref())?;
                let hold = if own.requests.is_none() && own.duration_ms.is_none() { default } else { own };
                Ok(CanaryStep { weight: step.weight, hold })
            }
        })
        .collect()
}

fn routes(wire: Option<Vec<RouteWire>>) -> Option<Vec<Route>> {
    wire.map(|r| r.into_iter().map(|r| Route { version: r.version, weight: r.weight }).collect())
}

fn shadows(wire: Vec<ShadowWire>) -> Vec<ShadowRoute> {
    wire.into_iter().map(|s| ShadowRoute { version: s.version, percent: s.percent }).collect()
}

impl TryFrom<CreateDeploymentRequest> for CreateRequest {
    type Error = ApiError;
    fn try_from(w: CreateDeploymentRequest) -> Result<Self, ApiError> {
        Ok(CreateRequest {
            name: Some(ModelName::parse_field("name", w.name)?),
            model: Some(ModelName::parse_field("model", w.model)?),
            description: w.description.unwrap_or_default(),
            strategy: strategy("strategy", w.strategy)?,
            version: w.version,
            routes: routes(w.routes),
            shadows: shadows(w.shadows),
            sticky_header: w.sticky_header.filter(|h| !h.is_empty()),
            canary: w.canary.map(canary).transpose()?,
            sampling: w.sampling,
        })
    }
}

impl TryFrom<UpdateDeploymentRequest> for ChangeRequest {
    type Error = ApiError;
    fn try_from(w: UpdateDeploymentRequest) -> Result<Self, ApiError> {
        Ok(ChangeRequest {
            revision: w.revision,
            description: w.description,
            strategy: strategy("strategy", w.strategy)?,
            version: w.version,
            routes: routes(w.routes),
            shadows: w.shadows.map(shadows),
            sticky_header: w.sticky_header.map(|h| (!h.is_empty()).then_some(h)),
            canary: w.canary.map(canary).transpose()?,
            sampling: w.sampling,
        })
    }
}

impl From<DeploymentStatus> for DeploymentResponse {
    fn from(status: DeploymentStatus) -> Self {
        let d = status.deployment;
        DeploymentResponse {
            name: d.name.into(),
            model: d.model.into(),
            description: d.description,
            strategy: d.strategy.to_string(),
            routes: d.routes.iter().map(|r| RouteWire { version: r.version, weight: r.weight }).collect(),
            shadows: d.shadows.iter().map(|s| ShadowWire { version: s.version, percent: s.percent }).collect(),
            sticky_header: d.sticky_header,
            canary: d.canary.map(|c| CanaryResponse {
                version: c.plan.version,
                stable: c.stable,
                step: c.step + 1,
                steps: c.plan.steps.iter().map(|s| CanaryStepResponse { weight: s.weight, requests: s.hold.requests, duration_ms: s.hold.duration_ms }).collect(),
                condition: c.plan.condition,
                step_started_at: c.step_started_at,
            }),
            sampling: d.sampling,
            state: d.state.to_string(),
            reason: d.reason,
            previous: d.previous,
            revision: d.revision,
            created_at: d.created_at,
            created_by: d.created_by,
            updated_at: d.updated_at,
            updated_by: d.updated_by,
            live: status.live.and_then(|l| serde_json::to_value(l).ok()),
        }
    }
}

/// Lists deployments (live ones; `include_retired` for all).
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments", params(DeploymentListParams),
    responses((status = 200, description = "Deployments by name", body = DeploymentList), ReadErrors))]
pub(crate) async fn list_deployments(
    State(deployments): State<Deployments>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<DeploymentListParams>,
) -> ApiResult<Json<DeploymentList>> {
    let model = params.model.map(|m| ModelName::parse_field("model", m)).transpose()?;
    let all = deployments.list(&principal, model.as_ref(), params.include_retired).await?;
    Ok(Json(DeploymentList { deployments: all.into_iter().map(Into::into).collect() }))
}

/// Creates a deployment. Every version it routes traffic to is loaded and
/// warmed first, and must be approved and pass the tier's `production`
/// gate (a shadow may be in validation); a version taking all traffic is
/// promoted. For deployers.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "deployments", request_body = CreateDeploymentRequest,
    responses((status = 201, description = "The deployment, serving", body = DeploymentResponse), WriteErrors))]
pub(crate) async fn create_deployment(
    State(deployments): State<Deployments>,
    Actor(principal): Actor,
    ApiJson(request): ApiJson<CreateDeploymentRequest>,
) -> ApiResult<(StatusCode, Json<DeploymentResponse>)> {
    let status = deployments.create(&principal, request.try_into()?).await?;
    Ok((StatusCode::CREATED, Json(status.into())))
}

/// A deployment, with what it served since this server started.
#[utoipa::path(get, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "Deployment name")),
    responses((status = 200, description = "The deployment", body = DeploymentResponse), ReadErrors))]
pub(crate) async fn get_deployment(State(deployments): State<Deployments>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<DeploymentResponse>> {
    Ok(Json(deployments.get(&principal, &path.model()?).await?.into()))
}

/// Changes a deployment: new routes (all traffic to `version`, or a split),
/// a canary from the version serving, shadows, the sticky header, the
/// sampling rate. A version that does not load refuses the change and the
/// deployment keeps serving as it was; a change racing another is 409.
#[utoipa::path(patch, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "Deployment name")),
    request_body = UpdateDeploymentRequest,
    responses((status = 200, description = "The deployment as changed", body = DeploymentResponse), WriteErrors))]
pub(crate) async fn update_deployment(
    State(deployments): State<Deployments>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<UpdateDeploymentRequest>,
) -> ApiResult<Json<DeploymentResponse>> {
    Ok(Json(deployments.change(&principal, &path.model()?, request.try_into()?).await?.into()))
}

/// Retires a deployment: it serves nothing more; its record and its
/// recorded predictions stay.
#[utoipa::path(delete, path = "/api/v1/deployments/{name}", tag = "deployments",
    params(("name" = String, Path, description = "Deployment name")),
    responses((status = 200, description = "The deployment, retired", body = DeploymentResponse), WriteErrors))]
pub(crate) async fn retire_deployment(State(deployments): State<Deployments>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<DeploymentResponse>> {
    Ok(Json(deployments.retire(&principal, &path.model()?).await?.into()))
}

/// Rolls back: a canary in progress stops (the stable version takes all
/// traffic); otherwise the version served before takes all traffic again
/// (through the `production` gate).
#[utoipa::path(post, path = "/api/v1/deployments/{name}/rollback", tag = "deployments",
    params(("name" = String, Path, description = "Deployment name")),
    responses((status = 200, description = "The deployment after the rollback; `reason` says from what to what", body = DeploymentResponse), WriteErrors))]
pub(crate) async fn rollback_deployment(State(deployments): State<Deployments>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<DeploymentResponse>> {
    Ok(Json(deployments.rollback(&principal, &path.model()?, None).await?.into()))
}

/// Runs a deployment on rows or columns; the `x-modelops-version` header
/// and `version` name the version that answered.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/predict", tag = "deployments",
    params(("name" = String, Path, description = "Deployment name")),
    request_body = PredictRequest,
    responses(
        (status = 200, description = "One object per row keyed by output name", body = PredictResponse),
        (status = 413, description = "Too many rows, or a body over the limit", body = ErrorBody),
        (status = 502, description = "The upstream (LLM provider, external server) failed", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
        ReadErrors,
    ))]
pub(crate) async fn predict_deployment(
    State(deployments): State<Deployments>,
    Actor(principal): Actor,
    path: ApiPath,
    headers: HeaderMap,
    ApiJson(request): ApiJson<PredictRequest>,
) -> ApiResult<Response> {
    let name = path.model()?;
    let routed = deployments.route(&principal, name.as_str(), |h| headers.get(h).and_then(|v| v.to_str().ok())).await?;
    let served = routed.served().clone();
    let inputs = records::to_tensors(&served.signature, request.rows, request.columns)?;
    let rows = inputs.first().and_then(|t| t.shape.first().copied()).unwrap_or(0);
    let request_id = headers.get(crate::REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let prediction = deployments.predict(&routed, PredictInput { inputs, explain: request.explain, parameters: request.parameters }, request_id).await?;
    let answer = super::predict::answer(&served, prediction, rows)?;
    let mut response = Json(answer).into_response();
    response.headers_mut().insert(VERSION_HEADER, HeaderValue::from(served.version.number));
    Ok(response)
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::invalid(field, format!("{} is not an RFC 3339 time such as 2026-12-06T10:00:00Z", modelops_core::name::quote(v))))
        })
        .transpose()
}

fn record_response(r: PredictionRecord) -> PredictionRecordResponse {
    let parse = |text: &str| serde_json::from_str(text).unwrap_or(serde_json::Value::Null);
    PredictionRecordResponse {
        id: r.id,
        request_id: r.request_id,
        at: r.at,
        version: r.version,
        route: r.route.to_string(),
        inputs: parse(&r.inputs),
        outputs: parse(&r.outputs),
        error: r.error,
        latency_us: r.latency_us,
    }
}

/// The response header counting the records a Parquet export left out
/// (calls whose inputs do not make a table row).
pub const SKIPPED_HEADER: &str = "x-modelops-skipped-records";

/// The most records one Parquet export holds; a longer window is refused
/// (narrow it with `since`/`until`).
const MAX_EXPORT_RECORDS: usize = 2_000_000;
/// Records read per query while exporting.
const EXPORT_PAGE: u32 = 5_000;

/// Recorded predictions of a deployment, oldest first: pages of JSON, or
/// the whole window as one Parquet file (`format=parquet`) for monitoring
/// and retraining.
#[utoipa::path(get, path = "/api/v1/deployments/{name}/predictions", tag = "deployments",
    params(("name" = String, Path, description = "Deployment name"), PredictionParams),
    responses(
        (status = 200, description = "A page of records (JSON), or a Parquet file", body = PredictionPage),
        (status = 413, description = "The window holds more records than one export may", body = ErrorBody),
        ReadErrors,
    ))]
pub(crate) async fn list_predictions(
    State(registry): State<Registry>,
    State(deployments): State<Deployments>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiQuery(params): ApiQuery<PredictionParams>,
) -> ApiResult<Response> {
    let deployment = path.model()?;
    let since = time_param("since", params.since.as_deref())?;
    let until = time_param("until", params.until.as_deref())?;
    let after_id = params
        .page_token
        .as_deref()
        .map(|t| t.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| ApiError::invalid("page_token", format!("{} is not a page token of this listing", modelops_core::name::quote(t)))))
        .transpose()?;
    // What was answered before this request is in the listing.
    deployments.recorder().flush().await;
    match params.format.as_deref().unwrap_or("json") {
        "json" => {
            let limit = params.max_results.unwrap_or(100);
            if !(1..=1000).contains(&limit) {
                return Err(ApiError::invalid("max_results", format!("`{limit}` is not from 1 to 1000")));
            }
            let query = PredictionQuery { deployment, since, until, after_id, limit: limit + 1, payload_only: false };
            let mut records = registry.list_predictions(&principal, &query).await?;
            let next_page_token = (records.len() > limit as usize).then(|| {
                records.truncate(limit as usize);
                records.last().map(|r| r.id.to_string()).unwrap_or_default()
            });
            Ok(Json(PredictionPage { records: records.into_iter().map(record_response).collect(), next_page_token }).into_response())
        }
        "parquet" => {
            let mut export = modelops_deploy::export::ParquetExport::new();
            let mut after_id = after_id;
            let mut total = 0usize;
            let mut skipped = 0u64;
            loop {
                let query = PredictionQuery { deployment: deployment.clone(), since, until, after_id, limit: EXPORT_PAGE, payload_only: false };
                let page = registry.list_predictions(&principal, &query).await?;
                total += page.len();
                if total > MAX_EXPORT_RECORDS {
                    return Err(ApiError::too_large(format!("the window holds more than {MAX_EXPORT_RECORDS} records; narrow it with `since` and `until`")));
                }
                let Some(last) = page.last() else { break };
                after_id = Some(last.id);
                let full = page.len() == EXPORT_PAGE as usize;
                // Parsing a page of JSON tensors is CPU work: off the async threads.
                let (back, dropped) = tokio::task::spawn_blocking(move || {
                    if export.push(&page).is_ok() {
                        return (export, 0);
                    }
                    // A call refused for its inputs is recorded as sent
                    // (tensors that disagree on rows, say): it has no place
                    // in the table, and is counted rather than failing the export.
                    let mut dropped = 0;
                    for record in &page {
                        if export.push(std::slice::from_ref(record)).is_err() {
                            dropped += 1;
                        }
                    }
                    (export, dropped)
                })
                .await
                .map_err(|e| ApiError::internal(format!("the export task failed: {e}")))?;
                export = back;
                skipped += dropped;
                if !full {
                    break;
                }
            }
            let bytes = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                export.finish(&mut out).map(|_| out)
            })
            .await
            .map_err(|e| ApiError::internal(format!("the export task failed: {e}")))??;
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(SKIPPED_HEADER, HeaderValue::from(skipped));
            headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apache.parquet"));
            if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{}.parquet\"", deployment.as_str().replace(['"', '\\'], "_"))) {
                headers.insert(axum::http::header::CONTENT_DISPOSITION, value);
            }
            Ok(response)
        }
        other => Err(ApiError::invalid("format", format!("{} is not one of `json`, `parquet`", modelops_core::name::quote(other)))),
    }
}
