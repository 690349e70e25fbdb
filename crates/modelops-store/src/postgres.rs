//! The scale-out backend: PostgreSQL, shared by many replicas.
//!
//! Every mutation locks the one `audit_head` row first (`SELECT … FOR UPDATE`):
//! that serialises writers across replicas, gives events contiguous sequence
//! numbers in commit order and makes event times follow sequence order. The
//! model row is then locked `FOR UPDATE` too, which is what a version number
//! is allocated under.

use crate::append_cache::AppendCache;
use crate::error::db_err;
use chrono::{DateTime, Utc};
use modelops_core::{Error, Result};
use modelops_core::clock::Clock;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

type Db = sqlx::Postgres;
type DbRow = PgRow;
type ThisStore = PostgresStore;
/// timestamptz holds microseconds, the precision of `Clock`.
type TimeCol = DateTime<Utc>;

fn time_to_db(t: &DateTime<Utc>) -> DateTime<Utc> {
    *t
}

fn time_from_db(v: DateTime<Utc>) -> Result<DateTime<Utc>> {
    Ok(v)
}

macro_rules! model_select {
    () => {
        "SELECT m.id, m.name, m.kind, m.description, m.owner, m.team, m.business_purpose, m.intended_use, \
         m.restrictions, m.risk_tier, m.state, m.latest_version, m.governance, m.created_at, m.created_by, m.updated_at, \
         (SELECT COALESCE(json_object_agg(t.key, t.value), '{}')::text FROM model_tags t WHERE t.model_id = m.id) AS tags, \
         (SELECT COALESCE(json_agg(d.name ORDER BY md.position), '[]')::text FROM model_dependencies md \
            JOIN models d ON d.id = md.depends_on WHERE md.model_id = m.id) AS dependencies, \
         (SELECT COALESCE(json_object_agg(a.alias, av.number), '{}')::text FROM aliases a \
            JOIN model_versions av ON av.id = a.version_id WHERE a.model_id = m.id) AS aliases \
         FROM models m"
    };
}

macro_rules! version_select {
    () => {
        "SELECT v.id, m.name AS model_name, v.number, v.state, v.artifact_sha256, v.artifact_size, \
         v.artifact_filename, v.lineage, v.signature, v.card, v.description, v.created_at, v.created_by, v.updated_at, \
         (SELECT COALESCE(json_object_agg(t.key, t.value), '{}')::text FROM version_tags t WHERE t.version_id = v.id) AS tags, \
         (SELECT COALESCE(json_agg(a.alias), '[]')::text FROM aliases a WHERE a.version_id = v.id) AS aliases \
         FROM model_versions v JOIN models m ON m.id = v.model_id"
    };
}

macro_rules! for_update {
    () => {
        " FOR UPDATE"
    };
}

/// Locks the model row read by `model_select!` until the transaction ends.
macro_rules! lock_model_row {
    () => {
        " FOR UPDATE OF m"
    };
}

/// Few round trips for an audit append (`sql/audit.rs`): the event's insert
/// as a data-modifying `WITH` query of the tree's insert (the extended
/// protocol takes one statement per query). The head moves in a statement
/// of its own: its trigger checks the event is stored, which a query's own
/// `WITH` insert is not yet to it.
macro_rules! append_open {
    () => {
        "WITH event AS ("
    };
}
macro_rules! append_then {
    () => {
        ") "
    };
}
const HEAD_IN_APPEND: bool = false;

macro_rules! instr {
    () => {
        "strpos"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const MAX_CONNECTIONS: u32 = 16;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    append_cache: AppendCache,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and runs pending migrations.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database_url", format!("`{}` is not a PostgreSQL URL: {e}", redact(url))))?;
        Self::connect_with(options, clock).await
    }

    /// Connects with explicit options (e.g. a `search_path`) and runs pending migrations.
    pub async fn connect_with(options: PgConnectOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db_err)?;
        MIGRATOR.run(&pool).await.map_err(crate::error::migrate_err)?;
        let store = Self { pool, clock, append_cache: AppendCache::default() };
        audit::backfill_tree(&store).await?;
        Ok(store)
    }

    /// Connects without migrating, in read-only transactions, for an auditor.
    pub async fn connect_read_only(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database_url", format!("`{}` is not a PostgreSQL URL: {e}", redact(url))))?
            .options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(db_err)?;
        Ok(Self { pool, clock, append_cache: AppendCache::default() })
    }

    /// Brings the schema at `url` up to date.
    pub async fn migrate(url: &str) -> Result<()> {
        let store = Self::connect(url, Arc::new(modelops_core::clock::SystemClock)).await?;
        store.close().await;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin_write(&self) -> Result<tx::SqlTx> {
        // Begun in a task of its own. A request dropped while BEGIN runs (its
        // client went away) would otherwise cancel sqlx between BEGIN and the
        // transaction's guard, returning the connection to the pool inside a
        // transaction nobody owns, and every later write would fail. The task
        // always finishes; a transaction nobody takes rolls back when dropped.
        let pool = self.pool.clone();
        tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(|e| modelops_core::Error::Internal(format!("beginning a transaction failed: {e}")))?
            .map_err(db_err)
    }

    fn writer_pool(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

/// A URL for an error message, without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// After an erasure: reclaim the dead row versions that still hold the
/// erased name (old WAL segments and backups are the operator's to expire).
async fn scrub(pool: &PgPool) -> Result<()> {
    for table in ["personal_keys", "users", "api_tokens", "approvals", "reviews", "evidence", "policies", "models", "model_versions", "runs", "deployments"] {
        sqlx::query(&format!("VACUUM FULL {table}")).execute(pool).await.map_err(db_err)?;
    }
    Ok(())
}

/// Inside an erasure's transaction, the append-only governance records
/// accept the erasure's rewrite (migration 0008's trigger function).
async fn open_erasure_window(tx: &mut tx::SqlTx) -> Result<()> {
    sqlx::query("SET LOCAL modelops.erasing = 'on'").execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}

async fn close_erasure_window(tx: &mut tx::SqlTx) -> Result<()> {
    sqlx::query("SET LOCAL modelops.erasing = 'off'").execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}

/// The tokens' foreign key cascades a user's new name (migration 0008).
async fn defer_foreign_keys(_tx: &mut tx::SqlTx) -> Result<()> {
    Ok(())
}

// The SQL both backends share, compiled against the hooks above.
shared_sql!();
