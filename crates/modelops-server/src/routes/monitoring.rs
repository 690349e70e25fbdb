//! Live monitoring: a version's reference profile, a deployment's monitors
//! and their window results, labels for recorded calls, alerts and
//! retraining requests. Every handler calls one `modelops_watch::Watch`
//! use case.

use super::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::wire::{
    AlertList, AlertParams, AlertResponse, CreateMonitorRequest, LabelsRequest, LabelsResponse, MonitorList, MonitorResponse, ReferenceDataWire, ReferenceResponse,
    RetrainParams, RetrainRequestList, RetrainRequestResponse, ResultParams, SetReferenceRequest, WindowResultList, WindowResultResponse,
};
use crate::ApiState;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use modelops_core::deployment::parse_duration;
use modelops_core::monitoring::{ActionKind, AlertAction, AlertRule, DriftMode, DriftSettings, MonitorSpec, PerformanceSettings, ReferenceData, ReferenceProfile, Window};
use modelops_core::name::{quote, ModelName};
use modelops_watch::{MonitorStatus, ReferenceInput, Watch};

/// The largest reference body: a profile and its estimator.
pub(crate) const REFERENCE_BODY_LIMIT: usize = 256 * 1024 * 1024;

impl JsonRequest for SetReferenceRequest {}
impl JsonRequest for CreateMonitorRequest {}
impl JsonRequest for LabelsRequest {}

impl FromRef<ApiState> for Watch {
    fn from_ref(state: &ApiState) -> Self {
        state.watch.clone()
    }
}

fn millis(field: &str, text: &str) -> Result<u64, ApiError> {
    let d = parse_duration(field, text)?;
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| ApiError::invalid(field, format!("{} is not an RFC 3339 time such as 2026-12-06T10:00:00Z", quote(v))))
        })
        .transpose()
}

impl TryFrom<CreateMonitorRequest> for MonitorSpec {
    type Error = ApiError;

    fn try_from(r: CreateMonitorRequest) -> Result<Self, ApiError> {
        let window = Window { every_ms: r.window.every.as_deref().map(|e| millis("window.every", e)).transpose()?, rows: r.window.rows };
        let alerts = r
            .alerts
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let actions = a
                    .actions
                    .into_iter()
                    .enumerate()
                    .map(|(j, x)| {
                        Ok(AlertAction { kind: ActionKind::parse_field(&format!("alerts[{i}].actions[{j}].kind"), &x.kind)?, url: x.url, secret_env: x.secret_env })
                    })
                    .collect::<Result<_, ApiError>>()?;
                Ok(AlertRule {
                    name: a.name,
                    condition: a.condition,
                    for_ms: a.for_.as_deref().map(|d| millis(&format!("alerts[{i}].for"), d)).transpose()?.unwrap_or(0),
                    cooldown_ms: a.cooldown.as_deref().map(|d| millis(&format!("alerts[{i}].cooldown"), d)).transpose()?.unwrap_or(0),
                    actions,
                })
            })
            .collect::<Result<_, ApiError>>()?;
        Ok(MonitorSpec {
            name: r.name,
            window,
            features: r.features,
            drift: DriftSettings {
                mode: match r.drift.mode.as_deref() {
                    None | Some("default") => DriftMode::Default,
                    Some("evidently") => DriftMode::Evidently,
                    Some(other) => return Err(ApiError::invalid("drift.mode", format!("{} is not a drift mode: `default` or `evidently`", quote(other)))),
                },
                method: r.drift.method,
                threshold: r.drift.threshold,
                drift_share: r.drift.drift_share.unwrap_or(DriftSettings::default().drift_share),
            },
            performance: r.performance.map(|p| PerformanceSettings { prediction: p.prediction, score: p.score, pos_label: p.pos_label, fairness_attribute: p.fairness_attribute }),
            min_rows: r.min_rows.unwrap_or(30),
            alerts,
        })
    }
}

fn monitor_response(s: MonitorStatus) -> MonitorResponse {
    MonitorResponse {
        deployment: s.monitor.deployment.as_str().to_string(),
        name: s.monitor.spec.name.clone(),
        spec: serde_json::to_value(&s.monitor.spec).unwrap_or_default(),
        created_at: s.monitor.created_at,
        created_by: s.monitor.created_by,
        live: s.live.map(|l| serde_json::to_value(l).unwrap_or_default()),
        firing: s.firing,
    }
}

