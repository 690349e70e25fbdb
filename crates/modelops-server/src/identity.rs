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

/// Authentication switched off: every caller is trusted with every role.
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
