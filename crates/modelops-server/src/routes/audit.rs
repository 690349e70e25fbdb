//! Reading and verifying the audit log.

use super::ReadErrors;
use crate::error::ApiResult;
use crate::extract::{Actor, ApiQuery};
use crate::wire::{AuditList, AuditParams, VerifyResponse};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use modelops_core::audit::AuditQuery;
use modelops_core::page::PageRequest;
use modelops_core::repo::{self, AuditLog};

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
    query.validate()?;
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
    Ok(match repo::verify_chain(log).await? {
        Ok(summary) => VerifyResponse { ok: true, events: summary.events, head: summary.head.map(Into::into), broken: None },
        Err(broken) => {
            // Events before the broken one verified.
            let events = u64::try_from(broken.sequence.saturating_sub(1)).unwrap_or(0);
            let head = log.head().await?.map(Into::into);
            VerifyResponse { ok: false, events, head, broken: Some(broken.into()) }
        }
    })
}
