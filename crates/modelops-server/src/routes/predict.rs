//! The native inference route: rows or columns in, one object per row out.

use super::ReadErrors;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Actor, ApiJson, ApiPath, JsonRequest};
use crate::inference::records;
use crate::wire::{ErrorBody, InferenceMetrics, InferenceMetricsList, PredictRequest, PredictResponse, UsageWire};
use axum::extract::State;
use axum::Json;
use modelops_serving::{PredictInput, Prediction, ServedVersion, Serving, VersionRef};
use std::collections::BTreeMap;

impl JsonRequest for PredictRequest {}

/// Runs a version (number or alias, e.g. `champion`) on rows or columns.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/predict", tag = "inference",
    params(("name" = String, Path, description = "Model name"), ("version" = String, Path, description = "Version number or alias")),
    request_body = PredictRequest,
    responses(
        (status = 200, description = "One object per row keyed by output name", body = PredictResponse),
        (status = 409, description = "The version is retired, or its artifact cannot be served", body = ErrorBody),
        (status = 413, description = "Too many rows, or a body over the limit", body = ErrorBody),
        (status = 502, description = "The upstream (LLM provider, external server) failed", body = ErrorBody),
        (status = 504, description = "The upstream did not answer in time", body = ErrorBody),
        ReadErrors,
    ))]
pub(crate) async fn predict(
    State(serving): State<Serving>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<PredictRequest>,
) -> ApiResult<Json<PredictResponse>> {
    let model = path.model()?;
    let version = VersionRef::parse("version", path.raw_version()?)?;
    let served = serving.version(&principal, &model, &version).await?;
    let inputs = records::to_tensors(&served.signature, request.rows, request.columns)?;
    let rows = inputs.first().and_then(|t| t.shape.first().copied()).unwrap_or(0);
    let prediction = serving.predict_with(&served, PredictInput { inputs, explain: request.explain, parameters: request.parameters }).await?;
    Ok(Json(answer(&served, prediction, rows)?))
}

/// The native answer to a prediction by `served`: one object per row, the
/// class labels of probability outputs, explanations, LLM usage. Shared by
/// the version and deployment routes.
pub(crate) fn answer(served: &ServedVersion, prediction: Prediction, rows: usize) -> Result<PredictResponse, ApiError> {
    let explanations = match prediction.explanations {
        Some(list) => Some(
            list.iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::internal(format!("cannot serialise an explanation: {e}")))?,
        ),
        None => None,
    };
    let class_labels: BTreeMap<String, Vec<String>> =
        prediction.outputs.iter().filter_map(|t| served.loaded.class_labels(&t.name).map(|l| (t.name.clone(), l))).collect();
    Ok(PredictResponse {
        model: served.model.to_string(),
        version: served.version.number,
        predictions: records::to_records(&prediction.outputs, rows),
        class_labels,
        explanations,
        usage: prediction.usage.map(|u| UsageWire {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            cost: u.cost,
            upstream_latency_ms: u.upstream_latency_ms,
        }),
    })
}

/// Calls, rows, errors, upstream timeouts, LLM tokens and cost of every
/// version this server has served since it started.
#[utoipa::path(get, path = "/api/v1/inference/metrics", tag = "inference",
    responses((status = 200, description = "One entry per version served", body = InferenceMetricsList), ReadErrors))]
pub(crate) async fn metrics(State(serving): State<Serving>, _actor: Actor) -> Json<InferenceMetricsList> {
    let versions = serving
        .metrics()
        .into_iter()
        .map(|(model, version, m)| InferenceMetrics {
            model: model.into(),
            version,
            calls: m.calls,
            rows: m.rows,
            errors: m.errors,
            upstream_timeouts: m.upstream_timeouts,
            prompt_tokens: m.prompt_tokens,
            completion_tokens: m.completion_tokens,
            cost: m.cost,
            mean_latency_ms: m.mean_latency_ms,
        })
        .collect();
    Json(InferenceMetricsList { versions })
}
