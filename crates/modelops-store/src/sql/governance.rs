// Governance, for both backends: users and API tokens, approvals, evidence,
// periodic reviews and policies — reading them (`GovernanceReads` on the
// store) and writing them inside a transaction (`GovernanceWrites` on `Tx`).
// Included as the `governance` module of `sqlite.rs` and `postgres.rs`.
// Who may do what, separation of duties and the gates are decided by the use
// cases; this file only reads and writes. Approvals, evidence, reviews and
// policies are append-only (migration 0003's triggers refuse UPDATE and
// DELETE); the active policy is the one stored last. Reads name an unknown
// model or version as `NotFound`, like `ModelReads`; an empty list means
// nothing is recorded. Refusals inside a transaction (a taken user name, an
// unknown token user) are found without a failing statement, which would
// abort a PostgreSQL transaction.

use super::rows::{
    approval_from_row, col, evidence_from_row, policy_from_row, review_from_row, roles_to_db, scheduled_review_from_row,
    token_from_row, user_from_row,
};
use super::tx::Tx;
use super::{time_from_db, time_to_db, ThisStore, TimeCol};
use crate::error::db_err;
use chrono::{DateTime, Utc};
use modelops_core::governance::{ApiToken, Approval, Evidence, Review, ScheduledReview, StoredPolicy, User};
use modelops_core::name::ModelName;
use modelops_core::repo::{GovernanceReads, GovernanceWrites};
use modelops_core::{Error, Result};

macro_rules! user_columns {
    () => {
        "u.name, u.roles, u.team, u.disabled, u.created_at, u.created_by, u.updated_at"
    };
}

/// Prefixed where they would clash with a user's columns read beside them.
macro_rules! token_columns {
    () => {
        "t.id AS token_id, t.name AS token_name, t.user_name, t.created_at AS token_created_at, \
         t.created_by AS token_created_by, t.expires_at, t.revoked_at, t.scope AS token_scope"
    };
}

macro_rules! approval_select {
    () => {
        "SELECT m.name AS model_name, v.number, a.approver, a.roles, a.decision, a.comment, a.conditions, \
         a.expires_at, a.created_at \
         FROM approvals a JOIN model_versions v ON v.id = a.version_id JOIN models m ON m.id = v.model_id"
    };
}

macro_rules! evidence_select {
    () => {
        "SELECT m.name AS model_name, v.number, e.kind, e.name, e.value, e.dataset, e.document_sha256, \
         e.document_size, e.document_filename, e.created_at, e.created_by \
         FROM evidence e JOIN model_versions v ON v.id = e.version_id JOIN models m ON m.id = v.model_id"
    };
}

macro_rules! review_select {
    () => {
        "SELECT m.name AS model_name, v.number, r.reviewer, r.outcome, r.comment, r.reviewed_at, r.next_review_at \
         FROM reviews r JOIN model_versions v ON v.id = r.version_id JOIN models m ON m.id = v.model_id"
    };
}

macro_rules! policy_select {
    () => {
        "SELECT sha256, source, format, loaded_at, loaded_by FROM policies ORDER BY id DESC LIMIT 1"
    };
}