fn reference_response(r: ReferenceProfile, with_profile: bool) -> ReferenceResponse {
    let profile = with_profile.then(|| serde_json::from_str(&r.profile).unwrap_or_default());
    ReferenceResponse {
        model: r.model.as_str().to_string(),
        version: r.version,
        sha256: r.sha256,
        source: r.source,
        rows: r.rows,
        estimator: r.estimator.is_some(),
        data: r.data.map(|d| ReferenceDataWire { sha256: d.sha256, filename: d.filename }),
        created_at: r.created_at,
        created_by: r.created_by,
        profile,
    }
}

/// Sets a version's reference profile — once: it is immutable like lineage
/// (a second is 409). The profile is `modelops profile fit`'s JSON; it is
/// validated before it is stored.
#[utoipa::path(put, path = "/api/v1/models/{name}/versions/{version}/reference", tag = "monitoring",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = SetReferenceRequest,
    responses((status = 201, description = "The reference, stored", body = ReferenceResponse), WriteErrors))]
pub(crate) async fn set_reference(
    State(watch): State<Watch>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<SetReferenceRequest>,
) -> ApiResult<(StatusCode, Json<ReferenceResponse>)> {
    let text = match request.profile {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    let estimator = request.estimator.map(|e| match e {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    let data = request.data.map(|d| ReferenceData { sha256: d.sha256, filename: d.filename });
    let input = ReferenceInput { profile: &text, source: request.source.as_deref().unwrap_or(""), estimator: estimator.as_deref(), data };
    let stored = watch.set_reference(&principal, &path.model()?, path.version()?, input).await?;
    Ok((StatusCode::CREATED, Json(reference_response(stored, false))))
}

/// A version's reference profile: where it came from, its digest, and the
/// profile itself.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/reference", tag = "monitoring",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, description = "The reference profile", body = ReferenceResponse), ReadErrors))]
pub(crate) async fn get_reference(State(watch): State<Watch>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<ReferenceResponse>> {
    Ok(Json(reference_response(watch.reference(&principal, &path.model()?, path.version()?).await?, true)))
}

/// Creates a monitor on a deployment: drift per feature and of the
/// prediction against each serving version's reference, performance once
/// labels arrive, fairness, over time or count windows; alert rules in CEL.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/monitors", tag = "monitoring",
    params(("name" = String, Path, description = "Deployment name")),
    request_body = CreateMonitorRequest,
    responses((status = 201, description = "The monitor", body = MonitorResponse), WriteErrors))]
pub(crate) async fn create_monitor(
    State(watch): State<Watch>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<CreateMonitorRequest>,
) -> ApiResult<(StatusCode, Json<MonitorResponse>)> {
    let deployment = path.model()?;
    let monitor = watch.create_monitor(&principal, &deployment, request.try_into()?).await?;
    let status = MonitorStatus { monitor, live: None, firing: Vec::new() };
    Ok((StatusCode::CREATED, Json(monitor_response(status))))
}

/// A deployment's monitors.
#[utoipa::path(get, path = "/api/v1/deployments/{name}/monitors", tag = "monitoring",
    params(("name" = String, Path, description = "Deployment name")),
    responses((status = 200, description = "The monitors", body = MonitorList), ReadErrors))]
pub(crate) async fn list_monitors(State(watch): State<Watch>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<MonitorList>> {
    let monitors = watch.monitors(&principal, Some(&path.model()?)).await?;
    Ok(Json(MonitorList { monitors: monitors.into_iter().map(monitor_response).collect() }))
}

/// One monitor, with what the engine did since this server started.
#[utoipa::path(get, path = "/api/v1/deployments/{name}/monitors/{monitor}", tag = "monitoring",
    params(("name" = String, Path, description = "Deployment name"), ("monitor" = String, Path, description = "Monitor name")),
    responses((status = 200, description = "The monitor", body = MonitorResponse), ReadErrors))]
pub(crate) async fn get_monitor(State(watch): State<Watch>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<MonitorResponse>> {
    Ok(Json(monitor_response(watch.monitor(&principal, &path.model()?, &path.monitor()?).await?)))
}

/// Removes a monitor with its results (its alerts stay in the record).
#[utoipa::path(delete, path = "/api/v1/deployments/{name}/monitors/{monitor}", tag = "monitoring",
    params(("name" = String, Path, description = "Deployment name"), ("monitor" = String, Path, description = "Monitor name")),
    responses((status = 200, description = "The monitor removed", body = MonitorResponse), WriteErrors))]
