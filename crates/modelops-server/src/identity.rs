//! Who is calling. Handlers see only [`Principal`]s; how a request is
//! turned into one is an [`Authenticator`] chosen at start-up, so the
//! governance issue's bearer tokens plug in here without touching handlers.

use async_trait::async_trait;
use axum::http::HeaderMap;
use modelops_core::auth::{Principal, Role};
use modelops_core::name::quote;
use modelops_core::{Error, Result};
use std::sync::Arc;

/// The header naming the acting user when no authentication is configured.
pub const ACTOR_HEADER: &str = "x-modelops-actor";

/// The actor of a request that names none.
pub const ANONYMOUS: &str = "anonymous";

/// The configured [`Authenticator`], as the state surfaces extract the
/// acting principal with (see [`crate::extract::Actor`]). Cheap to clone.
#[derive(Clone)]
pub struct Identity(Arc<dyn Authenticator>);

impl Identity {
    pub fn new(authenticator: Arc<dyn Authenticator>) -> Self {
        Self(authenticator)
    }

    pub fn authenticator(&self) -> &dyn Authenticator {
        self.0.as_ref()
    }
}

/// Identifies the principal behind a request from its headers.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// A request that cannot be identified answers the error (e.g. a bad or
    /// unknown token); handlers never run for it.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal>;
}

/// Authentication switched off, for in-process tests and embedding only
/// (the binary never uses it): every caller is trusted with every role.
///
/// The actor is the `X-Modelops-Actor` header, or `anonymous` without one.
/// It is what the audit log records, so scripts should set it; it proves
/// nothing, which is why tokens replace it once governance is configured.
/// `Authorization: Bearer` is reserved for those tokens and ignored here.
#[derive(Debug, Default, Clone, Copy)]
pub struct TrustedHeader;

#[async_trait]
impl Authenticator for TrustedHeader {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal> {
        let name = match headers.get(ACTOR_HEADER) {
            None => ANONYMOUS,
            Some(value) => value.to_str().map_err(|_| {
                Error::invalid("x-modelops-actor", format!("{} is not printable ASCII", quote(&String::from_utf8_lossy(value.as_bytes()))))
            })?,
        };
        Principal::new(name, Role::ALL.iter().copied()).map_err(|e| match e {
            Error::InvalidInput { reason, .. } => Error::invalid("x-modelops-actor", reason),
            e => e,
        })
    }
}

/// Authentication by API token, the default: `Authorization: Bearer
/// <token>`, or HTTP Basic with the token as the password (what the MLflow
/// client sends from `MLFLOW_TRACKING_USERNAME/PASSWORD`; the user name is
/// not trusted, the token says who it is). `X-Modelops-Actor` identifies no
/// one. A request without credentials, or with a token that is malformed,
/// unknown, wrong, expired or revoked, or whose user is disabled, answers
/// 401; the token never appears in a message or a log line.
#[derive(Debug, Clone)]
pub struct TokenAuthenticator {
    registry: modelops_registry::Registry,
}

impl TokenAuthenticator {
    pub fn new(registry: modelops_registry::Registry) -> Self {
        Self { registry }
    }
}

/// The token a request carries, if any.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<String>> {
    use base64::Engine;
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || Error::Unauthenticated("the `Authorization` header is not `Bearer <token>` or `Basic <base64 of user:token>`".into());
    let value = value.to_str().map_err(|_| bad())?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or_else(bad)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(rest).map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (_, password) = decoded.split_once(':').ok_or_else(bad)?;
        return Ok(Some(password.to_string()));
    }
    Err(bad())
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal> {
        let token = bearer_token(headers)?
            .ok_or_else(|| Error::Unauthenticated("this endpoint needs a token: send `Authorization: Bearer <token>` (see `modelops login`)".into()))?;
        self.registry.authenticate(&token).await
    }
}
