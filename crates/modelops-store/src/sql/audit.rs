// The audit log, for both backends: reading it (`AuditLog` on the store) and
// appending to it inside a write transaction (`AuditAppend` on `Tx`).
// Included as the `audit` module of `sqlite.rs` and `postgres.rs`.

use super::rows::{chain_record_from_row, col, event_from_row, EVENT_COLUMNS};
use super::tx::Tx;
use super::{time_to_db, Db, ThisStore, HEAD_IN_APPEND};
use crate::cursor::{paginate, push_prefix_filter, AuditCursor};
use crate::error::db_err;
use chrono::{DateTime, Utc};
use modelops_audit::personal::{self, PersonKey};
use crate::append_cache::Frontier;
use modelops_audit::tree::{compact_range_indexes, entry_hash, first_stored_index, leaf_hash, leaf_index, stored_count, Hash, TreeRead};
use modelops_core::audit::{AuditEvent, AuditQuery, ChainHead, ChainRecord, PendingEvent, StoredCheckpoint};
use modelops_core::Error;
use std::collections::HashMap;
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

    async fn appended_since(&mut self, action: &str, sequence: i64) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT sequence FROM audit_events WHERE action = $1 AND sequence > $2 LIMIT 1")
            .bind(action)
            .bind(sequence)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(found.is_some())
    }

    async fn record(&mut self, pending: PendingEvent) -> Result<AuditEvent> {
        // Personal values leave the hashed bytes (modelops-audit::personal).
        let names = personal::people(&pending);
        let keys = self.keys_of(names).await?;
        let actor_ref = keys.get(&pending.actor).map_or_else(|| pending.actor.clone(), |k| k.id.clone());
        let (hashed, sealed) = personal::seal(pending, &keys).map_err(tree_err)?;
        let (event, entry) = hashed.seal_personal_entry(self.head.as_ref(), self.now, sealed)?;
        let personal_text = if event.personal.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&event.personal).map_err(|e| Error::Internal(format!("cannot store personal values: {e}")))?)
        };
        // The event, the tree's new hashes and the head in as few round
        // trips as the backend allows (`append_open!`): each statement inside
        // the write lock holds every other writer back for a round trip to
        // the database's thread or socket.
        let leaf = entry_hash(&entry);
        let (first, hashes, frontier) = self.tree_after(&event, leaf).await?;
        let mut qb = QueryBuilder::<Db>::new(append_open!());
        qb.push("INSERT INTO audit_events (sequence, time, actor, action, subject, before, after, prev_hash, hash, encoding, personal, actor_ref) VALUES (");
        let mut values = qb.separated(", ");
        values.push_bind(event.sequence);
        values.push_bind(time_to_db(&event.time));
        values.push_bind(event.actor.clone());
        values.push_bind(event.action.clone());
        values.push_bind(event.subject.clone());
        values.push_bind(event.before.as_ref().map(Value::to_string));
        values.push_bind(event.after.as_ref().map(Value::to_string));
        values.push_bind(event.prev_hash.clone());
        values.push_bind(event.hash.clone());
        values.push_bind(event.encoding.as_stored());
        values.push_bind(personal_text);
        values.push_bind(actor_ref);
        qb.push(")").push(append_then!());
        push_tree_insert(&mut qb, first, &hashes);
        if HEAD_IN_APPEND {
            qb.push("; UPDATE audit_head SET sequence = ").push_bind(event.sequence).push(", hash = ").push_bind(event.hash.clone()).push(" WHERE id = 1");
        }
        qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        if !HEAD_IN_APPEND {
            sqlx::query("UPDATE audit_head SET sequence = $1, hash = $2 WHERE id = 1")
                .bind(event.sequence)
                .bind(&event.hash)
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
        }
        self.frontier = Some(frontier);
        self.appended_leaves.push((event.sequence, leaf));
        self.head = Some(event.head());
        Ok(event)
    }
}

