// The repository implementation both backends share, included into
// `sqlite.rs` and `postgres.rs` with `include!`. Each of those modules
// defines the hooks used here before including this file:
//
// - `Db`, `DbRow`, `ThisStore`, `TimeCol`: the sqlx database, its row type,
//   the store type, and how a time is bound and read (text or timestamptz);
// - `time_to_db`, `time_from_db`;
// - `ThisStore::begin_write` (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `BEGIN`)
//   and `ThisStore::reader` (the pool reads go to);
// - the macros `model_select!`, `version_select!` (the aggregating SELECTs),
//   `for_update!` (the row-lock suffix) and `instr!` (the substring function).
//
// Why `include!` and not generics over `sqlx::Database`: the bounds sqlx
// needs for generic executors and argument types are long and brittle, while
// the SQL below is identical for both backends (`$n` bind parameters work in
// both; QueryBuilder picks the parameter style itself).

use crate::cursor::{prefix_upper_bound, AuditCursor, ModelCursor, VersionCursor};
use crate::error::{corrupt, db_err, is_unique_violation};
use chrono::{DateTime, Utc};
use modelops_core::audit::{alias_subject, model_subject, version_subject, AuditEvent, AuditQuery, ChainHead, PendingEvent};
use modelops_core::auth::{Action, Permit};
use modelops_core::model::{Model, ModelKind, ModelPatch, ModelState, NewModel, RiskTier};
use modelops_core::name::{check_tag_value, AliasName, ModelName, TagKey};
use modelops_core::page::{decode_token, encode_token, Direction, ModelOrder, ModelQuery, Page, VersionQuery};
use modelops_core::repo::{AuditLog, ModelRepo, TagTarget};
use modelops_core::version::{ArtifactRef, ModelVersion, NewVersion, Sha256Hex, VersionPatch, VersionState};
use modelops_core::{Error, Result};
use serde_json::Value;
use sqlx::{QueryBuilder, Row};
use std::collections::BTreeMap;

type Tx = sqlx::Transaction<'static, Db>;

/// An open write transaction: the chain head read under the write lock, the
/// time of the change and who makes it.
struct Write {
    tx: Tx,
    head: Option<ChainHead>,
    now: DateTime<Utc>,
    actor: String,
}

impl Write {
    /// Appends one audit event inside the transaction and advances the head.
    async fn record(&mut self, action: Action, subject: String, before: Option<Value>, after: Option<Value>) -> Result<()> {
        let pending = PendingEvent { actor: self.actor.clone(), action: action.as_str().to_string(), subject, before, after };
        let event = pending.seal(self.head.as_ref(), self.now);
        sqlx::query(
            "INSERT INTO audit_events (sequence, time, actor, action, subject, before, after, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        self.tx.commit().await.map_err(db_err)
    }

    /// Locks the model row for the rest of the transaction.
    async fn lock_model(&mut self, name: &ModelName) -> Result<(i64, ModelState)> {
        let row = sqlx::query(concat!("SELECT id, state FROM models WHERE name = $1", for_update!()))
            .bind(name.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::not_found("model", name))?;
        let state: String = col(&row, "state")?;
        Ok((col(&row, "id")?, ModelState::parse_field("state", &state).map_err(|e| corrupt("model state", e))?))
    }

    /// Locks an active model, refusing a retired one.
    async fn lock_active_model(&mut self, name: &ModelName) -> Result<i64> {
        match self.lock_model(name).await? {
            (_, ModelState::Retired) => Err(Error::Conflict(format!("model `{name}` is retired"))),
            (id, _) => Ok(id),
        }
    }

    /// Finds a version of an active model, refusing a retired one.
    async fn active_version_id(&mut self, model: &ModelName, model_id: i64, number: u32) -> Result<i64> {
        let row = sqlx::query("SELECT id, state FROM model_versions WHERE model_id = $1 AND number = $2")
            .bind(model_id)
            .bind(i64::from(number))
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| version_not_found(model, number))?;
        let state: String = col(&row, "state")?;
        if state == VersionState::Retired.as_str() {
            return Err(Error::Conflict(format!("version `{model}/{number}` is retired")));
        }
        col(&row, "id")
    }

