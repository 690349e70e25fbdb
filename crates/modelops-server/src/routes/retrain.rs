//! Retraining: a model's job (define, read, remove), a run by hand, the
//! runs with their output and the window each was fed. Every handler calls
//! one `modelops_retrain::Retraining` use case (or the registry's read).

use super::deployments::canary_steps;
use super::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::wire::{
    ErrorBody, HeldStepWire, JobRunList, JobRunLog, JobRunParams, JobRunResponse, JobSpecWire, RetrainJobList, RetrainJobResponse, RolloutWire,
    RunnerWire, ShadowStageWire, StepWire, TriggerWindowWire,
};
use crate::ApiState;
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelops_core::name::ModelName;
use modelops_core::retrain::{JobRun, JobRunner, JobSpec, RetrainJob, RolloutTemplate, ShadowStage, DEFAULT_COOLDOWN_SECONDS, DEFAULT_TIMEOUT_SECONDS};
use modelops_retrain::Retraining;

impl JsonRequest for JobSpecWire {}

impl FromRef<ApiState> for Retraining {
    fn from_ref(state: &ApiState) -> Self {
        state.retrain.clone()
    }
}

/// Runs listed when no limit is given, and the most.
const DEFAULT_RUNS: u32 = 50;
const MAX_RUNS: u32 = 1000;

fn spec_of(wire: JobSpecWire) -> Result<JobSpec, ApiError> {
    let r = wire.runner;
    let runner = match r.kind.as_str() {
        "command" => {
            if r.url.is_some() || r.secret_env.is_some() {
                return Err(ApiError::invalid("runner.url", "a `command` runner takes `argv`, `dir` and `env`, not `url` or `secret_env`"));
            }
            JobRunner::Command { argv: r.argv.ok_or_else(|| ApiError::invalid("runner.argv", "is required for a `command` runner"))?, dir: r.dir, env: r.env.unwrap_or_default() }
        }
        "webhook" => {
            if r.argv.is_some() || r.dir.is_some() || r.env.is_some() {
                return Err(ApiError::invalid("runner.argv", "a `webhook` runner takes `url` and `secret_env`, not `argv`, `dir` or `env`"));
            }
            JobRunner::Webhook { url: r.url.ok_or_else(|| ApiError::invalid("runner.url", "is required for a `webhook` runner"))?, secret_env: r.secret_env }
        }
        other => return Err(ApiError::invalid("runner.kind", format!("`{other}` is not one of `command`, `webhook`"))),
    };
    let rollout = match wire.rollout {
        Some(w) => Some(RolloutTemplate {
            deployment: ModelName::parse_field("rollout.deployment", w.deployment)?,
            shadow: w.shadow.map(|s| ShadowStage { calls: s.calls, min_agreement: s.min_agreement, output: s.output }),
            steps: canary_steps("rollout", w.steps, w.hold)?,
            condition: w.condition,
        }),
        None => None,
    };
    Ok(JobSpec {
        runner,
        timeout_seconds: wire.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        cooldown_seconds: wire.cooldown_seconds.unwrap_or(DEFAULT_COOLDOWN_SECONDS),
        on_alert: wire.on_alert.unwrap_or(true),
        schedule: wire.schedule,
        rollout,
    })
}

fn spec_wire(spec: JobSpec) -> JobSpecWire {
    let runner = match spec.runner {
        JobRunner::Command { argv, dir, env } => RunnerWire { kind: "command".into(), argv: Some(argv), dir, env: (!env.is_empty()).then_some(env), ..RunnerWire::default() },
        JobRunner::Webhook { url, secret_env } => RunnerWire { kind: "webhook".into(), url: Some(url), secret_env, ..RunnerWire::default() },
    };
    JobSpecWire {
        runner,
        timeout_seconds: Some(spec.timeout_seconds),
        cooldown_seconds: Some(spec.cooldown_seconds),
        on_alert: Some(spec.on_alert),
        schedule: spec.schedule,
        rollout: spec.rollout.map(|r| RolloutWire {
            deployment: r.deployment.to_string(),
            shadow: r.shadow.map(|s| ShadowStageWire { calls: s.calls, min_agreement: s.min_agreement, output: s.output }),
            steps: r
                .steps
                .iter()
                .map(|s| StepWire::Held(HeldStepWire { weight: s.weight, requests: s.hold.requests, duration: s.hold.duration_ms.map(|ms| format!("{ms}ms")) }))
                .collect(),
            hold: None,
            condition: r.condition,
        }),
        run_as: None,
    }
}

fn job_response(job: RetrainJob) -> RetrainJobResponse {
    RetrainJobResponse { model: job.model.to_string(), spec: spec_wire(job.spec), run_as: job.run_as, created_at: job.created_at, updated_at: job.updated_at }
}

pub(crate) fn run_response(run: JobRun) -> JobRunResponse {
    let job_seconds = run.job_seconds();
    JobRunResponse {
        id: run.id,
        model: run.model.to_string(),
        trigger: run.trigger.as_str().into(),
        requested_by: run.requested_by,
        alert: run.alert,
        window: run.window.map(|w| TriggerWindowWire { deployment: w.deployment.to_string(), monitor: w.monitor, start: w.start, end: w.end, version: w.version }),
        parent_version: run.parent_version,
        version: run.version,
        state: run.state.as_str().into(),
        reason: run.reason,
        exit_code: run.exit_code,
        started_at: run.started_at,
        job_ended_at: run.job_ended_at,
        job_seconds,
        ended_at: run.ended_at,
        updated_at: run.updated_at,
    }
}

