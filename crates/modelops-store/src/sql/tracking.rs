// Experiment tracking for both backends (`TrackingStore`): experiments,
// runs, params, metrics and tags. Included as the `tracking` module of
// `sqlite.rs` and `postgres.rs`. Each method is one statement or one
// transaction of its own; none takes the registry's write lock (the audit
// head), as tracking writes no audit events. Refusals are found without a
// failing statement (`ON CONFLICT DO NOTHING`, reads first), which would
// abort a PostgreSQL transaction.

use super::rows::col;
use super::{Db, DbRow, ThisStore};
use crate::error::{corrupt, db_err};
use modelops_core::tracking::{
    ArtifactFile, DatasetInput, Experiment, ExperimentUpdate, LifecycleStage, LoggedModel, LoggedModelStatus, Metric, MetricValue, NewExperiment, Run,
    RunBatch, RunInfo, RunStatus, RunUpdate, TrackingStore,
};
use modelops_core::version::Sha256Hex;
use sqlx::QueryBuilder;
use modelops_core::{Error, Result};
use std::collections::HashMap;

macro_rules! experiment_select {
    () => {
        "SELECT id, name, artifact_location, lifecycle_stage, creation_time, last_update_time FROM experiments"
    };
}

macro_rules! run_select {
    () => {
        "SELECT run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage FROM runs"
    };
}

fn stage_from_db(text: &str) -> Result<LifecycleStage> {
    LifecycleStage::parse(text).ok_or_else(|| corrupt("lifecycle stage", text))
}

fn experiment_from_row(row: &DbRow) -> Result<Experiment> {
    let stage: String = col(row, "lifecycle_stage")?;
    Ok(Experiment {
        id: col(row, "id")?,
        name: col(row, "name")?,
        artifact_location: col(row, "artifact_location")?,
        lifecycle_stage: stage_from_db(&stage)?,
        creation_time: col(row, "creation_time")?,
        last_update_time: col(row, "last_update_time")?,
        tags: Vec::new(),
    })
}

fn run_info_from_row(row: &DbRow) -> Result<RunInfo> {
    let stage: String = col(row, "lifecycle_stage")?;
    let status: String = col(row, "status")?;
    Ok(RunInfo {
        run_id: col(row, "run_id")?,
        run_name: col(row, "run_name")?,
        experiment_id: col(row, "experiment_id")?,
        user_id: col(row, "user_id")?,
        status: RunStatus::parse("status", &status).map_err(|_| corrupt("run status", &status))?,
        start_time: col(row, "start_time")?,
        end_time: col(row, "end_time")?,
        artifact_uri: col(row, "artifact_uri")?,
        lifecycle_stage: stage_from_db(&stage)?,
    })
}

/// NaN is stored as NULL with `is_nan` set.
fn metric_value_from_row(row: &DbRow) -> Result<MetricValue> {
    let value: Option<f64> = col(row, "value")?;
    let is_nan: bool = col(row, "is_nan")?;
    Ok(MetricValue {
        value: if is_nan { f64::NAN } else { value.ok_or_else(|| corrupt("metric value", "NULL without is_nan"))? },
        timestamp: col(row, "timestamp")?,
        step: col(row, "step")?,
    })
}

fn stored_value(value: f64) -> (Option<f64>, bool) {
    if value.is_nan() {
        (None, true)
    } else {
        (Some(value), false)
    }
}

macro_rules! logged_model_select {
    () => {
        "SELECT model_id, experiment_id, name, artifact_uri, status, model_type, source_run_id, creation_time, last_update_time FROM logged_models"
    };
}

fn logged_model_from_row(row: &DbRow) -> Result<LoggedModel> {
    let status: String = col(row, "status")?;
    Ok(LoggedModel {
        model_id: col(row, "model_id")?,
        experiment_id: col(row, "experiment_id")?,
        name: col(row, "name")?,
        artifact_uri: col(row, "artifact_uri")?,
        status: LoggedModelStatus::parse("status", &status).map_err(|_| corrupt("logged model status", &status))?,
        model_type: col(row, "model_type")?,
        source_run_id: col(row, "source_run_id")?,
        creation_time: col(row, "creation_time")?,
        last_update_time: col(row, "last_update_time")?,
        tags: Vec::new(),
        params: Vec::new(),
    })
}

