// The write transaction both backends share: the `Store` implementation
// (`begin`, `close`) and the transaction type the area modules implement
// their `*Writes` traits on. Included as the `tx` module of `sqlite.rs` and
// `postgres.rs`.

use super::rows::col;
use super::{Db, ThisStore};
use crate::append_cache::{AppendCache, Frontier};
use crate::error::db_err;
use modelops_audit::personal::PersonKey;
use std::sync::Arc;
use chrono::{DateTime, Utc};
use modelops_core::audit::ChainHead;
use modelops_core::auth::Permit;
use modelops_core::name::ModelName;
use modelops_core::repo::{Store, WriteTx};
use modelops_core::{Error, Result};
use std::collections::HashMap;

pub(super) type SqlTx = sqlx::Transaction<'static, Db>;

/// An open write transaction: the chain head read under the write lock, the
/// time of the change, who makes it, the row ids of the models it has
/// locked or inserted, and what the audit append knows without asking the
/// database (`crate::append_cache`).
pub(super) struct Tx {
    pub(super) tx: SqlTx,
    pub(super) head: Option<ChainHead>,
    pub(super) now: DateTime<Utc>,
    pub(super) actor: String,
    pub(super) models: HashMap<ModelName, i64>,
    pub(super) cache: AppendCache,
    /// People's keys known when the transaction began.
    pub(super) known_keys: Arc<HashMap<String, PersonKey>>,
    /// People's keys read or created in this transaction.
    pub(super) learned_keys: HashMap<String, PersonKey>,
    /// The tree's compact range at the current head, once known.
    pub(super) frontier: Option<Frontier>,
    /// Whether this transaction erased a person (and so a key).
    pub(super) erased: bool,
    /// The sequence and Merkle leaf of each event appended.
    pub(super) appended_leaves: Vec<(i64, modelops_audit::tree::Hash)>,
}

impl Tx {
    /// The row id of a model locked or inserted in this transaction. Changing
    /// a model that was not locked first is a bug in the caller.
    pub(super) fn model_id(&self, name: &ModelName) -> Result<i64> {
        self.models
            .get(name)
            .copied()
            .ok_or_else(|| Error::Internal(format!("model `{name}` was changed without being locked in the transaction first")))
    }

    /// The row id of a version of a locked model.
    pub(super) async fn version_id(&mut self, model: &ModelName, number: u32) -> Result<i64> {
        let model_id = self.model_id(model)?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM model_versions WHERE model_id = $1 AND number = $2")
            .bind(model_id)
            .bind(i64::from(number))
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        id.ok_or_else(|| Error::not_found("version", format!("{model}/{number}")))
    }
}

#[async_trait::async_trait]
impl Store for ThisStore {
    async fn begin(&self, permit: &Permit) -> Result<Box<dyn WriteTx>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!("SELECT sequence, hash FROM audit_head WHERE id = 1", for_update!()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::Internal("the audit head row is missing".into()))?;
        let sequence: i64 = col(&row, "sequence")?;
        let head = (sequence > 0).then(|| Ok::<_, Error>(ChainHead { sequence, hash: col(&row, "hash")? })).transpose()?;
        let cached = self.append_cache.snapshot(&head);
        // The time is read under the lock, so event times follow sequence order.
        Ok(Box::new(Tx {
            tx,
            head,
            now: self.clock.now(),
            actor: permit.actor().to_string(),
            models: HashMap::new(),
            cache: self.append_cache.clone(),
            known_keys: cached.keys,
            learned_keys: HashMap::new(),
            frontier: cached.frontier,
            erased: false,
            appended_leaves: Vec::new(),
        }))
    }

    async fn close(&self) {
        ThisStore::close(self).await;
    }
}

#[async_trait::async_trait]
impl WriteTx for Tx {
    async fn commit(self: Box<Self>) -> Result<()> {
        let Tx { tx, head, cache, known_keys, learned_keys, frontier, erased, appended_leaves, .. } = *self;
        // The cache's map is shared with this snapshot; let go of it so that
        // adding the learned keys does not copy the map.
        drop(known_keys);
        tx.commit().await.map_err(db_err)?;
        cache.committed(&head, learned_keys, frontier, erased, appended_leaves);
        Ok(())
    }
}
