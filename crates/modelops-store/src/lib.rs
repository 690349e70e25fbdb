//! modelops-store: the only crate that speaks SQL.
//!
//! Owns the two storage backends, [`SqliteStore`] (embedded, the default) and
//! [`PostgresStore`] (shared by many replicas), their migrations
//! (`migrations/sqlite`, `migrations/postgres`, embedded at build time and run
//! at connect), and [`connect`], which picks a backend from the database URL
//! once at start-up. Both implement `modelops_core::repo::{ModelRepo, AuditLog}`
//! and keep their contract: a mutation and its audit event commit in one
//! transaction; the audit log is append-only, also inside the database
//! (triggers refuse UPDATE and DELETE of `audit_events`); version numbers are
//! assigned under the write lock.
//!
//! Both backends share one body of query code (`shared.rs`, included into each
//! backend module) and differ only in a few hooks: how a write transaction
//! starts and locks, how times are stored, and a handful of SQL functions.
//! sqlx errors stay private and map into `modelops_core::Error`.
//!
//! Must not depend on: axum or anything HTTP, the artifact store, the runtime.

mod cursor;
mod error;
mod postgres;
mod sqlite;

pub use modelops_core::repo::verify_chain;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use modelops_core::clock::Clock;
use modelops_core::repo::Store;
use modelops_core::{Error, Result};
use std::sync::Arc;

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite:path`, `sqlite://path?mode=rwc`, `sqlite::memory:`,
    /// `postgres://…` or `postgresql://…`.
    pub fn from_url(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            let scheme = url.split(':').next().unwrap_or_default();
            Err(Error::invalid("database_url", format!("scheme `{scheme}` is not one of `sqlite`, `postgres`, `postgresql`")))
        }
    }
}

/// Opens the database `url` names, runs pending migrations and returns it as
/// the one [`Store`] the rest of the program sees.
pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>> {
    Ok(match Backend::from_url(url)? {
        Backend::Sqlite => Arc::new(SqliteStore::connect(url, clock).await?),
        Backend::Postgres => Arc::new(PostgresStore::connect(url, clock).await?),
    })
}

/// Opens an existing database's audit log read-only, without migrating or
/// creating anything (`modelops audit verify --database-url`). A database
/// that holds no modelops audit log is refused by name.
pub async fn open_audit_log(url: &str) -> Result<Arc<dyn Store>> {
    let clock: Arc<dyn Clock> = Arc::new(modelops_core::clock::SystemClock);
    let store: Arc<dyn Store> = match Backend::from_url(url)? {
        Backend::Sqlite => Arc::new(SqliteStore::open_read_only(url, clock).await?),
        Backend::Postgres => Arc::new(PostgresStore::connect_read_only(url, clock).await?),
    };
    if let Err(e) = store.head().await {
        return Err(Error::invalid(
            "database_url",
            format!("the database holds no modelops audit log (was it created by `modelops serve` or `modelops migrate`?): {e}"),
        ));
    }
    Ok(store)
}

/// Brings the schema of the database `url` names up to date (`modelops migrate`).
pub async fn migrate(url: &str) -> Result<()> {
    match Backend::from_url(url)? {
        Backend::Sqlite => SqliteStore::migrate(url).await,
        Backend::Postgres => PostgresStore::migrate(url).await,
    }
}