fn artifact_file_from_row(row: &DbRow) -> Result<ArtifactFile> {
    let sha256: String = col(row, "sha256")?;
    let size: i64 = col(row, "size")?;
    Ok(ArtifactFile {
        path: col(row, "path")?,
        sha256: Sha256Hex::parse_field("sha256", sha256).map_err(|e| corrupt("artifact digest", e))?,
        size: u64::try_from(size).map_err(|_| corrupt("artifact size", size))?,
    })
}

/// The first path after every path under `dir/` in byte order: `/` + 1 is `0`.
fn after_dir(dir: &str) -> String {
    format!("{dir}0")
}

fn logged_model_not_found(model_id: &str) -> Error {
    Error::not_found("logged model", model_id)
}

/// Rows per multi-row metric statement: 6 parameters each, well under
/// both databases' limits on bound parameters.
const METRIC_ROWS_PER_STATEMENT: usize = 500;

fn run_not_found(run_id: &str) -> Error {
    Error::not_found("run", run_id)
}

impl ThisStore {
    async fn experiment_tags(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<(String, String)>>> {
        let mut tags: HashMap<i64, Vec<(String, String)>> = HashMap::new();
        if ids.is_empty() {
            return Ok(tags);
        }
        let rows = sqlx::query("SELECT experiment_id, key, value FROM experiment_tags ORDER BY experiment_id, key")
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        for row in rows {
            let id: i64 = col(&row, "experiment_id")?;
            if ids.contains(&id) {
                tags.entry(id).or_default().push((col(&row, "key")?, col(&row, "value")?));
            }
        }
        Ok(tags)
    }

    async fn with_tags(&self, mut experiments: Vec<Experiment>) -> Result<Vec<Experiment>> {
        let ids: Vec<i64> = experiments.iter().map(|e| e.id).collect();
        let mut tags = self.experiment_tags(&ids).await?;
        for e in &mut experiments {
            e.tags = tags.remove(&e.id).unwrap_or_default();
        }
        Ok(experiments)
    }

    /// The datasets and logged models the runs `wanted` read, in the order
    /// logged: only their rows (a dataset's schema and profile can be
    /// megabytes, so never every run's).
    async fn run_inputs(&self, wanted: &std::collections::HashSet<String>) -> Result<(HashMap<String, Vec<DatasetInput>>, HashMap<String, Vec<String>>)> {
        let ids: Vec<&String> = wanted.iter().collect();
        let mut datasets: HashMap<String, Vec<DatasetInput>> = HashMap::new();
        let mut models: HashMap<String, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(500) {
            let mut qb = of_runs("SELECT run_id, name, digest, source_type, source, schema, profile, tags FROM run_dataset_inputs", chunk);
            qb.push(" ORDER BY run_id, position, name, digest");
            for row in qb.build().fetch_all(self.reader()).await.map_err(db_err)? {
                let run_id: String = col(&row, "run_id")?;
                let tags: String = col(&row, "tags")?;
                let tags: Vec<(String, String)> = serde_json::from_str(&tags)
                    .map_err(|e| Error::Internal(format!("the tags of a dataset input of run `{run_id}` are not [key, value] pairs: {e}")))?;
                datasets.entry(run_id).or_default().push(DatasetInput {
                    name: col(&row, "name")?,
                    digest: col(&row, "digest")?,
                    source_type: col(&row, "source_type")?,
                    source: col(&row, "source")?,
                    schema: col(&row, "schema")?,
                    profile: col(&row, "profile")?,
                    tags,
                });
            }
            let mut qb = of_runs("SELECT run_id, model_id FROM run_model_inputs", chunk);
            qb.push(" ORDER BY run_id, position, model_id");
            for row in qb.build().fetch_all(self.reader()).await.map_err(db_err)? {
                models.entry(col(&row, "run_id")?).or_default().push(col(&row, "model_id")?);
            }
        }
        Ok((datasets, models))
    }

    /// The data (latest metrics, params, tags) of the runs in `infos`: of
    /// one run, or read for every run and kept for these.
    async fn runs_with_data(&self, infos: Vec<RunInfo>) -> Result<Vec<Run>> {
        let one = match infos.as_slice() {
            [only] => Some(only.run_id.clone()),
            _ => None,
        };
        let wanted: std::collections::HashSet<String> = infos.iter().map(|i| i.run_id.clone()).collect();
        let fetch = |all: &'static str, of_one: &'static str| {
            let query = match &one {
                Some(id) => sqlx::query(of_one).bind(id.clone()),
                None => sqlx::query(all),
            };
            query.fetch_all(self.reader())
        };
        let mut metrics: HashMap<String, Vec<Metric>> = HashMap::new();
        let rows = fetch(
            "SELECT run_id, key, value, is_nan, timestamp, step FROM latest_metrics ORDER BY key",
            "SELECT run_id, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_id = $1 ORDER BY key",
        )
        .await
        .map_err(db_err)?;
        for row in rows {
            let run_id: String = col(&row, "run_id")?;
            if wanted.contains(&run_id) {
                let metric = Metric { key: col(&row, "key")?, value: metric_value_from_row(&row)? };
                metrics.entry(run_id).or_default().push(metric);
            }
        }
        let pairs = |rows: Vec<DbRow>| -> Result<HashMap<String, Vec<(String, String)>>> {
            let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
            for row in rows {
                let run_id: String = col(&row, "run_id")?;
                if wanted.contains(&run_id) {
                    out.entry(run_id).or_default().push((col(&row, "key")?, col(&row, "value")?));
                }
            }
            Ok(out)
        };
        let mut params = pairs(
            fetch("SELECT run_id, key, value FROM run_params ORDER BY key", "SELECT run_id, key, value FROM run_params WHERE run_id = $1 ORDER BY key")
                .await
                .map_err(db_err)?,
        )?;
        let mut tags = pairs(
            fetch("SELECT run_id, key, value FROM run_tags ORDER BY key", "SELECT run_id, key, value FROM run_tags WHERE run_id = $1 ORDER BY key")
                .await
                .map_err(db_err)?,
        )?;
        let mut outputs: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        let rows = fetch(
            "SELECT run_id, model_id, step FROM run_outputs ORDER BY step, model_id",
            "SELECT run_id, model_id, step FROM run_outputs WHERE run_id = $1 ORDER BY step, model_id",
        )
        .await
        .map_err(db_err)?;
        for row in rows {
            let run_id: String = col(&row, "run_id")?;
            if wanted.contains(&run_id) {
                outputs.entry(run_id).or_default().push((col(&row, "model_id")?, col(&row, "step")?));
            }
        }
        let (mut datasets, mut models) = self.run_inputs(&wanted).await?;
        Ok(infos
            .into_iter()
            .map(|info| Run {
                dataset_inputs: datasets.remove(&info.run_id).unwrap_or_default(),
                model_inputs: models.remove(&info.run_id).unwrap_or_default(),
                metrics: metrics.remove(&info.run_id).unwrap_or_default(),
                params: params.remove(&info.run_id).unwrap_or_default(),
                tags: tags.remove(&info.run_id).unwrap_or_default(),
                model_outputs: outputs.remove(&info.run_id).unwrap_or_default(),
                info,
            })
            .collect())
    }

    /// The tags and params of the logged models in `models`.
    async fn logged_models_with_data(&self, mut models: Vec<LoggedModel>) -> Result<Vec<LoggedModel>> {
        let one = match models.as_slice() {
            [only] => Some(only.model_id.clone()),
            _ => None,
        };
        for (table, is_tags) in [("logged_model_tags", true), ("logged_model_params", false)] {
            let rows = match &one {
                Some(id) => sqlx::query(&format!("SELECT model_id, key, value FROM {table} WHERE model_id = $1 ORDER BY key"))
                    .bind(id.clone())
                    .fetch_all(self.reader())
                    .await,
                None => sqlx::query(&format!("SELECT model_id, key, value FROM {table} ORDER BY key")).fetch_all(self.reader()).await,
            }
            .map_err(db_err)?;
            let mut by_model: HashMap<String, Vec<(String, String)>> = HashMap::new();
            for row in rows {
                by_model.entry(col(&row, "model_id")?).or_default().push((col(&row, "key")?, col(&row, "value")?));
            }
            for model in &mut models {
                let pairs = by_model.remove(&model.model_id).unwrap_or_default();
                if is_tags {
                    model.tags = pairs;
                } else {
                    model.params = pairs;
                }
            }
        }
        Ok(models)
    }
}

#[async_trait::async_trait]
impl TrackingStore for ThisStore {
    async fn insert_experiment(&self, new: &NewExperiment) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time) \
             VALUES ($1, $2, 'active', $3, $3) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(&new.name)
        .bind(&new.artifact_location)
        .bind(new.at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(id) = id else {
            return Err(Error::already_exists("experiment", &new.name));
        };
        for (key, value) in &new.tags {
            set_experiment_tag(&mut tx, id, key, value).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(id)
    }

    async fn experiment(&self, id: i64) -> Result<Option<Experiment>> {
        let row = sqlx::query(concat!(experiment_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.with_tags(vec![experiment_from_row(&row)?]).await?.pop())
    }

    async fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        let row = sqlx::query(concat!(experiment_select!(), " WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.with_tags(vec![experiment_from_row(&row)?]).await?.pop())
    }

    async fn experiments(&self) -> Result<Vec<Experiment>> {
        let rows = sqlx::query(concat!(experiment_select!(), " ORDER BY id"))
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        let experiments = rows.iter().map(experiment_from_row).collect::<Result<Vec<_>>>()?;
        self.with_tags(experiments).await
    }

    async fn update_experiment(&self, id: i64, update: &ExperimentUpdate) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM experiments WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            return Err(Error::not_found("experiment", id.to_string()));
        }
        if let Some(name) = &update.name {
            let taken: Option<i64> = sqlx::query_scalar("SELECT id FROM experiments WHERE name = $1 AND id <> $2")
                .bind(name)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            if taken.is_some() {
                return Err(Error::already_exists("experiment", name));
            }
        }
        sqlx::query(
            "UPDATE experiments SET name = COALESCE($2, name), lifecycle_stage = COALESCE($3, lifecycle_stage), \
             last_update_time = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(&update.name)
        .bind(update.lifecycle_stage.map(LifecycleStage::as_str))
        .bind(update.at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn set_experiment_tag(&self, id: i64, key: &str, value: &str, at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE experiments SET last_update_time = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(Error::not_found("experiment", id.to_string()));
        }
        set_experiment_tag(&mut tx, id, key, value).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn delete_experiment_tag(&self, id: i64, key: &str, at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM experiment_tags WHERE experiment_id = $1 AND key = $2")
            .bind(id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found("experiment tag", key));
        }
        sqlx::query("UPDATE experiments SET last_update_time = $2 WHERE id = $1")
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn insert_run(&self, info: &RunInfo, tags: &[(String, String)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO runs (run_id, experiment_id, run_name, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&info.run_id)
        .bind(info.experiment_id)
        .bind(&info.run_name)
        .bind(&info.user_id)
        .bind(info.status.as_str())
        .bind(info.start_time)
        .bind(info.end_time)
        .bind(&info.artifact_uri)
        .bind(info.lifecycle_stage.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for (key, value) in tags {
            set_run_tag(&mut tx, &info.run_id, key, value).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn run(&self, run_id: &str) -> Result<Option<Run>> {
        let row = sqlx::query(concat!(run_select!(), " WHERE run_id = $1"))
            .bind(run_id)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.runs_with_data(vec![run_info_from_row(&row)?]).await?.pop())
    }

    async fn runs(&self, experiment_ids: &[i64]) -> Result<Vec<Run>> {
        let rows = sqlx::query(concat!(run_select!(), " ORDER BY start_time, run_id"))
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        let mut infos = Vec::new();
        for row in &rows {
            let info = run_info_from_row(row)?;
            if experiment_ids.contains(&info.experiment_id) {
                infos.push(info);
            }
        }
        self.runs_with_data(infos).await
    }

    async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE runs SET status = COALESCE($2, status), end_time = COALESCE($3, end_time), \
             run_name = COALESCE($4, run_name), lifecycle_stage = COALESCE($5, lifecycle_stage) WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(update.status.map(RunStatus::as_str))
        .bind(update.end_time)
        .bind(&update.run_name)
        .bind(update.lifecycle_stage.map(LifecycleStage::as_str))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(run_not_found(run_id));
        }
        tx.commit().await.map_err(db_err)
    }

    async fn log_batch(&self, run_id: &str, batch: &RunBatch) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if !batch.params.is_empty() {
            let rows = sqlx::query("SELECT key, value FROM run_params WHERE run_id = $1")
                .bind(run_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut logged: HashMap<String, String> = HashMap::new();
            for row in rows {
                logged.insert(col(&row, "key")?, col(&row, "value")?);
            }
            for (key, value) in &batch.params {
                match logged.get(key) {
                    Some(old) if old != value => {
                        return Err(Error::invalid(
                            format!("params.{key}"),
                            format!(
                                "changing param values is not allowed: param `{key}` was already logged with value `{old}` for run `{run_id}`; \
                                 the new value was `{value}`"
                            ),
                        ))
                    }
                    Some(_) => {}
                    None => {
                        logged.insert(key.clone(), value.clone());
                        sqlx::query("INSERT INTO run_params (run_id, key, value) VALUES ($1, $2, $3)")
                            .bind(run_id)
                            .bind(key)
                            .bind(value)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                }
            }
        }
        // Every value in multi-row statements (a training loop sends
        // hundreds per batch); the latest per key is found here first, as one
        // statement may not update a row twice.
        for chunk in batch.metrics.chunks(METRIC_ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<super::Db>::new("INSERT INTO metrics (run_id, key, value, is_nan, timestamp, step) ");
            qb.push_values(chunk, |mut row, metric| {
                let (value, is_nan) = stored_value(metric.value.value);
                row.push_bind(run_id).push_bind(&metric.key).push_bind(value).push_bind(is_nan).push_bind(metric.value.timestamp).push_bind(metric.value.step);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        let mut latest: Vec<&Metric> = Vec::new();
        for metric in &batch.metrics {
            match latest.iter_mut().find(|m| m.key == metric.key) {
                Some(current) if metric.value.is_later_than(&current.value) => *current = metric,
                Some(_) => {}
                None => latest.push(metric),
            }
        }
        for chunk in latest.chunks(METRIC_ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<super::Db>::new("INSERT INTO latest_metrics (run_id, key, value, is_nan, timestamp, step) ");
            qb.push_values(chunk, |mut row, metric| {
                let (value, is_nan) = stored_value(metric.value.value);
                row.push_bind(run_id).push_bind(&metric.key).push_bind(value).push_bind(is_nan).push_bind(metric.value.timestamp).push_bind(metric.value.step);
            });
            // The latest value: highest step, then timestamp, then value (NaN
            // above every number), the order of `MetricValue::is_later_than`.
            qb.push(
                " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, \
                 timestamp = excluded.timestamp, step = excluded.step \
                 WHERE excluded.step > latest_metrics.step OR (excluded.step = latest_metrics.step AND ( \
                   excluded.timestamp > latest_metrics.timestamp OR (excluded.timestamp = latest_metrics.timestamp AND ( \
                     (excluded.is_nan AND NOT latest_metrics.is_nan) \
                     OR (NOT excluded.is_nan AND NOT latest_metrics.is_nan AND excluded.value > latest_metrics.value)))))",
            );
            qb.build().execute(&mut *tx).await.map_err(db_err)?;
        }
        for (key, value) in &batch.tags {
            set_run_tag(&mut tx, run_id, key, value).await?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM run_tags WHERE run_id = $1 AND key = $2")
            .bind(run_id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found("run tag", key));
        }
        tx.commit().await.map_err(db_err)
    }

    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricValue>> {
        let rows = sqlx::query(
            "SELECT value, is_nan, timestamp, step FROM metrics WHERE run_id = $1 AND key = $2 ORDER BY step, timestamp, value",
        )
        .bind(run_id)
        .bind(key)
        .fetch_all(self.reader())
        .await
        .map_err(db_err)?;
        rows.iter().map(metric_value_from_row).collect()
    }

    async fn log_run_outputs(&self, run_id: &str, outputs: &[(String, i64)]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        lock_run(&mut tx, run_id).await?;
        for (model_id, step) in outputs {
            sqlx::query("INSERT INTO run_outputs (run_id, model_id, step) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(run_id)
                .bind(model_id)
                .bind(step)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn log_run_inputs(&self, run_id: &str, datasets: &[DatasetInput], models: &[String]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Locked: concurrent calls on one run take positions in turn.
        lock_run(&mut tx, run_id).await?;
        for input in datasets {
            let tags = serde_json::to_string(&input.tags).map_err(|e| Error::Internal(format!("dataset input tags: {e}")))?;
            sqlx::query(
                "INSERT INTO run_dataset_inputs (run_id, position, name, digest, source_type, source, schema, profile, tags) \
                 VALUES ($1, (SELECT COUNT(*) FROM run_dataset_inputs WHERE run_id = $1), $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(&input.name)
            .bind(&input.digest)
            .bind(&input.source_type)
            .bind(&input.source)
            .bind(&input.schema)
            .bind(&input.profile)
            .bind(tags)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        for model_id in models {
            sqlx::query(
                "INSERT INTO run_model_inputs (run_id, position, model_id) \
                 VALUES ($1, (SELECT COUNT(*) FROM run_model_inputs WHERE run_id = $1), $2) ON CONFLICT DO NOTHING",
            )
            .bind(run_id)
            .bind(model_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn insert_logged_model(&self, model: &LoggedModel) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO logged_models (model_id, experiment_id, name, artifact_uri, status, model_type, source_run_id, creation_time, last_update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&model.model_id)
        .bind(model.experiment_id)
        .bind(&model.name)
        .bind(&model.artifact_uri)
        .bind(model.status.as_str())
        .bind(&model.model_type)
        .bind(&model.source_run_id)
        .bind(model.creation_time)
        .bind(model.last_update_time)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for (table, pairs) in [("logged_model_tags", &model.tags), ("logged_model_params", &model.params)] {
            for (key, value) in pairs {
                sqlx::query(&format!(
                    "INSERT INTO {table} (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value"
                ))
                .bind(&model.model_id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn logged_model(&self, model_id: &str) -> Result<Option<LoggedModel>> {
        let row = sqlx::query(concat!(logged_model_select!(), " WHERE model_id = $1"))
            .bind(model_id)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(self.logged_models_with_data(vec![logged_model_from_row(&row)?]).await?.pop())
    }

    async fn logged_models(&self, experiment_ids: &[i64]) -> Result<Vec<LoggedModel>> {
        let rows = sqlx::query(concat!(logged_model_select!(), " ORDER BY creation_time, model_id"))
            .fetch_all(self.reader())
            .await
            .map_err(db_err)?;
        let mut models = Vec::new();
        for row in &rows {
            let model = logged_model_from_row(row)?;
            if experiment_ids.contains(&model.experiment_id) {
                models.push(model);
            }
        }
        self.logged_models_with_data(models).await
    }

    async fn set_logged_model_status(&self, model_id: &str, status: LoggedModelStatus, at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query("UPDATE logged_models SET status = $2, last_update_time = $3 WHERE model_id = $1")
            .bind(model_id)
            .bind(status.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(logged_model_not_found(model_id));
        }
        tx.commit().await.map_err(db_err)
    }

    async fn set_logged_model_tags(&self, model_id: &str, tags: &[(String, String)], at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        touch_logged_model(&mut tx, model_id, at).await?;
        for (key, value) in tags {
            sqlx::query(
                "INSERT INTO logged_model_tags (model_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
            )
            .bind(model_id)
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn delete_logged_model_tag(&self, model_id: &str, key: &str, at: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        touch_logged_model(&mut tx, model_id, at).await?;
        let deleted = sqlx::query("DELETE FROM logged_model_tags WHERE model_id = $1 AND key = $2")
            .bind(model_id)
            .bind(key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if deleted.rows_affected() == 0 {
            return Err(Error::not_found("logged model tag", key));
        }
        tx.commit().await.map_err(db_err)
    }

    async fn put_artifact_file(&self, file: &ArtifactFile, at: i64) -> Result<()> {
        let size = i64::try_from(file.size).map_err(|_| Error::invalid("size", format!("`{}` bytes is too large", file.size)))?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO mlflow_artifacts (path, sha256, size, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, updated_at = excluded.updated_at",
        )
        .bind(&file.path)
        .bind(file.sha256.as_str())
        .bind(size)
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn artifact_file(&self, path: &str) -> Result<Option<ArtifactFile>> {
        let row = sqlx::query("SELECT path, sha256, size FROM mlflow_artifacts WHERE path = $1")
            .bind(path)
            .fetch_optional(self.reader())
            .await
            .map_err(db_err)?;
        row.as_ref().map(artifact_file_from_row).transpose()
    }

    async fn artifact_files_under(&self, dir: &str) -> Result<Vec<ArtifactFile>> {
        let rows = if dir.is_empty() {
            sqlx::query("SELECT path, sha256, size FROM mlflow_artifacts ORDER BY path").fetch_all(self.reader()).await
        } else {
            sqlx::query("SELECT path, sha256, size FROM mlflow_artifacts WHERE path >= $1 AND path < $2 ORDER BY path")
                .bind(format!("{dir}/"))
                .bind(after_dir(dir))
                .fetch_all(self.reader())
                .await
        }
        .map_err(db_err)?;
        rows.iter().map(artifact_file_from_row).collect()
    }

    async fn delete_artifact_files(&self, path: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM mlflow_artifacts WHERE path = $1 OR (path >= $2 AND path < $3)")
            .bind(path)
            .bind(format!("{path}/"))
            .bind(after_dir(path))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(deleted.rows_affected())
    }
}

async fn touch_logged_model(tx: &mut super::tx::SqlTx, model_id: &str, at: i64) -> Result<()> {
    let updated = sqlx::query("UPDATE logged_models SET last_update_time = $2 WHERE model_id = $1")
        .bind(model_id)
        .bind(at)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    if updated.rows_affected() == 0 {
        return Err(logged_model_not_found(model_id));
    }
    Ok(())
}

async fn set_run_tag(tx: &mut super::tx::SqlTx, run_id: &str, key: &str, value: &str) -> Result<()> {
    sqlx::query("INSERT INTO run_tags (run_id, key, value) VALUES ($1, $2, $3) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value")
        .bind(run_id)
        .bind(key)
        .bind(value)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    Ok(())
}

async fn set_experiment_tag(tx: &mut super::tx::SqlTx, id: i64, key: &str, value: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO experiment_tags (experiment_id, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(id)
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// `select` restricted to the rows of the runs `ids`.
fn of_runs<'a>(select: &str, ids: &[&String]) -> QueryBuilder<'a, Db> {
    let mut qb = QueryBuilder::<Db>::new(select);
    qb.push(" WHERE run_id IN (");
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind((*id).clone());
    }
    qb.push(")");
    qb
}

/// Locks run `run_id`'s row until the transaction ends; not found when there
/// is no such run.
async fn lock_run(tx: &mut sqlx::Transaction<'static, Db>, run_id: &str) -> Result<()> {
    let exists: Option<String> = sqlx::query_scalar(concat!("SELECT run_id FROM runs WHERE run_id = $1", for_update!()))
        .bind(run_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    exists.map(|_| ()).ok_or_else(|| run_not_found(run_id))
}
