// Live monitoring, for both backends: reference profiles, monitors, alerts
// and retraining requests changed inside a transaction with their audit
// events (`MonitorWrites` on `Tx`), and the bookkeeping the engine does on
// its own (`MonitorStore` on the store: state, window results, labels,
// delivery attempts), each call its own statement or transaction. Included
// as the `monitoring` module of `sqlite.rs` and `postgres.rs`.

use super::rows::{col, to_u32};
use super::tx::Tx;
use super::{time_from_db, time_to_db, Db, DbRow, ThisStore, TimeCol};
use crate::error::{corrupt, db_err};
use chrono::{DateTime, Utc};
use modelops_core::deployment::{PredictionRecord, RecordRoute};
use modelops_core::monitoring::{Alert, AlertState, Monitor, MonitorSpec, ReferenceData, ReferenceProfile, RetrainRequest, WindowResult};
use modelops_core::name::ModelName;
use modelops_core::repo::{MonitorStore, MonitorWrites};
use modelops_core::{Error, Result};
use sqlx::QueryBuilder;

fn to_i64(field: &str, n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::invalid(field, format!("`{n}` is too large")))
}

fn to_u64(what: &str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| corrupt(what, n))
}

fn json_text<T: serde::Serialize>(what: &str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("cannot store {what} as JSON: {e}")))
}

fn reference_from_row(row: &DbRow) -> Result<ReferenceProfile> {
    Ok(ReferenceProfile {
        model: ModelName::from_stored(col(row, "model")?),
        version: to_u32(col(row, "version")?)?,
        sha256: col(row, "sha256")?,
        profile: col(row, "profile")?,
        source: col(row, "source")?,
        rows: to_u64("reference rows", col(row, "rows_count")?)?,
        estimator: col(row, "estimator")?,
        data: match (col::<Option<String>>(row, "data_sha256")?, col::<Option<String>>(row, "data_filename")?) {
            (Some(sha256), Some(filename)) => Some(ReferenceData { sha256, filename }),
            _ => None,
        },
        created_at: time_from_db(col::<TimeCol>(row, "created_at")?)?,
        created_by: col(row, "created_by")?,
    })
}

fn monitor_from_row(row: &DbRow) -> Result<Monitor> {
    let deployment = ModelName::from_stored(col(row, "deployment")?);
    let body: String = col(row, "body")?;
    let spec: MonitorSpec = serde_json::from_str(&body).map_err(|e| corrupt("monitor", format!("`{deployment}`: {e}")))?;
    Ok(Monitor {
        deployment,
        spec,
        created_at: time_from_db(col::<TimeCol>(row, "created_at")?)?,
        created_by: col(row, "created_by")?,
    })
}

fn result_from_row(row: &DbRow) -> Result<WindowResult> {
    let body: String = col(row, "body")?;
    let closed: i64 = col(row, "closed")?;
    Ok(WindowResult {
        deployment: ModelName::from_stored(col(row, "deployment")?),
        monitor: col(row, "monitor")?,
        version: to_u32(col(row, "version")?)?,
        start: time_from_db(col::<TimeCol>(row, "window_start")?)?,
        end: time_from_db(col::<TimeCol>(row, "window_end")?)?,
        rows: to_u64("window rows", col(row, "rows_count")?)?,
        closed: closed != 0,
        body: serde_json::from_str(&body).map_err(|e| corrupt("monitor result", e))?,
        computed_at: time_from_db(col::<TimeCol>(row, "computed_at")?)?,
    })
}

fn alert_from_row(row: &DbRow) -> Result<Alert> {
    let state: String = col(row, "state")?;
    let detail: String = col(row, "detail")?;
    Ok(Alert {
        id: col(row, "id")?,
        deployment: ModelName::from_stored(col(row, "deployment")?),
        monitor: col(row, "monitor")?,
        rule: col(row, "rule")?,
        state: AlertState::parse_field("state", &state).map_err(|_| corrupt("alert state", &state))?,
        version: to_u32(col(row, "version")?)?,
        window_start: time_from_db(col::<TimeCol>(row, "window_start")?)?,
        fired_at: time_from_db(col::<TimeCol>(row, "fired_at")?)?,
        resolved_at: col::<Option<TimeCol>>(row, "resolved_at")?.map(time_from_db).transpose()?,
        detail: serde_json::from_str(&detail).map_err(|e| corrupt("alert detail", e))?,
    })
}

