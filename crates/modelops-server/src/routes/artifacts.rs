//! Streamed artifact upload.

use super::WriteErrors;
use crate::error::ApiResult;
use crate::extract::{Actor, ApiQuery};
use crate::wire::{ArtifactResponse, UploadArtifactParams};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modelops_core::auth::{authorize, Action};
use modelops_core::model::{check_text, MAX_SHORT_TEXT_LEN};
use modelops_core::version::Sha256Hex;

/// Uploads an artifact as the raw request body, streamed to the artifact
/// store while hashed, never held in memory. Identical content is stored
/// once. Reference the answer's `sha256` when creating a version.
#[utoipa::path(post, path = "/api/v1/artifacts", tag = "artifacts",
    params(UploadArtifactParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The artifact's bytes"),
    responses(
        (status = 201, description = "Stored", body = ArtifactResponse),
        (status = 200, description = "Identical content was already stored", body = ArtifactResponse),
        WriteErrors))]
pub(crate) async fn upload_artifact(
    State(state): State<AppState>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<UploadArtifactParams>,
    body: Body,
) -> ApiResult<(StatusCode, Json<ArtifactResponse>)> {
    // Uploading is the first half of creating a version, and governed as such.
    authorize(&principal, Action::VersionCreate)?;
    if let Some(name) = &params.filename {
        check_text("filename", name, MAX_SHORT_TEXT_LEN)?;
    }
    let expected = params.sha256.map(|s| Sha256Hex::parse_field("sha256", s)).transpose()?;
    let stored = state.artifacts().put_stream(body.into_data_stream(), expected.as_ref()).await?;
    let status = if stored.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ArtifactResponse { sha256: stored.sha256.into(), size: stored.size, filename: params.filename, created: stored.created })))
}
