//! Aliases: movable names for versions (`champion`, `challenger`).

use super::{ReadErrors, WriteErrors};
use crate::error::ApiResult;
use crate::extract::{Actor, ApiJson, ApiPath, JsonRequest};
use crate::wire::{SetAliasRequest, VersionResponse};
use modelops_registry::Registry;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

impl JsonRequest for SetAliasRequest {}

/// Reads the version an alias points at.
#[utoipa::path(get, path = "/api/v1/models/{name}/aliases/{alias}", tag = "aliases",
    params(("name" = String, Path, description = "Model name"), ("alias" = String, Path, description = "Alias, e.g. `champion`")),
    responses((status = 200, description = "The version the alias points at", body = VersionResponse), ReadErrors))]
pub(crate) async fn get_alias(State(registry): State<Registry>, _actor: Actor, path: ApiPath) -> ApiResult<Json<VersionResponse>> {
    let version = registry.get_version_by_alias(&path.model()?, &path.alias()?).await?;
    Ok(Json(version.into()))
}

/// Points an alias at a version, moving it if it pointed elsewhere.
#[utoipa::path(put, path = "/api/v1/models/{name}/aliases/{alias}", tag = "aliases",
    params(("name" = String, Path, description = "Model name"), ("alias" = String, Path, description = "Alias; letters, digits, `_`, `-`")),
    request_body = SetAliasRequest,
    responses((status = 200, description = "The version the alias now points at", body = VersionResponse), WriteErrors))]
pub(crate) async fn set_alias(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<SetAliasRequest>,
) -> ApiResult<Json<VersionResponse>> {
    let version = registry.set_alias(&principal, &path.model()?, &path.alias()?, request.version).await?;
    Ok(Json(version.into()))
}

/// Removes an alias.
#[utoipa::path(delete, path = "/api/v1/models/{name}/aliases/{alias}", tag = "aliases",
    params(("name" = String, Path, description = "Model name"), ("alias" = String, Path, description = "Alias")),
    responses((status = 204, description = "Removed"), WriteErrors))]
pub(crate) async fn delete_alias(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<StatusCode> {
    registry.delete_alias(&principal, &path.model()?, &path.alias()?).await?;
    Ok(StatusCode::NO_CONTENT)
}
