//! MLflow's model registry routes over the governed inventory (see
//! `modelops_registry::mlflow` for what each call means there): registered
//! models, versions, tags, aliases, stages and searches. A refusal by
//! policy answers `PERMISSION_DENIED` with the failing reasons.

use crate::error::MlflowError;
use crate::filter::{self, Clause, Entity, Key, Literal, Op, Row, Value as FilterValue};
use crate::tracking::{empty, page, Answer};
use crate::wire::{self, Caller, Fields};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use modelops_core::auth::Principal;
use modelops_core::model::Model;
use modelops_core::name::{AliasName, ModelName, TagKey};
use modelops_core::repo::TagTarget;
use modelops_registry::mlflow::{MlflowVersion, NewMlflowVersion, Stage};
use modelops_registry::Registry;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(crate) fn routes() -> Router<Registry> {
    Router::new()
        .route("/registered-models/create", post(create_model))
        .route("/registered-models/get", get(get_model))
        .route("/registered-models/search", get(search_models).post(search_models))
        .route("/registered-models/update", axum::routing::patch(update_model))
        .route("/registered-models/rename", post(rename_model))
        .route("/registered-models/delete", axum::routing::delete(delete_model))
        .route("/registered-models/set-tag", post(set_model_tag))
        .route("/registered-models/delete-tag", axum::routing::delete(delete_model_tag))
        .route("/registered-models/alias", post(set_alias).delete(delete_alias).get(get_by_alias))
        .route("/registered-models/get-latest-versions", post(latest_versions).get(latest_versions))
        .route("/model-versions/create", post(create_version))
        .route("/model-versions/get", get(get_version))
        .route("/model-versions/update", axum::routing::patch(update_version))
        .route("/model-versions/transition-stage", post(transition_stage))
        .route("/model-versions/delete", axum::routing::delete(delete_version))
        .route("/model-versions/search", get(search_versions).post(search_versions))
        .route("/model-versions/get-download-uri", get(download_uri))
        .route("/model-versions/set-tag", post(set_version_tag))
        .route("/model-versions/delete-tag", axum::routing::delete(delete_version_tag))
}

// ---------------------------------------------------------------- decoding and errors

fn model_name(fields: &Fields) -> Result<ModelName, MlflowError> {
    let text = fields.required("name")?;
    Ok(ModelName::parse_field("name", text)?)
}

fn version_number(fields: &Fields) -> Result<u32, MlflowError> {
    let text = fields.required("version")?;
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| MlflowError::invalid(format!("Parameter 'version' must be a positive integer, got '{text}'.")))
}

fn tag_key(fields: &Fields) -> Result<TagKey, MlflowError> {
    Ok(TagKey::parse(fields.required("key")?)?)
}

/// MLflow's texts for the missing model or version.
fn registry_error(name: &ModelName, version: Option<u32>) -> impl FnOnce(modelops_core::Error) -> MlflowError + '_ {
    move |e| match (e, version) {
        (modelops_core::Error::NotFound { what: "version", .. }, Some(v)) => {
            MlflowError::not_found(format!("Model Version (name={name}, version={v}) not found"))
        }
        (modelops_core::Error::NotFound { what: "model", .. }, _) => MlflowError::not_found(format!("Registered Model with name={name} not found")),
        (modelops_core::Error::AlreadyExists { what: "model", key }, _) => {
            MlflowError::new("RESOURCE_ALREADY_EXISTS", format!("Registered Model (name={key}) already exists."))
        }
        (other, _) => other.into(),
    }
}

// ---------------------------------------------------------------- encoding

