//! modelops-server: the HTTP surface of modelops.
//!
//! Owns the axum [`router`] of the native REST API under `/api/v1` (models,
//! versions, artifacts, aliases, tags, audit), `/healthz` and `/readyz`, and
//! the OpenAPI document generated from the same code at
//! `/api/v1/openapi.json`; and [`router`], which composes the surfaces into
//! one application. Key types: [`AppState`] (what the composer holds: the
//! [`Registry`], the [`identity::Identity`] and [`ServerConfig`]), from which
//! each surface's router takes its own state through `FromRef` (the native
//! API's is [`ApiState`]), so surfaces in crates of their own (MLflow, OIP,
//! UI) add a state of theirs instead of growing one; the wire types in
//! [`wire`] (shared with the CLI); and [`ApiError`], the one error answer
//! `{"error": {"code", "message", "field", "reasons"}}`.
//!
//! Handlers are thin: extract (every bad input becomes a 4xx naming the
//! field), call one use case of `modelops_registry::Registry` with the
//! principal, convert to a wire type. Errors are logged once, by the
//! [`log_errors`] middleware, with the request's method, path and id.
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
//! | GET | `/api/v1/audit`, `/api/v1/audit/verify` | events (filters, paging); chain verification (auditors, admins) |
//! | POST | `/api/v1/artifacts/gc` | remove unreferenced artifacts older than a grace period (admins; `dry_run`) |
//! | POST | `/api/v1/models/{name}/versions/{version}/submit`, `…/approve`, `…/reject`, `…/promote` | lifecycle transitions through the policy's gates |
//! | GET | `/api/v1/models/{name}/versions/{version}/gate?to=` | ask a gate (allowed, every condition, policy sha256) |
//! | GET, POST | `…/versions/{version}/governance`, `…/evidence`, `…/evidence/{sha256}`, `…/reviews` | approvals, evidence, reviews |
//! | GET | `/api/v1/reviews/due` | production versions whose periodic review is due |
//! | GET, POST, PATCH | `/api/v1/whoami`, `/api/v1/users[/{user}]`, `/api/v1/tokens`, `/api/v1/tokens/{id}/revoke` | identity |
//! | GET, PUT | `/api/v1/policy` | the active policy; load one (admins) |
//! | GET | `/api/v1/reports/inventory`, `/api/v1/reports/models/{name}[/annex-iv]` | governance reports (`format`: md, html or json) |
//! | POST | `/api/v1/models/{name}/versions/{version}/predict` | run a version (number or alias) on `rows` or `columns`, optionally explained |
//! | GET | `/api/v1/inference/metrics` | calls, rows, errors, upstream timeouts, tokens, cost per served version |
//! | GET, POST, PATCH, DELETE | `/api/v1/deployments[/{name}]`, `…/rollback`, `…/predict`, `…/predictions` | deployments, their calls and recorded predictions |
//! | GET, PUT | `/api/v1/models/{name}/versions/{version}/reference` | a version's reference profile (set once) |
//! | GET, POST, DELETE | `/api/v1/deployments/{name}/monitors[/{monitor}]`, `…/{monitor}/results` | live monitors and their windows |
//! | POST | `/api/v1/deployments/{name}/labels` | ground truth for recorded calls |
//! | GET | `/api/v1/alerts`, `/api/v1/retrain-requests` | alerts raised by monitors; the retraining requests they opened |
//! | GET, PUT, DELETE | `/api/v1/models/{name}/retrain-job` | a model's retraining job (`/api/v1/retrain-jobs`: every model's) |
//! | POST | `/api/v1/models/{name}/retrain` | a run by hand |
//! | GET | `/api/v1/retrain-runs`, `/api/v1/retrain-runs/{run}`, `…/log`, `…/window` | runs, their output, the window each was fed (Parquet) |
//! | POST | `/api/v1/retrain-runs/{run}/cancel` | stop a run waiting for people or shadowing |
//! | GET | `/metrics` | Prometheus text exposition (routes/metrics.rs) |
//! | GET, POST | `/v2…` | the Open Inference Protocol ([`inference::oip`]): health, metadata, ready, infer (JSON and binary tensors) |
//! | GET | `/healthz`, `/readyz`, `/api/v1/openapi.json` | liveness; database reachable; this API's document |
//!
//! Identity: every route but `/healthz`, `/readyz`, the OpenAPI document and
//! the OIP health and server-metadata routes
//! passes the authentication middleware ([`identity::TokenAuthenticator`] by
//! default: `Authorization: Bearer <token>` or HTTP Basic with the token as
//! password → the principal, or 401). Who may call what is
//! [`access::endpoints`], rendered as `docs/roles.md`.
//!
//! Limits (from [`ServerConfig`]): JSON requests are answered within a
//! timeout; an upload whose body stalls longer than the idle timeout is
//! refused (408); requests past the concurrency limits are shed with 503, so
//! slow clients cannot hold every slot.
//!
//! Must not depend on: SQL or sqlx, a concrete store or object-store
//! backend, business rules (those are the registry's).

