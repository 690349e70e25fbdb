//! The model inventory.

use super::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::wire::{CreateModelRequest, ErrorBody, ListModelsParams, ModelList, ModelResponse, UpdateModelRequest};
use modelops_registry::Registry;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modelops_core::model::{ModelPatch, NewModel};
use modelops_core::page::{parse_tag_filter, ModelQuery, PageRequest};

impl JsonRequest for CreateModelRequest {}
impl JsonRequest for UpdateModelRequest {
    const IMMUTABLE: &'static [&'static str] = &["name", "kind"];
}

/// Registers a model.
#[utoipa::path(post, path = "/api/v1/models", tag = "models",
    request_body = CreateModelRequest,
    responses((status = 201, description = "The registered model", body = ModelResponse), WriteErrors))]
pub(crate) async fn create_model(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiJson(request): ApiJson<CreateModelRequest>,
) -> ApiResult<(StatusCode, Json<ModelResponse>)> {
    let new = NewModel::try_from(request)?;
    let model = registry.create_model(&principal, new).await?;
    Ok((StatusCode::CREATED, Json(model.into())))
}

/// Reads a model.
#[utoipa::path(get, path = "/api/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "The model", body = ModelResponse), ReadErrors))]
pub(crate) async fn get_model(State(registry): State<Registry>, _actor: Actor, path: ApiPath) -> ApiResult<Json<ModelResponse>> {
    let model = registry.get_model(&path.model()?).await?;
    Ok(Json(model.into()))
}

/// Changes a model's descriptive fields; absent fields stay as they are.
#[utoipa::path(patch, path = "/api/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "Model name")),
    request_body = UpdateModelRequest,
    responses((status = 200, description = "The updated model", body = ModelResponse), WriteErrors))]
pub(crate) async fn update_model(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<UpdateModelRequest>,
) -> ApiResult<Json<ModelResponse>> {
    let name = path.model()?;
    let patch = ModelPatch::try_from(request)?;
    let model = registry.update_model(&principal, &name, patch).await?;
    Ok(Json(model.into()))
}

/// Models are never deleted: this answers 405 and points at retiring.
#[utoipa::path(delete, path = "/api/v1/models/{name}", tag = "models",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 405, description = "Models are retired, never deleted", body = ErrorBody),
        (status = 401, description = "No token, or a wrong, expired or revoked one", body = ErrorBody)))]
pub(crate) async fn delete_model(path: ApiPath) -> ApiError {
    let name = path.0.name_for_message();
    ApiError::method_not_allowed(format!(
        "models are never deleted, so their history stays auditable; retire it with `POST /api/v1/models/{name}/retire`"
    ))
}

/// Retires a model and all its versions and removes its aliases. The record stays.
#[utoipa::path(post, path = "/api/v1/models/{name}/retire", tag = "models",
    params(("name" = String, Path, description = "Model name")),
    responses((status = 200, description = "The retired model", body = ModelResponse), WriteErrors))]
pub(crate) async fn retire_model(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<ModelResponse>> {
    let model = registry.retire_model(&principal, &path.model()?).await?;
    Ok(Json(model.into()))
}

/// Lists and searches models.
#[utoipa::path(get, path = "/api/v1/models", tag = "models",
    params(ListModelsParams),
    responses((status = 200, description = "A page of models", body = ModelList), ReadErrors))]
pub(crate) async fn list_models(
    State(registry): State<Registry>,
    _actor: Actor,
    ApiQuery(params): ApiQuery<ListModelsParams>,
) -> ApiResult<Json<ModelList>> {
    let query = ModelQuery {
        kind: params.kind.map(Into::into),
        owner: params.owner,
        team: params.team,
        risk_tier: params.risk_tier.map(Into::into),
        tag: params.tag.as_deref().map(parse_tag_filter).transpose()?,
        name_prefix: params.name_prefix,
        state: params.state.map(Into::into),
        text: params.q,
        order_by: params.order_by.map(Into::into),
        direction: params.direction.map(Into::into),
        page: PageRequest::new(params.page_size, params.page_token)?,
    };
    let page = registry.list_models(&query).await?;
    Ok(Json(ModelList { models: page.items.into_iter().map(Into::into).collect(), next_page_token: page.next_page_token }))
}
