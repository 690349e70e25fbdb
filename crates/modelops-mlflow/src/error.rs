//! MLflow's error model: `{"error_code": "...", "message": "..."}` with the
//! HTTP status MLflow's server gives each code
//! (`mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS`). The client keys its
//! logic on the code (`RESOURCE_DOES_NOT_EXIST` from `get-by-name` means
//! "create it"), and retries every 5xx for minutes: only a real server
//! fault may answer one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use modelops_core::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlflowError {
    pub code: &'static str,
    pub message: String,
}

impl MlflowError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("INVALID_PARAMETER_VALUE", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("RESOURCE_DOES_NOT_EXIST", message)
    }

    /// MLflow's text for a missing required field.
    pub fn missing(field: &str) -> Self {
        Self::invalid(format!("Missing value for required parameter '{field}'."))
    }

    fn status(&self) -> StatusCode {
        match self.code {
            "INVALID_PARAMETER_VALUE" | "BAD_REQUEST" | "RESOURCE_ALREADY_EXISTS" => StatusCode::BAD_REQUEST,
            "UNAUTHENTICATED" => StatusCode::UNAUTHORIZED,
            "PERMISSION_DENIED" => StatusCode::FORBIDDEN,
            "RESOURCE_DOES_NOT_EXIST" | "ENDPOINT_NOT_FOUND" => StatusCode::NOT_FOUND,
            "RESOURCE_CONFLICT" => StatusCode::CONFLICT,
            "TEMPORARILY_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            "NOT_IMPLEMENTED" => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<Error> for MlflowError {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound { what, key } => Self::not_found(format!("{} with id={key} not found", capitalised(what))),
            Error::AlreadyExists { what, key } => {
                Self::new("RESOURCE_ALREADY_EXISTS", format!("{} (name={key}) already exists.", capitalised(what)))
            }
            Error::InvalidInput { field, reason } => Self::invalid(format!("Invalid value for parameter '{field}': {reason}")),
            Error::Conflict(message) => Self::new("RESOURCE_CONFLICT", message),
            Error::Unauthenticated(message) => Self::new("UNAUTHENTICATED", message),
            e @ Error::Forbidden(_) => Self::new("PERMISSION_DENIED", e.to_string()),
            Error::TooLarge(message) => Self::new("BAD_REQUEST", message),
            Error::Unavailable(message) => Self::new("TEMPORARILY_UNAVAILABLE", message),
            e @ (Error::BadGateway(_) | Error::GatewayTimeout(_) | Error::Internal(_)) => {
                tracing::error!(error = %e, "an MLflow request failed");
                Self::new("INTERNAL_ERROR", "internal error; the server log has the detail")
            }
        }
    }
}

fn capitalised(what: &str) -> String {
    let mut chars = what.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_client_error() {
            tracing::debug!(code = self.code, message = %self.message, "MLflow request refused");
        }
        (status, axum::Json(serde_json::json!({"error_code": self.code, "message": self.message}))).into_response()
    }
}

/// An MLflow path this server does not serve: 404 `ENDPOINT_NOT_FOUND`, as
/// the client expects (it falls back to another form on some).
pub(crate) async fn endpoint_not_found(uri: axum::http::Uri) -> MlflowError {
    MlflowError::new("ENDPOINT_NOT_FOUND", format!("this server does not serve `{}`", uri.path()))
}