fn version_json(v: &MlflowVersion) -> Value {
    let version = &v.version;
    let mut value = json!({
        "name": version.model.as_str(),
        "version": version.number.to_string(),
        "creation_timestamp": version.created_at.timestamp_millis(),
        "last_updated_timestamp": version.updated_at.timestamp_millis(),
        "user_id": version.created_by,
        "current_stage": v.stage().as_str(),
        "description": version.description,
        "source": v.source(),
        "run_id": v.run_id().unwrap_or_default(),
        // Registered in one step: the files are in the store before the
        // version exists (an absent status makes the client wait 300 s).
        "status": "READY",
        "status_message": "",
        "tags": wire::key_values(&version.tags.iter().map(|(k, val)| (k.clone(), val.clone())).collect::<Vec<_>>()),
        "run_link": v.run_link(),
        "aliases": version.aliases,
        // Governance, which MLflow's client ignores and people read.
        "lifecycle_state": version.state.as_str(),
        "artifact_sha256": version.artifact.sha256.as_str(),
    });
    if let (Some(id), Some(object)) = (v.model_id(), value.as_object_mut()) {
        object.insert("model_id".into(), json!(id));
    }
    value
}

/// The highest version in each stage, as MLflow's `latest_versions`.
fn latest_per_stage<'a>(versions: impl Iterator<Item = &'a MlflowVersion>, stages: &[Stage]) -> Vec<&'a MlflowVersion> {
    let mut latest: BTreeMap<Stage, &MlflowVersion> = BTreeMap::new();
    for v in versions {
        if !stages.is_empty() && !stages.contains(&v.stage()) {
            continue;
        }
        let slot = latest.entry(v.stage()).or_insert(v);
        if v.version.number > slot.version.number {
            *slot = v;
        }
    }
    latest.into_values().collect()
}

fn model_json(model: &Model, versions: &[&MlflowVersion]) -> Value {
    let tags: Vec<(String, String)> = model.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    json!({
        "name": model.name.as_str(),
        "creation_timestamp": model.created_at.timestamp_millis(),
        "last_updated_timestamp": model.updated_at.timestamp_millis(),
        "user_id": model.owner,
        "description": model.description,
        "tags": wire::key_values(&tags),
        "latest_versions": latest_per_stage(versions.iter().copied(), &[]).into_iter().map(version_json).collect::<Vec<_>>(),
        "aliases": model.aliases.iter().map(|(alias, n)| json!({"alias": alias, "version": n.to_string()})).collect::<Vec<_>>(),
        "kind": model.kind.as_str(),
        "risk_tier": model.risk_tier.as_str(),
        "owner": model.owner,
    })
}

async fn model_answer(registry: &Registry, caller: &Principal, name: &ModelName) -> Answer {
    let model = registry.mlflow_model(caller, name).await.map_err(registry_error(name, None))?;
    let versions = registry.mlflow_latest_versions_of(caller, std::slice::from_ref(name)).await?;
    Ok(Json(json!({"registered_model": model_json(&model, &versions.iter().collect::<Vec<_>>())})))
}

async fn version_answer(registry: &Registry, caller: &Principal, name: &ModelName, number: u32) -> Answer {
    let version = registry.mlflow_version(caller, name, number).await.map_err(registry_error(name, Some(number)))?;
    Ok(Json(json!({"model_version": version_json(&version)})))
}

// ---------------------------------------------------------------- registered models

async fn create_model(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let tags: BTreeMap<String, String> = fields.key_values("tags")?.into_iter().collect();
    let description = fields.str("description")?.unwrap_or_default();
    let model = registry.mlflow_create_model(&caller, name.clone(), description, tags).await.map_err(registry_error(&name, None))?;
    Ok(Json(json!({"registered_model": model_json(&model, &[])})))
}

async fn get_model(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    model_answer(&registry, &caller, &name).await
}

async fn update_model(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    if let Some(description) = fields.str("description")? {
        let patch = modelops_core::model::ModelPatch { description: Some(description), ..Default::default() };
        registry.mlflow_model(&caller, &name).await.map_err(registry_error(&name, None))?;
        registry.update_model(&caller, &name, patch).await.map_err(registry_error(&name, None))?;
    }
    model_answer(&registry, &caller, &name).await
}

