//! Reading and verifying the audit log.

use super::ReadErrors;
use crate::error::ApiResult;
use crate::extract::{Actor, ApiQuery, ApiPath};
use crate::wire::{
    AuditList, AuditParams, CheckpointList, CheckpointParams, CompactRangeResponse, ConsistencyParams, ConsistencyProofResponse,
    InclusionProofResponse, ProofParams, RangeParams, SignedCheckpointResponse, VerifyResponse, WitnessFailureWire,
};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use modelops_registry::Registry;
use modelops_core::audit::AuditQuery;
use modelops_core::page::PageRequest;

/// Lists audit events, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "A page of events", body = AuditList), ReadErrors))]
pub(crate) async fn list_events(State(registry): State<Registry>, _actor: Actor, ApiQuery(params): ApiQuery<AuditParams>) -> ApiResult<Json<AuditList>> {
    let query = AuditQuery {
        subject: params.subject,
        actor: params.actor,
        action: params.action,
        since: params.since,
        until: params.until,
        after_sequence: params.after_sequence,
        page: PageRequest::new(params.page_size, params.page_token)?,
    };
    let page = if params.sealed == Some(true) { registry.list_sealed_events(&query).await? } else { registry.list_events(&query).await? };
    Ok(Json(AuditList { events: page.items.into_iter().map(Into::into).collect(), next_page_token: page.next_page_token }))
}

/// Re-computes the whole hash chain against the recorded head and reports
/// the first broken link, if any. For auditors and admins. A verification
/// made less than a minute ago is answered again (`verified_at` says when),
/// so repeated calls cannot keep the database busy.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The verdict; `ok` is false and `broken` names the first broken link when the chain does not hold", body = VerifyResponse), ReadErrors))]
pub(crate) async fn verify_chain(State(registry): State<Registry>, Actor(principal): Actor) -> ApiResult<Json<VerifyResponse>> {
    Ok(Json(registry.verify_audit(&principal).await?.into()))
}

/// The log's public key, in the signed-note verifier-key text
/// (`<origin>+<id>+<base64>`): what checkpoints are verified with.
#[utoipa::path(get, path = "/api/v1/audit/key", tag = "audit",
    responses((status = 200, description = "The verifier key", body = String, content_type = "text/plain"),
        (status = 409, description = "The server has no signing key", body = crate::wire::ErrorBody), ReadErrors))]
pub(crate) async fn public_key(State(registry): State<Registry>, _actor: Actor) -> ApiResult<impl IntoResponse> {
    let key = registry
        .audit_public_key()
        .ok_or_else(|| modelops_core::Error::Conflict("this server has no audit signing key".into()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{}\n", key.text())))
}

/// Signed checkpoints, smallest first.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit",
    params(CheckpointParams),
    responses((status = 200, description = "A page of checkpoints", body = CheckpointList), ReadErrors))]
pub(crate) async fn list_checkpoints(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<CheckpointParams>,
) -> ApiResult<Json<CheckpointList>> {
    let size = params.page_size.unwrap_or(100).clamp(1, 1000);
    let checkpoints = registry.checkpoints(&principal, params.after, size).await?;
    let next_after = (checkpoints.len() == size as usize).then(|| checkpoints.last().map(|c| c.size)).flatten();
    Ok(Json(CheckpointList { checkpoints: checkpoints.into_iter().map(Into::into).collect(), next_after }))
}

/// Signs a checkpoint of the log as it stands now (the server also signs on
/// its own timer), and writes it to the witnesses. When the log has not
/// grown since the latest checkpoint, that one is answered (`new` false).
#[utoipa::path(post, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, description = "The checkpoint", body = SignedCheckpointResponse),
        (status = 409, description = "No signing key, an empty log, or a stored tree that does not extend the last checkpoint", body = crate::wire::ErrorBody), ReadErrors))]
pub(crate) async fn sign_checkpoint(State(registry): State<Registry>, Actor(principal): Actor) -> ApiResult<Json<SignedCheckpointResponse>> {
    let signed = registry.sign_checkpoint(&principal).await?;
    Ok(Json(SignedCheckpointResponse {
        checkpoint: signed.checkpoint.into(),
        new: signed.new,
        witness_failures: signed.witness_failures.into_iter().map(|(witness, error)| WitnessFailureWire { witness, error }).collect(),
    }))
}

/// One checkpoint's signed note, as `text/plain` (what transparency-log
/// tools read); `latest` for the newest.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints/{size}", tag = "audit",
    params(("size" = String, Path, description = "The checkpoint's tree size, or `latest`")),
    responses((status = 200, description = "The signed note", body = String, content_type = "text/plain"), ReadErrors))]
pub(crate) async fn get_checkpoint(State(registry): State<Registry>, Actor(principal): Actor, path: ApiPath) -> ApiResult<impl IntoResponse> {
    let size = path.checkpoint_size()?;
    let checkpoint = registry.checkpoint(&principal, size).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], checkpoint.note))
}

/// The inclusion proof of one event in a signed checkpoint (RFC 9162
/// §2.1.3): with the public key, this answer alone shows the event is in
/// the log the server signed.
#[utoipa::path(get, path = "/api/v1/audit/events/{seq}/proof", tag = "audit",
    params(("seq" = i64, Path, description = "The event's sequence number"), ProofParams),
    responses((status = 200, description = "The proof, the event and the checkpoint", body = InclusionProofResponse), ReadErrors))]
pub(crate) async fn inclusion_proof(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    path: ApiPath,
    ApiQuery(params): ApiQuery<ProofParams>,
) -> ApiResult<Json<InclusionProofResponse>> {
    Ok(Json(registry.inclusion_proof(&principal, path.seq()?, params.checkpoint).await?.into()))
}

/// The consistency proof between two signed checkpoints (RFC 9162
/// §2.1.4): the newer log holds the older one unchanged.
#[utoipa::path(get, path = "/api/v1/audit/consistency", tag = "audit",
    params(ConsistencyParams),
    responses((status = 200, description = "The proof and both checkpoints", body = ConsistencyProofResponse), ReadErrors))]
pub(crate) async fn consistency_proof(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<ConsistencyParams>,
) -> ApiResult<Json<ConsistencyProofResponse>> {
    Ok(Json(registry.consistency_proof(&principal, params.from, params.to).await?.into()))
}

/// The perfect subtrees of the tree of `size` events: where an export
/// bundle that starts after event `size` begins.
#[utoipa::path(get, path = "/api/v1/audit/range", tag = "audit",
    params(RangeParams),
    responses((status = 200, description = "The compact range", body = CompactRangeResponse), ReadErrors))]
pub(crate) async fn compact_range(
    State(registry): State<Registry>,
    Actor(principal): Actor,
    ApiQuery(params): ApiQuery<RangeParams>,
) -> ApiResult<Json<CompactRangeResponse>> {
    let hashes = registry.compact_range(&principal, params.size).await?;
    Ok(Json(CompactRangeResponse { size: params.size, hashes }))
}
