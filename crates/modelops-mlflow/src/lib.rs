//! modelops-mlflow: MLflow's wire surface, so the unmodified `mlflow`
//! client works against modelops (`MLFLOW_TRACKING_URI` pointed at the
//! server, a token in `MLFLOW_TRACKING_TOKEN`).
//!
//! Owns: MLflow's REST routes under `/api/2.0/mlflow/` (tracking, logged
//! models, the model registry) and its artifact proxy under
//! `/api/2.0/mlflow-artifacts/` ([`router`]), its
//! JSON shapes (ids and version numbers as strings, times in milliseconds,
//! NaN and infinities as the strings MLflow's client sends and reads), its
//! error model (`{"error_code", "message"}` with MLflow's codes and
//! statuses: a client mistake is never a 5xx, which the client retries for
//! minutes) and the language of its search calls ([`filter`]). Each handler
//! decodes, calls one use case of `modelops_registry::Registry`, encodes.
//!
//! Must not depend on: SQL or a concrete store, the native API's server
//! crate (the server composes this router beside its own).

mod artifacts;
mod error;
pub mod filter;
mod logged_models;
mod registry;
mod tracking;
mod wire;

use axum::Router;
use modelops_registry::Registry;

pub use artifacts::is_upload_part;
pub use error::MlflowError;

/// Where MLflow's client sends its REST calls.
pub const API_PREFIX: &str = "/api/2.0/mlflow";
/// Where it asks which transfers the server supports.
pub const SERVER_INFO_PATH: &str = "/api/3.0/mlflow/server-info";

/// Whether a path is MLflow's (its errors take MLflow's form): the REST
/// API, the artifact proxy (`/api/2.0/mlflow-artifacts`) and `/api/3.0/mlflow`.
pub fn is_mlflow_path(path: &str) -> bool {
    path.starts_with(API_PREFIX) || path.starts_with("/api/3.0/mlflow")
}

/// MLflow's routes at their full paths, for a server whose middleware puts
/// the caller's `modelops_core::auth::Principal` in each request's
/// extensions. Unknown paths under MLflow's prefixes answer
/// `ENDPOINT_NOT_FOUND`.
pub fn router(registry: Registry) -> Router {
    let api = tracking::routes().merge(logged_models::routes()).merge(registry::routes()).fallback(error::endpoint_not_found);
    let artifacts = artifacts::routes().fallback(error::endpoint_not_found);
    Router::new()
        .nest(API_PREFIX, api)
        .nest(artifacts::ARTIFACTS_PREFIX, artifacts)
        .route(SERVER_INFO_PATH, axum::routing::get(artifacts::server_info))
        .with_state(registry)
}
