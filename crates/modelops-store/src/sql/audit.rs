// The audit log, for both backends: reading it (`AuditLog` on the store) and
// appending to it inside a write transaction (`AuditAppend` on `Tx`).
// Included as the `audit` module of `sqlite.rs` and `postgres.rs`.

use super::rows::{chain_record_from_row, col, event_from_row, EVENT_COLUMNS};
use super::tx::Tx;
use super::{time_to_db, Db, ThisStore};
use crate::cursor::{paginate, push_prefix_filter, AuditCursor};
use crate::error::db_err;
use chrono::{DateTime, Utc};
use modelops_core::audit::{AuditEvent, AuditQuery, ChainHead, ChainRecord, PendingEvent};
use modelops_core::page::Page;
use modelops_core::repo::{AuditAppend, AuditLog};
use modelops_core::Result;
use serde_json::Value;
use sqlx::QueryBuilder;

#[async_trait::async_trait]
impl AuditAppend for Tx {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn actor(&self) -> &str {
        &self.actor
    }

    async fn record(&mut self, pending: PendingEvent) -> Result<AuditEvent> {
        let event = pending.seal(self.head.as_ref(), self.now)?;
        sqlx::query(
            "INSERT INTO audit_events (sequence, time, actor, action, subject, before, after, prev_hash, hash, encoding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(event.sequence)
        .bind(time_to_db(&event.time))
        .bind(&event.actor)
        .bind(&event.action)
        .bind(&event.subject)
        .bind(event.before.as_ref().map(Value::to_string))
        .bind(event.after.as_ref().map(Value::to_string))
        .bind(&event.prev_hash)
        .bind(&event.hash)
        .bind(event.encoding.as_stored())
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        sqlx::query("UPDATE audit_head SET sequence = $1, hash = $2 WHERE id = 1")
            .bind(event.sequence)
            .bind(&event.hash)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        self.head = Some(event.head());
        Ok(event)
    }
}

#[async_trait::async_trait]
impl AuditLog for ThisStore {
    /// `since` is inclusive, `until` exclusive.
    async fn list_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        let mut qb = QueryBuilder::<Db>::new(EVENT_COLUMNS);
        qb.push(" WHERE 1 = 1");
        if let Some(subject) = &query.subject {
            match subject.strip_suffix('*') {
                Some(prefix) => push_prefix_filter(&mut qb, "subject", prefix),
                None => {
                    qb.push(" AND subject = ").push_bind(subject.clone());
                }
            }
        }
        if let Some(actor) = &query.actor {
            qb.push(" AND actor = ").push_bind(actor.clone());
        }
        if let Some(action) = &query.action {
            qb.push(" AND action = ").push_bind(action.clone());
        }
        if let Some(since) = &query.since {
            qb.push(" AND time >= ").push_bind(time_to_db(since));
        }
        if let Some(until) = &query.until {
            qb.push(" AND time < ").push_bind(time_to_db(until));
        }
        if let Some(token) = &query.page.token {
            let cursor = AuditCursor::decode(token)?;
            qb.push(" AND sequence > ").push_bind(cursor.s);
        }
        qb.push(" ORDER BY sequence LIMIT ").push_bind(i64::from(query.page.size) + 1);
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        let events = rows.iter().map(event_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(events, query.page.size, |e| AuditCursor::encode(e.sequence)))
    }

    async fn read_chain(&self, after: Option<i64>, limit: u32) -> Result<Vec<ChainRecord>> {
        let mut qb = QueryBuilder::<Db>::new(EVENT_COLUMNS);
        if let Some(after) = after {
            qb.push(" WHERE sequence > ").push_bind(after);
        }
        qb.push(" ORDER BY sequence LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(chain_record_from_row).collect()
    }

    async fn head(&self) -> Result<Option<ChainHead>> {
        let row = sqlx::query("SELECT sequence, hash FROM audit_head WHERE id = 1").fetch_optional(self.reader()).await.map_err(db_err)?;
        match row {
            Some(row) => {
                let sequence: i64 = col(&row, "sequence")?;
                Ok((sequence > 0).then(|| col(&row, "hash")).transpose()?.map(|hash| ChainHead { sequence, hash }))
            }
            None => Ok(None),
        }
    }
}
