//! Streamed artifact upload.

use super::WriteErrors;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Actor, ApiJson, ApiQuery, JsonRequest};
use crate::wire::{ArtifactResponse, GcRequest, GcResponse, UploadArtifactParams};
use modelops_artifacts::GcMode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use crate::ApiState;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
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
        (status = 408, description = "The body stopped arriving for longer than the idle timeout; nothing was kept", body = crate::wire::ErrorBody),
        WriteErrors))]
pub(crate) async fn upload_artifact(
    State(state): State<ApiState>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<UploadArtifactParams>,
    body: Body,
) -> ApiResult<(StatusCode, Json<ArtifactResponse>)> {
    if let Some(name) = &params.filename {
        check_text("filename", name, MAX_SHORT_TEXT_LEN)?;
    }
    let expected = params.sha256.map(|s| Sha256Hex::parse_field("sha256", s)).transpose()?;
    let stalled = Arc::new(AtomicBool::new(false));
    let body = idle_timeout(body.into_data_stream(), state.body_idle_timeout, stalled.clone());
    let stored = state.registry.upload_artifact(&principal, body, expected.as_ref()).await.map_err(|e| match e {
        // The stream said why it ended: the client stopped sending.
        modelops_core::Error::InvalidInput { reason, .. } if stalled.load(Ordering::Relaxed) => {
            ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", reason).with_field("body")
        }
        e => e.into(),
    })?;
    let status = if stored.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ArtifactResponse { sha256: stored.sha256.into(), size: stored.size, filename: params.filename, created: stored.created })))
}

/// The grace period of a collection that names none: one day, far longer
/// than any upload or the step from upload to version takes.
pub const DEFAULT_GC_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The longest grace period a collection takes: ten years, as the document says.
const MAX_GC_GRACE_SECONDS: u64 = 315_360_000;

impl JsonRequest for GcRequest {}

/// Removes uploaded artifacts no version references, older than the grace
/// period; `dry_run` only lists them. Admins only; audited as `artifact.gc`.
#[utoipa::path(post, path = "/api/v1/artifacts/gc", tag = "artifacts",
    request_body = GcRequest,
    responses((status = 200, description = "What was removed (or would be, in a dry run)", body = GcResponse), WriteErrors))]
pub(crate) async fn collect_garbage(
    State(state): State<ApiState>,
    Actor(principal): Actor,
    ApiJson(request): ApiJson<GcRequest>,
) -> ApiResult<Json<GcResponse>> {
    if let Some(seconds) = request.grace_seconds.filter(|s| *s > MAX_GC_GRACE_SECONDS) {
        return Err(ApiError::invalid("grace_seconds", format!("`{seconds}` is more than ten years (`{MAX_GC_GRACE_SECONDS}` seconds)")));
    }
    let grace = request.grace_seconds.map_or(DEFAULT_GC_GRACE, std::time::Duration::from_secs);
    let mode = if request.dry_run { GcMode::DryRun } else { GcMode::Delete };
    Ok(Json(state.registry.collect_garbage(&principal, grace, mode).await?.into()))
}

/// Ends `body` with an error when no chunk arrives for `idle`, so a client
/// that stops sending mid-upload releases its slot instead of holding it;
/// `stalled` tells the handler that this, not a broken body, ended it.
fn idle_timeout<S, E>(body: S, idle: std::time::Duration, stalled: Arc<AtomicBool>) -> impl futures::Stream<Item = Result<bytes::Bytes, String>> + Send
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    use futures::StreamExt;
    futures::stream::unfold(Some(Box::pin(body)), move |state| {
        let stalled = stalled.clone();
        async move {
            let mut body = state?;
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
                Ok(Some(Err(e))) => Some((Err(e.to_string()), None)),
                Ok(None) => None,
                Err(_) => {
                    stalled.store(true, Ordering::Relaxed);
                    Some((Err(format!("the client sent nothing for {} s mid-upload", idle.as_secs())), None))
                }
            }
        }
    })
}