async fn rename_model(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let new_name = ModelName::parse_field("new_name", fields.required("new_name")?)?;
    registry.mlflow_model(&caller, &name).await.map_err(registry_error(&name, None))?;
    registry.rename_model(&caller, &name, new_name.clone()).await.map_err(registry_error(&name, None))?;
    model_answer(&registry, &caller, &new_name).await
}

async fn delete_model(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    registry.mlflow_delete_model(&caller, &name).await.map_err(registry_error(&name, None))?;
    empty()
}

async fn set_model_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let key = tag_key(&fields)?;
    let value = fields.str("value")?.unwrap_or_default();
    registry.mlflow_model(&caller, &name).await.map_err(registry_error(&name, None))?;
    registry.set_tag(&caller, &TagTarget::Model(name.clone()), &key, &value).await.map_err(registry_error(&name, None))?;
    empty()
}

async fn delete_model_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let key = tag_key(&fields)?;
    registry.mlflow_model(&caller, &name).await.map_err(registry_error(&name, None))?;
    registry.delete_tag(&caller, &TagTarget::Model(name.clone()), &key).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "tag", .. } => {
            MlflowError::not_found(format!("No tag with name: {key} in registered model with name {name}"))
        }
        other => registry_error(&name, None)(other),
    })?;
    empty()
}

// ---------------------------------------------------------------- aliases

fn alias_name(fields: &Fields) -> Result<AliasName, MlflowError> {
    Ok(AliasName::parse(fields.required("alias")?)?)
}

async fn set_alias(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let alias = alias_name(&fields)?;
    let number = version_number(&fields)?;
    registry.mlflow_version(&caller, &name, number).await.map_err(registry_error(&name, Some(number)))?;
    registry.set_alias(&caller, &name, &alias, number).await.map_err(registry_error(&name, Some(number)))?;
    empty()
}

async fn delete_alias(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let alias = alias_name(&fields)?;
    registry.mlflow_model(&caller, &name).await.map_err(registry_error(&name, None))?;
    registry.delete_alias(&caller, &name, &alias).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "alias", .. } => MlflowError::invalid(format!("Registered model alias {alias} not found.")),
        other => registry_error(&name, None)(other),
    })?;
    empty()
}

async fn get_by_alias(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let alias = alias_name(&fields)?;
    let version = registry.mlflow_version_by_alias(&caller, &name, &alias).await.map_err(|e| match e {
        // MLflow's answer for a missing alias: 400, not 404.
        modelops_core::Error::NotFound { what: "alias", .. } => MlflowError::invalid(format!("Registered model alias {alias} not found.")),
        other => registry_error(&name, None)(other),
    })?;
    Ok(Json(json!({"model_version": version_json(&version)})))
}

async fn latest_versions(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let stages = fields.list("stages")?.iter().map(|s| Stage::parse("stages", s)).collect::<Result<Vec<_>, _>>()?;
    registry.mlflow_model(&caller, &name).await.map_err(registry_error(&name, None))?;
    let versions = registry.mlflow_latest_versions_of(&caller, std::slice::from_ref(&name)).await?;
    let latest = latest_per_stage(versions.iter(), &stages);
    Ok(Json(json!({"model_versions": latest.into_iter().map(version_json).collect::<Vec<_>>()})))
}

// ---------------------------------------------------------------- versions

async fn create_version(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let new = NewMlflowVersion {
        source: fields.required("source")?,
        run_id: fields.str("run_id")?.filter(|s| !s.is_empty()),
        model_id: fields.str("model_id")?.filter(|s| !s.is_empty()),
        run_link: fields.str("run_link")?.unwrap_or_default(),
        description: fields.str("description")?.unwrap_or_default(),
        tags: fields.key_values("tags")?.into_iter().collect(),
    };
    let version = registry.mlflow_create_version(&caller, &name, new).await.map_err(registry_error(&name, None))?;
    Ok(Json(json!({"model_version": version_json(&version)})))
}

async fn get_version(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let number = version_number(&fields)?;
    version_answer(&registry, &caller, &name, number).await
}

