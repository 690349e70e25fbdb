//! MLflow's tracking routes: experiments, runs, params, metrics, tags.
//! Each handler decodes the fields, calls one `Registry` use case (the
//! searches then filter, order and page the use case's answer with
//! [`crate::filter`]) and encodes MLflow's JSON.

use crate::error::MlflowError;
use crate::filter::{self, Entity, Row, Value as FilterValue};
use crate::wire::{self, Caller, Fields};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use modelops_core::page::{decode_token, encode_token};
use modelops_core::tracking::{DatasetInput, Experiment, LifecycleStage, Metric, MetricValue, Run, RunBatch, RunStatus, RunUpdate, ViewType};
use modelops_registry::tracking::NewRun;
use modelops_registry::Registry;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub(crate) type Answer = Result<Json<Value>, MlflowError>;

pub(crate) fn routes() -> Router<Registry> {
    Router::new()
        .route("/experiments/create", post(create_experiment))
        .route("/experiments/get", get(get_experiment))
        .route("/experiments/get-by-name", get(get_experiment_by_name))
        .route("/experiments/search", get(search_experiments).post(search_experiments))
        .route("/experiments/update", post(update_experiment))
        .route("/experiments/delete", post(delete_experiment))
        .route("/experiments/restore", post(restore_experiment))
        .route("/experiments/set-experiment-tag", post(set_experiment_tag))
        .route("/experiments/delete-experiment-tag", post(delete_experiment_tag).delete(delete_experiment_tag))
        .route("/runs/create", post(create_run))
        .route("/runs/get", get(get_run))
        .route("/runs/update", post(update_run))
        .route("/runs/delete", post(delete_run))
        .route("/runs/restore", post(restore_run))
        .route("/runs/search", post(search_runs))
        .route("/runs/log-parameter", post(log_parameter))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/delete-tag", post(delete_tag))
        .route("/runs/log-inputs", post(log_inputs))
        .route("/metrics/get-history", get(metric_history))
}

pub(crate) fn empty() -> Answer {
    Ok(Json(json!({})))
}

/// An experiment id: MLflow's are decimal strings.
pub(crate) fn experiment_id(fields: &Fields, key: &str) -> Result<i64, MlflowError> {
    let text = fields.required(key)?;
    text.parse().map_err(|_| MlflowError::not_found(format!("No Experiment with id={text} exists")))
}

pub(crate) fn run_id(fields: &Fields) -> Result<String, MlflowError> {
    fields.required_any(&["run_id", "run_uuid"])
}

pub(crate) fn not_found_as(message: String) -> impl FnOnce(modelops_core::Error) -> MlflowError {
    move |e| match e {
        modelops_core::Error::NotFound { .. } => MlflowError::not_found(message),
        other => other.into(),
    }
}

async fn create_experiment(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = fields.required("name")?;
    let location = fields.str("artifact_location")?;
    let tags = fields.key_values("tags")?;
    let id = registry.create_experiment(&caller, &name, location, tags).await.map_err(|e| match e {
        modelops_core::Error::AlreadyExists { .. } => {
            MlflowError::new("RESOURCE_ALREADY_EXISTS", format!("Experiment(name={name}) already exists."))
        }
        other => other.into(),
    })?;
    Ok(Json(json!({"experiment_id": id.to_string()})))
}

async fn get_experiment(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = experiment_id(&fields, "experiment_id")?;
    let experiment = registry.experiment(&caller, id).await.map_err(not_found_as(format!("No Experiment with id={id} exists")))?;
    Ok(Json(json!({"experiment": wire::experiment(&experiment)})))
}

async fn get_experiment_by_name(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = fields.required("experiment_name")?;
    let experiment =
        registry.experiment_by_name(&caller, &name).await.map_err(not_found_as(format!("Could not find experiment with name '{name}'")))?;
    Ok(Json(json!({"experiment": wire::experiment(&experiment)})))
}

/// A page's position in an offset-paged list (MLflow's own token is
/// base64 of `{"offset": N}` too; clients treat tokens as opaque).
#[derive(Serialize, Deserialize)]
struct Offset {
    offset: usize,
}

