//! Versions of a model and the download of their artifacts.

use super::{ReadErrors, WriteErrors};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Actor, ApiJson, ApiPath, ApiQuery, JsonRequest};
use crate::wire::{CreateVersionRequest, ErrorBody, ListVersionsParams, UpdateVersionRequest, VersionList, VersionResponse};
use modelops_registry::Registry;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelops_core::page::{parse_tag_filter, PageRequest, VersionQuery};
use modelops_core::version::{NewVersion, VersionPatch};

/// The header carrying a download's sha256 (lowercase hex).
pub const SHA256_HEADER: &str = "x-modelops-sha256";

impl JsonRequest for CreateVersionRequest {}
impl JsonRequest for UpdateVersionRequest {
    const IMMUTABLE: &'static [&'static str] =
        &["artifact", "lineage", "signature", "model", "version", "state", "created_at", "created_by", "aliases", "tags"];
}

/// Creates the next version (1, 2, 3…) of a model from an uploaded artifact.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions", tag = "versions",
    params(("name" = String, Path, description = "Model name")),
    request_body = CreateVersionRequest,
    responses((status = 201, description = "The new version", body = VersionResponse), WriteErrors))]
pub(crate) async fn create_version(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<CreateVersionRequest>,
) -> ApiResult<(StatusCode, Json<VersionResponse>)> {
    let model = path.model()?;
    let new = NewVersion::try_from(request)?;
    let version = registry.create_version(&principal, &model, new).await?;
    Ok((StatusCode::CREATED, Json(version.into())))
}

/// Reads a version.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number, 1 or more")),
    responses((status = 200, description = "The version", body = VersionResponse), ReadErrors))]
pub(crate) async fn get_version(State(registry): State<Registry>, _actor: Actor, path: ApiPath) -> ApiResult<Json<VersionResponse>> {
    let version = registry.get_version(&path.model()?, path.version()?).await?;
    Ok(Json(version.into()))
}

/// Changes a version's description or model card. Artifact, lineage and
/// signature are immutable: naming them answers 400.
#[utoipa::path(patch, path = "/api/v1/models/{name}/versions/{version}", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    request_body = UpdateVersionRequest,
    responses((status = 200, description = "The updated version", body = VersionResponse), WriteErrors))]
pub(crate) async fn update_version(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiJson(request): ApiJson<UpdateVersionRequest>,
) -> ApiResult<Json<VersionResponse>> {
    let (model, number) = (path.model()?, path.version()?);
    let patch = VersionPatch::try_from(request)?;
    let version = registry.update_version(&principal, &model, number, patch).await?;
    Ok(Json(version.into()))
}

/// Versions are never deleted: this answers 405 and points at retiring.
#[utoipa::path(delete, path = "/api/v1/models/{name}/versions/{version}", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 405, description = "Versions are retired, never deleted", body = ErrorBody),
        (status = 401, description = "No token, or a wrong, expired or revoked one", body = ErrorBody)))]
pub(crate) async fn delete_version(path: ApiPath) -> ApiError {
    let name = path.0.name_for_message();
    ApiError::method_not_allowed(format!(
        "versions are never deleted, so their history stays auditable; retire it with `POST /api/v1/models/{name}/versions/{{version}}/retire`"
    ))
}

/// Retires a version and removes the aliases pointing at it. The record stays.
#[utoipa::path(post, path = "/api/v1/models/{name}/versions/{version}/retire", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses((status = 200, description = "The retired version", body = VersionResponse), WriteErrors))]
pub(crate) async fn retire_version(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<Json<VersionResponse>> {
    let version = registry.retire_version(&principal, &path.model()?, path.version()?).await?;
    Ok(Json(version.into()))
}

/// Lists a model's versions, newest first unless `direction=asc`.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ListVersionsParams),
    responses((status = 200, description = "A page of versions", body = VersionList), ReadErrors))]
pub(crate) async fn list_versions(
    State(registry): State<Registry>,
    _actor: Actor,
    path: ApiPath,
    ApiQuery(params): ApiQuery<ListVersionsParams>,
) -> ApiResult<Json<VersionList>> {
    let model = path.model()?;
    let query = VersionQuery {
        state: params.state.map(Into::into),
        tag: params.tag.as_deref().map(parse_tag_filter).transpose()?,
        direction: params.direction.map(Into::into),
        page: PageRequest::new(params.page_size, params.page_token)?,
    };
    let page = registry.list_versions(&model, &query).await?;
    Ok(Json(VersionList { versions: page.items.into_iter().map(Into::into).collect(), next_page_token: page.next_page_token }))
}

/// Streams a version's artifact. The sha256 is verified as it streams: on a
/// mismatch the connection is cut before the last bytes, so the client sees
/// a short body rather than a wrong artifact.
#[utoipa::path(get, path = "/api/v1/models/{name}/versions/{version}/artifact", tag = "versions",
    params(("name" = String, Path, description = "Model name"), ("version" = u32, Path, description = "Version number")),
    responses(
        (status = 200, description = "The artifact's bytes", content_type = "application/octet-stream", body = Vec<u8>,
            headers(("x-modelops-sha256" = String, description = "sha256 of the content, lowercase hex"),
                    ("content-disposition" = String, description = "`attachment` with the file name given at upload"))),
        ReadErrors))]
pub(crate) async fn download_artifact(State(registry): State<Registry>, _actor: Actor, path: ApiPath) -> ApiResult<Response> {
    let (version, download) = registry.download_artifact(&path.model()?, path.version()?).await?;
    Ok(stored_file_response(download, &version.artifact.sha256, &version.artifact.filename))
}

/// A verified stored file (an artifact or an evidence document) as a download.
pub(crate) fn stored_file_response(download: modelops_artifacts::Download, sha256: &modelops_core::version::Sha256Hex, filename: &str) -> Response {
    let mut response = Body::from_stream(download.stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(download.size));
    if let Ok(value) = HeaderValue::from_str(sha256.as_str()) {
        headers.insert(HeaderName::from_static(SHA256_HEADER), value.clone());
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{sha256}\"")) {
            headers.insert(header::ETAG, etag);
        }
    }
    if let Ok(value) = HeaderValue::from_str(&modelops_artifacts::content_disposition(filename)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use modelops_artifacts::content_disposition;

    #[test]
    fn content_disposition_keeps_headers_ascii() {
        assert_eq!(content_disposition("model.onnx"), "attachment; filename=\"model.onnx\"; filename*=UTF-8''model.onnx");
        assert_eq!(content_disposition("ré\"x.bin"), "attachment; filename=\"r__x.bin\"; filename*=UTF-8''r%C3%A9%22x.bin");
    }
}
