// Aliases and tags, for both backends: `LabelWrites` on the write
// transaction. Included as the `labels` module of `sqlite.rs` and
// `postgres.rs`. What an alias or tag may be, and when setting one changes
// nothing, is decided by the use cases; this file only writes.

use super::time_to_db;
use super::tx::Tx;
use crate::error::db_err;
use chrono::{DateTime, Utc};
use modelops_core::name::{AliasName, ModelName, TagKey};
use modelops_core::repo::{AliasScope, LabelWrites, TagTarget};
use modelops_core::Result;

/// The statements for one of the two tag tables.
#[derive(Clone, Copy)]
struct TagSql {
    upsert: &'static str,
    delete: &'static str,
    /// Moves `updated_at` of the tagged row.
    touch: &'static str,
}

const MODEL_TAGS: TagSql = TagSql {
    upsert: "INSERT INTO model_tags (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
    delete: "DELETE FROM model_tags WHERE model_id = $1 AND key = $2",
    touch: "UPDATE models SET updated_at = $1 WHERE id = $2",
};

const VERSION_TAGS: TagSql = TagSql {
    upsert: "INSERT INTO version_tags (version_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value",
    delete: "DELETE FROM version_tags WHERE version_id = $1 AND key = $2",
    touch: "UPDATE model_versions SET updated_at = $1 WHERE id = $2",
};

impl Tx {
    async fn tag_row(&mut self, target: &TagTarget) -> Result<(TagSql, i64)> {
        Ok(match target {
            TagTarget::Model(name) => (MODEL_TAGS, self.model_id(name)?),
            TagTarget::Version(name, number) => (VERSION_TAGS, self.version_id(name, *number).await?),
        })
    }

    async fn touch(&mut self, sql: TagSql, id: i64, at: DateTime<Utc>) -> Result<()> {
        sqlx::query(sql.touch).bind(time_to_db(&at)).bind(id).execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl LabelWrites for Tx {
    async fn set_alias(&mut self, model: &ModelName, alias: &AliasName, number: u32) -> Result<()> {
        let model_id = self.model_id(model)?;
        let version_id = self.version_id(model, number).await?;
        sqlx::query(
            "INSERT INTO aliases (model_id, alias, version_id) VALUES ($1, $2, $3) \
             ON CONFLICT (model_id, alias) DO UPDATE SET version_id = excluded.version_id",
        )
        .bind(model_id)
        .bind(alias.as_str())
        .bind(version_id)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn remove_alias(&mut self, model: &ModelName, alias: &AliasName) -> Result<()> {
        let model_id = self.model_id(model)?;
        sqlx::query("DELETE FROM aliases WHERE model_id = $1 AND alias = $2")
            .bind(model_id)
            .bind(alias.as_str())
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn remove_aliases(&mut self, scope: &AliasScope) -> Result<()> {
        let (sql, id) = match scope {
            AliasScope::Model(name) => ("DELETE FROM aliases WHERE model_id = $1", self.model_id(name)?),
            AliasScope::Version(name, number) => ("DELETE FROM aliases WHERE version_id = $1", self.version_id(name, *number).await?),
        };
        sqlx::query(sql).bind(id).execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }

    async fn set_tag(&mut self, target: &TagTarget, key: &TagKey, value: &str, at: DateTime<Utc>) -> Result<()> {
        let (sql, id) = self.tag_row(target).await?;
        sqlx::query(sql.upsert).bind(id).bind(key.as_str()).bind(value).execute(&mut *self.tx).await.map_err(db_err)?;
        self.touch(sql, id, at).await
    }

    async fn remove_tag(&mut self, target: &TagTarget, key: &TagKey, at: DateTime<Utc>) -> Result<()> {
        let (sql, id) = self.tag_row(target).await?;
        sqlx::query(sql.delete).bind(id).bind(key.as_str()).execute(&mut *self.tx).await.map_err(db_err)?;
        self.touch(sql, id, at).await
    }
}
