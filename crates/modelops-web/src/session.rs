// Sign-in, sign-out, the session cookie, and protection against requests
// forged by other sites.
//
// A session is an API token of the signed-in user (name `web session`,
// expiring after the configured lifetime) made by the registry's
// `create_token` and ended by its `revoke_token`: one implementation of
// "who may act", audited like any token, revocable from the CLI, and ended
// by disabling the user. Its text is the cookie; the CSRF token every form
// carries is derived from it, so a page of another site, which can read
// neither, cannot make one.

use crate::page::{self, PageResult, Section};
use crate::WebState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use modelops_core::auth::Principal;
use modelops_core::governance::TokenText;
use modelops_core::Error;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Double-submit cookie of the sign-in form, before there is a session.
const LOGIN_COOKIE: &str = "modelops_login";
/// The name of the tokens sessions are made of.
pub const SESSION_TOKEN_NAME: &str = "web session";

/// The signed-in user of a request.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub principal: Principal,
    token_id: String,
    csrf: String,
}

impl Viewer {
    /// The hidden field every form of the page carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: &str) -> modelops_core::Result<()> {
        if constant_time_eq(sent.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(Error::forbidden("csrf", "the form was not sent from this session's page (its `csrf` field does not match): reload the page and try again"))
        }
    }

    /// Whether the viewer's roles allow `action` at all (the use case still
    /// decides, with the model's developers, separation of duties and the
    /// gates): what may not be done is not offered.
    pub fn may(&self, action: modelops_core::auth::Action) -> bool {
        modelops_core::auth::authorize(&self.principal, action).is_ok()
    }
}

fn csrf_of(session: &str) -> String {
    let digest = Sha256::new().chain_update(b"modelops web csrf\0").chain_update(session.as_bytes()).finalize();
    hex::encode(&digest[..16])
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

async fn viewer_of(parts: &Parts, state: &WebState) -> modelops_core::Result<Viewer> {
    let token = cookie(&parts.headers, state.config.session_cookie()).ok_or_else(|| Error::Unauthenticated("not signed in".into()))?;
    let principal = state.registry.authenticate(token).await?;
    let token_id = TokenText::parse(token)?.id.to_string();
    Ok(Viewer { principal, token_id, csrf: csrf_of(token) })
}

/// A page for signed-in users: anyone else is sent to the sign-in form,
/// and comes back here after it.
impl FromRequestParts<WebState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        match viewer_of(parts, state).await {
            Ok(viewer) => Ok(viewer),
            Err(Error::Unauthenticated(why)) => {
                let next = if parts.method == Method::GET { parts.uri.path_and_query().map(|p| p.as_str().to_string()) } else { None };
                let expired = why.contains("expired") || why.contains("revoked") || why.contains("disabled");
                let mut to = String::from("/ui/login");
                let mut sep = '?';
                if let Some(next) = next {
                    to.push_str(&format!("?next={}", page::enc(&next)));
                    sep = '&';
                }
                if expired && cookie(&parts.headers, state.config.session_cookie()).is_some() {
                    to.push(sep);
                    to.push_str("ended=1");
                }
                Err(Redirect::to(&to).into_response())
            }
            Err(other) => Err(page::PageError::from(other).into_response()),
        }
    }
}

impl OptionalFromRequestParts<WebState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Option<Self>, Self::Rejection> {
        Ok(viewer_of(parts, state).await.ok())
    }
}

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
    ended: Option<String>,
}

/// Only a path of this site, in visible ASCII (it becomes a `Location`
/// header): never a redirect elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui") && !n.contains('\\') && n.bytes().all(|b| (0x21..=0x7e).contains(&b)) => n.to_string(),
        _ => "/ui/".to_string(),
    }
}

/// 128 random bits, hex: the sign-in form's double-submit value.
fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

fn login_form(next: &str, csrf: &str, error: Option<&str>, ended: bool) -> Markup {
    html! {
        div.signin {
            h1 { "Sign in to modelops" }
            @if ended {
                p.notice role="status" { "Your session ended (it expired or was revoked). Sign in again." }
            }
            @if let Some(e) = error {
                p.error role="alert" id="login-error" { (e) }
            }
            form method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="token" { "API token" }
                input id="token" name="token" type="password" autocomplete="off" required aria-describedby=(if error.is_some() { "login-error token-help" } else { "token-help" }) aria-invalid=[error.map(|_| "true")];
                p.help id="token-help" { "A token from " code { "modelops tokens create" } " or your administrator. The page keeps a session of its own (a token named “web session”) and never the one you type here." }
                button type="submit" { "Sign in" }
            }
        }
    }
}

