//! sqlx errors, mapped into the crate-wide error. Backend detail goes into
//! `Internal`/`Unavailable` messages for the log, never to a client.

use modelops_core::Error;

/// Maps an error no call site expected.
pub(crate) fn db_err(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::PoolTimedOut => Error::Unavailable("timed out waiting for a database connection".into()),
        sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => Error::Unavailable(format!("database connection lost: {err}")),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Error::Unavailable(format!("database unreachable: {err}")),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            let is_sqlite = db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some();
            match code.as_ref() {
                // SQLite: busy / locked (also in extended forms, low byte 5 or 6).
                c if is_sqlite && c.parse::<i32>().is_ok_and(|n| n & 0xff == 5 || n & 0xff == 6) => {
                    Error::Unavailable(format!("database busy: {db}"))
                }
                // PostgreSQL: serialization failure, deadlock, too many connections, shutting down.
                "40001" | "40P01" | "53300" | "57P01" | "57P03" => Error::Unavailable(format!("database busy: {db}")),
                // The constraint's text names tables and columns: not for clients.
                _ if db.is_unique_violation() => Error::Conflict("a conflicting change was made at the same time; retry".into()),
                _ => Error::Internal(format!("database error: {db}")),
            }
        }
        _ => Error::Internal(format!("database error: {err}")),
    }
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Internal(format!("stored {what} cannot be read: {detail}"))
}

pub(crate) fn migrate_err(err: sqlx::migrate::MigrateError) -> Error {
    match err {
        sqlx::migrate::MigrateError::Execute(e) => db_err(e),
        other => Error::Internal(format!("migration failed: {other}")),
    }
}
