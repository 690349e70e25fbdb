// Deployments and prediction records, for both backends: reading
// deployments (`DeploymentReads` on the store), changing them inside a
// transaction (`DeploymentWrites` on `Tx`), and the prediction log
// (`PredictionLog` on the store). Included as the `deployments` module of
// `sqlite.rs` and `postgres.rs`.
//
// A deployment is stored whole as JSON (`body`) beside the columns queries
// filter and order by (name, model, state, revision, times), all written from
// the same value. The prediction log is bookkeeping like tracking: each call
// is a statement or a transaction of its own, outside the registry's write
// lock, with no audit event. Refusals inside a transaction (a taken name) are
// found without a failing statement, which would abort a PostgreSQL
// transaction.

use super::rows::{col, to_u32};
use super::tx::Tx;
use super::{time_from_db, time_to_db, Db, DbRow, ThisStore, TimeCol};
use crate::error::{corrupt, db_err};
use chrono::{DateTime, Utc};
use modelops_core::deployment::{Deployment, DeploymentState, PredictionQuery, PredictionRecord, RecordRoute};
use modelops_core::name::ModelName;
use modelops_core::repo::{DeploymentReads, DeploymentWrites, PredictionLog};
use modelops_core::{Error, Result};
use sqlx::QueryBuilder;

macro_rules! deployment_select {
    () => {
        "SELECT name, model, body FROM deployments"
    };
}

macro_rules! prediction_columns {
    () => {
        "deployment, at, request_id, model, version, route, inputs, outputs, error, latency_us"
    };
}

/// Rows per multi-row INSERT of prediction records: 10 parameters each, so
/// 10,000 per statement, well under SQLite's 32,766 and PostgreSQL's 65,535.
/// Larger statements gain nothing measurable.
const PREDICTION_ROWS_PER_STATEMENT: usize = 1000;

/// A deployment from its row. The name and model are the columns', read as
/// stored ([`ModelName::from_stored`]): a name written under older rules stays
/// readable, where deserialising it from the body would apply today's.
fn deployment_from_row(row: &DbRow) -> Result<Deployment> {
    let name = ModelName::from_stored(col(row, "name")?);
    let model = ModelName::from_stored(col(row, "model")?);
    let body: String = col(row, "body")?;
    let unreadable = |e: serde_json::Error| corrupt("deployment", format!("`{name}`: {e}"));
    let mut value: serde_json::Value = serde_json::from_str(&body).map_err(unreadable)?;
    if let Some(fields) = value.as_object_mut() {
        // Placeholders any rule accepts; replaced by the columns below.
        fields.insert("name".into(), "stored".into());
        fields.insert("model".into(), "stored".into());
    }
    let mut deployment: Deployment = serde_json::from_value(value).map_err(unreadable)?;
    deployment.name = name;
    deployment.model = model;
    Ok(deployment)
}

/// The `body` text. A number JSON cannot hold (NaN, infinite) would be
/// written as `null` and make the row unreadable: refused here, whatever the
/// caller checked.
fn deployment_body(d: &Deployment) -> Result<String> {
    if !d.sampling.is_finite() {
        return Err(Error::invalid("sampling", format!("`{}` is not a finite number", d.sampling)));
    }
    if let Some((i, s)) = d.shadows.iter().enumerate().find(|(_, s)| !s.percent.is_finite()) {
        return Err(Error::invalid(format!("shadows[{i}].percent"), format!("`{}` is not a finite number", s.percent)));
    }
    serde_json::to_string(d).map_err(|e| Error::Internal(format!("cannot store a deployment as JSON: {e}")))
}

fn revision_to_db(d: &Deployment) -> Result<i64> {
    i64::try_from(d.revision).map_err(|_| Error::invalid("revision", format!("`{}` is too large", d.revision)))
}

fn prediction_from_row(row: &DbRow) -> Result<PredictionRecord> {
    let route: String = col(row, "route")?;
    let latency: i64 = col(row, "latency_us")?;
    Ok(PredictionRecord {
        id: col(row, "id")?,
        request_id: col(row, "request_id")?,
        at: time_from_db(col::<TimeCol>(row, "at")?)?,
        deployment: ModelName::from_stored(col(row, "deployment")?),
        model: ModelName::from_stored(col(row, "model")?),
        version: to_u32(col(row, "version")?)?,
        route: RecordRoute::parse_field("route", &route).map_err(|_| corrupt("prediction route", &route))?,
        inputs: col(row, "inputs")?,
        outputs: col(row, "outputs")?,
        error: col(row, "error")?,
        latency_us: u64::try_from(latency).map_err(|_| corrupt("prediction latency", latency))?,
    })
}

/// A row of `PredictionQuery::payload_only`'s narrower select.
fn payload_from_row(row: &DbRow) -> Result<PredictionRecord> {
    Ok(PredictionRecord {
        id: col(row, "id")?,
        request_id: String::new(),
        at: time_from_db(col::<TimeCol>(row, "at")?)?,
        deployment: ModelName::from_stored(String::new()),
        model: ModelName::from_stored(String::new()),
        version: to_u32(col(row, "version")?)?,
        route: RecordRoute::Primary,
        inputs: col(row, "inputs")?,
        outputs: col(row, "outputs")?,
        error: col(row, "error")?,
        latency_us: 0,
    })
}