use axum::extract::{DefaultBodyLimit, FromRef, Request};
use axum::http::{HeaderName, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use modelops_deploy::{DeployConfig, Deployments};
use modelops_registry::Registry;
use modelops_serving::{Serving, ServingConfig};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

mod error;
pub mod extract;
pub mod inference;
pub mod identity;
mod routes;
pub mod wire;

pub use error::{ApiError, ApiResult, ErrorReport};
pub use routes::access;
pub use extract::parse_json;

/// The header carrying a request's id, taken from the client or made.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Limits and switches of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest JSON request body; larger ones answer 413.
    pub json_body_limit: usize,
    /// A request other than an artifact transfer is answered within this
    /// time, or with 503.
    pub request_timeout: Duration,
    /// An upload whose body sends nothing for this long is refused (408).
    pub body_idle_timeout: Duration,
    /// Requests other than artifact transfers handled at once; more are shed (503).
    pub max_concurrent_requests: usize,
    /// Long requests (artifact uploads and downloads, the audit
    /// verification) at once; more are shed (503).
    pub max_concurrent_transfers: usize,
    /// Largest inference request body (OIP and `predict`); larger ones
    /// answer 413.
    pub inference_body_limit: usize,
    /// Inference requests handled at once; more are shed (503).
    pub max_concurrent_inferences: usize,
    /// The web UI's settings (its session cookie).
    pub web: modelops_web::WebConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            json_body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            max_concurrent_requests: 512,
            max_concurrent_transfers: 64,
            inference_body_limit: 32 * 1024 * 1024,
            max_concurrent_inferences: 1024,
            web: modelops_web::WebConfig::default(),
        }
    }
}

/// What the composer holds; each surface takes its own state from it.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub serving: Serving,
    pub deployments: Deployments,
    pub watch: modelops_watch::Watch,
    pub retrain: modelops_retrain::Retraining,
    pub identity: identity::Identity,
    pub config: ServerConfig,
}

impl AppState {
    /// State with token authentication ([`identity::TokenAuthenticator`]),
    /// as the binary runs it.
    pub fn new(registry: Registry, config: ServerConfig) -> Self {
        let tokens = Arc::new(identity::TokenAuthenticator::new(registry.clone()));
        let serving = Serving::new(registry.clone(), ServingConfig::default());
        let recorder = modelops_deploy::recorder::Recorder::start(registry.prediction_log(), Default::default());
        let deployments = Deployments::new(registry.clone(), serving.clone(), recorder, DeployConfig::default());
        let watch = modelops_watch::Watch::new(registry.clone(), deployments.clone(), modelops_watch::WatchConfig::default());
        let retrain = modelops_retrain::Retraining::new(registry.clone(), deployments.clone(), modelops_retrain::RetrainConfig::default());
        Self { registry, serving, deployments, watch, retrain, identity: identity::Identity::new(tokens), config }
    }

    /// Serves models with `serving` (its cache and runtime configuration),
    /// deployments too.
    pub fn with_serving(mut self, serving: Serving) -> Self {
        let recorder = self.deployments.recorder().clone();
        self.deployments = Deployments::new(self.registry.clone(), serving.clone(), recorder, DeployConfig::default());
        self.watch = modelops_watch::Watch::new(self.registry.clone(), self.deployments.clone(), modelops_watch::WatchConfig::default());
        self.retrain = modelops_retrain::Retraining::new(self.registry.clone(), self.deployments.clone(), modelops_retrain::RetrainConfig::default());
        self.serving = serving;
        self
    }

    /// Serves deployments with `deployments` (built over this state's
    /// serving; its recorder and settings). Start its controller with
    /// [`Deployments::start`].
    pub fn with_deployments(mut self, deployments: Deployments) -> Self {
        self.watch = modelops_watch::Watch::new(self.registry.clone(), deployments.clone(), modelops_watch::WatchConfig::default());
        self.retrain = modelops_retrain::Retraining::new(self.registry.clone(), deployments.clone(), modelops_retrain::RetrainConfig::default());
        self.deployments = deployments;
        self
    }