impl ThisStore {
    /// Why a read by model and version (`None`: the model alone) found
    /// nothing: `NotFound` naming the model when it does not exist, or the
    /// version when it does not; `Ok(())` when both exist and there is simply
    /// nothing recorded. Asked only when a read comes back empty.
    async fn ensure_version(&self, model: &ModelName, number: Option<u32>) -> Result<()> {
        let row = sqlx::query(
            "SELECT m.id, (SELECT v.id FROM model_versions v WHERE v.model_id = m.id AND v.number = $2) AS version_id \
             FROM models m WHERE m.name = $1",
        )
        .bind(model.as_str())
        .bind(number.map_or(0, i64::from))
        .fetch_optional(self.reader())
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Err(Error::not_found("model", model)) };
        match number {
            Some(n) if col::<Option<i64>>(&row, "version_id")?.is_none() => Err(Error::not_found("version", format!("{model}/{n}"))),
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl GovernanceReads for ThisStore {
    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users u WHERE u.name = $1"))
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users u ORDER BY u.name"))
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn count_users(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(self.reader()).await.map_err(db_err)?;
        u64::try_from(n).map_err(|_| crate::error::corrupt("user count", n))
    }

    async fn token_for_auth(&self, id: &str) -> Result<Option<(ApiToken, String, User)>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_columns!(),
            ", t.secret_hash, ",
            user_columns!(),
            " FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((token_from_row(&row)?, col(&row, "secret_hash")?, user_from_row(&row)?)))
    }

    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>> {
        let query = match user {
            Some(user) => sqlx::query(concat!(
                "SELECT ",
                token_columns!(),
                " FROM api_tokens t WHERE t.user_name = $1 ORDER BY t.created_at, t.id"
            ))
            .bind(user),
            None => sqlx::query(concat!("SELECT ", token_columns!(), " FROM api_tokens t ORDER BY t.created_at, t.id")),
        };
        let rows = query.fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(token_from_row).collect()
    }

    async fn approvals(&self, model: &ModelName, version: u32) -> Result<Vec<Approval>> {
        let rows = sqlx::query(concat!(approval_select!(), " WHERE m.name = $1 AND v.number = $2 ORDER BY a.id"))
            .bind(model.as_str())
            .bind(i64::from(version))
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        if rows.is_empty() {
            self.ensure_version(model, Some(version)).await?;
        }
        rows.iter().map(approval_from_row).collect()
    }

    async fn evidence(&self, model: &ModelName, version: u32) -> Result<Vec<Evidence>> {
        let rows = sqlx::query(concat!(evidence_select!(), " WHERE m.name = $1 AND v.number = $2 ORDER BY e.id"))
            .bind(model.as_str())
            .bind(i64::from(version))
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        if rows.is_empty() {
            self.ensure_version(model, Some(version)).await?;
        }
        rows.iter().map(evidence_from_row).collect()
    }

    async fn reviews(&self, model: &ModelName) -> Result<Vec<Review>> {
        let rows = sqlx::query(concat!(review_select!(), " WHERE m.name = $1 ORDER BY r.id"))
            .bind(model.as_str())
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        if rows.is_empty() {
            self.ensure_version(model, None).await?;
        }
        rows.iter().map(review_from_row).collect()
    }

    async fn review_schedule(&self) -> Result<Vec<ScheduledReview>> {
        let rows = sqlx::query(
            "SELECT m.name AS model_name, v.number, s.next_review_at, \
             (SELECT MAX(r.reviewed_at) FROM reviews r WHERE r.version_id = s.version_id) AS last_reviewed_at \
             FROM review_schedule s JOIN model_versions v ON v.id = s.version_id JOIN models m ON m.id = v.model_id \
             ORDER BY s.next_review_at, m.name, v.number",
        )
        .fetch_all(self.reader())
        .await
        .map_err(db_err)?;
        rows.iter().map(scheduled_review_from_row).collect()
    }

    async fn active_policy(&self) -> Result<Option<StoredPolicy>> {
        let row = sqlx::query(policy_select!()).fetch_optional(self.reader()).await.map_err(db_err)?;
        row.as_ref().map(policy_from_row).transpose()
    }
}

#[async_trait::async_trait]
impl GovernanceWrites for Tx {
    async fn insert_user(&mut self, user: &User) -> Result<()> {
        // `DO NOTHING` rather than a failed statement: on PostgreSQL an error
        // aborts the whole transaction; this way both backends keep it usable.
        let done = sqlx::query(
            "INSERT INTO users (name, roles, team, disabled, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.name)
        .bind(roles_to_db(&user.roles)?)
        .bind(&user.team)
        .bind(user.disabled)
        .bind(time_to_db(&user.created_at))
        .bind(&user.created_by)
        .bind(time_to_db(&user.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::already_exists("user", &user.name));
        }
        Ok(())
    }

    async fn lock_user(&mut self, name: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users u WHERE u.name = $1", for_update!()))
            .bind(name)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn update_user(&mut self, user: &User) -> Result<()> {
        let done = sqlx::query("UPDATE users SET roles = $1, team = $2, disabled = $3, updated_at = $4 WHERE name = $5")
            .bind(roles_to_db(&user.roles)?)
            .bind(&user.team)
            .bind(user.disabled)
            .bind(time_to_db(&user.updated_at))
            .bind(&user.name)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("user", &user.name));
        }
        Ok(())
    }

    async fn insert_token(&mut self, token: &ApiToken, secret_hash: &str) -> Result<()> {
        // Inserts only for an existing user and a free id, without a failed
        // statement (which would abort a PostgreSQL transaction).
        let done = sqlx::query(
            "INSERT INTO api_tokens (id, name, user_name, secret_hash, created_at, created_by, expires_at, revoked_at, scope) \
             SELECT $1, $2, u.name, $4, $5, $6, $7, $8, $9 FROM users u WHERE u.name = $3 ON CONFLICT (id) DO NOTHING",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(&token.user)
        .bind(secret_hash)
        .bind(time_to_db(&token.created_at))
        .bind(&token.created_by)
        .bind(token.expires_at.as_ref().map(time_to_db))
        .bind(token.revoked_at.as_ref().map(time_to_db))
        .bind(token.scope.as_ref().map(serde_json::to_string).transpose().map_err(|e| Error::Internal(e.to_string()))?)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        let user: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE name = $1").bind(&token.user).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        match user {
            None => Err(Error::not_found("user", &token.user)),
            // 48 random bits met an existing id: the caller draws another.
            Some(_) => Err(Error::Conflict(format!("token id `{}` is taken; retry", token.id))),
        }
    }