    /// The version number `alias` points at, if it exists.
    async fn alias_target(&mut self, model_id: i64, alias: &AliasName) -> Result<Option<u32>> {
        let number: Option<i64> = sqlx::query_scalar(
            "SELECT v.number FROM aliases a JOIN model_versions v ON v.id = a.version_id WHERE a.model_id = $1 AND a.alias = $2",
        )
        .bind(model_id)
        .bind(alias.as_str())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)?;
        number.map(to_u32).transpose()
    }

    /// Resolves dependency names to model ids; each must be a registered model.
    async fn dependency_ids(&mut self, deps: &[ModelName]) -> Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(deps.len());
        for dep in deps {
            let id: Option<i64> = sqlx::query_scalar("SELECT id FROM models WHERE name = $1")
                .bind(dep.as_str())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(db_err)?;
            ids.push(id.ok_or_else(|| Error::invalid("dependencies", format!("`{dep}` is not a registered model")))?);
        }
        Ok(ids)
    }

    async fn insert_dependencies(&mut self, model_id: i64, dep_ids: &[i64]) -> Result<()> {
        for (position, dep) in dep_ids.iter().enumerate() {
            sqlx::query("INSERT INTO model_dependencies (model_id, depends_on, position) VALUES ($1, $2, $3)")
                .bind(model_id)
                .bind(dep)
                .bind(position as i64)
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }
}

fn version_not_found(model: &ModelName, number: u32) -> Error {
    Error::not_found("version", format!("{model}/{number}"))
}

fn check_permit(permit: &Permit, action: Action) -> Result<()> {
    if permit.action() == action {
        Ok(())
    } else {
        Err(Error::Forbidden(format!("a permit for `{}` does not allow `{action}`", permit.action())))
    }
}

fn snapshot<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(format!("cannot snapshot for the audit log: {e}")))
}

fn to_u32(n: i64) -> Result<u32> {
    u32::try_from(n).map_err(|_| corrupt("number", n))
}

fn col<'r, T>(row: &'r DbRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(name).map_err(db_err)
}

fn json_col<T: serde::de::DeserializeOwned>(row: &DbRow, name: &str) -> Result<T> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| corrupt(name, e))
}

fn time_col(row: &DbRow, name: &str) -> Result<DateTime<Utc>> {
    time_from_db(col::<TimeCol>(row, name)?)
}

/// What the `text` filter searches: name, description and business purpose.
fn search_text(name: &str, description: &str, business_purpose: &str) -> String {
    format!("{name}\u{1f}{description}\u{1f}{business_purpose}").to_lowercase()
}

fn model_from_row(row: &DbRow) -> Result<Model> {
    let text = |name: &str| col::<String>(row, name);
    let kind = text("kind")?;
    let tier = text("risk_tier")?;
    let state = text("state")?;
    Ok(Model {
        name: ModelName::parse(text("name")?).map_err(|e| corrupt("model name", e))?,
        kind: ModelKind::parse_field("kind", &kind).map_err(|e| corrupt("model kind", e))?,
        description: text("description")?,
        owner: text("owner")?,
        team: text("team")?,
        business_purpose: text("business_purpose")?,
        intended_use: text("intended_use")?,
        restrictions: text("restrictions")?,
        risk_tier: RiskTier::parse_field("risk_tier", &tier).map_err(|e| corrupt("risk tier", e))?,
        tags: json_col(row, "tags")?,
        dependencies: json_col(row, "dependencies")?,
        aliases: json_col(row, "aliases")?,
        state: ModelState::parse_field("state", &state).map_err(|e| corrupt("model state", e))?,
        latest_version: col::<Option<i64>>(row, "latest_version")?.map(to_u32).transpose()?,
        created_at: time_col(row, "created_at")?,
        created_by: text("created_by")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

fn version_from_row(row: &DbRow) -> Result<ModelVersion> {
    let text = |name: &str| col::<String>(row, name);
    let state = text("state")?;
    let size: i64 = col(row, "artifact_size")?;
    let mut aliases: Vec<String> = json_col(row, "aliases")?;
    aliases.sort();
    Ok(ModelVersion {
        model: ModelName::parse(text("model_name")?).map_err(|e| corrupt("model name", e))?,
        number: to_u32(col(row, "number")?)?,
        state: VersionState::parse_field("state", &state).map_err(|e| corrupt("version state", e))?,
        artifact: ArtifactRef {
            sha256: Sha256Hex::parse_field("artifact.sha256", text("artifact_sha256")?).map_err(|e| corrupt("artifact digest", e))?,
            size: u64::try_from(size).map_err(|_| corrupt("artifact size", size))?,
            filename: text("artifact_filename")?,
        },
        lineage: json_col(row, "lineage")?,
        signature: json_col(row, "signature")?,
        card: json_col(row, "card")?,
        description: text("description")?,
        tags: json_col(row, "tags")?,
        aliases,
        created_at: time_col(row, "created_at")?,
        created_by: text("created_by")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

/// Reads `before`/`after` leniently: text that no longer parses (someone
/// edited the file) still reaches the chain verifier, as a JSON string, so it
/// is reported as a broken link instead of failing the read.
fn stored_json(row: &DbRow, name: &str) -> Result<Option<Value>> {
    let text: Option<String> = col(row, name)?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))))
}

fn event_from_row(row: &DbRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        sequence: col(row, "sequence")?,
        time: time_col(row, "time")?,
        actor: col(row, "actor")?,
        action: col(row, "action")?,
        subject: col(row, "subject")?,
        before: stored_json(row, "before")?,
        after: stored_json(row, "after")?,
        prev_hash: col(row, "prev_hash")?,
        hash: col(row, "hash")?,
    })
}