    /// Monitors deployments with `watch` (built over this state's
    /// deployments; its settings). Start its engine with
    /// [`modelops_watch::Watch::start`].
    pub fn with_watch(mut self, watch: modelops_watch::Watch) -> Self {
        self.watch = watch;
        self
    }

    /// Runs the closed loop with `retrain` (built over this state's
    /// deployments; its settings). Start its loop with
    /// [`modelops_retrain::Retraining::start`].
    pub fn with_retraining(mut self, retrain: modelops_retrain::Retraining) -> Self {
        self.retrain = retrain;
        self
    }

    /// Replaces how requests are identified (the governance issue's tokens).
    pub fn with_authenticator(mut self, authenticator: Arc<dyn identity::Authenticator>) -> Self {
        self.identity = identity::Identity::new(authenticator);
        self
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("registry", &self.registry).field("config", &self.config).finish_non_exhaustive()
    }
}

/// The native API's state.
#[derive(Clone)]
pub struct ApiState {
    pub registry: Registry,
    pub serving: Serving,
    pub deployments: Deployments,
    pub watch: modelops_watch::Watch,
    pub retrain: modelops_retrain::Retraining,
    pub identity: identity::Identity,
    pub body_idle_timeout: Duration,
}

impl FromRef<AppState> for ApiState {
    fn from_ref(app: &AppState) -> Self {
        Self {
            registry: app.registry.clone(),
            serving: app.serving.clone(),
            deployments: app.deployments.clone(),
            watch: app.watch.clone(),
            retrain: app.retrain.clone(),
            identity: app.identity.clone(),
            body_idle_timeout: app.config.body_idle_timeout,
        }
    }
}

impl FromRef<ApiState> for Serving {
    fn from_ref(state: &ApiState) -> Self {
        state.serving.clone()
    }
}

impl FromRef<ApiState> for Registry {
    fn from_ref(state: &ApiState) -> Self {
        state.registry.clone()
    }
}

impl FromRef<ApiState> for identity::Identity {
    fn from_ref(state: &ApiState) -> Self {
        state.identity.clone()
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "modelops", description = "Native REST API of modelops: model inventory, versions, artifacts, aliases, tags, governance (lifecycle, gates, approvals, evidence, reviews, policy, reports), users and tokens, and the audit log.\n\nEvery route but `/healthz`, `/readyz` and this document needs an API token: `Authorization: Bearer <token>` (or HTTP Basic with the token as password). Without one, or with a wrong, expired or revoked one, the answer is 401; a role that may not is 403 with every failing condition in `error.reasons`."),
    modifiers(&BearerAuth),
    tags(
        (name = "models", description = "The model inventory"),
        (name = "versions", description = "Immutable versions of a model"),
        (name = "artifacts", description = "Content-addressed artifact upload"),
        (name = "aliases", description = "Movable names for versions"),
        (name = "tags", description = "Key/value tags on models and versions"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "lifecycle", description = "Submit, approve, reject, promote; gates, evidence and periodic reviews"),
        (name = "identity", description = "Users and API tokens"),
        (name = "policy", description = "The governance policy: gates per risk tier as CEL conditions"),
        (name = "reports", description = "Inventory, model governance and EU AI Act Annex IV reports"),
        (name = "deployments", description = "Named endpoints moving a model's traffic between versions: direct, A/B, canary with automatic rollback, shadow; rollback; recorded predictions"),
        (name = "retraining", description = "The closed loop: each model's retraining job, its runs (triggered by alerts, a schedule or by hand), their output and the window each was fed"),
        (name = "monitoring", description = "Live monitoring: reference profiles, monitors over deployments' recorded predictions, window results, labels, alerts, retraining requests"),
        (name = "inference", description = "Run a version on rows (the Open Inference Protocol is served under /v2)"),
        (name = "health", description = "Liveness and readiness"),
    ),
    // Query parameters reference these enums; utoipa does not collect
    // schemas reached only through `IntoParams`, so list them here.
    components(schemas(wire::Direction, wire::ModelOrder))
)]
struct ApiDoc;

/// Declares the token scheme and applies it to the whole document.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("mdo_<id>_<secret>").build()));
        doc.security = Some(vec![SecurityRequirement::new("token", Vec::<String>::new())]);
    }
}

/// The OpenAPI document and the routes, built together so no route can go
/// undocumented.
fn api(config: &ServerConfig) -> OpenApiRouter<ApiState> {
    routes::routes(OpenApiRouter::with_openapi(ApiDoc::openapi()), config)
}

