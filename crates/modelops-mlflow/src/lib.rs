//! modelops-mlflow: MLflow's wire surface, so the unmodified `mlflow`
//! client works against modelops (`MLFLOW_TRACKING_URI` pointed at the
//! server, a token in `MLFLOW_TRACKING_TOKEN`).
//!
//! Owns: MLflow's REST routes under `/api/2.0/mlflow/` ([`router`]), its
//! JSON shapes (ids and version numbers as strings, times in milliseconds,
//! NaN and infinities as the strings MLflow's client sends and reads), its
//! error model (`{"error_code", "message"}` with MLflow's codes and
//! statuses: a client mistake is never a 5xx, which the client retries for
//! minutes) and the language of its search calls ([`filter`]). Each handler
//! decodes, calls one use case of `modelops_registry::Registry`, encodes.
//!
//! Must not depend on: SQL or a concrete store, the native API's server
//! crate (the server composes this router beside its own).

mod error;
pub mod filter;
mod tracking;
mod wire;

use axum::Router;
use modelops_registry::Registry;

pub use error::MlflowError;

/// Where MLflow's client sends its REST calls.
pub const API_PREFIX: &str = "/api/2.0/mlflow";

/// MLflow's routes, for a server whose middleware puts the caller's
/// `modelops_core::auth::Principal` in each request's extensions.
pub fn router(registry: Registry) -> Router {
    tracking::routes().fallback(error::endpoint_not_found).with_state(registry)
}
