// The page shell (head, navigation, the signed-in user, notices), the
// error page, and small formatting helpers every page uses.

use crate::session::Viewer;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use modelops_core::Error;

const STYLESHEET: &str = include_str!("../static/app.css");
const ICON: &str = include_str!("../static/icon.svg");

/// Which part of the site a page belongs to (the navigation marks it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Inventory,
    Deployments,
    Jobs,
    Audit,
    None,
}

/// A whole page: `title` in the tab and as the heading's text, `body`
/// inside `<main>`.
pub fn shell(viewer: Option<&Viewer>, section: Section, title: &str, notice: Option<&str>, body: Markup) -> Markup {
    let nav = [
        (Section::Inventory, "/ui/", "Inventory"),
        (Section::Deployments, "/ui/deployments", "Deployments"),
        (Section::Jobs, "/ui/jobs", "Retraining"),
        (Section::Audit, "/ui/audit", "Audit log"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · modelops" }
                link rel="stylesheet" href="/ui/static/app.css";
                link rel="icon" href="/ui/static/icon.svg" type="image/svg+xml";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "modelops" }
                    @if let Some(viewer) = viewer {
                        nav aria-label="Main" {
                            ul {
                                @for (s, href, label) in nav {
                                    li { a href=(href) aria-current=[(s == section).then_some("page")] { (label) } }
                                }
                            }
                        }
                        div.who {
                            span { (viewer.principal.name()) }
                            span.roles { (roles_text(viewer)) }
                            form method="post" action="/ui/logout" {
                                (viewer.csrf_field())
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    @if let Some(text) = notice {
                        p.notice role="status" { (text) }
                    }
                    (body)
                }
            }
        }
    }
}

fn roles_text(viewer: &Viewer) -> String {
    let roles: Vec<&str> = viewer.principal.roles().iter().map(|r| r.as_str()).collect();
    if roles.is_empty() {
        "no role".into()
    } else {
        roles.join(", ")
    }
}

pub async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLESHEET).into_response()
}

pub async fn icon() -> Response {
    ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=86400")], ICON).into_response()
}

/// Pages hold governed data: not kept by the browser's cache (Back after
/// signing out shows nothing), never framed by another page.
pub async fn protective_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    }
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static("frame-ancestors 'none'"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    response
}

pub async fn home() -> Redirect {
    Redirect::to("/ui/")
}

pub async fn not_found(viewer: Option<Viewer>) -> Response {
    let body = html! { h1 { "Not found" } p { "There is no page here. " a href="/ui/" { "Back to the inventory" } "." } };
    (StatusCode::NOT_FOUND, shell(viewer.as_ref(), Section::None, "Not found", None, body)).into_response()
}

/// An error answered as a page: the use case's message (which names the
/// field and the value), with the status the REST API would answer.
#[derive(Debug)]
pub struct PageError {
    pub error: Error,
    pub viewer: Option<Box<Viewer>>,
}

impl PageError {
    pub fn new(error: Error, viewer: &Viewer) -> Self {
        Self { error, viewer: Some(Box::new(viewer.clone())) }
    }
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        Self { error, viewer: None }
    }
}

pub type PageResult<T = Response> = std::result::Result<T, PageError>;

/// Adds the viewer to an error for its page's navigation.
pub trait ForViewer<T> {
    fn for_viewer(self, viewer: &Viewer) -> PageResult<T>;
}

impl<T> ForViewer<T> for modelops_core::Result<T> {
    fn for_viewer(self, viewer: &Viewer) -> PageResult<T> {
        self.map_err(|e| PageError::new(e, viewer))
    }
}

