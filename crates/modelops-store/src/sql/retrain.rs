// Retraining, for both backends: jobs and runs changed inside a transaction
// with their audit events (`RetrainWrites` on `Tx`), and the reads and the
// runs' output outside it (`RetrainStore` on the store). A run is stored as
// JSON with its state, trigger and start repeated in columns for the
// queries that pick runs. Included as the `retrain` module of `sqlite.rs`
// and `postgres.rs`.

use super::rows::col;
use super::tx::Tx;
use super::{time_from_db, time_to_db, Db, DbRow, ThisStore, TimeCol};
use crate::error::{corrupt, db_err};
use chrono::{DateTime, Utc};
use modelops_core::monitoring::RetrainRequest;
use modelops_core::name::ModelName;
use modelops_core::repo::{RetrainStore, RetrainWrites};
use modelops_core::retrain::{JobRun, JobSpec, RetrainJob, RunState, RunTrigger, MAX_LOG_BYTES};
use modelops_core::{Error, Result};
use sqlx::QueryBuilder;

/// The states of a run that has not ended, for `state IN (…)`.
const ACTIVE: [RunState; 4] = [RunState::Running, RunState::AwaitingApproval, RunState::Shadow, RunState::Canary];

fn to_json<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot store {what} as JSON: {e}")))
}

fn job_from_row(row: &DbRow) -> Result<RetrainJob> {
    let model = ModelName::from_stored(col(row, "model")?);
    let body: String = col(row, "body")?;
    let spec: JobSpec = serde_json::from_str(&body).map_err(|e| corrupt("retraining job", format!("`{model}`: {e}")))?;
    Ok(RetrainJob {
        model,
        spec,
        run_as: col(row, "run_as")?,
        created_at: time_from_db(col::<TimeCol>(row, "created_at")?)?,
        updated_at: time_from_db(col::<TimeCol>(row, "updated_at")?)?,
    })
}

fn run_from_row(row: &DbRow) -> Result<JobRun> {
    let id: i64 = col(row, "id")?;
    let body: String = col(row, "body")?;
    let mut run: JobRun = serde_json::from_str(&body).map_err(|e| corrupt("retraining run", format!("{id}: {e}")))?;
    run.id = id;
    run.heartbeat_at = col::<Option<TimeCol>>(row, "heartbeat_at")?.map(time_from_db).transpose()?;
    Ok(run)
}

/// The columns `run_from_row` reads.
const RUN_COLUMNS: &str = "id, body, heartbeat_at";

fn push_active(qb: &mut QueryBuilder<'_, Db>) {
    qb.push("state IN (");
    let mut list = qb.separated(", ");
    for state in ACTIVE {
        list.push_bind(state.as_str());
    }
    qb.push(")");
}

