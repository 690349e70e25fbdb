//! The handlers, one module per resource. Each is documented with
//! `#[utoipa::path]` and registered with `routes!`, which adds the route and
//! its documentation together.

use crate::wire::ErrorBody;
use crate::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

mod aliases;
mod artifacts;
mod audit;
mod health;
mod models;
mod tags;
mod versions;

pub(crate) const OPENAPI_PATH: &str = "/api/v1/openapi.json";

pub(crate) fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(models::list_models, models::create_model))
        .routes(routes!(models::get_model, models::update_model, models::delete_model))
        .routes(routes!(models::retire_model))
        .routes(routes!(artifacts::upload_artifact))
        .routes(routes!(versions::list_versions, versions::create_version))
        .routes(routes!(versions::get_version, versions::update_version, versions::delete_version))
        .routes(routes!(versions::retire_version))
        .routes(routes!(versions::download_artifact))
        .routes(routes!(aliases::get_alias, aliases::set_alias, aliases::delete_alias))
        .routes(routes!(tags::set_model_tag, tags::delete_model_tag))
        .routes(routes!(tags::set_version_tag, tags::delete_version_tag))
        .routes(routes!(audit::list_events))
        .routes(routes!(audit::verify_chain))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::openapi_document))
}

/// Errors any read can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum ReadErrors {
    /// A path segment or query parameter is invalid; `field` names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The caller may not read this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The model, version or alias does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A dependency (database, artifact store) is unavailable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// A failure on the server's side; the body says nothing more.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// Errors any mutation can answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub(crate) enum WriteErrors {
    /// Malformed JSON, an unknown field, a wrong type or an invalid value; `field` names it.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The caller's roles do not allow this action.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The model, version or alias does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// The name exists already, or the target is retired.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is larger than the limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// A dependency (database, artifact store) is unavailable; retry.
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// A failure on the server's side; the body says nothing more.
    #[response(status = 500)]
    Internal(ErrorBody),
}