#[async_trait::async_trait]
impl MonitorWrites for Tx {
    async fn insert_reference(&mut self, r: &ReferenceProfile) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO reference_profiles (model, version, sha256, profile, source, rows_count, estimator, created_at, created_by, data_sha256, data_filename) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (model, version) DO NOTHING",
        )
        .bind(r.model.as_str())
        .bind(i64::from(r.version))
        .bind(&r.sha256)
        .bind(&r.profile)
        .bind(&r.source)
        .bind(to_i64("rows", r.rows)?)
        .bind(r.estimator.as_deref())
        .bind(time_to_db(&r.created_at))
        .bind(&r.created_by)
        .bind(r.data.as_ref().map(|d| d.sha256.as_str()))
        .bind(r.data.as_ref().map(|d| d.filename.as_str()))
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::already_exists("reference profile of version", format!("{}/{}", r.model, r.version)));
        }
        Ok(())
    }

    async fn insert_monitor(&mut self, m: &Monitor) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO monitors (deployment, name, body, created_at, created_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (deployment, name) DO NOTHING",
        )
        .bind(m.deployment.as_str())
        .bind(&m.spec.name)
        .bind(json_text("a monitor", &m.spec)?)
        .bind(time_to_db(&m.created_at))
        .bind(&m.created_by)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(Error::already_exists("monitor", format!("{}/{}", m.deployment, m.spec.name)));
        }
        Ok(())
    }

    async fn delete_monitor(&mut self, deployment: &ModelName, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM monitors WHERE deployment = $1 AND name = $2")
            .bind(deployment.as_str())
            .bind(name)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        for sql in [
            "DELETE FROM monitor_states WHERE deployment = $1 AND name = $2",
            "DELETE FROM monitor_results WHERE deployment = $1 AND monitor = $2",
        ] {
            sqlx::query(sql).bind(deployment.as_str()).bind(name).execute(&mut *self.tx).await.map_err(db_err)?;
        }
        Ok(done.rows_affected() > 0)
    }

    async fn insert_alert(&mut self, a: &Alert) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO alerts (deployment, monitor, rule, state, version, window_start, fired_at, resolved_at, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(a.deployment.as_str())
        .bind(&a.monitor)
        .bind(&a.rule)
        .bind(a.state.as_str())
        .bind(i64::from(a.version))
        .bind(time_to_db(&a.window_start))
        .bind(time_to_db(&a.fired_at))
        .bind(a.resolved_at.as_ref().map(time_to_db))
        .bind(json_text("an alert", &a.detail)?)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db_err)
    }

    async fn resolve_alert(&mut self, id: i64, at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE alerts SET state = $2, resolved_at = $3 WHERE id = $1")
            .bind(id)
            .bind(AlertState::Resolved.as_str())
            .bind(time_to_db(&at))
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn insert_retrain_request(&mut self, r: &RetrainRequest) -> Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO retrain_requests (model, deployment, alert_id, reason, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(r.model.as_str())
        .bind(r.deployment.as_str())
        .bind(r.alert_id)
        .bind(&r.reason)
        .bind(&r.state)
        .bind(time_to_db(&r.created_at))
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db_err)
    }
}

#[async_trait::async_trait]
impl MonitorStore for ThisStore {
    async fn reference(&self, model: &ModelName, version: u32) -> Result<Option<ReferenceProfile>> {
        let row = sqlx::query(
            "SELECT model, version, sha256, profile, source, rows_count, estimator, created_at, created_by, data_sha256, data_filename \
             FROM reference_profiles WHERE model = $1 AND version = $2",
        )
        .bind(model.as_str())
        .bind(i64::from(version))
        .fetch_optional(self.reader())
        .await
        .map_err(db_err)?;
        row.as_ref().map(reference_from_row).transpose()
    }

