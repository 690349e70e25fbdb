//! modelops-store: the only crate that speaks SQL.
//!
//! Owns the two storage backends, [`SqliteStore`] (embedded, the default) and
//! [`PostgresStore`] (shared by many replicas), their migrations
//! (`migrations/sqlite`, `migrations/postgres`, embedded at build time and run
//! at connect), and [`connect`], which picks a backend from the database URL
//! once at start-up. Both implement the area traits of
//! `modelops_core::repo`: reads (`ModelReads`, `AuditLog`, `GovernanceReads`,
//! `DeploymentReads`) and the prediction log (`PredictionLog`) on the store,
//! and changes (`ModelWrites`, `LabelWrites`, `GovernanceWrites`,
//! `DeploymentWrites`, `AuditAppend`) on the write transaction
//! `Store::begin` opens, which takes the write lock (SQLite:
//! `BEGIN IMMEDIATE`; PostgreSQL: the `audit_head` row `FOR UPDATE`) and
//! reads the chain head under it.
//!
//! The store holds no domain rule: what may change and what a change implies
//! (retired → conflict, the retire cascade, no-op updates, the parent
//! version, roles, separation of duties, the governance gates) is decided in
//! core, `modelops-governance` and `modelops-registry`; here are SQL and row
//! mapping only. The audit log is append-only, also inside the database
//! (triggers refuse UPDATE and DELETE of `audit_events`), and so is the
//! governance record (`approvals`, `evidence`, `reviews`, `policies`).
//!
//! Layout: one file per area under `sql/` (`models.rs`: models and versions,
//! with a model's developers and validation target as JSON in
//! `models.governance`; `labels.rs`: aliases and tags; `governance.rs`: users
//! and API tokens (only a token secret's hash is stored), approvals,
//! evidence, reviews and the review schedule, and the policies loaded, the
//! newest being the active one; `deployments.rs`: deployments, stored whole
//! as JSON beside the columns queries use, and the prediction records,
//! appended in multi-row batches and pruned by age outside the write lock;
//! `monitoring.rs`: reference profiles, monitors, window results, labels,
//! alerts and retraining requests; `retrain.rs`: retraining jobs and runs;
//! `audit.rs`, with `append_cache.rs` beside it (what an append need not
//! read back when this store wrote last); `leases.rs`: which replica holds
//! a named duty (outside the write lock); `tx.rs`: the transaction;
//! `rows.rs`: row mapping), written once in the SQL both dialects agree on
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`) and compiled into each
//! backend module by `shared_sql!`; `sqlite.rs` and `postgres.rs` hold what
//! differs (pools, locking, time columns, JSON aggregation). Why not generics
//! over `sqlx::Database`: the bounds sqlx needs on executors and argument
//! types would be repeated on every function and break on upgrades, for SQL
//! that is the same text on both. sqlx errors stay private and map into
//! `modelops_core::Error`.
//!
//! Replicas: [`listen_for_changes`] (module `changes`) hears, over
//! PostgreSQL's LISTEN/NOTIFY, every change another replica commits.
//!
//! Must not depend on: axum or anything HTTP, the artifact store, the
//! registry's use cases.

/// The SQL both backends share, one module per area (`sql/<area>.rs`),
/// expanded inside each backend module so that it compiles against that
/// backend's hooks (`Db`, `DbRow`, `TimeCol`, `time_to_db`, `time_from_db`,
/// `begin_write`, `reader`, and the `model_select!`, `version_select!`,
/// `lock_model_row!`, `for_update!`, `instr!` macros).
macro_rules! shared_sql {
    () => {
        mod rows {
            include!("sql/rows.rs");
        }
        mod tx {
            include!("sql/tx.rs");
        }
        mod models {
            include!("sql/models.rs");
        }
        mod labels {
            include!("sql/labels.rs");
        }
        mod audit {
            include!("sql/audit.rs");
        }
        mod governance {
            include!("sql/governance.rs");
        }
        mod tracking {
            include!("sql/tracking.rs");
        }
        mod deployments {
            include!("sql/deployments.rs");
        }
        mod monitoring {
            include!("sql/monitoring.rs");
        }
        mod retrain {
            include!("sql/retrain.rs");
        }
        mod leases {
            include!("sql/leases.rs");
        }
    };
}

mod append_cache;
pub mod changes;
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

/// The changes other replicas commit, as they commit (PostgreSQL's
/// LISTEN/NOTIFY, on a connection of its own, reconnecting when lost).
/// `None` for SQLite: one process owns the file, and replicas sharing one
/// find each other's changes by polling.
pub fn listen_for_changes(url: &str) -> Result<Option<tokio::sync::mpsc::Receiver<modelops_core::replica::Notice>>> {
    match Backend::from_url(url)? {
        Backend::Sqlite => Ok(None),
        Backend::Postgres => {
            let (notices, heard) = changes::channel();
            tokio::spawn(changes::listen_postgres(url.to_string(), notices));
            Ok(Some(heard))
        }
    }
}

/// Brings the schema of the database `url` names up to date (`modelops migrate`).
pub async fn migrate(url: &str) -> Result<()> {
    match Backend::from_url(url)? {
        Backend::Sqlite => SqliteStore::migrate(url).await,
        Backend::Postgres => PostgresStore::migrate(url).await,
    }
}
