// Models and versions, for both backends: reading them (`ModelReads` on the
// store) and writing them inside a transaction (`ModelWrites` on `Tx`).
// Included as the `models` module of `sqlite.rs` and `postgres.rs`, which
// define the aggregating SELECTs (`model_select!`, `version_select!`) and the
// row-lock suffix (`lock_model_row!`). No domain rule lives here: whether a
// change is allowed is decided by the use cases before they call these.

use super::rows::{col, model_from_row, model_governance, search_text, to_u32, version_from_row};
use super::tx::Tx;
use super::{time_to_db, Db, ThisStore};
use crate::cursor::{paginate, push_prefix_filter, push_tag_filter, ModelCursor, VersionCursor};
use crate::error::{db_err, is_unique_violation};
use chrono::{DateTime, Utc};
use modelops_core::model::{Model, ModelState};
use modelops_core::name::{AliasName, ModelName};
use modelops_core::page::{Direction, ModelOrder, ModelQuery, Page, VersionQuery};
use modelops_core::repo::{ModelReads, ModelWrites};
use modelops_core::version::{ModelVersion, Sha256Hex, VersionState};
use modelops_core::{Error, Result};
use sqlx::QueryBuilder;
use std::collections::{BTreeMap, BTreeSet};

/// Rows per multi-row statement: far below SQLite's bind-parameter limit,
/// and small enough that the caps (100 tags, 100 dependencies) take two.
const BATCH: usize = 50;

fn version_not_found(model: &ModelName, number: u32) -> Error {
    Error::not_found("version", format!("{model}/{number}"))
}

fn snapshot<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot store a value as JSON: {e}")))
}

fn comparison(dir: Direction) -> (&'static str, &'static str) {
    match dir {
        Direction::Asc => (">", "ASC"),
        Direction::Desc => ("<", "DESC"),
    }
}

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