    async fn monitors(&self, deployment: Option<&ModelName>) -> Result<Vec<Monitor>> {
        let mut qb = QueryBuilder::<Db>::new("SELECT deployment, name, body, created_at, created_by FROM monitors");
        if let Some(d) = deployment {
            qb.push(" WHERE deployment = ").push_bind(d.as_str().to_owned());
        }
        qb.push(" ORDER BY deployment, name");
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(monitor_from_row).collect()
    }

    async fn monitor_state(&self, deployment: &ModelName, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT body FROM monitor_states WHERE deployment = $1 AND name = $2")
            .bind(deployment.as_str())
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)
    }

    async fn put_monitor_state(&self, deployment: &ModelName, name: &str, state: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Only while the monitor exists: a state written after its deletion
        // would otherwise outlive it.
        sqlx::query(
            "INSERT INTO monitor_states (deployment, name, body) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM monitors WHERE deployment = $1 AND name = $2) \
             ON CONFLICT (deployment, name) DO UPDATE SET body = excluded.body",
        )
        .bind(deployment.as_str())
        .bind(name)
        .bind(state)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn put_result(&self, r: &WindowResult) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO monitor_results (deployment, monitor, window_start, version, window_end, rows_count, closed, body, computed_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9 WHERE EXISTS (SELECT 1 FROM monitors WHERE deployment = $1 AND name = $2) \
             ON CONFLICT (deployment, monitor, window_start, version) DO UPDATE SET \
             window_end = excluded.window_end, rows_count = excluded.rows_count, closed = excluded.closed, \
             body = excluded.body, computed_at = excluded.computed_at",
        )
        .bind(r.deployment.as_str())
        .bind(&r.monitor)
        .bind(time_to_db(&r.start))
        .bind(i64::from(r.version))
        .bind(time_to_db(&r.end))
        .bind(to_i64("rows", r.rows)?)
        .bind(i64::from(r.closed))
        .bind(json_text("a window result", &r.body)?)
        .bind(time_to_db(&r.computed_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn results(&self, deployment: &ModelName, monitor: &str, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<WindowResult>> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT deployment, monitor, window_start, version, window_end, rows_count, closed, body, computed_at \
             FROM monitor_results WHERE deployment = ",
        );
        qb.push_bind(deployment.as_str().to_owned()).push(" AND monitor = ").push_bind(monitor.to_owned());
        if let Some(since) = since {
            qb.push(" AND window_start >= ").push_bind(time_to_db(&since));
        }
        qb.push(" ORDER BY window_start, version LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(result_from_row).collect()
    }

    async fn queue_relabels(&self, deployment: &ModelName, times: &[DateTime<Utc>]) -> Result<()> {
        let mut distinct: Vec<&DateTime<Utc>> = times.iter().collect();
        distinct.sort();
        distinct.dedup();
        for chunk in distinct.chunks(1000) {
            let mut qb = QueryBuilder::<Db>::new("INSERT INTO relabel_requests (deployment, at) ");
            qb.push_values(chunk, |mut row, at| {
                row.push_bind(deployment.as_str()).push_bind(time_to_db(at));
            });
            qb.push(" ON CONFLICT (deployment, at) DO NOTHING");
            qb.build().execute(self.writer_pool()).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn take_relabels(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        // One statement: a note added meanwhile is either taken now or
        // stays for the next pass, never lost.
        let rows = sqlx::query("DELETE FROM relabel_requests RETURNING deployment, at").fetch_all(self.writer_pool()).await.map_err(db_err)?;
        rows.iter().map(|row| Ok((col(row, "deployment")?, time_from_db(col::<TimeCol>(row, "at")?)?))).collect()
    }

    async fn put_labels(&self, deployment: &ModelName, labels: &[(String, String)], at: DateTime<Utc>) -> Result<Vec<Option<DateTime<Utc>>>> {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        for chunk in labels.chunks(1000) {
            let mut qb = QueryBuilder::<Db>::new("INSERT INTO prediction_labels (deployment, request_id, label, at) ");
            qb.push_values(chunk, |mut row, (id, label)| {
                row.push_bind(deployment.as_str()).push_bind(id.as_str()).push_bind(label.as_str()).push_bind(time_to_db(&at));
            });
            qb.push(" ON CONFLICT (deployment, request_id) DO UPDATE SET label = excluded.label, at = excluded.at");
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        let mut found: std::collections::HashMap<String, DateTime<Utc>> = std::collections::HashMap::new();
        for chunk in labels.chunks(1000) {
            let mut qb = QueryBuilder::<Db>::new("SELECT request_id, MIN(at) AS at FROM prediction_records WHERE deployment = ");
            qb.push_bind(deployment.as_str().to_owned()).push(" AND request_id IN (");
            let mut sep = qb.separated(", ");
            for (id, _) in chunk {
                sep.push_bind(id.clone());
            }
            qb.push(") GROUP BY request_id");
            for row in qb.build().fetch_all(&mut *tx).await.map_err(db_err)? {
                found.insert(col(&row, "request_id")?, time_from_db(col::<TimeCol>(&row, "at")?)?);
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(labels.iter().map(|(id, _)| found.get(id).copied()).collect())
    }

    async fn labeled_predictions(
        &self,
        deployment: &ModelName,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(PredictionRecord, String)>> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT p.id, p.deployment, p.at, p.request_id, p.model, p.version, p.route, p.inputs, p.outputs, p.error, \
             p.latency_us, l.label FROM prediction_records p JOIN prediction_labels l \
             ON l.deployment = p.deployment AND l.request_id = p.request_id WHERE p.deployment = ",
        );
        qb.push_bind(deployment.as_str().to_owned());
        qb.push(" AND p.at >= ").push_bind(time_to_db(&since));
        qb.push(" AND p.at < ").push_bind(time_to_db(&until));
        if let Some(after) = after_id {
            qb.push(" AND p.id > ").push_bind(after);
        }
        qb.push(" ORDER BY p.id LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let route: String = col(row, "route")?;
                let latency: i64 = col(row, "latency_us")?;
                let record = PredictionRecord {
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
                };
                Ok((record, col(row, "label")?))
            })
            .collect()
    }

    async fn alerts(&self, deployment: Option<&ModelName>, firing_only: bool, limit: u32) -> Result<Vec<Alert>> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT id, deployment, monitor, rule, state, version, window_start, fired_at, resolved_at, detail FROM alerts",
        );
        let mut sep = " WHERE ";
        if let Some(d) = deployment {
            qb.push(sep).push("deployment = ").push_bind(d.as_str().to_owned());
            sep = " AND ";
        }
        if firing_only {
            qb.push(sep).push("state = ").push_bind(AlertState::Firing.as_str());
        }
        qb.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn update_alert_detail(&self, id: i64, detail: &serde_json::Value) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE alerts SET detail = $2 WHERE id = $1")
            .bind(id)
            .bind(json_text("an alert", detail)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn retrain_requests(&self, model: Option<&ModelName>) -> Result<Vec<RetrainRequest>> {
        let mut qb = QueryBuilder::<Db>::new("SELECT id, model, deployment, alert_id, reason, state, created_at FROM retrain_requests");
        if let Some(m) = model {
            qb.push(" WHERE model = ").push_bind(m.as_str().to_owned());
        }
        qb.push(" ORDER BY id");
        let rows = qb.build().fetch_all(self.reader()).await.map_err(db_err)?;
        rows.iter().map(retrain_request_from_row).collect()
    }
}

/// A row of `retrain_requests` (`SELECT id, model, deployment, alert_id, reason, state, created_at`).
pub(super) fn retrain_request_from_row(row: &DbRow) -> Result<RetrainRequest> {
    Ok(RetrainRequest {
        id: col(row, "id")?,
        model: ModelName::from_stored(col(row, "model")?),
        deployment: ModelName::from_stored(col(row, "deployment")?),
        alert_id: col(row, "alert_id")?,
        reason: col(row, "reason")?,
        state: col(row, "state")?,
        created_at: time_from_db(col::<TimeCol>(row, "created_at")?)?,
    })
}