const EVENT_COLUMNS: &str = "SELECT sequence, time, actor, action, subject, before, after, prev_hash, hash FROM audit_events";

async fn fetch_model<'e, E>(ex: E, name: &ModelName) -> Result<Option<Model>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let row = sqlx::query(concat!(model_select!(), " WHERE m.name = $1"))
        .bind(name.as_str())
        .fetch_optional(ex)
        .await
        .map_err(db_err)?;
    row.as_ref().map(model_from_row).transpose()
}

async fn fetch_version<'e, E>(ex: E, model: &ModelName, number: u32) -> Result<Option<ModelVersion>>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let row = sqlx::query(concat!(version_select!(), " WHERE m.name = $1 AND v.number = $2"))
        .bind(model.as_str())
        .bind(i64::from(number))
        .fetch_optional(ex)
        .await
        .map_err(db_err)?;
    row.as_ref().map(version_from_row).transpose()
}

/// Adds a `key` or `key=value` tag filter on `table`, joined by `column`.
fn push_tag_filter(qb: &mut QueryBuilder<'_, Db>, table: &str, column: &str, outer: &str, tag: &(String, Option<String>)) {
    qb.push(format!(" AND EXISTS (SELECT 1 FROM {table} t WHERE t.{column} = {outer} AND t.key = "));
    qb.push_bind(tag.0.clone());
    if let Some(value) = &tag.1 {
        qb.push(" AND t.value = ");
        qb.push_bind(value.clone());
    }
    qb.push(")");
}

/// Adds `column` starts with `prefix`, as an index-friendly range.
fn push_prefix_filter(qb: &mut QueryBuilder<'_, Db>, column: &str, prefix: &str) {
    qb.push(format!(" AND {column} >= "));
    qb.push_bind(prefix.to_string());
    if let Some(upper) = prefix_upper_bound(prefix) {
        qb.push(format!(" AND {column} < "));
        qb.push_bind(upper);
    }
}

fn comparison(dir: Direction) -> (&'static str, &'static str) {
    match dir {
        Direction::Asc => (">", "ASC"),
        Direction::Desc => ("<", "DESC"),
    }
}

/// Splits `size + 1` fetched rows into a page and the token for the next one.
fn paginate<T>(mut items: Vec<T>, size: u32, token: impl Fn(&T) -> String) -> Page<T> {
    let next_page_token = if items.len() > size as usize {
        items.truncate(size as usize);
        items.last().map(token)
    } else {
        None
    };
    Page { items, next_page_token }
}

impl ThisStore {
    /// Starts a mutation: checks the permit is for `action`, opens the write
    /// transaction and reads the chain head under its lock.
    async fn begin(&self, permit: &Permit, action: Action) -> Result<Write> {
        check_permit(permit, action)?;
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(concat!("SELECT sequence, hash FROM audit_head WHERE id = 1", for_update!()))
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::Internal("the audit head row is missing".into()))?;
        let sequence: i64 = col(&row, "sequence")?;
        let head = (sequence > 0).then(|| Ok::<_, Error>(ChainHead { sequence, hash: col(&row, "hash")? })).transpose()?;
        // The time is read under the lock, so event times follow sequence order.
        Ok(Write { tx, head, now: self.clock.now(), actor: permit.actor().to_string() })
    }

    async fn model_id(&self, name: &ModelName) -> Result<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM models WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        id.ok_or_else(|| Error::not_found("model", name))
    }
}