fn login_cookie(value: &str, state: &WebState) -> HeaderValue {
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{LOGIN_COOKIE}={value}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn login_page(State(state): State<WebState>, Query(query): Query<LoginQuery>, headers: HeaderMap) -> Response {
    let csrf = match cookie(&headers, LOGIN_COOKIE) {
        Some(v) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => v.to_string(),
        _ => random_hex(),
    };
    let next = safe_next(query.next.as_deref());
    let body = login_form(&next, &csrf, None, query.ended.is_some());
    let mut response = page::shell(None, Section::None, "Sign in", None, body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, login_cookie(&csrf, &state));
    response
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub async fn login(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(Some(&form.next));
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    let again = |status: StatusCode, message: &str| {
        let csrf = if expected.len() == 32 { expected.to_string() } else { random_hex() };
        let mut response = (status, page::shell(None, Section::None, "Sign in", None, login_form(&next, &csrf, Some(message), false))).into_response();
        response.headers_mut().insert(header::SET_COOKIE, login_cookie(&csrf, &state));
        response
    };
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return again(StatusCode::FORBIDDEN, "The sign-in form expired or came from another site: try again.");
    }
    let token = form.token.trim();
    if token.is_empty() {
        return again(StatusCode::BAD_REQUEST, "Enter an API token (field `token`).");
    }
    let principal = match state.registry.authenticate(token).await {
        Ok(p) => p,
        Err(Error::Unauthenticated(why)) => return again(StatusCode::UNAUTHORIZED, &format!("That token does not sign anyone in: {why}.")),
        Err(other) => return page::PageError::from(other).into_response(),
    };
    if principal.scope().is_some() {
        return again(StatusCode::FORBIDDEN, "A retraining run's token cannot sign in to the web UI.");
    }
    let session = match state.registry.create_token(&principal, None, SESSION_TOKEN_NAME, Some(state.config.session_lifetime)).await {
        Ok(t) => t,
        Err(Error::Unauthenticated(why)) => return again(StatusCode::UNAUTHORIZED, &why),
        Err(other) => return page::PageError::from(other).into_response(),
    };
    // A session this browser still holds ends: one sign-in, one session.
    if let Some(previous) = cookie(&headers, state.config.session_cookie()) {
        if let (Ok(old), Ok(text)) = (state.registry.authenticate(previous).await, TokenText::parse(previous)) {
            if old.name() == principal.name() {
                if let Err(e) = state.registry.revoke_token(&old, text.id).await {
                    tracing::warn!(error = %e, "could not revoke the session signed in again over");
                }
            }
        }
    }
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    let max_age = state.config.session_lifetime.num_seconds();
    let name = state.config.session_cookie();
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("{name}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}", session.secret)) {
        headers.append(header::SET_COOKIE, v);
    }
    headers.append(header::SET_COOKIE, HeaderValue::from_static("modelops_login=; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=0"));
    response
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends the session: its token is revoked (audited), the cookie cleared.
pub async fn logout(State(state): State<WebState>, viewer: Viewer, Form(form): Form<CsrfOnly>) -> PageResult {
    viewer.check_csrf(&form.csrf).map_err(|e| page::PageError::new(e, &viewer))?;
    if let Err(e) = state.registry.revoke_token(&viewer.principal, &viewer.token_id).await {
        return Err(page::PageError::new(e, &viewer));
    }
    let mut response = Redirect::to("/ui/login").into_response();
    let secure = if state.config.secure_cookies { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}", state.config.session_cookie())) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Refuses a POST whose `Origin` (or, without a usable one, `Referer`) is
/// another site: the CSRF token is the main defence, this the second. An
/// `Origin: null` (sent under a `no-referrer` policy) says nothing and is
/// treated as absent. The site is the request's `Host`, or the configured
/// public origin when a proxy in front sends another `Host`.
pub async fn same_origin_posts(State(state): State<WebState>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST {
        let headers = request.headers();
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
        let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok()).filter(|o| *o != "null");
        let from = origin.or_else(|| headers.get(header::REFERER).and_then(|h| h.to_str().ok()));
        if let Some(from) = from {
            let from_lower = from.to_ascii_lowercase();
            let authority = from_lower.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_string());
            let public = state.config.public_origin.as_deref().map(|p| p.trim_end_matches('/').to_ascii_lowercase());
            let same_host = authority.as_deref() == Some(host.as_str());
            let same_public = public.as_deref().is_some_and(|p| from_lower == p || from_lower.starts_with(&format!("{p}/")));
            if !same_host && !same_public {
                let e = Error::forbidden("origin", format!("a form sent from `{from}` to `{host}`: only this site's pages may send forms"));
                return page::PageError::from(e).into_response();
            }
        }
    }
    next.run(request).await
}