/// The last `MAX_LOG_BYTES` of `log`, cut at a character boundary.
fn tail(log: &str) -> &str {
    if log.len() <= MAX_LOG_BYTES {
        return log;
    }
    let mut start = log.len() - MAX_LOG_BYTES;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

#[async_trait::async_trait]
impl RetrainWrites for Tx {
    async fn put_retrain_job(&mut self, job: &RetrainJob) -> Result<()> {
        sqlx::query(
            "INSERT INTO retrain_jobs (model, body, run_as, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (model) DO UPDATE SET body = excluded.body, run_as = excluded.run_as, updated_at = excluded.updated_at",
        )
        .bind(job.model.as_str())
        .bind(to_json("a retraining job", &job.spec)?)
        .bind(&job.run_as)
        .bind(time_to_db(&job.created_at))
        .bind(time_to_db(&job.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_retrain_job(&mut self, model: &ModelName) -> Result<bool> {
        let done = sqlx::query("DELETE FROM retrain_jobs WHERE model = $1").bind(model.as_str()).execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn retrain_job_in(&mut self, model: &ModelName) -> Result<Option<RetrainJob>> {
        let row = sqlx::query("SELECT model, body, run_as, created_at, updated_at FROM retrain_jobs WHERE model = $1")
            .bind(model.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn insert_job_run(&mut self, run: &JobRun) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO retrain_runs (model, state, trigger, started_at, body) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(run.model.as_str())
        .bind(run.state.as_str())
        .bind(run.trigger.as_str())
        .bind(time_to_db(&run.started_at))
        .bind(to_json("a retraining run", run)?)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db_err)?;
        // The body carries the id too, so a run read whole is the run.
        let stored = JobRun { id, heartbeat_at: None, ..run.clone() };
        sqlx::query("UPDATE retrain_runs SET body = $1 WHERE id = $2").bind(to_json("a retraining run", &stored)?).bind(id).execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(id)
    }

    async fn update_job_run(&mut self, run: &JobRun) -> Result<()> {
        let done = sqlx::query("UPDATE retrain_runs SET state = $1, body = $2 WHERE id = $3")
            .bind(run.state.as_str())
            .bind(to_json("a retraining run", &JobRun { heartbeat_at: None, ..run.clone() })?)
            .bind(run.id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("retraining run", run.id.to_string()));
        }
        Ok(())
    }

    async fn job_run_in(&mut self, id: i64) -> Result<Option<JobRun>> {
        let row = sqlx::query("SELECT id, body, heartbeat_at FROM retrain_runs WHERE id = $1").bind(id).fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn active_job_run_in(&mut self, model: &ModelName) -> Result<Option<JobRun>> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {RUN_COLUMNS} FROM retrain_runs WHERE model = "));
        qb.push_bind(model.as_str().to_owned()).push(" AND ");
        push_active(&mut qb);
        qb.push(" ORDER BY id LIMIT 1");
        let row = qb.build().fetch_optional(&mut *self.tx).await.map_err(db_err)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn last_triggered_run_in(&mut self, model: &ModelName) -> Result<Option<DateTime<Utc>>> {
        let at: Option<TimeCol> = sqlx::query_scalar("SELECT MAX(started_at) FROM retrain_runs WHERE model = $1 AND trigger <> $2")
            .bind(model.as_str())
            .bind(RunTrigger::Manual.as_str())
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err)?;
        at.map(time_from_db).transpose()
    }

    async fn set_retrain_request_state(&mut self, id: i64, state: &str) -> Result<()> {
        sqlx::query("UPDATE retrain_requests SET state = $1 WHERE id = $2").bind(state).bind(id).execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl RetrainStore for ThisStore {
    async fn retrain_job(&self, model: &ModelName) -> Result<Option<RetrainJob>> {
        let row = sqlx::query("SELECT model, body, run_as, created_at, updated_at FROM retrain_jobs WHERE model = $1")
            .bind(model.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn retrain_jobs(&self) -> Result<Vec<RetrainJob>> {
        let rows = sqlx::query("SELECT model, body, run_as, created_at, updated_at FROM retrain_jobs ORDER BY model").fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(job_from_row).collect()
    }

    async fn job_run(&self, id: i64) -> Result<Option<JobRun>> {
        let row = sqlx::query("SELECT id, body, heartbeat_at FROM retrain_runs WHERE id = $1").bind(id).fetch_optional(self.reader()).await.map_err(db_err)?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn job_runs(&self, model: Option<&ModelName>, limit: u32) -> Result<Vec<JobRun>> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {RUN_COLUMNS} FROM retrain_runs"));
        if let Some(m) = model {
            qb.push(" WHERE model = ").push_bind(m.as_str().to_owned());
        }
        qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(run_from_row).collect()
    }

    async fn active_job_runs(&self) -> Result<Vec<JobRun>> {
        let mut qb = QueryBuilder::<Db>::new(format!("SELECT {RUN_COLUMNS} FROM retrain_runs WHERE "));
        push_active(&mut qb);
        qb.push(" ORDER BY id");
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(run_from_row).collect()
    }

    async fn open_retrain_requests(&self) -> Result<Vec<RetrainRequest>> {
        let rows = sqlx::query("SELECT id, model, deployment, alert_id, reason, state, created_at FROM retrain_requests WHERE state = 'open' ORDER BY id")
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        rows.iter().map(super::monitoring::retrain_request_from_row).collect()
    }

    async fn job_run_log(&self, id: i64) -> Result<String> {
        let log: Option<String> = sqlx::query_scalar("SELECT log FROM retrain_runs WHERE id = $1").bind(id).fetch_optional(self.reader()).await.map_err(db_err)?;
        log.ok_or_else(|| Error::not_found("retraining run", id.to_string()))
    }

    async fn put_job_run_log(&self, id: i64, log: &str, at: DateTime<Utc>) -> Result<()> {
        // PostgreSQL's text refuses NUL; a job may print anything.
        let log = tail(log).replace('\0', "\u{FFFD}");
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE retrain_runs SET log = $1, heartbeat_at = $2 WHERE id = $3")
            .bind(log)
            .bind(time_to_db(&at))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}