#[async_trait::async_trait]
impl DeploymentReads for ThisStore {
    async fn get_deployment(&self, name: &ModelName) -> Result<Option<Deployment>> {
        let row = sqlx::query(concat!(deployment_select!(), " WHERE name = $1"))
            .bind(name.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    async fn list_deployments(&self, model: Option<&ModelName>, include_retired: bool) -> Result<Vec<Deployment>> {
        let mut qb = QueryBuilder::<Db>::new(deployment_select!());
        let mut sep = " WHERE ";
        if let Some(model) = model {
            qb.push(sep).push("model = ").push_bind(model.as_str().to_owned());
            sep = " AND ";
        }
        if !include_retired {
            qb.push(sep).push("state <> ").push_bind(DeploymentState::Retired.as_str());
        }
        qb.push(" ORDER BY name");
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(deployment_from_row).collect()
    }
}

#[async_trait::async_trait]
impl DeploymentWrites for Tx {
    async fn lock_deployment(&mut self, name: &ModelName) -> Result<Option<Deployment>> {
        let row = sqlx::query(concat!(deployment_select!(), " WHERE name = $1", for_update!()))
            .bind(name.as_str())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        row.as_ref().map(deployment_from_row).transpose()
    }

    async fn insert_deployment(&mut self, d: &Deployment) -> Result<()> {
        // `DO NOTHING` rather than a failed statement: on PostgreSQL an error
        // aborts the whole transaction; this way both backends keep it usable.
        let done = sqlx::query(
            "INSERT INTO deployments (name, model, state, revision, body, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        )
        .bind(d.name.as_str())
        .bind(d.model.as_str())
        .bind(d.state.as_str())
        .bind(revision_to_db(d)?)
        .bind(deployment_body(d)?)
        .bind(time_to_db(&d.created_at))
        .bind(time_to_db(&d.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::already_exists("deployment", &d.name));
        }
        Ok(())
    }

    async fn update_deployment(&mut self, d: &Deployment) -> Result<()> {
        let done = sqlx::query("UPDATE deployments SET state = $2, revision = $3, body = $4, updated_at = $5 WHERE name = $1")
            .bind(d.name.as_str())
            .bind(d.state.as_str())
            .bind(revision_to_db(d)?)
            .bind(deployment_body(d)?)
            .bind(time_to_db(&d.updated_at))
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("deployment", &d.name));
        }
        Ok(())
    }

    async fn live_deployments_of(&mut self, model: &ModelName) -> Result<Vec<Deployment>> {
        let rows = sqlx::query(concat!(deployment_select!(), " WHERE model = $1 AND state <> $2 ORDER BY name"))
            .bind(model.as_str())
            .bind(DeploymentState::Retired.as_str())
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err)?;
        rows.iter().map(deployment_from_row).collect()
    }
}

#[async_trait::async_trait]
impl PredictionLog for ThisStore {
    async fn append_predictions(&self, records: &[PredictionRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // Checked before anything is written: the closure that binds a row
        // cannot fail.
        let latencies = records
            .iter()
            .map(|r| i64::try_from(r.latency_us).map_err(|_| Error::invalid("latency_us", format!("`{}` is too large", r.latency_us))))
            .collect::<Result<Vec<i64>>>()?;
        // On SQLite `BEGIN IMMEDIATE` (through the one writer connection), so
        // this never has to upgrade a read lock; no audit head is read.
        let mut tx = self.begin_write().await?;
        for (chunk, latencies) in records.chunks(PREDICTION_ROWS_PER_STATEMENT).zip(latencies.chunks(PREDICTION_ROWS_PER_STATEMENT)) {
            let mut qb = QueryBuilder::<Db>::new(concat!("INSERT INTO prediction_records (", prediction_columns!(), ") "));
            qb.push_values(chunk.iter().zip(latencies), |mut row, (r, latency)| {
                row.push_bind(r.deployment.as_str())
                    .push_bind(time_to_db(&r.at))
                    .push_bind(r.request_id.as_str())
                    .push_bind(r.model.as_str())
                    .push_bind(i64::from(r.version))
                    .push_bind(r.route.as_str())
                    .push_bind(r.inputs.as_str())
                    .push_bind(r.outputs.as_str())
                    .push_bind(r.error.as_deref())
                    .push_bind(*latency);
            });
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn list_predictions(&self, query: &PredictionQuery) -> Result<Vec<PredictionRecord>> {
        let mut qb = QueryBuilder::<Db>::new(if query.payload_only {
            "SELECT id, at, version, inputs, outputs, error FROM prediction_records WHERE deployment = "
        } else {
            concat!("SELECT id, ", prediction_columns!(), " FROM prediction_records WHERE deployment = ")
        });
        qb.push_bind(query.deployment.as_str().to_owned());
        if let Some(after) = query.after_id {
            qb.push(" AND id > ").push_bind(after);
        }
        if let Some(since) = &query.since {
            qb.push(" AND at >= ").push_bind(time_to_db(since));
        }
        if let Some(until) = &query.until {
            qb.push(" AND at < ").push_bind(time_to_db(until));
        }
        qb.push(" ORDER BY id LIMIT ").push_bind(i64::from(query.limit));
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        if query.payload_only {
            rows.iter().map(payload_from_row).collect()
        } else {
            rows.iter().map(prediction_from_row).collect()
        }
    }

    async fn prune_predictions(&self, before: DateTime<Utc>, limit: u32) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        // A bounded slice, oldest first by the `at` index: SQLite has no
        // DELETE … LIMIT by default, and both hold the write briefly.
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "DELETE FROM prediction_records WHERE id IN \
             (SELECT id FROM prediction_records WHERE at < $1 ORDER BY at LIMIT $2)",
        )
        .bind(time_to_db(&before))
        .bind(i64::from(limit))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
