//! modelops-web: the web UI, served by the binary at `/` and `/ui/…`.
//!
//! Owns the pages (HTML rendered on the server with maud, charts drawn as
//! SVG on the server: no script is needed to read or act, nothing is
//! fetched from another host, and the release binary carries its one
//! stylesheet), the browser session and its protection against cross-site
//! requests. Pages: the inventory with its filters and counts, a model
//! (versions, lineage graph, card, reports), a version (card, signature,
//! metrics, evidence, approvals, the gate of each next transition with
//! every failing reason, and the actions the viewer's roles allow),
//! deployments (routes, canary progress and its rollback condition's live
//! metrics, shadows, history, rollback with confirmation), monitoring
//! (drift per feature over time, histograms of a window, performance,
//! estimated performance, fairness, alerts), retraining jobs and runs, and
//! the audit log (filters, hashes, the chain's verification, the latest
//! signed checkpoint and an event's inclusion proof).
//!
//! Sign-in exchanges an API token for a session: a token of the same user
//! named `web session`, expiring after [`WebConfig::session_lifetime`],
//! created and revoked through the registry's own token use cases (so
//! sign-in and sign-out are audited, and a disabled user's session ends
//! with their tokens). Its text is the session cookie (HttpOnly,
//! SameSite=Strict, Secure when the public URL is https). Every form
//! carries a CSRF token derived from the session, and a POST from another
//! origin is refused.
//!
//! One operation, one implementation: every action calls the same use
//! case the REST API and the CLI call (`Registry`, `Deployments`), with the
//! signed-in principal; the UI hides what a role may not do, and the use
//! case refuses it anyway.
//!
//! Must not depend on: SQL or a store, the HTTP API's crate
//! (`modelops-server` composes this router), the runtimes.

use axum::routing::{get, post};
use axum::Router;
use modelops_deploy::Deployments;
use modelops_registry::Registry;

mod audit;
mod charts;
mod deployments;
mod inventory;
mod jobs;
mod markdown;
mod model;
mod monitoring;
mod page;
mod session;
mod upload;
mod version;

/// Settings of the web UI.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Mark the session cookie `Secure` (the server is reached over https,
    /// through a proxy that terminates TLS).
    pub secure_cookies: bool,
    /// How long a sign-in lasts.
    pub session_lifetime: chrono::Duration,
    /// The origin browsers reach the server at (`https://models.example`),
    /// when a proxy in front sends another `Host`: forms from it are
    /// accepted as this site's.
    pub public_origin: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self { secure_cookies: false, session_lifetime: chrono::Duration::hours(8), public_origin: None }
    }
}

impl WebConfig {
    /// The session cookie's name: with `Secure`, the `__Host-` prefix, so
    /// a sibling subdomain cannot plant one.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-modelops_session"
        } else {
            "modelops_session"
        }
    }
}

/// What the pages read and act through.
#[derive(Clone)]
pub struct WebState {
    pub registry: Registry,
    pub deployments: Deployments,
    pub config: WebConfig,
}

/// Whether `path` is the UI's (it identifies its callers itself, by the
/// session cookie, and answers pages, not JSON errors).
pub fn is_ui_path(path: &str) -> bool {
    path == "/" || path == "/favicon.ico" || path == "/ui" || path.starts_with("/ui/")
}

/// The UI's routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(page::home))
        .route("/ui", get(page::home))
        .route("/ui/static/app.css", get(page::stylesheet))
        .route("/ui/static/icon.svg", get(page::icon))
        .route("/favicon.ico", get(page::icon))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/", get(inventory::page))
        .route("/ui/models/new", get(inventory::new_model_page))
        .route("/ui/models", post(inventory::create_model))
        .route("/ui/models/{name}", get(model::page))
        // Artifacts and documents stream to the artifact store, which
        // enforces its own size limit; the JSON limit does not apply.
        .route("/ui/models/{name}/versions", post(model::push_version).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/ui/models/{name}/reports/{report}", get(model::report))
        .route("/ui/reports/inventory", get(inventory::report))
        .route("/ui/models/{name}/versions/{version}", get(version::page))
        .route("/ui/models/{name}/versions/{version}/submit", post(version::submit))
        .route("/ui/models/{name}/versions/{version}/decide", post(version::decide))
        .route("/ui/models/{name}/versions/{version}/promote", post(version::promote))
        .route("/ui/models/{name}/versions/{version}/evidence", post(version::add_metric))
        .route("/ui/models/{name}/versions/{version}/documents", post(version::add_document).layer(axum::extract::DefaultBodyLimit::disable()))
        .route("/ui/models/{name}/versions/{version}/documents/{sha256}", get(version::document))
        .route("/ui/deployments", get(deployments::list).post(deployments::create))
        .route("/ui/deployments/{name}", get(deployments::page))
        .route("/ui/deployments/{name}/canary", post(deployments::start_canary))
        .route("/ui/deployments/{name}/rollback", get(deployments::confirm_rollback).post(deployments::rollback))
        .route("/ui/deployments/{name}/monitoring", get(monitoring::page))
        .route("/ui/jobs", get(jobs::list))
        .route("/ui/jobs/runs/{run}", get(jobs::run))
        .route("/ui/audit", get(audit::page))
        .route("/ui/audit/events/{seq}", get(audit::event))
        .route("/ui/{*rest}", get(page::not_found).post(page::not_found))
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::same_origin_posts))
        .layer(axum::middleware::from_fn(page::protective_headers))
        .with_state(state)
}
