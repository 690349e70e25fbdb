// Leases, for both backends: which replica holds a named duty
// (`modelops_core::replica`). One statement each, outside the write lock:
// `INSERT … ON CONFLICT DO UPDATE … WHERE` takes the row's lock, so of two
// replicas asking at once the second sees the first's lease and gets no row
// back. Times are the asking replica's clock. Included as the `leases`
// module of `sqlite.rs` and `postgres.rs`.

use super::rows::col;
use super::{time_from_db, time_to_db, ThisStore, TimeCol};
use crate::error::db_err;
use chrono::{DateTime, Utc};
use modelops_core::repo::LeaseStore;
use modelops_core::{Error, Result};

#[async_trait::async_trait]
impl LeaseStore for ThisStore {
    async fn try_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool> {
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(ttl).map_err(|_| Error::invalid("ttl", "too long"))?;
        let until = now + ttl;
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
               acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END \
             WHERE leases.holder = excluded.holder OR leases.expires_at < excluded.acquired_at \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(time_to_db(&now))
        .bind(time_to_db(&until))
        .fetch_optional(self.writer_pool())
        .await
        .map_err(db_err)?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2").bind(name).bind(holder).execute(self.writer_pool()).await.map_err(db_err)?;
        Ok(())
    }

    async fn lease_holder(&self, name: &str) -> Result<Option<(String, DateTime<Utc>)>> {
        let row = sqlx::query("SELECT holder, acquired_at FROM leases WHERE name = $1 AND expires_at >= $2")
            .bind(name)
            .bind(time_to_db(&self.clock.now()))
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some((col(&row, "holder")?, time_from_db(col::<TimeCol>(&row, "acquired_at")?)?))),
        }
    }
}
