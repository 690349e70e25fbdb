//! MLflow 3's logged models (what every `log_model` call creates before
//! it uploads the files) and a run's outputs.

use crate::error::MlflowError;
use crate::filter::{self, Entity, Row, Value as FilterValue};
use crate::tracking::{empty, experiment_id, not_found_as, page, run_id, Answer};
use crate::wire::{self, Caller, Fields};
use axum::extract::{Path, State};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use modelops_core::tracking::{LoggedModel, LoggedModelStatus};
use modelops_registry::tracking::NewLoggedModel;
use modelops_registry::Registry;
use serde_json::json;

pub(crate) fn routes() -> Router<Registry> {
    Router::new()
        .route("/logged-models", post(create))
        .route("/logged-models/search", post(search))
        .route("/logged-models/{model_id}", get(get_one).patch(finalize))
        .route("/logged-models/{model_id}/tags", patch(set_tags))
        .route("/logged-models/{model_id}/tags/{key}", delete(delete_tag))
        .route("/runs/outputs", post(log_outputs))
}

fn model_not_found(id: &str) -> impl FnOnce(modelops_core::Error) -> MlflowError {
    not_found_as(format!("Logged model with ID '{id}' not found."))
}

async fn create(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let experiment = experiment_id(&fields, "experiment_id")?;
    let new = NewLoggedModel {
        experiment_id: experiment,
        name: fields.str("name")?,
        model_type: fields.str("model_type")?.unwrap_or_default(),
        source_run_id: fields.str("source_run_id")?.filter(|s| !s.is_empty()),
        params: fields.key_values("params")?,
        tags: fields.key_values("tags")?,
    };
    let model = registry.create_logged_model(&caller, new).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "experiment", .. } => MlflowError::not_found(format!("No Experiment with id={experiment} exists")),
        modelops_core::Error::NotFound { key, .. } => MlflowError::not_found(format!("Run with id={key} not found")),
        other => other.into(),
    })?;
    Ok(Json(json!({"model": wire::logged_model(&model)})))
}

async fn get_one(State(registry): State<Registry>, Caller(caller): Caller, Path(id): Path<String>) -> Answer {
    let model = registry.logged_model(&caller, &id).await.map_err(model_not_found(&id))?;
    Ok(Json(json!({"model": wire::logged_model(&model)})))
}

async fn finalize(State(registry): State<Registry>, Caller(caller): Caller, Path(id): Path<String>, fields: Fields) -> Answer {
    let status = fields.str("status")?.ok_or_else(|| MlflowError::missing("status"))?;
    let status = LoggedModelStatus::parse("status", &status)?;
    let model = registry.finalize_logged_model(&caller, &id, status).await.map_err(model_not_found(&id))?;
    Ok(Json(json!({"model": wire::logged_model(&model)})))
}

async fn set_tags(State(registry): State<Registry>, Caller(caller): Caller, Path(id): Path<String>, fields: Fields) -> Answer {
    let tags = fields.key_values("tags")?;
    registry.set_logged_model_tags(&caller, &id, &tags).await.map_err(model_not_found(&id))?;
    let model = registry.logged_model(&caller, &id).await.map_err(model_not_found(&id))?;
    Ok(Json(json!({"model": wire::logged_model(&model)})))
}

async fn delete_tag(State(registry): State<Registry>, Caller(caller): Caller, Path((id, key)): Path<(String, String)>) -> Answer {
    registry.delete_logged_model_tag(&caller, &id, &key).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "logged model tag", .. } => {
            MlflowError::not_found(format!("No tag with key '{key}' found for logged model with ID '{id}'."))
        }
        other => model_not_found(&id)(other),
    })?;
    empty()
}

async fn log_outputs(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let id = run_id(&fields)?;
    let outputs = fields
        .objects("models")?
        .iter()
        .map(|m| Ok((m.required("model_id")?, m.i64("step")?.unwrap_or(0))))
        .collect::<Result<Vec<_>, MlflowError>>()?;
    registry.log_run_outputs(&caller, &id, &outputs).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "logged model", key } => MlflowError::not_found(format!("Logged model with ID '{key}' not found.")),
        modelops_core::Error::NotFound { .. } => MlflowError::not_found(format!("Run with id={id} not found")),
        other => other.into(),
    })?;
    empty()
}

/// Logged models as filter rows.
struct LoggedModelRow<'a>(&'a LoggedModel);

impl Row for LoggedModelRow<'_> {
    fn attribute(&self, name: &str) -> Option<FilterValue<'_>> {
        let m = self.0;
        #[allow(clippy::cast_precision_loss)] // milliseconds: exact below 2^53
        match name {
            "name" => Some(FilterValue::Str(&m.name)),
            "model_id" => Some(FilterValue::Str(&m.model_id)),
            "model_type" => Some(FilterValue::Str(&m.model_type)),
            "status" => Some(FilterValue::Str(m.status.as_str())),
            "source_run_id" => m.source_run_id.as_deref().map(FilterValue::Str),
            "creation_timestamp" => Some(FilterValue::Num(m.creation_time as f64)),
            "last_updated_timestamp" => Some(FilterValue::Num(m.last_update_time as f64)),
            _ => None,
        }
    }
    fn metric(&self, _: &str) -> Option<f64> {
        None
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

/// `POST logged-models/search`: `order_by` comes as objects
/// (`{field_name, ascending}`), read here as the text clauses the filter
/// language orders by.
async fn search(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let experiment_ids = fields
        .list("experiment_ids")?
        .iter()
        .map(|text| text.parse::<i64>().map_err(|_| MlflowError::not_found(format!("No Experiment with id={text} exists"))))
        .collect::<Result<Vec<_>, _>>()?;
    let filter =
        filter::parse_filter(Entity::LoggedModel, &fields.str("filter")?.unwrap_or_default()).map_err(|e| MlflowError::invalid(e.to_string()))?;
    let mut clauses = Vec::new();
    for item in fields.objects("order_by")? {
        let field = item.required("field_name")?;
        let direction = if item.bool("ascending")?.unwrap_or(true) { "ASC" } else { "DESC" };
        clauses.push(format!("{field} {direction}"));
    }
    let order = filter::parse_order_by(Entity::LoggedModel, &clauses).map_err(|e| MlflowError::invalid(e.to_string()))?;
    let mut models: Vec<LoggedModel> = registry
        .logged_models(&caller, &experiment_ids)
        .await
        .map_err(|e| match e {
            modelops_core::Error::NotFound { key, .. } => MlflowError::not_found(format!("No Experiment with id={key} exists")),
            other => other.into(),
        })?
        .into_iter()
        .filter(|m| filter.matches(Entity::LoggedModel, &LoggedModelRow(m)))
        .collect();
    // The order asked for, then newest first, as MLflow's server.
    models.sort_by(|a, b| {
        filter::compare(&order, &LoggedModelRow(a), &LoggedModelRow(b))
            .then_with(|| b.creation_time.cmp(&a.creation_time))
            .then_with(|| a.model_id.cmp(&b.model_id))
    });
    let (items, next) = page(models, &fields, 100, 50_000)?;
    let mut answer = json!({"models": items.iter().map(wire::logged_model).collect::<Vec<_>>()});
    if let Some(token) = next {
        answer["next_page_token"] = json!(token);
    }
    Ok(Json(answer))
}
