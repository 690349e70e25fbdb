//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writes go through a pool of exactly one connection and start with
//! `BEGIN IMMEDIATE`, so a writer takes the file's write lock before reading
//! anything: concurrent writers (also from other processes, who wait up to
//! the busy timeout) queue instead of failing to upgrade a read lock. Reads go
//! to a separate pool of read-only connections and run in parallel.

use crate::append_cache::AppendCache;
use crate::error::{corrupt, db_err};
use chrono::{DateTime, Utc};
use modelops_core::{Error, Result};
use modelops_core::clock::{format_time, Clock};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

type Db = sqlx::Sqlite;
type DbRow = SqliteRow;
type ThisStore = SqliteStore;
/// Times are stored as `format_time` text: exact to the microsecond and
/// sorting as text in time order.
type TimeCol = String;

fn time_to_db(t: &DateTime<Utc>) -> String {
    format_time(t)
}

fn time_from_db(v: String) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&v).map(|t| t.with_timezone(&Utc)).map_err(|e| corrupt("time", format!("`{v}`: {e}")))
}

macro_rules! model_select {
    () => {
        "SELECT m.id, m.name, m.kind, m.description, m.owner, m.team, m.business_purpose, m.intended_use, \
         m.restrictions, m.risk_tier, m.state, m.latest_version, m.governance, m.created_at, m.created_by, m.updated_at, \
         (SELECT json_group_object(t.key, t.value) FROM model_tags t WHERE t.model_id = m.id) AS tags, \
         (SELECT json_group_array(d.name ORDER BY md.position) FROM model_dependencies md \
            JOIN models d ON d.id = md.depends_on WHERE md.model_id = m.id) AS dependencies, \
         (SELECT json_group_object(a.alias, av.number) FROM aliases a \
            JOIN model_versions av ON av.id = a.version_id WHERE a.model_id = m.id) AS aliases \
         FROM models m"
    };
}

macro_rules! version_select {
    () => {
        "SELECT v.id, m.name AS model_name, v.number, v.state, v.artifact_sha256, v.artifact_size, \
         v.artifact_filename, v.lineage, v.signature, v.card, v.description, v.created_at, v.created_by, v.updated_at, \
         (SELECT json_group_object(t.key, t.value) FROM version_tags t WHERE t.version_id = v.id) AS tags, \
         (SELECT json_group_array(a.alias) FROM aliases a WHERE a.version_id = v.id) AS aliases \
         FROM model_versions v JOIN models m ON m.id = v.model_id"
    };
}

/// The write transaction is exclusive already.
macro_rules! for_update {
    () => {
        ""
    };
}

/// Locks the model row read by `model_select!` until the transaction ends.
macro_rules! lock_model_row {
    () => {
        ""
    };
}

/// Few round trips for an audit append (`sql/audit.rs`): the event's
/// insert, the tree's insert and the head's update as statements of one
/// string, which sqlx runs in turn. The string must use only the `?`
/// parameters `QueryBuilder` writes: sqlx binds them in order across the
/// statements (a literal `$n` would bind by absolute number instead).
macro_rules! append_open {
    () => {
        ""
    };
}
macro_rules! append_then {
    () => {
        "; "
    };
}
const HEAD_IN_APPEND: bool = true;