/// The page of `items` a request asks for, and the token of the next one.
pub(crate) fn page<T>(items: Vec<T>, fields: &Fields, default: usize, max: usize) -> Result<(Vec<T>, Option<String>), MlflowError> {
    let size = match fields.i64("max_results")? {
        None => default,
        Some(n) if n >= 1 && usize::try_from(n).is_ok_and(|n| n <= max) => usize::try_from(n).unwrap_or(default),
        Some(n) => return Err(MlflowError::invalid(format!("Invalid value {n} for parameter 'max_results' supplied: it must be between 1 and {max}."))),
    };
    let start = match fields.str("page_token")?.filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => decode_token::<Offset>(&token).map_err(|_| MlflowError::invalid(format!("Invalid page token {token}")))?.offset,
    };
    let total = items.len();
    let end = start.saturating_add(size).min(total);
    let next = (end < total).then(|| encode_token(&Offset { offset: end }));
    Ok((items.into_iter().skip(start).take(size).collect(), next))
}

fn view_type(fields: &Fields, key: &str) -> Result<ViewType, MlflowError> {
    match fields.str(key)? {
        None => Ok(ViewType::ActiveOnly),
        Some(text) => ViewType::parse(key, &text).map_err(MlflowError::from),
    }
}

/// Experiments as filter rows: `name` and tags (what MLflow's experiment
/// filters use, as registered-model filters do).
struct ExperimentRow<'a>(&'a Experiment);

impl Row for ExperimentRow<'_> {
    fn attribute(&self, name: &str) -> Option<FilterValue<'_>> {
        (name == "name").then_some(FilterValue::Str(&self.0.name))
    }
    fn metric(&self, _: &str) -> Option<f64> {
        None
    }
    fn param(&self, _: &str) -> Option<&str> {
        None
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.0.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn dataset(&self, _: &str) -> Vec<&str> {
        Vec::new()
    }
}

async fn search_experiments(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let view = view_type(&fields, "view_type")?;
    let filter = filter::parse_filter(Entity::RegisteredModel, &fields.str("filter")?.unwrap_or_default())
        .map_err(|e| MlflowError::invalid(e.to_string()))?;
    let mut experiments: Vec<Experiment> = registry
        .experiments(&caller)
        .await?
        .into_iter()
        .filter(|e| view.includes(e.lifecycle_stage) && filter.matches(Entity::RegisteredModel, &ExperimentRow(e)))
        .collect();
    // Default: newest first, as MLflow's server orders them.
    let order = fields.list("order_by")?;
    let mut keys = Vec::new();
    for clause in &order {
        let mut words = clause.split_whitespace();
        let field = words.next().unwrap_or_default().trim_start_matches("attributes.").trim_start_matches("attribute.");
        let ascending = match words.next().map(str::to_ascii_uppercase).as_deref() {
            None | Some("ASC") => true,
            Some("DESC") => false,
            Some(other) => return Err(MlflowError::invalid(format!("Invalid order_by clause '{clause}': `{other}` is not ASC or DESC"))),
        };
        if !matches!(field, "name" | "experiment_id" | "creation_time" | "last_update_time") || words.next().is_some() {
            return Err(MlflowError::invalid(format!(
                "Invalid order_by clause '{clause}': order by name, experiment_id, creation_time or last_update_time"
            )));
        }
        keys.push((field.to_string(), ascending));
    }
    experiments.sort_by(|a, b| {
        for (field, ascending) in &keys {
            let ordering = match field.as_str() {
                "name" => a.name.cmp(&b.name),
                "experiment_id" => a.id.cmp(&b.id),
                "creation_time" => a.creation_time.cmp(&b.creation_time),
                _ => a.last_update_time.cmp(&b.last_update_time),
            };
            let ordering = if *ascending { ordering } else { ordering.reverse() };
            if ordering.is_ne() {
                return ordering;
            }
        }
        if keys.is_empty() {
            b.creation_time.cmp(&a.creation_time).then(a.id.cmp(&b.id))
        } else {
            a.id.cmp(&b.id)
        }
    });
    let (items, next) = page(experiments, &fields, 1000, 50_000)?;
    let mut answer = json!({"experiments": items.iter().map(wire::experiment).collect::<Vec<_>>()});
    if let Some(token) = next {
        answer["next_page_token"] = json!(token);
    }
    Ok(Json(answer))
}

async fn update_experiment(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = experiment_id(&fields, "experiment_id")?;
    let new_name = fields.required("new_name")?;
    registry.rename_experiment(&caller, id, &new_name).await.map_err(|e| match e {
        modelops_core::Error::AlreadyExists { .. } => {
            MlflowError::new("RESOURCE_ALREADY_EXISTS", format!("Experiment(name={new_name}) already exists."))
        }
        modelops_core::Error::NotFound { .. } => MlflowError::not_found(format!("No Experiment with id={id} exists")),
        other => other.into(),
    })?;
    empty()
}