/// Defines (or replaces) the model's retraining job. For its developers;
/// runs act as the caller.
#[utoipa::path(put, path = "/api/v1/models/{name}/retrain-job", tag = "retraining", request_body = JobSpecWire,
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "The job as stored", body = RetrainJobResponse), WriteErrors))]
pub(crate) async fn put_job(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath, ApiJson(wire): ApiJson<JobSpecWire>) -> ApiResult<Json<RetrainJobResponse>> {
    let model = path.model()?;
    let run_as = wire.run_as.clone();
    let spec = spec_of(wire)?;
    Ok(Json(job_response(retrain.define_job(&principal, &model, spec, run_as.as_deref()).await?)))
}

/// The model's retraining job.
#[utoipa::path(get, path = "/api/v1/models/{name}/retrain-job", tag = "retraining",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "The job", body = RetrainJobResponse), ReadErrors))]
pub(crate) async fn get_job(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<RetrainJobResponse>> {
    Ok(Json(job_response(retrain.registry().retrain_job(&principal, &path.model()?).await?)))
}

/// Removes the model's job (runs under way go on).
#[utoipa::path(delete, path = "/api/v1/models/{name}/retrain-job", tag = "retraining",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 204, description = "Removed"), WriteErrors))]
pub(crate) async fn delete_job(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath) -> ApiResult<StatusCode> {
    retrain.registry().delete_retrain_job(&principal, &path.model()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every model's job.
#[utoipa::path(get, path = "/api/v1/retrain-jobs", tag = "retraining",
    responses((status = 200, description = "The jobs", body = RetrainJobList), ReadErrors))]
pub(crate) async fn list_jobs(State(retrain): State<Retraining>, Actor(principal): Actor) -> ApiResult<Json<RetrainJobList>> {
    let jobs = retrain.registry().retrain_jobs(&principal).await?;
    Ok(Json(RetrainJobList { jobs: jobs.into_iter().map(job_response).collect() }))
}

/// Starts a run of the model's job now (409 when it has none, or a run
/// is under way).
#[utoipa::path(post, path = "/api/v1/models/{name}/retrain", tag = "retraining",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 201, description = "The run started", body = JobRunResponse), WriteErrors))]
pub(crate) async fn retrain(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath) -> ApiResult<(StatusCode, Json<JobRunResponse>)> {
    let run = retrain.retrain(&principal, &path.model()?).await?;
    Ok((StatusCode::CREATED, Json(run_response(run))))
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/v1/retrain-runs", tag = "retraining", params(JobRunParams),
    responses((status = 200, description = "The runs", body = JobRunList), ReadErrors))]
pub(crate) async fn list_runs(State(retrain): State<Retraining>, Actor(principal): Actor, ApiQuery(params): ApiQuery<JobRunParams>) -> ApiResult<Json<JobRunList>> {
    let model = params.model.map(|m| ModelName::parse_field("model", m)).transpose()?;
    let limit = params.limit.unwrap_or(DEFAULT_RUNS);
    if limit == 0 || limit > MAX_RUNS {
        return Err(ApiError::invalid("limit", format!("`{limit}` is not between 1 and {MAX_RUNS}")));
    }
    let runs = retrain.registry().job_runs(&principal, model.as_ref(), limit).await?;
    Ok(Json(JobRunList { runs: runs.into_iter().map(run_response).collect() }))
}

/// One run.
#[utoipa::path(get, path = "/api/v1/retrain-runs/{run}", tag = "retraining",
    params(("run" = i64, Path, description = "Run id")),
    responses((status = 200, description = "The run", body = JobRunResponse), ReadErrors))]
pub(crate) async fn get_run(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<JobRunResponse>> {
    Ok(Json(run_response(retrain.registry().job_run(&principal, path.run_id()?).await?)))
}

/// A run's output: stdout and stderr, the last 64 KiB.
#[utoipa::path(get, path = "/api/v1/retrain-runs/{run}/log", tag = "retraining",
    params(("run" = i64, Path, description = "Run id")),
    responses((status = 200, description = "The output", body = JobRunLog), ReadErrors))]
pub(crate) async fn run_log(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<JobRunLog>> {
    let id = path.run_id()?;
    let log = retrain.registry().job_run_log(&principal, id).await?;
    Ok(Json(JobRunLog { run: id, log }))
}

/// The window a run was fed, as Parquet (with `ground_truth` where labels
/// arrived): for webhook jobs, with the run's token.
#[utoipa::path(get, path = "/api/v1/retrain-runs/{run}/window", tag = "retraining",
    params(("run" = i64, Path, description = "Run id")),
    responses((status = 200, description = "Parquet", content_type = "application/vnd.apache.parquet"), (status = 404, description = "The run has no window", body = ErrorBody), ReadErrors))]
pub(crate) async fn run_window(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Response> {
    let bytes = retrain.window(&principal, path.run_id()?).await?;
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.apache.parquet"));
    Ok(response)
}

/// Stops a run that waits for people or shadows a deployment (its shadow
/// removed). A running job ends by itself or at its time limit; a canary
/// is stopped by rolling the deployment back.
#[utoipa::path(post, path = "/api/v1/retrain-runs/{run}/cancel", tag = "retraining",
    params(("run" = i64, Path, description = "Run id")),
    responses((status = 200, description = "The run, cancelled", body = JobRunResponse), WriteErrors))]
pub(crate) async fn cancel_run(State(retrain): State<Retraining>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<JobRunResponse>> {
    Ok(Json(run_response(retrain.cancel(&principal, path.run_id()?).await?)))
}