    async fn lock_token(&mut self, id: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(concat!("SELECT ", token_columns!(), " FROM api_tokens t WHERE t.id = $1", for_update!()))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn update_token(&mut self, token: &ApiToken) -> Result<()> {
        let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(token.revoked_at.as_ref().map(time_to_db))
            .bind(&token.id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("token", &token.id));
        }
        Ok(())
    }

    async fn version_approvals(&mut self, model: &ModelName, version: u32) -> Result<Vec<Approval>> {
        let id = self.version_id(model, version).await?;
        let rows = sqlx::query(concat!(approval_select!(), " WHERE a.version_id = $1 ORDER BY a.id"))
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err)?;
        rows.iter().map(approval_from_row).collect()
    }

    async fn version_evidence(&mut self, model: &ModelName, version: u32) -> Result<Vec<Evidence>> {
        let id = self.version_id(model, version).await?;
        let rows = sqlx::query(concat!(evidence_select!(), " WHERE e.version_id = $1 ORDER BY e.id"))
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err)?;
        rows.iter().map(evidence_from_row).collect()
    }

    async fn insert_approval(&mut self, a: &Approval) -> Result<()> {
        let id = self.version_id(&a.model, a.version).await?;
        sqlx::query(
            "INSERT INTO approvals (version_id, approver, roles, decision, comment, conditions, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(&a.approver)
        .bind(roles_to_db(&a.roles)?)
        .bind(a.decision.as_str())
        .bind(&a.comment)
        .bind(&a.conditions)
        .bind(a.expires_at.as_ref().map(time_to_db))
        .bind(time_to_db(&a.created_at))
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn insert_evidence(&mut self, e: &Evidence) -> Result<()> {
        // SQLite stores NaN as NULL and JSON has no infinities: a value that
        // would not read back as written is refused, whatever the caller checked.
        if let Some(v) = e.value.filter(|v| !v.is_finite()) {
            return Err(Error::invalid("value", format!("`{v}` is not a finite number")));
        }
        let size = e
            .document
            .as_ref()
            .map(|d| i64::try_from(d.size).map_err(|_| Error::invalid("document.size", format!("`{}` is too large", d.size))))
            .transpose()?;
        let id = self.version_id(&e.model, e.version).await?;
        sqlx::query(
            "INSERT INTO evidence (version_id, kind, name, value, dataset, document_sha256, document_size, document_filename, \
             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(e.kind.as_str())
        .bind(&e.name)
        .bind(e.value)
        .bind(&e.dataset)
        .bind(e.document.as_ref().map(|d| d.sha256.as_str()))
        .bind(size)
        .bind(e.document.as_ref().map(|d| d.filename.as_str()))
        .bind(time_to_db(&e.created_at))
        .bind(&e.created_by)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn insert_review(&mut self, r: &Review) -> Result<()> {
        let id = self.version_id(&r.model, r.version).await?;
        sqlx::query(
            "INSERT INTO reviews (version_id, reviewer, outcome, comment, reviewed_at, next_review_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&r.reviewer)
        .bind(r.outcome.as_str())
        .bind(&r.comment)
        .bind(time_to_db(&r.reviewed_at))
        .bind(time_to_db(&r.next_review_at))
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn set_next_review(&mut self, model: &ModelName, version: u32, at: Option<DateTime<Utc>>) -> Result<()> {
        let id = self.version_id(model, version).await?;
        let query = match at {
            Some(at) => sqlx::query(
                "INSERT INTO review_schedule (version_id, next_review_at) VALUES ($1, $2) \
                 ON CONFLICT (version_id) DO UPDATE SET next_review_at = excluded.next_review_at",
            )
            .bind(id)
            .bind(time_to_db(&at)),
            None => sqlx::query("DELETE FROM review_schedule WHERE version_id = $1").bind(id),
        };
        query.execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }

    async fn next_review(&mut self, model: &ModelName, version: u32) -> Result<Option<DateTime<Utc>>> {
        let id = self.version_id(model, version).await?;
        let at: Option<TimeCol> = sqlx::query_scalar("SELECT next_review_at FROM review_schedule WHERE version_id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        at.map(time_from_db).transpose()
    }

    async fn insert_policy(&mut self, p: &StoredPolicy) -> Result<()> {
        sqlx::query("INSERT INTO policies (sha256, source, format, loaded_at, loaded_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(p.sha256.as_str())
            .bind(&p.source)
            .bind(&p.format)
            .bind(time_to_db(&p.loaded_at))
            .bind(&p.loaded_by)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn locked_policy(&mut self) -> Result<Option<StoredPolicy>> {
        // Policies change only inside write transactions, which hold the
        // write lock this one holds: the row read here stays the active one.
        let row = sqlx::query(policy_select!()).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        row.as_ref().map(policy_from_row).transpose()
    }
}
