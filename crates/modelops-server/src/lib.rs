//! modelops-server: the HTTP surface of modelops.
//!
//! Owns the axum [`router`] of the native REST API under `/api/v1` (models,
//! versions, artifacts, aliases, tags, audit), `/healthz` and `/readyz`, and
//! the OpenAPI document generated from the same code at
//! `/api/v1/openapi.json`. Key types: [`AppState`] (the store, the artifact
//! store, the [`identity::Authenticator`] and [`ServerConfig`]), the wire
//! types in [`wire`] (shared with the CLI), and [`ApiError`], the one error
//! answer `{"error": {"code", "message", "field"}}`.
//!
//! Handlers are thin: extract (every bad input becomes a 4xx naming the
//! field), authorise the principal into a permit, call one business function
//! over the `modelops_core::repo` traits, convert to a wire type.
//!
//! Routes (all JSON unless noted; errors are [`wire::ErrorBody`]):
//!
//! | method | path | |
//! |---|---|---|
//! | GET, POST | `/api/v1/models` | list/search (filters, `order_by`, `direction`, `page_size`, `page_token`); create |
//! | GET, PATCH, DELETE | `/api/v1/models/{name}` | read; update; DELETE answers 405 "retire it" |
//! | POST | `/api/v1/models/{name}/retire` | retire the model and its versions |
//! | POST | `/api/v1/artifacts?filename=&sha256=` | raw streamed body → `{sha256, size}` |
//! | GET, POST | `/api/v1/models/{name}/versions` | list (`state`, `tag`, paging); create from an uploaded artifact |
//! | GET, PATCH, DELETE | `/api/v1/models/{name}/versions/{version}` | read; update description/card; 405 |
//! | POST | `/api/v1/models/{name}/versions/{version}/retire` | retire |
//! | GET | `/api/v1/models/{name}/versions/{version}/artifact` | verified byte stream, `X-Modelops-Sha256` |
//! | GET, PUT, DELETE | `/api/v1/models/{name}/aliases/{alias}` | get-by-alias; set `{version}`; remove |
//! | PUT, DELETE | `/api/v1/models/{name}/tags/{key}`, `…/versions/{version}/tags/{key}` | set `{value}`; remove |
//! | GET | `/api/v1/audit`, `/api/v1/audit/verify` | events (filters, paging); chain verification |
//! | GET | `/healthz`, `/readyz`, `/api/v1/openapi.json` | liveness; database reachable; this API's document |
//!
//! Identity: without authentication configured ([`identity::TrustedHeader`],
//! the default), the `X-Modelops-Actor` header names the actor, who holds
//! every role; a request without it acts as `anonymous`.
//!
//! Must not depend on: SQL or sqlx, a concrete store or object-store
//! backend. It sees `Arc<dyn Store>` and an [`ArtifactStore`].

use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Router;
use modelops_artifacts::ArtifactStore;
use modelops_core::repo::Store;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

mod error;
mod extract;
pub mod identity;
mod routes;
pub mod wire;

pub use error::{ApiError, ApiResult};
pub use extract::parse_json;

/// Limits and switches of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest JSON request body; larger ones answer 413.
    pub json_body_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { json_body_limit: 1024 * 1024 }
    }
}

/// The shared state of every handler. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    artifacts: ArtifactStore,
    authenticator: Arc<dyn identity::Authenticator>,
    config: ServerConfig,
}

impl AppState {
    /// State with authentication off ([`identity::TrustedHeader`]). The
    /// artifact upload limit is the artifact store's
    /// ([`ArtifactStore::with_max_size`]).
    pub fn new(store: Arc<dyn Store>, artifacts: ArtifactStore, config: ServerConfig) -> Self {
        Self { inner: Arc::new(Inner { store, artifacts, authenticator: Arc::new(identity::TrustedHeader), config }) }
    }

    /// Replaces how requests are identified (the governance issue's tokens).
    pub fn with_authenticator(self, authenticator: Arc<dyn identity::Authenticator>) -> Self {
        let inner = &self.inner;
        Self {
            inner: Arc::new(Inner {
                store: inner.store.clone(),
                artifacts: inner.artifacts.clone(),
                authenticator,
                config: inner.config.clone(),
            }),
        }
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.inner.artifacts
    }

    pub fn authenticator(&self) -> &dyn identity::Authenticator {
        self.inner.authenticator.as_ref()
    }

    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("artifacts", &self.inner.artifacts).field("config", &self.inner.config).finish_non_exhaustive()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "modelops", description = "Native REST API of modelops: model inventory, versions, artifacts, aliases, tags and the audit log.\n\nEvery request may name its actor in `X-Modelops-Actor`; without authentication configured that actor holds every role, and a request without the header acts as `anonymous`."),
    tags(
        (name = "models", description = "The model inventory"),
        (name = "versions", description = "Immutable versions of a model"),
        (name = "artifacts", description = "Content-addressed artifact upload"),
        (name = "aliases", description = "Movable names for versions"),
        (name = "tags", description = "Key/value tags on models and versions"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "health", description = "Liveness and readiness"),
    ),
    // Query parameters reference these enums; utoipa does not collect
    // schemas reached only through `IntoParams`, so list them here.
    components(schemas(wire::Direction, wire::ModelOrder))
)]
struct ApiDoc;

/// The OpenAPI document and the routes, built together so no route can go
/// undocumented.
fn api() -> OpenApiRouter<AppState> {
    routes::routes(OpenApiRouter::with_openapi(ApiDoc::openapi()))
}

/// The OpenAPI document of the native API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api().into_openapi();
    routes::describe_path_parameters(&mut doc);
    doc
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api().split_for_parts();
    let limit = state.config().json_body_limit;
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found_route(uri.path())
}

async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(format!("`{method}` is not allowed on `{}`", uri.path()))
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    ApiError::internal().into_response()
}