pub fn status_of(error: &Error) -> StatusCode {
    use modelops_core::error::ErrorKind as K;
    match error.kind() {
        K::InvalidInput => StatusCode::BAD_REQUEST,
        K::NotFound => StatusCode::NOT_FOUND,
        K::AlreadyExists | K::Conflict => StatusCode::CONFLICT,
        K::Forbidden => StatusCode::FORBIDDEN,
        K::Unauthenticated => StatusCode::UNAUTHORIZED,
        K::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        K::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        K::BadGateway => StatusCode::BAD_GATEWAY,
        K::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
        K::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if matches!(self.error, Error::Unauthenticated(_)) {
            return Redirect::to("/ui/login").into_response();
        }
        let status = status_of(&self.error);
        let (heading, detail) = match &self.error {
            Error::Internal(detail) => {
                tracing::error!(%detail, "web page failed");
                ("Something went wrong on the server".to_string(), "The error is in the server's log.".to_string())
            }
            Error::Forbidden(_) => ("Not allowed".to_string(), "The server refused this:".to_string()),
            Error::NotFound { .. } => ("Not found".to_string(), self.error.to_string()),
            Error::AlreadyExists { .. } => ("Already there".to_string(), self.error.to_string()),
            Error::InvalidInput { .. } => ("That was not accepted".to_string(), self.error.to_string()),
            Error::Conflict(_) => ("That cannot be done now".to_string(), self.error.to_string()),
            _ => ("That did not work".to_string(), self.error.to_string()),
        };
        let reasons: Vec<String> = match &self.error {
            Error::Forbidden(denial) => denial.reasons().iter().map(|r| format!("{} ({})", r.message, r.condition)).collect(),
            _ => Vec::new(),
        };
        let body = html! {
            h1 { (heading) }
            p.error role="alert" { (detail) }
            @if !reasons.is_empty() {
                ul { @for r in &reasons { li { (r) } } }
            }
            p { "Your browser's Back button returns to the form as you left it. " a href="/ui/" { "Inventory" } }
        };
        let mut response = (status, shell(self.viewer.as_deref(), Section::None, &heading, None, body)).into_response();
        response.extensions_mut().insert(self.error.to_string());
        response
    }
}

pub fn time(at: &DateTime<Utc>) -> Markup {
    let text = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! { time datetime=(at.to_rfc3339()) { (text) } }
}

pub fn opt_time(at: Option<&DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { "—" },
    }
}

/// A state as a labelled badge (colour is never the only cue: the word is
/// there).
pub fn badge(text: &str) -> Markup {
    html! { span class={ "badge badge-" (text.replace(['_', ' '], "-")) } { (text.replace('_', " ")) } }
}

pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x != 0.0 && (x.abs() < 0.001 || x.abs() >= 1e6) {
        format!("{x:.3e}")
    } else {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// Percent-encodes a path segment or a query value (RFC 3986: every byte
/// but the unreserved ones; a space is `%20`, never `+`, which a path keeps).
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A number from the path, or a 404 naming it (never axum's plain-text
/// rejection).
pub fn path_number<T: std::str::FromStr>(what: &'static str, raw: &str) -> modelops_core::Result<T> {
    raw.parse::<T>().map_err(|_| Error::not_found(what, raw))
}

/// A short notice after an action, from the `done` query parameter the
/// action redirected with (a fixed vocabulary: never echoed text).
pub fn notice_for(done: Option<&str>) -> Option<&'static str> {
    Some(match done? {
        "signed-in" => "Signed in.",
        "model-created" => "Model registered.",
        "version-pushed" => "Version pushed: it is a draft until submitted for validation.",
        "submitted" => "Submitted for validation.",
        "approved" => "Your approval is recorded.",
        "rejected" => "Your rejection is recorded.",
        "promoted" => "Promoted to production.",
        "canary-started" => "Canary started: it advances step by step while its rollback condition stays false.",
        "rolled-back" => "Rolled back.",
        "evidence-added" => "Evidence attached.",
        "deployment-created" => "Deployment created: it serves its version now.",
        _ => return None,
    })
}

/// Preformatted text that keeps its whitespace (JSON, logs); it may
/// scroll sideways, so the keyboard can reach it.
pub fn pre(text: &str) -> Markup {
    html! { pre tabindex="0" { code { (text) } } }
}