async fn set_stage(registry: &Registry, caller: &modelops_core::auth::Principal, fields: &Fields, stage: LifecycleStage) -> Answer {
    let id = experiment_id(fields, "experiment_id")?;
    registry.set_experiment_stage(caller, id, stage).await.map_err(not_found_as(format!("No Experiment with id={id} exists")))?;
    empty()
}

async fn delete_experiment(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    set_stage(&registry, &caller, &fields, LifecycleStage::Deleted).await
}

async fn restore_experiment(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    set_stage(&registry, &caller, &fields, LifecycleStage::Active).await
}

async fn set_experiment_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = experiment_id(&fields, "experiment_id")?;
    let key = fields.required("key")?;
    let value = fields.str("value")?.unwrap_or_default();
    registry.set_experiment_tag(&caller, id, &key, &value).await.map_err(not_found_as(format!("No Experiment with id={id} exists")))?;
    empty()
}

async fn delete_experiment_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = experiment_id(&fields, "experiment_id")?;
    let key = fields.required("key")?;
    registry.delete_experiment_tag(&caller, id, &key).await?;
    empty()
}

fn run_not_found(id: &str) -> impl FnOnce(modelops_core::Error) -> MlflowError {
    not_found_as(format!("Run with id={id} not found"))
}

async fn create_run(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    // Runs started with no experiment go to the default one, as in MLflow.
    let experiment_id = match fields.str("experiment_id")?.filter(|s| !s.is_empty()) {
        None => modelops_core::tracking::DEFAULT_EXPERIMENT_ID,
        Some(text) => text.parse().map_err(|_| MlflowError::not_found(format!("No Experiment with id={text} exists")))?,
    };
    let new = NewRun {
        experiment_id,
        start_time: fields.i64("start_time")?,
        run_name: fields.str("run_name")?,
        tags: fields.key_values("tags")?,
    };
    let run = registry.create_run(&caller, new).await.map_err(not_found_as(format!("No Experiment with id={experiment_id} exists")))?;
    Ok(Json(json!({"run": wire::run(&run)})))
}

async fn get_run(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let run = registry.run(&caller, &id).await.map_err(run_not_found(&id))?;
    Ok(Json(json!({"run": wire::run(&run)})))
}

async fn update_run(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let status = fields.str("status")?.map(|s| RunStatus::parse("status", &s)).transpose()?;
    let update = RunUpdate { status, end_time: fields.i64("end_time")?, run_name: fields.str("run_name")?, lifecycle_stage: None };
    let info = registry.update_run(&caller, &id, update).await.map_err(run_not_found(&id))?;
    Ok(Json(json!({"run_info": wire::run_info(&info)})))
}

async fn delete_run(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    registry.set_run_stage(&caller, &id, LifecycleStage::Deleted).await.map_err(run_not_found(&id))?;
    empty()
}

async fn restore_run(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    registry.set_run_stage(&caller, &id, LifecycleStage::Active).await.map_err(run_not_found(&id))?;
    empty()
}

async fn log(registry: &Registry, caller: &modelops_core::auth::Principal, id: &str, batch: RunBatch) -> Answer {
    registry.log_batch(caller, id, batch).await.map_err(run_not_found(id))?;
    empty()
}

async fn log_parameter(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let key = fields.required("key")?;
    let value = fields.str("value")?.unwrap_or_default();
    log(&registry, &caller, &id, RunBatch { params: vec![(key, value)], ..RunBatch::default() }).await
}

fn metric_of(fields: &Fields) -> Result<Metric, MlflowError> {
    let key = fields.required("key")?;
    let value = fields.f64("value")?.ok_or_else(|| MlflowError::missing("value"))?;
    let timestamp = fields.i64("timestamp")?.ok_or_else(|| MlflowError::missing("timestamp"))?;
    Ok(Metric { key, value: MetricValue { value, timestamp, step: fields.i64("step")?.unwrap_or(0) } })
}

async fn log_metric(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    log(&registry, &caller, &id, RunBatch { metrics: vec![metric_of(&fields)?], ..RunBatch::default() }).await
}

async fn log_batch(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let metrics = fields.objects("metrics")?.iter().map(metric_of).collect::<Result<Vec<_>, _>>()?;
    let batch = RunBatch { metrics, params: fields.key_values("params")?, tags: fields.key_values("tags")? };
    log(&registry, &caller, &id, batch).await
}

async fn set_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let key = fields.required("key")?;
    let value = fields.str("value")?.unwrap_or_default();
    log(&registry, &caller, &id, RunBatch { tags: vec![(key, value)], ..RunBatch::default() }).await
}

