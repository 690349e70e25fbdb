//! Reading and verifying the audit log.

use super::ReadErrors;
use crate::error::ApiResult;
use crate::extract::{Actor, ApiQuery};
use crate::wire::{AuditList, AuditParams, VerifyResponse};
use modelops_registry::Registry;
use axum::extract::State;
use axum::Json;
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
        page: PageRequest::new(params.page_size, params.page_token)?,
    };
    let page = registry.list_events(&query).await?;
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
