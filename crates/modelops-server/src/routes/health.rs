//! Liveness, readiness and the API's own description.

use super::OPENAPI_PATH;
use crate::error::{ApiError, ApiResult};
use crate::wire::{ErrorBody, HealthResponse};
use modelops_registry::Registry;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::Json;
use std::sync::OnceLock;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
pub(crate) async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok".to_string() })
}

/// The process can serve: the database and the artifact store answer.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Ready", body = HealthResponse), (status = 503, description = "Not ready: the message names the database or the artifact store", body = ErrorBody)))]
pub(crate) async fn readyz(State(registry): State<Registry>) -> ApiResult<Json<HealthResponse>> {
    match registry.ready().await {
        Ok(_) => Ok(Json(HealthResponse { status: "ok".to_string() })),
        // Which part is down is the probe's answer; what the driver said
        // about it stays in the log.
        Err(e) => {
            let detail = e.to_string();
            let mut parts = Vec::new();
            if detail.contains("the database") {
                parts.push("the database is not reachable");
            }
            if detail.contains("the artifact store") {
                parts.push("the artifact store is not reachable");
            }
            Err(ApiError::unavailable(format!("not ready: {}", parts.join("; "))).with_detail(detail))
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_document() -> impl IntoResponse {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| crate::openapi().to_pretty_json().unwrap_or_default());
    debug_assert!(OPENAPI_PATH.ends_with("openapi.json"));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], document.as_str())
}