pub(crate) async fn delete_monitor(State(watch): State<Watch>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<MonitorResponse>> {
    let gone = watch.delete_monitor(&principal, &path.model()?, &path.monitor()?).await?;
    Ok(Json(monitor_response(MonitorStatus { monitor: gone, live: None, firing: Vec::new() })))
}

/// A monitor's window results, oldest first: closed windows, and the open
/// ones' provisional results.
#[utoipa::path(get, path = "/api/v1/deployments/{name}/monitors/{monitor}/results", tag = "monitoring",
    params(("name" = String, Path, description = "Deployment name"), ("monitor" = String, Path, description = "Monitor name"), ResultParams),
    responses((status = 200, description = "The windows", body = WindowResultList), ReadErrors))]
pub(crate) async fn monitor_results(
    State(watch): State<Watch>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiQuery(params): ApiQuery<ResultParams>,
) -> ApiResult<Json<WindowResultList>> {
    let (deployment, monitor) = (path.model()?, path.monitor()?);
    let since = time_param("since", params.since.as_deref())?;
    let limit = params.max_results.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::invalid("max_results", format!("`{limit}` is not from 1 to 10000")));
    }
    let results = watch.results(&principal, &deployment, &monitor, since, limit).await?;
    Ok(Json(WindowResultList {
        deployment: deployment.as_str().to_string(),
        monitor,
        results: results
            .into_iter()
            .map(|r| WindowResultResponse { version: r.version, start: r.start, end: r.end, rows: r.rows, closed: r.closed, result: r.body, computed_at: r.computed_at })
            .collect(),
    }))
}

/// Records ground truth for recorded calls, by request id, days later
/// included; the windows they belong to get their performance recomputed.
/// An unknown request id is counted and named, not an error.
#[utoipa::path(post, path = "/api/v1/deployments/{name}/labels", tag = "monitoring",
    params(("name" = String, Path, description = "Deployment name")),
    request_body = LabelsRequest,
    responses((status = 200, description = "What was joined", body = LabelsResponse), WriteErrors))]
pub(crate) async fn record_labels(
    State(watch): State<Watch>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<LabelsRequest>,
) -> ApiResult<Json<LabelsResponse>> {
    let labels: Vec<(String, serde_json::Value)> = request.labels.into_iter().map(|l| (l.request_id, l.label)).collect();
    let outcome = watch.record_labels(&principal, &path.model()?, &labels).await?;
    Ok(Json(LabelsResponse { joined: outcome.joined, unknown: outcome.unknown, unknown_request_ids: outcome.unknown_ids }))
}

/// Alerts, newest first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "monitoring", params(AlertParams),
    responses((status = 200, description = "The alerts", body = AlertList), ReadErrors))]
pub(crate) async fn list_alerts(State(watch): State<Watch>, Actor(principal): Actor, ApiQuery(params): ApiQuery<AlertParams>) -> ApiResult<Json<AlertList>> {
    let deployment = params.deployment.as_deref().map(|d| ModelName::parse_field("deployment", d)).transpose()?;
    let limit = params.max_results.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("max_results", format!("`{limit}` is not from 1 to 1000")));
    }
    let alerts = watch.alerts(&principal, deployment.as_ref(), params.firing.unwrap_or(false), limit).await?;
    Ok(Json(AlertList {
        alerts: alerts
            .into_iter()
            .map(|a| AlertResponse {
                id: a.id,
                deployment: a.deployment.as_str().to_string(),
                monitor: a.monitor,
                rule: a.rule,
                state: a.state.as_str().to_string(),
                version: a.version,
                window_start: a.window_start,
                fired_at: a.fired_at,
                resolved_at: a.resolved_at,
                detail: a.detail,
            })
            .collect(),
    }))
}

/// Retraining requests opened by alerts (the closed loop executes them).
#[utoipa::path(get, path = "/api/v1/retrain-requests", tag = "monitoring", params(RetrainParams),
    responses((status = 200, description = "The requests", body = RetrainRequestList), ReadErrors))]
pub(crate) async fn list_retrain_requests(
    State(watch): State<Watch>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<RetrainParams>,
) -> ApiResult<Json<RetrainRequestList>> {
    let model = params.model.as_deref().map(|m| ModelName::parse_field("model", m)).transpose()?;
    let requests = watch.retrain_requests(&principal, model.as_ref()).await?;
    Ok(Json(RetrainRequestList {
        requests: requests
            .into_iter()
            .map(|r| RetrainRequestResponse {
                id: r.id,
                model: r.model.as_str().to_string(),
                deployment: r.deployment.as_str().to_string(),
                alert: r.alert_id,
                reason: r.reason,
                state: r.state,
                created_at: r.created_at,
            })
            .collect(),
    }))
}