async fn update_version(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let number = version_number(&fields)?;
    registry.mlflow_version(&caller, &name, number).await.map_err(registry_error(&name, Some(number)))?;
    if let Some(description) = fields.str("description")? {
        let patch = modelops_core::version::VersionPatch { description: Some(description), card: None };
        registry.update_version(&caller, &name, number, patch).await.map_err(registry_error(&name, Some(number)))?;
    }
    version_answer(&registry, &caller, &name, number).await
}

async fn transition_stage(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let number = version_number(&fields)?;
    let stage = Stage::parse("stage", &fields.required("stage")?)?;
    let archive = fields.bool("archive_existing_versions")?.unwrap_or(false);
    let version = registry.mlflow_transition(&caller, &name, number, stage, archive).await.map_err(registry_error(&name, Some(number)))?;
    Ok(Json(json!({"model_version": version_json(&version)})))
}

async fn delete_version(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let number = version_number(&fields)?;
    registry.mlflow_delete_version(&caller, &name, number).await.map_err(registry_error(&name, Some(number)))?;
    empty()
}

async fn download_uri(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let number = version_number(&fields)?;
    let version = registry.mlflow_version(&caller, &name, number).await.map_err(registry_error(&name, Some(number)))?;
    Ok(Json(json!({"artifact_uri": version.download_uri()})))
}

async fn set_version_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let number = version_number(&fields)?;
    let key = tag_key(&fields)?;
    let value = fields.str("value")?.unwrap_or_default();
    registry.mlflow_version(&caller, &name, number).await.map_err(registry_error(&name, Some(number)))?;
    registry.set_tag(&caller, &TagTarget::Version(name.clone(), number), &key, &value).await.map_err(registry_error(&name, Some(number)))?;
    empty()
}

async fn delete_version_tag(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let name = model_name(&fields)?;
    let number = version_number(&fields)?;
    let key = tag_key(&fields)?;
    registry.mlflow_version(&caller, &name, number).await.map_err(registry_error(&name, Some(number)))?;
    registry.delete_tag(&caller, &TagTarget::Version(name.clone(), number), &key).await.map_err(|e| match e {
        modelops_core::Error::NotFound { what: "tag", .. } => {
            MlflowError::not_found(format!("No tag with name: {key} in model version (name={name}, version={number})"))
        }
        other => registry_error(&name, Some(number))(other),
    })?;
    empty()
}

// ---------------------------------------------------------------- searches

struct ModelRow<'a>(&'a Model);

#[allow(clippy::cast_precision_loss)] // milliseconds: exact below 2^53
impl Row for ModelRow<'_> {
    fn attribute(&self, name: &str) -> Option<FilterValue<'_>> {
        match name {
            "name" => Some(FilterValue::Str(self.0.name.as_str())),
            "creation_timestamp" | "timestamp" => Some(FilterValue::Num(self.0.created_at.timestamp_millis() as f64)),
            "last_updated_timestamp" => Some(FilterValue::Num(self.0.updated_at.timestamp_millis() as f64)),
            _ => None,
        }
    }
    fn metric(&self, _: &str) -> Option<f64> {
        None
    }
    fn param(&self, _: &str) -> Option<&str> {
        None
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.0.tags.get(key).map(String::as_str)
    }
    fn dataset(&self, _: &str) -> Vec<&str> {
        Vec::new()
    }
}

struct VersionRow<'a> {
    version: &'a MlflowVersion,
    source: String,
}

#[allow(clippy::cast_precision_loss)] // milliseconds and version numbers: exact below 2^53
impl Row for VersionRow<'_> {
    fn attribute(&self, name: &str) -> Option<FilterValue<'_>> {
        let v = &self.version.version;
        match name {
            "name" => Some(FilterValue::Str(v.model.as_str())),
            "run_id" => Some(FilterValue::Str(self.version.run_id().unwrap_or_default())),
            "source_path" => Some(FilterValue::Str(&self.source)),
            "version_number" => Some(FilterValue::Num(f64::from(v.number))),
            "creation_timestamp" | "timestamp" => Some(FilterValue::Num(v.created_at.timestamp_millis() as f64)),
            "last_updated_timestamp" => Some(FilterValue::Num(v.updated_at.timestamp_millis() as f64)),
            _ => None,
        }
    }
    fn metric(&self, _: &str) -> Option<f64> {
        None
    }
    fn param(&self, _: &str) -> Option<&str> {
        None
    }
    fn tag(&self, key: &str) -> Option<&str> {
        self.version.version.tags.get(key).map(String::as_str)
    }
    fn dataset(&self, _: &str) -> Vec<&str> {
        Vec::new()
    }
}

