//! Tags on models and versions.

use super::WriteErrors;
use crate::error::ApiResult;
use crate::extract::{Actor, ApiJson, ApiPath, JsonRequest};
use crate::wire::{SetTagRequest, TagResponse};
use modelops_registry::Registry;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modelops_core::auth::Principal;
use modelops_core::repo::TagTarget;

impl JsonRequest for SetTagRequest {}

async fn set(registry: &Registry, actor: &Principal, target: TagTarget, path: &ApiPath, value: String) -> ApiResult<Json<TagResponse>> {
    let key = path.tag_key()?;
    registry.set_tag(actor, &target, &key, &value).await?;
    Ok(Json(TagResponse { key: key.into(), value }))
}

async fn delete(registry: &Registry, actor: &Principal, target: TagTarget, path: &ApiPath) -> ApiResult<StatusCode> {
    registry.delete_tag(actor, &target, &path.tag_key()?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a tag on a model.
#[utoipa::path(put, path = "/api/v1/models/{name}/tags/{key}", tag = "tags",
    params(("name" = String, Path, description = "Model name"), ("key" = String, Path, description = "Tag key")),
    request_body = SetTagRequest,
    responses((status = 200, description = "The tag as set", body = TagResponse), WriteErrors))]
pub(crate) async fn set_model_tag(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<SetTagRequest>,
) -> ApiResult<Json<TagResponse>> {
    let target = TagTarget::Model(path.model()?);
    set(&registry, &principal, target, &path, request.value).await
}

/// Removes a tag from a model.
#[utoipa::path(delete, path = "/api/v1/models/{name}/tags/{key}", tag = "tags",
    params(("name" = String, Path, description = "Model name"), ("key" = String, Path, description = "Tag key")),
    responses((status = 204, description = "Removed"), WriteErrors))]
pub(crate) async fn delete_model_tag(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<StatusCode> {
    let target = TagTarget::Model(path.model()?);
    delete(&registry, &principal, target, &path).await
}

/// Sets a tag on a version.
#[utoipa::path(put, path = "/api/v1/models/{name}/versions/{version}/tags/{key}", tag = "tags",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), ("key" = String, Path, description = "Tag key")),
    request_body = SetTagRequest,
    responses((status = 200, description = "The tag as set", body = TagResponse), WriteErrors))]
pub(crate) async fn set_version_tag(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<SetTagRequest>,
) -> ApiResult<Json<TagResponse>> {
    let target = TagTarget::Version(path.model()?, path.version()?);
    set(&registry, &principal, target, &path, request.value).await
}

/// Removes a tag from a version.
#[utoipa::path(delete, path = "/api/v1/models/{name}/versions/{version}/tags/{key}", tag = "tags",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number"), ("key" = String, Path, description = "Tag key")),
    responses((status = 204, description = "Removed"), WriteErrors))]
pub(crate) async fn delete_version_tag(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<StatusCode> {
    let target = TagTarget::Version(path.model()?, path.version()?);
    delete(&registry, &principal, target, &path).await
}