async fn log_inputs(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let datasets = fields
        .objects("datasets")?
        .iter()
        .map(|input| {
            let dataset = input.object("dataset")?.ok_or_else(|| MlflowError::missing("datasets.dataset"))?;
            Ok(DatasetInput {
                name: dataset.required("name")?,
                digest: dataset.required("digest")?,
                source_type: dataset.required("source_type")?,
                source: dataset.required("source")?,
                schema: dataset.str("schema")?,
                profile: dataset.str("profile")?,
                tags: input.key_values("tags")?,
            })
        })
        .collect::<Result<Vec<_>, MlflowError>>()?;
    let models = fields.objects("models")?.iter().map(|m| m.required("model_id")).collect::<Result<Vec<_>, MlflowError>>()?;
    registry.log_run_inputs(&caller, &id, &datasets, &models).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "logged model", key } => MlflowError::not_found(format!("Logged model with ID '{key}' not found.")),
        other => run_not_found(&id)(other),
    })?;
    empty()
}

async fn delete_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let key = fields.required("key")?;
    registry.delete_run_tag(&caller, &id, &key).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "run tag", .. } => MlflowError::not_found(format!("No tag with name: {key} in run with id {id}")),
        other => run_not_found(&id)(other),
    })?;
    empty()
}

async fn metric_history(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let key = fields.required("metric_key")?;
    let values = registry.metric_history(&caller, &id, &key).await.map_err(run_not_found(&id))?;
    let (items, next) = page(values, &fields, 25_000, 25_000)?;
    let mut answer = json!({"metrics": items.iter().map(|v| wire::metric(&key, v)).collect::<Vec<_>>()});
    if let Some(token) = next {
        answer["next_page_token"] = json!(token);
    }
    Ok(Json(answer))
}

/// Runs as filter rows.
struct RunRow<'a>(&'a Run);

impl Row for RunRow<'_> {
    fn attribute(&self, name: &str) -> Option<FilterValue<'_>> {
        let info = &self.0.info;
        #[allow(clippy::cast_precision_loss)] // milliseconds: exact below 2^53
        match name {
            "run_id" => Some(FilterValue::Str(&info.run_id)),
            "run_name" => Some(FilterValue::Str(&info.run_name)),
            "status" => Some(FilterValue::Str(info.status.as_str())),
            "user_id" => Some(FilterValue::Str(&info.user_id)),
            "artifact_uri" => Some(FilterValue::Str(&info.artifact_uri)),
            "lifecycle_stage" => Some(FilterValue::Str(info.lifecycle_stage.as_str())),
            "start_time" | "created" => Some(FilterValue::Num(info.start_time as f64)),
            "end_time" => info.end_time.map(|t| FilterValue::Num(t as f64)),
            _ => None,
        }
    }
    fn metric(&self, key: &str) -> Option<f64> {
        self.0.metrics.iter().find(|m| m.key == key).map(|m| m.value.value)
    }
    fn param(&self, key: &str) -> Option<&str> {
        self.0.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.0.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn dataset(&self, _: &str) -> Vec<&str> {
        Vec::new()
    }
}

async fn search_runs(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let experiment_ids = fields
        .list("experiment_ids")?
        .iter()
        .map(|text| text.parse::<i64>().map_err(|_| MlflowError::not_found(format!("No Experiment with id={text} exists"))))
        .collect::<Result<Vec<_>, _>>()?;
    let view = view_type(&fields, "run_view_type")?;
    let filter = filter::parse_filter(Entity::Run, &fields.str("filter")?.unwrap_or_default()).map_err(|e| MlflowError::invalid(e.to_string()))?;
    let order = filter::parse_order_by(Entity::Run, &fields.list("order_by")?).map_err(|e| MlflowError::invalid(e.to_string()))?;
    let mut runs: Vec<Run> = registry
        .runs(&caller, &experiment_ids)
        .await?
        .into_iter()
        .filter(|r| view.includes(r.info.lifecycle_stage) && filter.matches(Entity::Run, &RunRow(r)))
        .collect();
    // The order asked for, then MLflow's default: newest first, then by id.
    runs.sort_by(|a, b| {
        filter::compare(&order, &RunRow(a), &RunRow(b))
            .then_with(|| b.info.start_time.cmp(&a.info.start_time))
            .then_with(|| a.info.run_id.cmp(&b.info.run_id))
    });
    let (items, next) = page(runs, &fields, 1000, 50_000)?;
    let mut answer = json!({"runs": items.iter().map(wire::run).collect::<Vec<_>>()});
    if let Some(token) = next {
        answer["next_page_token"] = json!(token);
    }
    Ok(Json(answer))
}