fn parsed(entity: Entity, fields: &Fields) -> Result<(filter::Filter, Vec<filter::OrderKey>), MlflowError> {
    let filter = filter::parse_filter(entity, &fields.str("filter")?.unwrap_or_default()).map_err(|e| MlflowError::invalid(e.to_string()))?;
    let order = filter::parse_order_by(entity, &fields.list("order_by")?).map_err(|e| MlflowError::invalid(e.to_string()))?;
    Ok((filter, order))
}

async fn search_models(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let (filter, order) = parsed(Entity::RegisteredModel, &fields)?;
    let listing = registry.mlflow_model_listing(&caller).await?;
    let mut models: Vec<&Model> = listing.models().iter().filter(|m| filter.matches(Entity::RegisteredModel, &ModelRow(m))).collect();
    // The order asked for, then by name (MLflow's default).
    models.sort_by(|a, b| filter::compare(&order, &ModelRow(a), &ModelRow(b)).then_with(|| a.name.cmp(&b.name)));
    let (items, next) = page(models, &fields, 100, 1000)?;
    let names: Vec<ModelName> = items.iter().map(|m| m.name.clone()).collect();
    let versions = registry.mlflow_listing_latest(&caller, &listing, &names).await?;
    let encoded: Vec<Value> = items
        .iter()
        .map(|m| model_json(m, &versions.get(&m.name).map(|v| v.iter().collect::<Vec<_>>()).unwrap_or_default()))
        .collect();
    let mut answer = json!({ "registered_models": encoded });
    if let Some(token) = next {
        answer["next_page_token"] = json!(token);
    }
    Ok(Json(answer))
}

/// The one model a version filter names with `name = '…'`, if it does:
/// then only that model's versions are read.
fn named_model(filter: &filter::Filter) -> Option<ModelName> {
    filter.clauses.iter().find_map(|c: &Clause| match (&c.key, c.op, &c.value) {
        (Key::Attribute(attr), Op::Eq, Literal::Str(name)) if attr == "name" => ModelName::parse(name.clone()).ok(),
        _ => None,
    })
}

async fn search_versions(State(registry): State<Registry>, Caller(caller): Caller, fields: Fields) -> Answer {
    let (filter, order) = parsed(Entity::ModelVersion, &fields)?;
    let versions = match named_model(&filter) {
        Some(name) => registry.mlflow_versions(&caller, Some(&name)).await?,
        None => registry.mlflow_versions(&caller, None).await?,
    };
    let mut rows: Vec<VersionRow<'_>> = versions
        .iter()
        .map(|v| VersionRow { source: v.source(), version: v })
        .filter(|row| filter.matches(Entity::ModelVersion, row))
        .collect();
    // The order asked for, then the most recently updated first, then by
    // name and newest version (MLflow's default).
    rows.sort_by(|a, b| {
        filter::compare(&order, a, b)
            .then_with(|| b.version.version.updated_at.cmp(&a.version.version.updated_at))
            .then_with(|| a.version.version.model.cmp(&b.version.version.model))
            .then_with(|| b.version.version.number.cmp(&a.version.version.number))
    });
    let (items, next) = page(rows, &fields, 10_000, 200_000)?;
    let mut answer = json!({"model_versions": items.iter().map(|row| version_json(row.version)).collect::<Vec<_>>()});
    if let Some(token) = next {
        answer["next_page_token"] = json!(token);
    }
    Ok(Json(answer))
}