impl Tx {
    /// The keys of the people `names`: those this store already knows, the
    /// others read from the database or created (and remembered).
    async fn keys_of(&mut self, names: std::collections::BTreeSet<String>) -> Result<HashMap<String, PersonKey>> {
        let mut out = HashMap::with_capacity(names.len());
        let mut unknown = std::collections::BTreeSet::new();
        for name in names {
            match self.known_keys.get(&name).or_else(|| self.learned_keys.get(&name)) {
                Some(key) => {
                    out.insert(name, key.clone());
                }
                None => {
                    unknown.insert(name);
                }
            }
        }
        if !unknown.is_empty() {
            let found = person_keys(&mut self.tx, &unknown, self.now).await?;
            self.learned_keys.extend(found.iter().map(|(name, key)| (name.clone(), key.clone())));
            out.extend(found);
        }
        Ok(out)
    }

    /// The tree's hashes that appending `event` (leaf `leaf`) stores, the
    /// stored-hash index of the first, and the compact range after it.
    async fn tree_after(&mut self, event: &AuditEvent, leaf: Hash) -> Result<(u64, Vec<Hash>, Frontier)> {
        tree_after(&mut self.tx, self.frontier.take(), event, leaf).await
    }
}

/// The hashes appending `event`'s leaf stores, from the compact range before
/// it: `frontier` when it is that (from the store's cache or the
/// transaction's previous event), else read once. The tree must hold every
/// earlier event.
async fn tree_after(tx: &mut super::tx::SqlTx, frontier: Option<Frontier>, event: &AuditEvent, leaf: Hash) -> Result<(u64, Vec<Hash>, Frontier)> {
    let n = leaf_index(event.sequence).ok_or_else(|| Error::Internal(format!("audit event `{}` has no leaf", event.sequence)))?;
    let read = TreeRead::Append { n, leaf };
    let mut frontier = match frontier {
        Some(frontier) if frontier.size == n => frontier,
        _ => {
            let indexes = compact_range_indexes(n);
            let hashes = read_tree(&mut **tx, &indexes).await?;
            Frontier { size: n, hashes: indexes.into_iter().zip(hashes.into_iter().map(Hash)).collect() }
        }
    };
    let hashes = read.run(&frontier.hashes).map_err(tree_err)?;
    let first = first_stored_index(n);
    frontier.advance(first, &hashes);
    Ok((first, hashes, frontier))
}

fn push_tree_insert(qb: &mut QueryBuilder<'_, Db>, first: u64, hashes: &[Hash]) {
    qb.push("INSERT INTO audit_tree (idx, hash) ");
    qb.push_values(hashes.iter().enumerate(), |mut row, (k, hash)| {
        row.push_bind(index_to_db(first + k as u64)).push_bind(hash.0.to_vec());
    });
}

/// Stores `event`'s leaf and the subtrees it completes, in the open
/// transaction (building the tree of events written before it existed), and
/// returns the compact range after it.
async fn append_to_tree(tx: &mut super::tx::SqlTx, frontier: Option<Frontier>, event: &AuditEvent, leaf: Hash) -> Result<Frontier> {
    let (first, hashes, frontier) = tree_after(tx, frontier, event, leaf).await?;
    let mut qb = QueryBuilder::<Db>::new("");
    push_tree_insert(&mut qb, first, &hashes);
    qb.build().execute(&mut **tx).await.map_err(db_err)?;
    Ok(frontier)
}