impl ThisStore {
    /// The versions a query finds among the models named, by model then
    /// number: `before` ends in a `… name IN (`, which the names close, in
    /// chunks of bound names, then `after` follows.
    async fn versions_of_models(&self, before: &str, after: &str, models: &[ModelName]) -> Result<Vec<ModelVersion>> {
        let mut versions = Vec::new();
        for chunk in models.chunks(BATCH) {
            let mut qb = QueryBuilder::<Db>::new(before);
            let mut list = qb.separated(", ");
            for name in chunk {
                list.push_bind(name.as_str().to_string());
            }
            qb.push(")").push(after);
            let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
            for row in &rows {
                versions.push(version_from_row(row)?);
            }
        }
        versions.sort_by(|a, b| a.model.cmp(&b.model).then(a.number.cmp(&b.number)));
        Ok(versions)
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
impl ModelReads for ThisStore {
    async fn get_model(&self, name: &ModelName) -> Result<Model> {
        fetch_model(self.reader(), name).await?.ok_or_else(|| Error::not_found("model", name))
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
            match cursor.time_key(token)? {
                None => {
                    qb.push(format!(" AND m.name {cmp} ")).push_bind(cursor.n);
                }
                Some(key) => {
                    qb.push(format!(" AND ({column} {cmp} ")).push_bind(time_to_db(&key));
                    qb.push(format!(" OR ({column} = ")).push_bind(time_to_db(&key));
                    qb.push(format!(" AND m.name {cmp} ")).push_bind(cursor.n).push("))");
                }
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
        Ok(paginate(models, query.page.size, |m| ModelCursor::after(order, dir, m)))
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

    async fn referenced_artifacts(&self) -> Result<BTreeSet<Sha256Hex>> {
        let digests: Vec<String> =
            sqlx::query_scalar(
                // Evidence documents (validation reports) and the files written
                // through MLflow's artifact proxy are artifacts too, and so is
                // kept reference data: gc must keep them.
                "SELECT artifact_sha256 FROM model_versions UNION SELECT document_sha256 FROM evidence WHERE document_sha256 IS NOT NULL \
                 UNION SELECT sha256 FROM mlflow_artifacts UNION SELECT data_sha256 FROM reference_profiles WHERE data_sha256 IS NOT NULL",
            )
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        digests
            .into_iter()
            .map(|d| Sha256Hex::parse_field("artifact_sha256", d).map_err(|e| crate::error::corrupt("artifact digest", e)))
            .collect()
    }

    async fn versions_shown_in_mlflow(&self, models: Option<&[ModelName]>) -> Result<Vec<ModelVersion>> {
        let shown = concat!(
            version_select!(),
            " WHERE m.state = 'active' AND NOT EXISTS (SELECT 1 FROM mlflow_deleted_versions d WHERE d.model_id = v.model_id AND d.number = v.number)"
        );
        match models {
            Some(models) => self.versions_of_models(&format!("{shown} AND m.name IN ("), "", models).await,
            None => {
                let rows = sqlx::query(&format!("{shown} ORDER BY m.name, v.number")).fetch_all(self.reader()).await.map_err(db_err)?;
                rows.iter().map(version_from_row).collect()
            }
        }
    }

    async fn latest_shown_in_mlflow(&self, models: &[ModelName]) -> Result<Vec<ModelVersion>> {
        // The newest shown version per model and state, found in one pass
        // over the named models' versions (grouped), then only those rows
        // read whole: a correlated MAX per version row made a search over a
        // model of N versions cost N² (200 versions: ~2 ms a search).
        self.versions_of_models(
            "WITH latest AS (SELECT v2.model_id, MAX(v2.number) AS number FROM model_versions v2 JOIN models m2 ON m2.id = v2.model_id \
             WHERE m2.state = 'active' AND NOT EXISTS (SELECT 1 FROM mlflow_deleted_versions d WHERE d.model_id = v2.model_id AND d.number = v2.number) \
             AND m2.name IN (",
            concat!(" GROUP BY v2.model_id, v2.state) ", version_select!(), " JOIN latest l ON l.model_id = v.model_id AND l.number = v.number"),
            models,
        )
        .await
    }

    async fn version_artifacts_named(&self, file_name: &str) -> Result<BTreeSet<Sha256Hex>> {
        let digests: Vec<String> = sqlx::query_scalar("SELECT DISTINCT artifact_sha256 FROM model_versions WHERE artifact_filename = $1")
            .bind(file_name)
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        digests
            .into_iter()
            .map(|d| Sha256Hex::parse_field("artifact_sha256", d).map_err(|e| crate::error::corrupt("artifact digest", e)))
            .collect()
    }

    async fn hidden_versions(&self, model: Option<&ModelName>) -> Result<BTreeSet<(ModelName, u32)>> {
        let sql = "SELECT m.name, d.number FROM mlflow_deleted_versions d JOIN models m ON m.id = d.model_id";
        let rows = match model {
            Some(name) => sqlx::query(concat!(
                "SELECT m.name, d.number FROM mlflow_deleted_versions d JOIN models m ON m.id = d.model_id",
                " WHERE m.name = $1"
            ))
            .bind(name.as_str())
            .fetch_all(self.reader())
            .await,
            None => sqlx::query(sql).fetch_all(self.reader()).await,
        }
        .map_err(db_err)?;
        let mut hidden = BTreeSet::new();
        for row in rows {
            let name: String = col(&row, "name")?;
            let number: i64 = col(&row, "number")?;
            hidden.insert((ModelName::parse(name).map_err(|e| crate::error::corrupt("model name", e))?, to_u32(number)?));
        }
        Ok(hidden)
    }
}

impl Tx {
    /// Resolves model names to row ids in one statement.
    async fn model_ids(&mut self, names: &[ModelName]) -> Result<BTreeMap<ModelName, i64>> {
        let mut ids = BTreeMap::new();
        for chunk in names.chunks(BATCH) {
            let mut qb = QueryBuilder::<Db>::new("SELECT id, name FROM models WHERE name IN (");
            let mut list = qb.separated(", ");
            for name in chunk {
                list.push_bind(name.as_str().to_string());
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *self.tx).await.map_err(db_err)? {
                let name: String = col(&row, "name")?;
                ids.insert(ModelName::from_stored(name), col(&row, "id")?);
            }
        }
        Ok(ids)
    }

    async fn insert_dependencies(&mut self, model_id: i64, deps: &[ModelName]) -> Result<()> {
        if deps.is_empty() {
            return Ok(());
        }
        let ids = self.model_ids(deps).await?;
        let mut rows = Vec::with_capacity(deps.len());
        for (position, dep) in deps.iter().enumerate() {
            // The use case checked every dependency under this lock.
            let id = ids.get(dep).ok_or_else(|| Error::Internal(format!("dependency `{dep}` vanished under the write lock")))?;
            rows.push((*id, position as i64));
        }
        for chunk in rows.chunks(BATCH) {
            let mut qb = QueryBuilder::<Db>::new("INSERT INTO model_dependencies (model_id, depends_on, position) ");
            qb.push_values(chunk, |mut b, (dep, position)| {
                b.push_bind(model_id).push_bind(*dep).push_bind(*position);
            });
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// Inserts tags into `table` (`model_tags` or `version_tags`, keyed by `column`).
    async fn insert_tags(&mut self, table: &str, column: &str, id: i64, tags: &BTreeMap<String, String>) -> Result<()> {
        let tags: Vec<(&String, &String)> = tags.iter().collect();
        for chunk in tags.chunks(BATCH) {
            let mut qb = QueryBuilder::<Db>::new(format!("INSERT INTO {table} ({column}, key, value) "));
            qb.push_values(chunk, |mut b, (key, value)| {
                b.push_bind(id).push_bind((*key).clone()).push_bind((*value).clone());
            });
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ModelWrites for Tx {
    async fn lock_model(&mut self, name: &ModelName) -> Result<Option<Model>> {
        let row = sqlx::query(concat!(model_select!(), " WHERE m.name = $1", lock_model_row!()))
            .bind(name.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let model = model_from_row(&row)?;
        self.models.insert(model.name.clone(), col(&row, "id")?);
        Ok(Some(model))
    }

    async fn lock_model_state(&mut self, name: &ModelName) -> Result<Option<ModelState>> {
        let row = sqlx::query(concat!("SELECT id, state FROM models WHERE name = $1", for_update!()))
            .bind(name.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let state: String = col(&row, "state")?;
        let state = ModelState::parse_field("state", &state).map_err(|e| crate::error::corrupt("model state", e))?;
        self.models.insert(name.clone(), col(&row, "id")?);
        Ok(Some(state))
    }

    async fn existing_models(&mut self, names: &[ModelName]) -> Result<BTreeSet<ModelName>> {
        Ok(self.model_ids(names).await?.into_keys().collect())
    }

    async fn insert_model(&mut self, model: &Model) -> Result<()> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO models (name, kind, description, owner, team, business_purpose, intended_use, restrictions, \
             risk_tier, state, latest_version, search_text, created_at, created_by, updated_at, governance) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(model.name.as_str())
        .bind(model.kind.as_str())
        .bind(&model.description)
        .bind(&model.owner)
        .bind(&model.team)
        .bind(&model.business_purpose)
        .bind(&model.intended_use)
        .bind(&model.restrictions)
        .bind(model.risk_tier.as_str())
        .bind(model.state.as_str())
        .bind(model.latest_version.map(i64::from))
        .bind(search_text(model))
        .bind(time_to_db(&model.created_at))
        .bind(&model.created_by)
        .bind(time_to_db(&model.updated_at))
        .bind(model_governance(model)?)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { Error::already_exists("model", &model.name) } else { db_err(e) })?;
        self.models.insert(model.name.clone(), id);
        self.insert_tags("model_tags", "model_id", id, &model.tags).await?;
        self.insert_dependencies(id, &model.dependencies).await
    }

    async fn rename_model(&mut self, from: &ModelName, to: &Model) -> Result<()> {
        let id = self.model_id(from)?;
        sqlx::query("UPDATE models SET name = $1, search_text = $2, updated_at = $3 WHERE id = $4")
            .bind(to.name.as_str())
            .bind(search_text(to))
            .bind(time_to_db(&to.updated_at))
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(|e| if is_unique_violation(&e) { Error::already_exists("model", &to.name) } else { db_err(e) })?;
        self.models.remove(from);
        self.models.insert(to.name.clone(), id);
        Ok(())
    }

    async fn update_model(&mut self, model: &Model) -> Result<()> {
        let id = self.model_id(&model.name)?;
        sqlx::query(
            "UPDATE models SET description = $1, owner = $2, team = $3, business_purpose = $4, intended_use = $5, \
             restrictions = $6, risk_tier = $7, state = $8, search_text = $9, updated_at = $10, governance = $11 WHERE id = $12",
        )
        .bind(&model.description)
        .bind(&model.owner)
        .bind(&model.team)
        .bind(&model.business_purpose)
        .bind(&model.intended_use)
        .bind(&model.restrictions)
        .bind(model.risk_tier.as_str())
        .bind(model.state.as_str())
        .bind(search_text(model))
        .bind(time_to_db(&model.updated_at))
        .bind(model_governance(model)?)
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn replace_dependencies(&mut self, model: &ModelName, dependencies: &[ModelName]) -> Result<()> {
        let id = self.model_id(model)?;
        sqlx::query("DELETE FROM model_dependencies WHERE model_id = $1").bind(id).execute(&mut *self.tx).await.map_err(db_err)?;
        self.insert_dependencies(id, dependencies).await
    }

    async fn next_version_number(&mut self, model: &ModelName) -> Result<u32> {
        let id = self.model_id(model)?;
        // The counter lives on the locked model row, so racing creators queue.
        let number: i64 = sqlx::query_scalar("UPDATE models SET latest_version = COALESCE(latest_version, 0) + 1 WHERE id = $1 RETURNING latest_version")
            .bind(id)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err)?;
        to_u32(number)
    }

    async fn insert_version(&mut self, v: &ModelVersion) -> Result<()> {
        let model_id = self.model_id(&v.model)?;
        let size = i64::try_from(v.artifact.size).map_err(|_| Error::invalid("artifact.size", format!("`{}` is too large", v.artifact.size)))?;
        let version_id: i64 = sqlx::query_scalar(
            "INSERT INTO model_versions (model_id, number, state, artifact_sha256, artifact_size, artifact_filename, \
             lineage, signature, card, description, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(model_id)
        .bind(i64::from(v.number))
        .bind(v.state.as_str())
        .bind(v.artifact.sha256.as_str())
        .bind(size)
        .bind(&v.artifact.filename)
        .bind(snapshot(&v.lineage)?)
        .bind(snapshot(&v.signature)?)
        .bind(snapshot(&v.card)?)
        .bind(&v.description)
        .bind(time_to_db(&v.created_at))
        .bind(&v.created_by)
        .bind(time_to_db(&v.updated_at))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { Error::Conflict(format!("version `{}/{}` was created concurrently", v.model, v.number)) } else { db_err(e) })?;
        self.insert_tags("version_tags", "version_id", version_id, &v.tags).await
    }

    async fn version(&mut self, model: &ModelName, number: u32) -> Result<Option<ModelVersion>> {
        fetch_version(&mut *self.tx, model, number).await
    }

    async fn versions_not_in(&mut self, model: &ModelName, state: VersionState) -> Result<Vec<ModelVersion>> {
        let id = self.model_id(model)?;
        let rows = sqlx::query(concat!(version_select!(), " WHERE v.model_id = $1 AND v.state <> $2 ORDER BY v.number"))
            .bind(id)
            .bind(state.as_str())
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err)?;
        rows.iter().map(version_from_row).collect()
    }

    async fn update_version(&mut self, v: &ModelVersion) -> Result<()> {
        let model_id = self.model_id(&v.model)?;
        sqlx::query("UPDATE model_versions SET description = $1, card = $2, state = $3, updated_at = $4 WHERE model_id = $5 AND number = $6")
            .bind(&v.description)
            .bind(snapshot(&v.card)?)
            .bind(v.state.as_str())
            .bind(time_to_db(&v.updated_at))
            .bind(model_id)
            .bind(i64::from(v.number))
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn set_versions_state(&mut self, model: &ModelName, numbers: &[u32], state: VersionState, at: DateTime<Utc>) -> Result<()> {
        let model_id = self.model_id(model)?;
        for chunk in numbers.chunks(BATCH) {
            let mut qb = QueryBuilder::<Db>::new("UPDATE model_versions SET state = ");
            qb.push_bind(state.as_str()).push(", updated_at = ").push_bind(time_to_db(&at));
            qb.push(" WHERE model_id = ").push_bind(model_id).push(" AND number IN (");
            let mut list = qb.separated(", ");
            for n in chunk {
                list.push_bind(i64::from(*n));
            }
            qb.push(")");
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn hide_versions(&mut self, model: &ModelName, numbers: &[u32]) -> Result<()> {
        let model_id = self.model_id(model)?;
        for chunk in numbers.chunks(BATCH) {
            let mut qb = QueryBuilder::<Db>::new("INSERT INTO mlflow_deleted_versions (model_id, number) ");
            qb.push_values(chunk, |mut row, n| {
                row.push_bind(model_id).push_bind(i64::from(*n));
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(())
    }
}