#[async_trait::async_trait]
impl ModelRepo for ThisStore {
    async fn create_model(&self, permit: &Permit, new: NewModel) -> Result<Model> {
        new.validate()?;
        let mut w = self.begin(permit, Action::ModelCreate).await?;
        let dep_ids = w.dependency_ids(&new.dependencies).await?;
        let now = time_to_db(&w.now);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO models (name, kind, description, owner, team, business_purpose, intended_use, restrictions, \
             risk_tier, state, latest_version, search_text, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $12, $13, $12) RETURNING id",
        )
        .bind(new.name.as_str())
        .bind(new.kind.as_str())
        .bind(&new.description)
        .bind(&new.owner)
        .bind(&new.team)
        .bind(&new.business_purpose)
        .bind(&new.intended_use)
        .bind(&new.restrictions)
        .bind(new.risk_tier.as_str())
        .bind(ModelState::Active.as_str())
        .bind(search_text(new.name.as_str(), &new.description, &new.business_purpose))
        .bind(now)
        .bind(&w.actor)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { Error::already_exists("model", &new.name) } else { db_err(e) })?;
        for (key, value) in &new.tags {
            sqlx::query("INSERT INTO model_tags (model_id, key, value) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(key)
                .bind(value)
                .execute(&mut *w.tx)
                .await
                .map_err(db_err)?;
        }
        w.insert_dependencies(id, &dep_ids).await?;
        let model = Model {
            name: new.name,
            kind: new.kind,
            description: new.description,
            owner: new.owner,
            team: new.team,
            business_purpose: new.business_purpose,
            intended_use: new.intended_use,
            restrictions: new.restrictions,
            risk_tier: new.risk_tier,
            tags: new.tags,
            dependencies: new.dependencies,
            aliases: BTreeMap::new(),
            state: ModelState::Active,
            latest_version: None,
            created_at: w.now,
            created_by: w.actor.clone(),
            updated_at: w.now,
        };
        w.record(Action::ModelCreate, model_subject(model.name.as_str()), None, Some(snapshot(&model)?)).await?;
        w.commit().await?;
        Ok(model)
    }

    async fn get_model(&self, name: &ModelName) -> Result<Model> {
        fetch_model(self.reader(), name).await?.ok_or_else(|| Error::not_found("model", name))
    }

    async fn update_model(&self, permit: &Permit, name: &ModelName, patch: ModelPatch) -> Result<Model> {
        patch.validate(name)?;
        let mut w = self.begin(permit, Action::ModelUpdate).await?;
        let id = w.lock_active_model(name).await?;
        let before = fetch_model(&mut *w.tx, name).await?.ok_or_else(|| Error::not_found("model", name))?;
        if patch.is_empty() {
            return Ok(before);
        }
        let dep_ids = match &patch.dependencies {
            Some(deps) => Some(w.dependency_ids(deps).await?),
            None => None,
        };
        let mut after = patch.apply(&before);
        after.updated_at = w.now;
        sqlx::query(
            "UPDATE models SET description = $1, owner = $2, team = $3, business_purpose = $4, intended_use = $5, \
             restrictions = $6, risk_tier = $7, search_text = $8, updated_at = $9 WHERE id = $10",
        )
        .bind(&after.description)
        .bind(&after.owner)
        .bind(&after.team)
        .bind(&after.business_purpose)
        .bind(&after.intended_use)
        .bind(&after.restrictions)
        .bind(after.risk_tier.as_str())
        .bind(search_text(name.as_str(), &after.description, &after.business_purpose))
        .bind(time_to_db(&w.now))
        .bind(id)
        .execute(&mut *w.tx)
        .await
        .map_err(db_err)?;
        if let Some(dep_ids) = dep_ids {
            sqlx::query("DELETE FROM model_dependencies WHERE model_id = $1").bind(id).execute(&mut *w.tx).await.map_err(db_err)?;
            w.insert_dependencies(id, &dep_ids).await?;
        }
        w.record(Action::ModelUpdate, model_subject(name.as_str()), Some(snapshot(&before)?), Some(snapshot(&after)?)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Records one `version.retire` event per version it retires (each
    /// snapshot shows the aliases it lost), then one `model.retire` event.
    async fn retire_model(&self, permit: &Permit, name: &ModelName) -> Result<Model> {
        let mut w = self.begin(permit, Action::ModelRetire).await?;
        let id = w.lock_active_model(name).await?;
        let before = fetch_model(&mut *w.tx, name).await?.ok_or_else(|| Error::not_found("model", name))?;
        let rows = sqlx::query(concat!(version_select!(), " WHERE v.model_id = $1 AND v.state <> $2 ORDER BY v.number"))
            .bind(id)
            .bind(VersionState::Retired.as_str())
            .fetch_all(&mut *w.tx)
            .await
            .map_err(db_err)?;
        let versions = rows.iter().map(version_from_row).collect::<Result<Vec<_>>>()?;
        sqlx::query("DELETE FROM aliases WHERE model_id = $1").bind(id).execute(&mut *w.tx).await.map_err(db_err)?;
        sqlx::query("UPDATE model_versions SET state = $1, updated_at = $2 WHERE model_id = $3 AND state <> $1")
            .bind(VersionState::Retired.as_str())
            .bind(time_to_db(&w.now))
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_err)?;
        sqlx::query("UPDATE models SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(ModelState::Retired.as_str())
            .bind(time_to_db(&w.now))
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_err)?;
        for version in versions {
            let mut retired = version.clone();
            retired.state = VersionState::Retired;
            retired.aliases.clear();
            retired.updated_at = w.now;
            let subject = version_subject(name.as_str(), version.number);
            w.record(Action::VersionRetire, subject, Some(snapshot(&version)?), Some(snapshot(&retired)?)).await?;
        }
        let mut after = before.clone();
        after.state = ModelState::Retired;
        after.aliases.clear();
        after.updated_at = w.now;
        w.record(Action::ModelRetire, model_subject(name.as_str()), Some(snapshot(&before)?), Some(snapshot(&after)?)).await?;
        w.commit().await?;
        Ok(after)
    }

    async fn list_models(&self, query: &ModelQuery) -> Result<Page<Model>> {
        let order = query.order_by.unwrap_or(ModelOrder::Name);
        let dir = query.direction.unwrap_or(Direction::Asc);
        let (cmp, sql_dir) = comparison(dir);
        let mut qb = QueryBuilder::<Db>::new(concat!(model_select!(), " WHERE 1 = 1"));
        if let Some(kind) = query.kind {
            qb.push(" AND m.kind = ").push_bind(kind.as_str());
        }
        if let Some(owner) = &query.owner {
            qb.push(" AND m.owner = ").push_bind(owner.clone());
        }
        if let Some(team) = &query.team {
            qb.push(" AND m.team = ").push_bind(team.clone());
        }
        if let Some(tier) = query.risk_tier {
            qb.push(" AND m.risk_tier = ").push_bind(tier.as_str());
        }
        if let Some(state) = query.state {
            qb.push(" AND m.state = ").push_bind(state.as_str());
        }
        if let Some(tag) = &query.tag {
            push_tag_filter(&mut qb, "model_tags", "model_id", "m.id", tag);
        }
        if let Some(prefix) = &query.name_prefix {
            push_prefix_filter(&mut qb, "m.name", prefix);
        }
        if let Some(text) = &query.text {
            qb.push(concat!(" AND ", instr!(), "(m.search_text, ")).push_bind(text.to_lowercase()).push(") > 0");
        }
        let column = match order {
            ModelOrder::Name => "m.name",
            ModelOrder::CreatedAt => "m.created_at",
            ModelOrder::UpdatedAt => "m.updated_at",
        };
        if let Some(token) = &query.page.token {
            let cursor = ModelCursor::decode(token, order, dir)?;
            if order == ModelOrder::Name {
                qb.push(format!(" AND m.name {cmp} ")).push_bind(cursor.n);
            } else {
                let key = DateTime::parse_from_rfc3339(&cursor.k)
                    .map_err(|_| Error::invalid("page_token", format!("`{token}` is not a page token this server issued")))?
                    .with_timezone(&Utc);
                qb.push(format!(" AND ({column} {cmp} ")).push_bind(time_to_db(&key));
                qb.push(format!(" OR ({column} = ")).push_bind(time_to_db(&key));
                qb.push(format!(" AND m.name {cmp} ")).push_bind(cursor.n).push("))");
            }
        }
        if order == ModelOrder::Name {
            qb.push(format!(" ORDER BY m.name {sql_dir}"));
        } else {
            qb.push(format!(" ORDER BY {column} {sql_dir}, m.name {sql_dir}"));
        }
        qb.push(" LIMIT ").push_bind(i64::from(query.page.size) + 1);
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        let models = rows.iter().map(model_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(models, query.page.size, |m| {
            let key = match order {
                ModelOrder::Name => String::new(),
                ModelOrder::CreatedAt => modelops_core::clock::format_time(&m.created_at),
                ModelOrder::UpdatedAt => modelops_core::clock::format_time(&m.updated_at),
            };
            ModelCursor::encode(order, dir, key, m.name.to_string())
        }))
    }

    async fn create_version(&self, permit: &Permit, model: &ModelName, new: NewVersion) -> Result<ModelVersion> {
        new.validate()?;
        let mut w = self.begin(permit, Action::VersionCreate).await?;
        let model_id = w.lock_active_model(model).await?;
        if let Some(parent) = new.lineage.parent_version {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM model_versions WHERE model_id = $1 AND number = $2")
                .bind(model_id)
                .bind(i64::from(parent))
                .fetch_optional(&mut *w.tx)
                .await
                .map_err(db_err)?;
            if exists.is_none() {
                return Err(Error::invalid("lineage.parent_version", format!("version `{parent}` of model `{model}` does not exist")));
            }
        }
        // The counter lives on the model row, so taking the next number also
        // holds that row's lock until commit.
        let number: i64 = sqlx::query_scalar("UPDATE models SET latest_version = COALESCE(latest_version, 0) + 1 WHERE id = $1 RETURNING latest_version")
            .bind(model_id)
            .fetch_one(&mut *w.tx)
            .await
            .map_err(db_err)?;
        let number = to_u32(number)?;
        let size = i64::try_from(new.artifact.size).map_err(|_| Error::invalid("artifact.size", format!("`{}` is too large", new.artifact.size)))?;
        let now = time_to_db(&w.now);
        let version_id: i64 = sqlx::query_scalar(
            "INSERT INTO model_versions (model_id, number, state, artifact_sha256, artifact_size, artifact_filename, \
             lineage, signature, card, description, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11) RETURNING id",
        )
        .bind(model_id)
        .bind(i64::from(number))
        .bind(VersionState::Draft.as_str())
        .bind(new.artifact.sha256.as_str())
        .bind(size)
        .bind(&new.artifact.filename)
        .bind(snapshot(&new.lineage)?.to_string())
        .bind(snapshot(&new.signature)?.to_string())
        .bind(snapshot(&new.card)?.to_string())
        .bind(&new.description)
        .bind(now)
        .bind(&w.actor)
        .fetch_one(&mut *w.tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { Error::Conflict(format!("version `{model}/{number}` was created concurrently")) } else { db_err(e) })?;
        for (key, value) in &new.tags {
            sqlx::query("INSERT INTO version_tags (version_id, key, value) VALUES ($1, $2, $3)")
                .bind(version_id)
                .bind(key)
                .bind(value)
                .execute(&mut *w.tx)
                .await
                .map_err(db_err)?;
        }
        let version = ModelVersion {
            model: model.clone(),
            number,
            state: VersionState::Draft,
            artifact: new.artifact,
            lineage: new.lineage,
            signature: new.signature,
            card: new.card,
            description: new.description,
            tags: new.tags,
            aliases: Vec::new(),
            created_at: w.now,
            created_by: w.actor.clone(),
            updated_at: w.now,
        };
        w.record(Action::VersionCreate, version_subject(model.as_str(), number), None, Some(snapshot(&version)?)).await?;
        w.commit().await?;
        Ok(version)
    }

    async fn get_version(&self, model: &ModelName, number: u32) -> Result<ModelVersion> {
        match fetch_version(self.reader(), model, number).await? {
            Some(v) => Ok(v),
            None => {
                self.model_id(model).await?;
                Err(version_not_found(model, number))
            }
        }
    }

    async fn get_version_by_alias(&self, model: &ModelName, alias: &AliasName) -> Result<ModelVersion> {
        let row = sqlx::query(concat!(
            version_select!(),
            " JOIN aliases al ON al.version_id = v.id AND al.model_id = m.id WHERE m.name = $1 AND al.alias = $2"
        ))
        .bind(model.as_str())
        .bind(alias.as_str())
        .fetch_optional(self.reader())
        .await
        .map_err(db_err)?;
        match row {
            Some(row) => version_from_row(&row),
            None => {
                self.model_id(model).await?;
                Err(Error::not_found("alias", format!("{model}@{alias}")))
            }
        }
    }

    async fn list_versions(&self, model: &ModelName, query: &VersionQuery) -> Result<Page<ModelVersion>> {
        let model_id = self.model_id(model).await?;
        let dir = query.direction.unwrap_or(Direction::Desc);
        let (cmp, sql_dir) = comparison(dir);
        let mut qb = QueryBuilder::<Db>::new(concat!(version_select!(), " WHERE v.model_id = "));
        qb.push_bind(model_id);
        if let Some(state) = query.state {
            qb.push(" AND v.state = ").push_bind(state.as_str());
        }
        if let Some(tag) = &query.tag {
            push_tag_filter(&mut qb, "version_tags", "version_id", "v.id", tag);
        }
        if let Some(token) = &query.page.token {
            let cursor = VersionCursor::decode(token, dir)?;
            qb.push(format!(" AND v.number {cmp} ")).push_bind(i64::from(cursor.v));
        }
        qb.push(format!(" ORDER BY v.number {sql_dir} LIMIT ")).push_bind(i64::from(query.page.size) + 1);
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        let versions = rows.iter().map(version_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(versions, query.page.size, |v| VersionCursor::encode(dir, v.number)))
    }

    async fn update_version(&self, permit: &Permit, model: &ModelName, number: u32, patch: VersionPatch) -> Result<ModelVersion> {
        patch.validate()?;
        let mut w = self.begin(permit, Action::VersionUpdate).await?;
        let model_id = w.lock_active_model(model).await?;
        let version_id = w.active_version_id(model, model_id, number).await?;
        let before = fetch_version(&mut *w.tx, model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        if patch.is_empty() {
            return Ok(before);
        }
        let mut after = patch.apply(&before);
        after.updated_at = w.now;
        sqlx::query("UPDATE model_versions SET description = $1, card = $2, updated_at = $3 WHERE id = $4")
            .bind(&after.description)
            .bind(snapshot(&after.card)?.to_string())
            .bind(time_to_db(&w.now))
            .bind(version_id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_err)?;
        w.record(Action::VersionUpdate, version_subject(model.as_str(), number), Some(snapshot(&before)?), Some(snapshot(&after)?)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// One `version.retire` event; its snapshots show the aliases removed.
    async fn retire_version(&self, permit: &Permit, model: &ModelName, number: u32) -> Result<ModelVersion> {
        let mut w = self.begin(permit, Action::VersionRetire).await?;
        let model_id = w.lock_active_model(model).await?;
        let version_id = w.active_version_id(model, model_id, number).await?;
        let before = fetch_version(&mut *w.tx, model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        sqlx::query("DELETE FROM aliases WHERE version_id = $1").bind(version_id).execute(&mut *w.tx).await.map_err(db_err)?;
        sqlx::query("UPDATE model_versions SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(VersionState::Retired.as_str())
            .bind(time_to_db(&w.now))
            .bind(version_id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_err)?;
        let mut after = before.clone();
        after.state = VersionState::Retired;
        after.aliases.clear();
        after.updated_at = w.now;
        w.record(Action::VersionRetire, version_subject(model.as_str(), number), Some(snapshot(&before)?), Some(snapshot(&after)?)).await?;
        w.commit().await?;
        Ok(after)
    }

    /// Setting an alias to the version it already points at changes nothing
    /// and records nothing.
    async fn set_alias(&self, permit: &Permit, model: &ModelName, alias: &AliasName, number: u32) -> Result<ModelVersion> {
        let mut w = self.begin(permit, Action::AliasSet).await?;
        let model_id = w.lock_active_model(model).await?;
        let version_id = w.active_version_id(model, model_id, number).await?;
        let current = w.alias_target(model_id, alias).await?;
        if current != Some(number) {
            sqlx::query(
                "INSERT INTO aliases (model_id, alias, version_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id",
            )
            .bind(model_id)
            .bind(alias.as_str())
            .bind(version_id)
            .execute(&mut *w.tx)
            .await
            .map_err(db_err)?;
            let pointer = |n: u32| serde_json::json!({ "alias": alias.as_str(), "version": n });
            w.record(Action::AliasSet, alias_subject(model.as_str(), alias.as_str()), current.map(pointer), Some(pointer(number))).await?;
        }
        let version = fetch_version(&mut *w.tx, model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        w.commit().await?;
        Ok(version)
    }

    async fn delete_alias(&self, permit: &Permit, model: &ModelName, alias: &AliasName) -> Result<()> {
        let mut w = self.begin(permit, Action::AliasDelete).await?;
        let model_id = w.lock_active_model(model).await?;
        let current = w.alias_target(model_id, alias).await?.ok_or_else(|| Error::not_found("alias", format!("{model}@{alias}")))?;
        sqlx::query("DELETE FROM aliases WHERE model_id = $1 AND alias = $2")
            .bind(model_id)
            .bind(alias.as_str())
            .execute(&mut *w.tx)
            .await
            .map_err(db_err)?;
        let before = serde_json::json!({ "alias": alias.as_str(), "version": current });
        w.record(Action::AliasDelete, alias_subject(model.as_str(), alias.as_str()), Some(before), None).await?;
        w.commit().await
    }

    /// Setting a tag to the value it already has changes nothing and records nothing.
    async fn set_tag(&self, permit: &Permit, target: &TagTarget, key: &TagKey, value: &str) -> Result<()> {
        check_tag_value(key.as_str(), value)?;
        let mut w = self.begin(permit, Action::TagSet).await?;
        let (tags, id, subject) = lock_tag_target(&mut w, target).await?;
        let current = current_tag(&mut w, tags, id, key).await?;
        if current.as_deref() == Some(value) {
            return Ok(());
        }
        sqlx::query(tags.upsert).bind(id).bind(key.as_str()).bind(value).execute(&mut *w.tx).await.map_err(db_err)?;
        sqlx::query(tags.touch).bind(time_to_db(&w.now)).bind(id).execute(&mut *w.tx).await.map_err(db_err)?;
        let tag = |v: &str| serde_json::json!({ "key": key.as_str(), "value": v });
        w.record(Action::TagSet, subject, current.as_deref().map(tag), Some(tag(value))).await?;
        w.commit().await
    }

    async fn delete_tag(&self, permit: &Permit, target: &TagTarget, key: &TagKey) -> Result<()> {
        let mut w = self.begin(permit, Action::TagDelete).await?;
        let (tags, id, subject) = lock_tag_target(&mut w, target).await?;
        let current = current_tag(&mut w, tags, id, key).await?.ok_or_else(|| Error::not_found("tag", format!("{subject}:{key}")))?;
        sqlx::query(tags.delete).bind(id).bind(key.as_str()).execute(&mut *w.tx).await.map_err(db_err)?;
        sqlx::query(tags.touch).bind(time_to_db(&w.now)).bind(id).execute(&mut *w.tx).await.map_err(db_err)?;
        let before = serde_json::json!({ "key": key.as_str(), "value": current });
        w.record(Action::TagDelete, subject, Some(before), None).await?;
        w.commit().await
    }
}

/// The statements for one of the two tag tables.
#[derive(Clone, Copy)]
struct TagSql {
    select: &'static str,
    upsert: &'static str,
    delete: &'static str,
    /// Bumps `updated_at` of the tagged row.
    touch: &'static str,
}

const MODEL_TAGS: TagSql = TagSql {
    select: "SELECT value FROM model_tags WHERE model_id = $1 AND key = $2",
    upsert: "INSERT INTO model_tags (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
    delete: "DELETE FROM model_tags WHERE model_id = $1 AND key = $2",
    touch: "UPDATE models SET updated_at = $1 WHERE id = $2",
};

const VERSION_TAGS: TagSql = TagSql {
    select: "SELECT value FROM version_tags WHERE version_id = $1 AND key = $2",
    upsert: "INSERT INTO version_tags (version_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value",
    delete: "DELETE FROM version_tags WHERE version_id = $1 AND key = $2",
    touch: "UPDATE model_versions SET updated_at = $1 WHERE id = $2",
};

/// Locks what a tag is attached to; refuses retired models and versions.
async fn lock_tag_target(w: &mut Write, target: &TagTarget) -> Result<(TagSql, i64, String)> {
    match target {
        TagTarget::Model(name) => {
            let id = w.lock_active_model(name).await?;
            Ok((MODEL_TAGS, id, model_subject(name.as_str())))
        }
        TagTarget::Version(name, number) => {
            let model_id = w.lock_active_model(name).await?;
            let id = w.active_version_id(name, model_id, *number).await?;
            Ok((VERSION_TAGS, id, version_subject(name.as_str(), *number)))
        }
    }
}

async fn current_tag(w: &mut Write, tags: TagSql, id: i64, key: &TagKey) -> Result<Option<String>> {
    sqlx::query_scalar(tags.select).bind(id).bind(key.as_str()).fetch_optional(&mut *w.tx).await.map_err(db_err)
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
            let cursor: AuditCursor = decode_token(token)?;
            qb.push(" AND sequence > ").push_bind(cursor.s);
        }
        qb.push(" ORDER BY sequence LIMIT ").push_bind(i64::from(query.page.size) + 1);
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        let events = rows.iter().map(event_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(events, query.page.size, |e| encode_token(&AuditCursor { s: e.sequence })))
    }

    async fn read_chain(&self, after: i64, limit: u32) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(concat!(
            "SELECT sequence, time, actor, action, subject, before, after, prev_hash, hash FROM audit_events",
            " WHERE sequence > $1 ORDER BY sequence LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await
        .map_err(db_err)?;
        rows.iter().map(event_from_row).collect()
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