/// The keys of the people `names`, creating those who have none yet.
async fn person_keys(tx: &mut super::tx::SqlTx, names: &std::collections::BTreeSet<String>, now: DateTime<Utc>) -> Result<HashMap<String, PersonKey>> {
    let mut out = HashMap::with_capacity(names.len());
    if names.is_empty() {
        return Ok(out);
    }
    let mut qb = QueryBuilder::<Db>::new("SELECT id, name, key FROM personal_keys WHERE name IN (");
    let mut list = qb.separated(", ");
    for name in names {
        list.push_bind(name.clone());
    }
    qb.push(")");
    for row in qb.build().fetch_all(&mut **tx).await.map_err(db_err)? {
        let name: String = col(&row, "name")?;
        let key: Vec<u8> = col(&row, "key")?;
        let key: [u8; 32] = key.try_into().map_err(|_| Error::Internal(format!("the personal key of `{name}` is not 32 bytes")))?;
        out.insert(name, PersonKey { id: col(&row, "id")?, key });
    }
    for name in names {
        if !out.contains_key(name) {
            let person = PersonKey { id: personal::new_person_id(), key: personal::new_person_key() };
            sqlx::query("INSERT INTO personal_keys (id, name, key, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&person.id)
                .bind(name)
                .bind(person.key.to_vec())
                .bind(time_to_db(&now))
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            out.insert(name.clone(), person);
        }
    }
    Ok(out)
}

#[async_trait::async_trait]
impl modelops_core::repo::PersonalData for Tx {
    async fn erase_person(&mut self, name: &str) -> Result<String> {
        let names = std::collections::BTreeSet::from([name.to_string()]);
        let person = person_keys(&mut self.tx, &names, self.now).await?.remove(name).ok_or_else(|| Error::Internal("no person key".into()))?;
        let pseudonym = personal::pseudonym(&person.id);
        self.erased = true;
        super::open_erasure_window(&mut self.tx).await?;
        // Every column that holds a person's name, and the free text they wrote.
        let renames: &[&str] = &[
            "UPDATE api_tokens SET created_by = $1 WHERE created_by = $2",
            "UPDATE users SET created_by = $1 WHERE created_by = $2",
            "UPDATE approvals SET approver = $1, comment = '' WHERE approver = $2",
            "UPDATE reviews SET reviewer = $1, comment = '' WHERE reviewer = $2",
            "UPDATE evidence SET created_by = $1 WHERE created_by = $2",
            "UPDATE policies SET loaded_by = $1 WHERE loaded_by = $2",
            "UPDATE models SET owner = $1 WHERE owner = $2",
            "UPDATE models SET created_by = $1 WHERE created_by = $2",
            "UPDATE model_versions SET created_by = $1 WHERE created_by = $2",
            "UPDATE runs SET user_id = $1 WHERE user_id = $2",
            "UPDATE reference_profiles SET created_by = $1 WHERE created_by = $2",
            "UPDATE monitors SET created_by = $1 WHERE created_by = $2",
            "UPDATE retrain_jobs SET run_as = $1 WHERE run_as = $2",
        ];
        for sql in renames {
            sqlx::query(sql).bind(&pseudonym).bind(name).execute(&mut *self.tx).await.map_err(db_err)?;
        }
        // Names inside JSON documents (a model's developers, a deployment's author).
        let quoted_name = serde_json::to_string(name).map_err(|e| Error::Internal(e.to_string()))?;
        let quoted_pseudonym = serde_json::to_string(&pseudonym).map_err(|e| Error::Internal(e.to_string()))?;
        for sql in [
            "UPDATE models SET governance = REPLACE(governance, $2, $1) WHERE governance LIKE '%' || $2 || '%'",
            "UPDATE deployments SET body = REPLACE(body, $2, $1) WHERE body LIKE '%' || $2 || '%'",
            "UPDATE retrain_runs SET body = REPLACE(body, $2, $1) WHERE body LIKE '%' || $2 || '%'",
        ] {
            sqlx::query(sql).bind(&quoted_pseudonym).bind(&quoted_name).execute(&mut *self.tx).await.map_err(db_err)?;
        }
        // The user row last: its tokens point at it by name.
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1").bind(name).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        if exists.is_some() {
            sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE user_name = $1 AND revoked_at IS NULL")
                .bind(name)
                .bind(time_to_db(&self.now))
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
            super::defer_foreign_keys(&mut self.tx).await?;
            sqlx::query("UPDATE users SET name = $1, disabled = $3 WHERE name = $2")
                .bind(&pseudonym)
                .bind(name)
                .bind(true)
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
            // PostgreSQL cascades this; SQLite checks it at the commit.
            sqlx::query("UPDATE api_tokens SET user_name = $1 WHERE user_name = $2")
                .bind(&pseudonym)
                .bind(name)
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
        }
        // The key and the name go together: nothing opens their values now.
        sqlx::query("DELETE FROM personal_keys WHERE id = $1").bind(&person.id).execute(&mut *self.tx).await.map_err(db_err)?;
        super::close_erasure_window(&mut self.tx).await?;
        Ok(pseudonym)
    }

    async fn person_id(&mut self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT id FROM personal_keys WHERE name = $1").bind(name).fetch_optional(&mut *self.tx).await.map_err(db_err)
    }
}