/// The OpenAPI document of the native API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = api(&ServerConfig::default()).into_openapi();
    routes::describe_path_parameters(&mut doc);
    // The public routes need no token (an empty list of requirements); the
    // paths exist only now, after the routes were added.
    for path in PUBLIC_PATHS {
        if let Some(get) = doc.paths.paths.get_mut(*path).and_then(|item| item.get.as_mut()) {
            get.security = Some(Vec::new());
        }
    }
    doc
}

/// The complete HTTP application: every surface's router with its own state,
/// under the layers every request passes (request id, error logging, panic
/// catching).
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let (native, _) = api(&config).split_for_parts();
    let native = native.with_state(ApiState::from_ref(&state));
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let identity = Authentication { identity: state.identity.clone(), timeout: config.request_timeout };
    // Identifying the caller reads the database (once per token and few
    // seconds): it is bounded like the requests it precedes, so a flood of
    // made-up tokens is shed instead of exhausting the pool. The bound is
    // the sum of each surface's own (JSON, transfers, inference), so a flood
    // on one surface is shed by that surface's limit and leaves the others
    // their slots.
    let guard = ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(routes::overloaded))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            config.max_concurrent_requests + config.max_concurrent_transfers + config.max_concurrent_inferences,
        ));
    let web = modelops_web::router(modelops_web::WebState {
        registry: state.registry.clone(),
        deployments: state.deployments.clone(),
        config: config.web.clone(),
    });
    let routes = Router::new()
        .merge(native)
        .merge(web)
        .merge(inference::router(&state))
        .merge(modelops_mlflow::router(state.registry.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.json_body_limit));
    // Around the router as one service, not `Router::layer` (which wraps
    // each route apart, so every request would copy the whole stack into
    // a new allocation per layer).
    let envelope = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(axum::middleware::from_fn(log_errors))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(guard)
        .layer(axum::middleware::from_fn_with_state(identity, authenticate))
        .service(routes);
    Router::new().fallback_service(envelope)
}

/// The routes anyone may call, without a token.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/readyz", routes::OPENAPI_PATH, "/v2", "/v2/health/live", "/v2/health/ready"];

/// Identifies the caller of every route but the public ones before any
/// handler runs (so no route, present or future, answers without a valid
/// token: 401 first), and hands the principal to the [`extract::Actor`]
/// extractor (and every other surface: MLflow's routes) through the
/// request's extensions.
async fn authenticate(axum::extract::State(auth): axum::extract::State<Authentication>, mut request: Request, next: Next) -> Response {
    // The web UI identifies its visitors itself (the session cookie) and
    // answers with pages: the sign-in form, not a JSON 401.
    // A multipart upload's part carries its own credential (its upload id),
    // as a presigned URL does: MLflow's client sends no other.
    if PUBLIC_PATHS.contains(&request.uri().path()) || modelops_web::is_ui_path(request.uri().path()) || modelops_mlflow::is_upload_part(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let identified = tokio::time::timeout(auth.timeout, auth.identity.authenticator().authenticate(request.headers())).await;
    match identified {
        Ok(Ok(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        // MLflow's client reads only its own error form.
        Ok(Err(e)) if modelops_mlflow::is_mlflow_path(request.uri().path()) => modelops_mlflow::MlflowError::from(e).into_response(),
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(_) => ApiError::unavailable("identifying the caller took longer than the server's time limit; retry later").into_response(),
    }
}

/// What the authentication middleware needs.
#[derive(Clone)]
struct Authentication {
    identity: identity::Identity,
    timeout: Duration,
}

/// Logs every error answer once, with the request it answered: 5xx at
/// error level with the detail the client was not told, 4xx at debug.
pub async fn log_errors(request: Request, next: Next) -> Response {
    // Cheap clones (shared buffers): this runs for every request.
    let method = request.method().clone();
    let uri = request.uri().clone();
    let id = request.headers().get(REQUEST_ID_HEADER).cloned();
    let response = next.run(request).await;
    if let Some(report) = response.extensions().get::<ErrorReport>() {
        let status = report.status.as_u16();
        let path = uri.path();
        let request_id = id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default();
        if report.status.is_server_error() {
            tracing::error!(%method, %path, %request_id, status, code = report.code, detail = %report.detail, "request failed");
        } else {
            tracing::debug!(%method, %path, %request_id, status, code = report.code, detail = %report.detail, "request refused");
        }
    }
    response
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
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}
