//! Reading and verifying the audit log.

use super::ReadErrors;
use crate::error::ApiResult;
use crate::extract::{Actor, ApiQuery};
use crate::wire::{AuditList, AuditParams, VerifyResponse};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use modelops_core::audit::{AuditQuery, ChainVerifier};
use modelops_core::page::PageRequest;
use modelops_core::repo::AuditLog;

/// Events read per batch while verifying: bounds memory, not length.
const VERIFY_BATCH: u32 = 1000;

/// Lists audit events, oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "A page of events", body = AuditList), ReadErrors))]
pub(crate) async fn list_events(State(state): State<AppState>, _actor: Actor, ApiQuery(params): ApiQuery<AuditParams>) -> ApiResult<Json<AuditList>> {
    let query = AuditQuery {
        subject: params.subject,
        actor: params.actor,
        action: params.action,
        since: params.since,
        until: params.until,
        page: PageRequest::new(params.page_size, params.page_token)?,
    };
    let page = state.store().list_events(&query).await?;
    Ok(Json(AuditList { events: page.items.into_iter().map(Into::into).collect(), next_page_token: page.next_page_token }))
}

/// Re-computes the whole hash chain against the recorded head and reports
/// the first broken link, if any.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, description = "The verdict; `ok` is false and `broken` names the first broken link when the chain does not hold", body = VerifyResponse), ReadErrors))]
pub(crate) async fn verify_chain(State(state): State<AppState>, _actor: Actor) -> ApiResult<Json<VerifyResponse>> {
    Ok(Json(verify(state.store()).await?))
}

async fn verify(log: &dyn AuditLog) -> modelops_core::Result<VerifyResponse> {
    // The head is read first: events appended while we verify lie beyond it
    // and are ignored, so a busy server does not look tampered with.
    let head = log.head().await?;
    let end = head.as_ref().map_or(0, |h| h.sequence);
    let mut verifier = ChainVerifier::new();
    let mut checked = 0u64;
    let mut after = 0i64;
    loop {
        let batch = log.read_chain(after, VERIFY_BATCH).await?;
        let Some(last) = batch.last() else { break };
        let next_after = last.sequence;
        for event in batch.iter().take_while(|e| e.sequence <= end || end == 0) {
            if let Err(broken) = verifier.push(event) {
                return Ok(VerifyResponse { ok: false, events: checked, head: head.map(Into::into), broken: Some(broken.into()) });
            }
            checked += 1;
        }
        if next_after >= end || (batch.len() as u32) < VERIFY_BATCH {
            break;
        }
        after = next_after;
    }
    match verifier.finish(head.as_ref()) {
        Ok(summary) => Ok(VerifyResponse { ok: true, events: summary.events, head: summary.head.map(Into::into), broken: None }),
        Err(broken) => Ok(VerifyResponse { ok: false, events: checked, head: head.map(Into::into), broken: Some(broken.into()) }),
    }
}