fn tree_err(e: modelops_audit::AuditError) -> Error {
    Error::Internal(format!("the audit Merkle tree: {e}"))
}

fn index_to_db(index: u64) -> i64 {
    // Stored-hash indexes stay below 2^63 for any log that fits a database.
    i64::try_from(index).unwrap_or(i64::MAX)
}

/// The hashes at `indexes`, in that order; a missing one is an error.
async fn read_tree<'e, E>(executor: E, indexes: &[u64]) -> Result<Vec<[u8; 32]>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb = QueryBuilder::<Db>::new("SELECT idx, hash FROM audit_tree WHERE idx IN (");
    let mut list = qb.separated(", ");
    for index in indexes {
        list.push_bind(index_to_db(*index));
    }
    qb.push(")");
    let rows = qb.build().fetch_all(executor).await.map_err(db_err)?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let index: i64 = col(row, "idx")?;
        let hash: Vec<u8> = col(row, "hash")?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| Error::Internal(format!("audit tree hash `{index}` is not 32 bytes: the database was edited; run `modelops audit verify`")))?;
        found.insert(index, hash);
    }
    indexes
        .iter()
        .map(|i| {
            found.get(&index_to_db(*i)).copied().ok_or_else(|| {
                Error::Internal(format!("audit tree hash `{i}` is missing: the database was edited; run `modelops audit verify`"))
            })
        })
        .collect()
}

