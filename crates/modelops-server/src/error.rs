//! The one error answer of the API. Domain errors map to status codes in a
//! single exhaustive `match`; axum's own rejections are rewritten into the
//! same JSON shape, so a client sees one format for every mistake.
//!
//! Logging is not done here: an error answer carries its detail (what the
//! client is not told) as a response extension, [`ErrorReport`], and the
//! [`log_errors`](crate::log_errors) middleware, which knows the request's
//! method, path and id, logs it once.

use crate::wire::{DenialReasonWire, ErrorBody, ErrorDetail};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelops_artifacts::ArtifactError;
use modelops_core::{Error, ErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// The failing conditions of a 403.
    pub reasons: Vec<DenialReasonWire>,
    /// What went wrong on our side, for the log only.
    detail: Option<String>,
}

/// Attached to every error response for the logging middleware.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub code: &'static str,
    /// The message the client got, or for a 5xx the detail it did not get.
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, reasons: Vec::new(), detail: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message).with_field(field)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message).with_field("body")
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message)
    }

    pub fn not_found_route(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("no route for `{path}`"))
    }

    /// The answer for a failure on our side: the client learns nothing of
    /// it; `detail` goes to the log.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self { detail: Some(detail.into()), ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the server log has the details") }
    }

    /// Adds what the log should say beyond the message.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Too many requests at once, or one took too long: the client may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = match e.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid_input"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ErrorKind::BadGateway => (StatusCode::BAD_GATEWAY, "bad_gateway"),
            ErrorKind::GatewayTimeout => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
            ErrorKind::TooLarge => return ApiError::too_large(e.to_string()),
            // Which part is down is the client's to know; how (the backend's
            // error, addresses) is for the log.
            ErrorKind::Unavailable => return ApiError::unavailable(unavailable_message(&e.to_string())).with_detail(e.to_string()),
            ErrorKind::Internal => return ApiError::internal(e.to_string()),
        };
        let reasons = match &e {
            Error::Forbidden(denial) => denial.reasons().iter().cloned().map(Into::into).collect(),
            _ => Vec::new(),
        };
        ApiError { status, code, field: e.field().map(str::to_string), message: e.to_string(), reasons, detail: None }
    }
}

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let report = ErrorReport { status: self.status, code: self.code, detail: self.detail.unwrap_or_else(|| self.message.clone()) };
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message, field: self.field, reasons: self.reasons } };
        let unauthenticated = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, Json(body)).into_response();
        if unauthenticated {
            // RFC 9110 §11.6.1: a 401 names the schemes it accepts. Basic is
            // there for the MLflow client (`MLFLOW_TRACKING_PASSWORD`).
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"modelops\", Basic realm=\"modelops\""),
            );
        }
        response.extensions_mut().insert(report);
        response
    }
}

impl ApiError {
    /// The answer in the Open Inference Protocol's error form,
    /// `{"error": "<message>"}` (what `tritonclient` reads), with the same
    /// status and the same log record.
    pub fn into_oip_response(self) -> Response {
        let report = ErrorReport { status: self.status, code: self.code, detail: self.detail.unwrap_or_else(|| self.message.clone()) };
        let message = match &self.field {
            Some(field) if !self.message.contains(field.as_str()) => format!("{field}: {}", self.message),
            _ => self.message,
        };
        let mut response = (self.status, Json(serde_json::json!({ "error": message }))).into_response();
        response.extensions_mut().insert(report);
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The public message of a 503 from the part its detail names: the artifact
/// store's errors begin with `artifact store:`, the database's name it.
fn unavailable_message(detail: &str) -> &'static str {
    let detail = detail.strip_prefix("service unavailable: ").unwrap_or(detail);
    if detail.starts_with("artifact store:") {
        "the artifact store is unavailable; retry later"
    } else if detail.starts_with("database") || detail.starts_with("timed out waiting for a database connection") {
        "the database is unavailable; retry later"
    } else {
        "a dependency is unavailable; retry later"
    }
}
