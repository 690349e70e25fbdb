//! modelops-core: the vocabulary and the rules of modelops.
//!
//! Owns the domain types ([`model::Model`], [`version::ModelVersion`], their
//! validated names), the acting principal and the permit that authorisation
//! yields ([`auth`]), the audit event and its hash chain ([`audit`]), the
//! repository traits every storage backend implements ([`repo`]), paging and
//! query types, the [`clock::Clock`] and the crate-wide [`error::Error`].
//!
//! Must not depend on: any I/O, tokio, sqlx, axum, object_store. Everything
//! here is plain data and pure functions so every other crate can use it and
//! every rule can be unit-tested without a database.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod deployment;
pub mod error;
pub mod governance;
pub mod model;
pub mod monitoring;
pub mod name;
pub mod page;
pub mod replica;
pub mod repo;
pub mod retrain;
pub mod tracking;
pub mod version;

pub use error::{Error, ErrorKind, Result};