/// Builds the tree for events appended before it existed (a database from an
/// earlier release), under the write lock, in batches. Run at start-up after
/// the migrations; a no-op once the tree is whole.
pub(super) async fn backfill_tree(store: &ThisStore) -> Result<u64> {
    let mut added = 0u64;
    loop {
        let mut tx = store.begin_write().await?;
        let head: i64 = sqlx::query_scalar(concat!("SELECT sequence FROM audit_head WHERE id = 1", for_update!()))
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_tree").fetch_one(&mut *tx).await.map_err(db_err)?;
        let stored = u64::try_from(stored).unwrap_or(0);
        // The tree holds the first `size` events exactly when it holds
        // stored_count(size) hashes.
        let head = u64::try_from(head).unwrap_or(0);
        // The largest size in 0..=head whose tree fits in what is stored.
        let (mut size, mut above) = (0u64, head + 1);
        while above - size > 1 {
            let mid = size + (above - size) / 2;
            if stored_count(mid) <= stored {
                size = mid;
            } else {
                above = mid;
            }
        }
        if size >= head {
            return Ok(added);
        }
        if stored_count(size) != stored {
            return Err(Error::Internal(format!(
                "the audit Merkle tree holds {stored} hashes, which is no tree of whole events: the database was edited; run `modelops audit verify`"
            )));
        }
        let sql = format!("{EVENT_COLUMNS} WHERE sequence > $1 ORDER BY sequence LIMIT 1000");
        let rows = sqlx::query(&sql)
            .bind(index_to_db(size))
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut frontier = None;
        for row in &rows {
            let event = match chain_record_from_row(row)? {
                ChainRecord::Event(event) => event,
                ChainRecord::Unreadable { sequence, reason } => {
                    return Err(Error::Internal(format!(
                        "cannot build the audit Merkle tree: event `{sequence}` cannot be read ({reason}); run `modelops audit verify`"
                    )))
                }
            };
            let leaf = leaf_hash(&event).map_err(tree_err)?;
            frontier = Some(append_to_tree(&mut tx, frontier, &event, leaf).await?);
            added += 1;
        }
        tx.commit().await.map_err(db_err)?;
        if rows.is_empty() {
            return Ok(added);
        }
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
            // Sealed events name their actor by pseudonymous id.
            qb.push(" AND (actor = ").push_bind(actor.clone());
            qb.push(" OR actor_ref = (SELECT id FROM personal_keys WHERE name = ").push_bind(actor.clone()).push("))");
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
        if let Some(after) = query.after_sequence {
            qb.push(" AND sequence > ").push_bind(after);
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

    fn appended_leaf(&self, sequence: i64) -> Option<[u8; 32]> {
        self.append_cache.own_leaf(sequence).map(|leaf| leaf.0)
    }

    async fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>> {
        let mut out = Vec::with_capacity(indexes.len());
        // Bounded statements: a proof needs ~2 log n hashes, a bulk read more.
        for chunk in indexes.chunks(500) {
            out.extend(read_tree(self.reader(), chunk).await?);
        }
        Ok(out)
    }

    async fn checkpoints(&self, after: Option<u64>, limit: u32) -> Result<Vec<StoredCheckpoint>> {
        let rows = sqlx::query("SELECT size, root, time, note FROM audit_checkpoints WHERE size > $1 ORDER BY size LIMIT $2")
            .bind(after.map_or(0, index_to_db))
            .bind(i64::from(limit))
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    async fn checkpoint(&self, size: Option<u64>) -> Result<Option<StoredCheckpoint>> {
        let query = match size {
            Some(size) => sqlx::query("SELECT size, root, time, note FROM audit_checkpoints WHERE size = $1").bind(index_to_db(size)),
            None => sqlx::query("SELECT size, root, time, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1"),
        };
        let row = query.fetch_optional(self.reader()).await.map_err(db_err)?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    async fn person_keys(&self, ids: &[String]) -> Result<HashMap<String, [u8; 32]>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut qb = QueryBuilder::<Db>::new("SELECT id, key FROM personal_keys WHERE id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id.clone());
            }
            qb.push(")");
            for row in qb.build().fetch_all(self.reader()).await.map_err(db_err)? {
                let id: String = col(&row, "id")?;
                let key: Vec<u8> = col(&row, "key")?;
                let key: [u8; 32] = key.try_into().map_err(|_| Error::Internal(format!("the personal key `{id}` is not 32 bytes")))?;
                out.insert(id, key);
            }
        }
        Ok(out)
    }

    async fn count_plain_actor_events(&self, name: &str) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE actor = $1 AND encoding < 3")
            .bind(name)
            .fetch_one(self.reader())
            .await
            .map_err(db_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn scrub(&self) -> Result<()> {
        super::scrub(self.writer_pool()).await
    }

    async fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool> {
        let done = sqlx::query("INSERT INTO audit_checkpoints (size, root, time, note) VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING")
            .bind(index_to_db(checkpoint.size))
            .bind(&checkpoint.root)
            .bind(time_to_db(&checkpoint.time))
            .bind(&checkpoint.note)
            .execute(self.writer_pool())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
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

fn checkpoint_from_row(row: &super::DbRow) -> Result<StoredCheckpoint> {
    let size: i64 = col(row, "size")?;
    Ok(StoredCheckpoint {
        size: u64::try_from(size).map_err(|_| Error::Internal(format!("audit checkpoint size `{size}` is negative")))?,
        root: col(row, "root")?,
        time: super::time_from_db(col::<super::TimeCol>(row, "time")?)?,
        note: col(row, "note")?,
    })
}
