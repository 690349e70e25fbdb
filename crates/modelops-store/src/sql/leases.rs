// Leases and canary tallies, for both backends: what replicas share that is
// not a change of the registry. Leases: which replica holds a named duty
// (`modelops_core::replica`). One statement each, outside the write lock:
// `INSERT … ON CONFLICT DO UPDATE … WHERE` takes the row's lock, so of two
// replicas asking at once the second sees the first's lease and gets no row
// back. Times are the asking replica's clock. Included as the `leases`
// module of `sqlite.rs` and `postgres.rs`.

use super::rows::col;
use super::{time_from_db, time_to_db, ThisStore, TimeCol};
use crate::error::db_err;
use chrono::{DateTime, Utc};
use modelops_core::repo::{CanaryTallies, LeaseStore};
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

#[async_trait::async_trait]
impl CanaryTallies for ThisStore {
    async fn put_canary_tallies(&self, deployment: &str, revision: u64, replica: &str, tallies: &[(u32, String)]) -> Result<()> {
        let revision = i64::try_from(revision).map_err(|_| Error::invalid("revision", "too large"))?;
        let now = self.clock.now();
        for (version, tally) in tallies {
            sqlx::query(
                "INSERT INTO canary_tallies (deployment, revision, replica, version, tally, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (deployment, revision, replica, version) DO UPDATE SET tally = excluded.tally, updated_at = excluded.updated_at",
            )
            .bind(deployment)
            .bind(revision)
            .bind(replica)
            .bind(i64::from(*version))
            .bind(tally)
            .bind(time_to_db(&now))
            .execute(self.writer_pool())
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    async fn canary_tallies(&self, deployment: &str, revision: u64) -> Result<Vec<(String, u32, String)>> {
        let revision = i64::try_from(revision).map_err(|_| Error::invalid("revision", "too large"))?;
        let rows = sqlx::query("SELECT replica, version, tally FROM canary_tallies WHERE deployment = $1 AND revision = $2 ORDER BY replica, version")
            .bind(deployment)
            .bind(revision)
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let version: i64 = col(row, "version")?;
                Ok((col(row, "replica")?, u32::try_from(version).unwrap_or(u32::MAX), col(row, "tally")?))
            })
            .collect()
    }

    async fn prune_canary_tallies(&self, keep: &[(String, u64)]) -> Result<u64> {
        let mut qb = sqlx::QueryBuilder::<super::Db>::new("DELETE FROM canary_tallies");
        if !keep.is_empty() {
            qb.push(" WHERE NOT (");
            for (i, (deployment, revision)) in keep.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                let revision = i64::try_from(*revision).map_err(|_| Error::invalid("revision", "too large"))?;
                qb.push("(deployment = ").push_bind(deployment.clone()).push(" AND revision = ").push_bind(revision).push(")");
            }
            qb.push(")");
        }
        let done = qb.build().execute(self.writer_pool()).await.map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