macro_rules! instr {
    () => {
        "instr"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Read connections; each is a worker thread in sqlx, so a few per core.
const READERS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    clock: Arc<dyn Clock>,
    append_cache: AppendCache,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite:path`,
    /// `sqlite://path?mode=rwc`, `sqlite::memory:`) and runs pending migrations.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::connect_with(parse_url(url)?, clock).await
    }

    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::connect_with(SqliteConnectOptions::new().filename(path).create_if_missing(true), clock).await
    }

    pub async fn connect_with(options: SqliteConnectOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            // Checkpoint (the only fsync under synchronous=NORMAL) every ~40 MB
            // of WAL rather than every 4 MB: hot index pages written by many
            // transactions are copied back once. Roughly 1.5x write throughput.
            .pragma("wal_autocheckpoint", "10000")
            .pragma("journal_size_limit", "67108864")
            // Deleted content is overwritten, so an erased person's name and
            // key do not survive in free pages (modelops-audit::personal).
            .pragma("secure_delete", "ON");
        let filename = options.get_filename().to_string_lossy().into_owned();
        let in_memory = filename.is_empty() || filename == ":memory:" || filename.starts_with("file::memory:");
        if !in_memory {
            if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Unavailable(format!("cannot create the database directory `{}`: {e}", dir.display())))?;
            }
        }
        let single = SqlitePoolOptions::new().max_connections(1).min_connections(1);
        // An in-memory database lives as long as its one connection.
        let single = if in_memory { single.idle_timeout(None).max_lifetime(None) } else { single };
        let writer = single.connect_with(options.clone()).await.map_err(db_err)?;
        MIGRATOR.run(&writer).await.map_err(crate::error::migrate_err)?;
        let reader = if in_memory {
            writer.clone()
        } else {
            // Rows cross from the connection's thread to the caller through
            // a bounded channel; sqlx's 50 makes a long read (the monitors
            // following the prediction log read 5,000 at a time) wake the
            // caller every few rows. 1,024 rows is at most a few MB.
            let readers = options.read_only(true).row_buffer_size(1024);
            SqlitePoolOptions::new().max_connections(READERS).connect_with(readers).await.map_err(db_err)?
        };
        let store = Self { writer, reader, clock, append_cache: AppendCache::default() };
        audit::backfill_tree(&store).await?;
        Ok(store)
    }

    /// Opens an existing database read-only, without migrating it, for an
    /// auditor: a mistyped path must not create an empty database that then
    /// "verifies". Every write through this store fails.
    pub async fn open_read_only(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("database_url", format!("`{url}` is not a SQLite URL: {e}")))?;
        let path = options.get_filename().to_path_buf();
        if !path.is_file() {
            return Err(Error::invalid("database_url", format!("there is no database file at `{}`", path.display())));
        }
        let options = options.create_if_missing(false).read_only(true).busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(db_err)?;
        Ok(Self { writer: pool.clone(), reader: pool, clock, append_cache: AppendCache::default() })
    }

    /// Brings the schema at `url` up to date.
    pub async fn migrate(url: &str) -> Result<()> {
        let store = Self::connect(url, Arc::new(modelops_core::clock::SystemClock)).await?;
        store.close().await;
        Ok(())
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn begin_write(&self) -> Result<tx::SqlTx> {
        // Begun in a task of its own. A request dropped while BEGIN runs (its
        // client went away) would otherwise cancel sqlx between BEGIN and the
        // transaction's guard, returning the connection to the pool inside a
        // transaction nobody owns, and every later write would fail. The task
        // always finishes; a transaction nobody takes rolls back when dropped.
        let pool = self.writer.clone();
        tokio::spawn(async move { pool.begin_with("BEGIN IMMEDIATE").await })
            .await
            .map_err(|e| modelops_core::Error::Internal(format!("beginning a transaction failed: {e}")))?
            .map_err(db_err)
    }

    fn writer_pool(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

fn parse_url(url: &str) -> Result<SqliteConnectOptions> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| Error::invalid("database_url", format!("`{url}` is not a SQLite URL: {e}")))?;
    // `sqlite:path` alone should open or create the file, as `mode=rwc` does.
    Ok(if url.contains("mode=") { options } else { options.create_if_missing(true) })
}

/// After an erasure: deleted content was zeroed (`secure_delete`); copy the
/// write-ahead log back and truncate it, so no old page survives in a file.
async fn scrub(pool: &SqlitePool) -> Result<()> {
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.map_err(db_err)?;
    Ok(())
}

/// Inside an erasure's transaction, the append-only governance records
/// accept the erasure's rewrite (migration 0008's triggers).
async fn open_erasure_window(tx: &mut tx::SqlTx) -> Result<()> {
    sqlx::query("INSERT INTO erasure_window (id) VALUES (1)").execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}

async fn close_erasure_window(tx: &mut tx::SqlTx) -> Result<()> {
    sqlx::query("DELETE FROM erasure_window").execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}

/// A user's name changes with its tokens' in one transaction: checked at the commit.
async fn defer_foreign_keys(tx: &mut tx::SqlTx) -> Result<()> {
    sqlx::query("PRAGMA defer_foreign_keys = ON").execute(&mut **tx).await.map_err(db_err)?;
    Ok(())
}

// The SQL both backends share, compiled against the hooks above.
shared_sql!();
