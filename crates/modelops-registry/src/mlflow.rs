//! MLflow's model registry in the inventory's terms: what MLflow's
//! registry calls mean for governed models, so a model registered with the
//! `mlflow` client is an ordinary inventory entry with its audit trail and
//! gates.
//!
//! - A registered model is a model of kind `mlflow` (owner and team the
//!   caller's, tier [`MLFLOW_RISK_TIER`] until a risk officer classifies
//!   it). Every active model of any kind is a registered model to MLflow.
//! - A version's artifact is the [`ModelManifest`] of the logged model's
//!   files: content-addressed, so a registered version's files never change
//!   whatever is later written to the run's or logged model's paths; they
//!   are read back from `mlflow-artifacts:/_manifests/<sha256>`.
//! - Deleting is retiring ("nothing is deleted"): MLflow answers as if it
//!   were gone (not found, the name free again), the record and its history
//!   stay, and the audit chain shows the deletion. Creating a deleted name
//!   again restores the model; version numbers continue, never reused.
//! - Stages are the lifecycle seen through MLflow's four words
//!   ([`Stage::of`]); a transition is the governed transition it names
//!   (`Production` is promotion through the gates; `Archived` retires).
//!   Aliases are the inventory's (`champion` is promotion here too).

use crate::tracking::{artifact_path_of, MANIFEST_ROOT};
use crate::{event, lock_active_model, snapshot, version_not_found, Registry};
use modelops_core::audit::model_subject;
use modelops_core::auth::{Action, Principal};
use modelops_core::model::{Model, ModelKind, ModelPatch, ModelState, NewModel, RiskTier};
use modelops_core::name::{quote, ModelName, TagKey};
use modelops_core::repo::TagTarget;
use modelops_core::page::{ModelQuery, PageRequest, MAX_PAGE_SIZE};
use modelops_core::tracking::{ArtifactFile, ManifestFile, ModelManifest, MANIFEST_FILENAME, MANIFEST_FORMAT};
use modelops_core::version::{ArtifactSpec, Lineage, ModelVersion, NewVersion, VersionState};
use modelops_core::{Error, Result};
use modelops_core::audit::ChainHead;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

/// The tier of a model registered through MLflow until a risk officer
/// sets one: medium, so its versions need an independent validator's
/// approval before production (the default policy), never none.
pub const MLFLOW_RISK_TIER: RiskTier = RiskTier::Medium;

/// The tag MLflow marks a prompt's registered model (and versions) with.
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

/// MLflow's model-version stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::None, Stage::Staging, Stage::Production, Stage::Archived];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// MLflow's names, in any case.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        Stage::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| Error::invalid(field, format!("{} is not a stage: None, Staging, Production or Archived", quote(text))))
    }

    /// The stage a lifecycle state shows as: drafts (and rejected versions)
    /// are `None`, versions in validation or approved `Staging`, the
    /// production version `Production`, retired ones `Archived`.
    pub fn of(state: VersionState) -> Self {
        match state {
            VersionState::Draft | VersionState::Rejected => Stage::None,
            VersionState::InValidation | VersionState::Approved => Stage::Staging,
            VersionState::Production => Stage::Production,
            VersionState::Retired => Stage::Archived,
        }
    }
}

/// Every active model at one state of the database (the audit chain's
/// head), and the latest versions of those a search has shown so far.
#[derive(Debug)]
pub struct ModelListing {
    head: Option<ChainHead>,
    models: Vec<Model>,
    latest: Mutex<HashMap<ModelName, Arc<Vec<MlflowVersion>>>>,
}

impl ModelListing {
    /// The active models, by name.
    pub fn models(&self) -> &[Model] {
        &self.models
    }
}

/// A version as MLflow shows it: the version and, when it was registered
/// through MLflow, its manifest (source, run, logged model, files).
#[derive(Debug, Clone, PartialEq)]
pub struct MlflowVersion {
    pub version: ModelVersion,
    pub manifest: Option<ModelManifest>,
}

impl MlflowVersion {
    pub fn stage(&self) -> Stage {
        Stage::of(self.version.state)
    }

    /// Where the version came from: the source it was registered from, or
    /// this server's name for a version pushed through the native API.
    pub fn source(&self) -> String {
        match &self.manifest {
            Some(m) => m.source.clone(),
            None => format!("models:/{}/{}", self.version.model, self.version.number),
        }
    }

    pub fn run_id(&self) -> Option<&str> {
        self.manifest.as_ref().and_then(|m| m.run_id.as_deref()).or(self.version.lineage.mlflow_run_id.as_deref())
    }

    pub fn model_id(&self) -> Option<&str> {
        self.manifest.as_ref().and_then(|m| m.model_id.as_deref())
    }

    pub fn run_link(&self) -> &str {
        self.manifest.as_ref().map_or("", |m| m.run_link.as_str())
    }

    /// Where MLflow's client downloads the version's files from: the
    /// manifest's immutable directory.
    pub fn download_uri(&self) -> String {
        format!("{}{MANIFEST_ROOT}/{}", crate::tracking::ARTIFACT_SCHEME, self.version.artifact.sha256)
    }
}

/// What MLflow's `create_model_version` supplies.
#[derive(Debug, Clone, Default)]
pub struct NewMlflowVersion {
    pub source: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    pub run_link: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
}

fn deleted(name: &ModelName) -> Error {
    Error::not_found("model", name)
}

impl Registry {
    /// A model as MLflow sees it: active (a retired one is deleted to MLflow).
    pub async fn mlflow_model(&self, principal: &Principal, name: &ModelName) -> Result<Model> {
        self.authorize(principal, Action::Read, &model_subject(name.as_str())).await?;
        let model = self.store().get_model(name).await?;
        if model.state != ModelState::Active {
            return Err(deleted(name));
        }
        Ok(model)
    }

    /// Every active model, by name: MLflow's registered models (the
    /// surface filters, orders and pages).
    pub async fn mlflow_models(&self, principal: &Principal) -> Result<Vec<Model>> {
        self.authorize(principal, Action::Read, "models").await?;
        self.active_models().await
    }

    /// Every active model, by name, all pages read.
    async fn active_models(&self) -> Result<Vec<Model>> {
        let mut models = Vec::new();
        let mut token = None;
        loop {
            let query = ModelQuery {
                state: Some(ModelState::Active),
                page: PageRequest { size: MAX_PAGE_SIZE, token },
                ..ModelQuery::default()
            };
            let page = self.store().list_models(&query).await?;
            models.extend(page.items);
            match page.next_page_token {
                Some(next) => token = Some(next),
                None => return Ok(models),
            }
        }
    }

    /// Every active model, by name, as MLflow's searches read them: kept
    /// while the audit chain's head stays where it was, read again once it
    /// moves. Every change to a model, its versions, tags and aliases
    /// appends an event in the change's own transaction, on whichever
    /// replica or process made it, so an unmoved head (sequence and hash)
    /// means nothing a search shows has changed — one small read instead of
    /// every model's row, tags and aliases per search.
    pub async fn mlflow_model_listing(&self, principal: &Principal) -> Result<Arc<ModelListing>> {
        self.authorize(principal, Action::Read, "models").await?;
        let head = self.store().head().await?;
        let kept = self.inner.model_listing.read().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(kept) = kept.filter(|l| l.head == head) {
            return Ok(kept);
        }
        let listing = Arc::new(ModelListing { head, models: self.active_models().await?, latest: Mutex::default() });
        // The last one read is kept (a slower reader's older listing is
        // only read again by the next search: its head no longer matches).
        *self.inner.model_listing.write().unwrap_or_else(PoisonError::into_inner) = Some(listing.clone());
        Ok(listing)
    }

    /// The latest versions per state (as [`Registry::mlflow_latest_versions_of`])
    /// of `models`, a page of `listing`'s: read once per listing and model.
    pub async fn mlflow_listing_latest(
        &self,
        principal: &Principal,
        listing: &ModelListing,
        models: &[ModelName],
    ) -> Result<HashMap<ModelName, Arc<Vec<MlflowVersion>>>> {
        self.authorize(principal, Action::Read, "models").await?;
        let (mut found, mut missing) = (HashMap::new(), Vec::new());
        {
            let latest = listing.latest.lock().unwrap_or_else(PoisonError::into_inner);
            for model in models {
                match latest.get(model) {
                    Some(versions) => {
                        found.insert(model.clone(), versions.clone());
                    }
                    None => missing.push(model.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let mut read: HashMap<ModelName, Vec<MlflowVersion>> = missing.iter().map(|m| (m.clone(), Vec::new())).collect();
        for version in self.mlflow_latest_versions_of(principal, &missing).await? {
            read.entry(version.version.model.clone()).or_default().push(version);
        }
        let mut latest = listing.latest.lock().unwrap_or_else(PoisonError::into_inner);
        for (model, versions) in read {
            let versions = Arc::new(versions);
            latest.insert(model.clone(), versions.clone());
            found.insert(model, versions);
        }
        Ok(found)
    }

    /// Registers a model from MLflow: kind `mlflow` (`llm` for a prompt), the caller its owner
    /// (and their team its team), tier [`MLFLOW_RISK_TIER`]. A name whose
    /// model was deleted (retired) is restored for the caller, if they are
    /// among its developers: its record, tier and history are kept, and
    /// its old versions stay retired.
    pub async fn mlflow_create_model(
        &self,
        principal: &Principal,
        name: ModelName,
        description: String,
        tags: BTreeMap<String, String>,
    ) -> Result<Model> {
        match self.store().get_model(&name).await {
            Ok(existing) if existing.state == ModelState::Retired => {
                let restored = self.restore_model(principal, &name, description).await?;
                for (key, value) in &tags {
                    self.set_tag(principal, &TagTarget::Model(name.clone()), &TagKey::parse(key.as_str())?, value).await?;
                }
                return if tags.is_empty() { Ok(restored) } else { self.store().get_model(&name).await };
            }
            Ok(_) => return Err(Error::already_exists("model", &name)),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        // MLflow keeps prompts as registered models with this tag: a prompt
        // is an `llm` model here, each version governed like any other.
        let kind = if tags.get(PROMPT_TAG).is_some_and(|v| v == "true") { ModelKind::Llm } else { ModelKind::Mlflow };
        let new = NewModel {
            name,
            kind,
            description,
            owner: principal.name().to_string(),
            team: principal.team().unwrap_or_default().to_string(),
            business_purpose: String::new(),
            intended_use: String::new(),
            restrictions: String::new(),
            risk_tier: MLFLOW_RISK_TIER,
            tags,
            dependencies: Vec::new(),
            developers: Vec::new(),
            validation: None,
        };
        self.create_model(principal, new).await
    }

    /// Makes a retired model active again (MLflow creating a name it had
    /// deleted), with the description given.
    async fn restore_model(&self, principal: &Principal, name: &ModelName, description: String) -> Result<Model> {
        let patch = ModelPatch { description: Some(description), ..ModelPatch::default() }.normalized();
        patch.validate(name)?;
        let subject = model_subject(name.as_str());
        let permit = self.authorize(principal, Action::ModelRestore, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let before = tx.lock_model(name).await?.ok_or_else(|| Error::not_found("model", name))?;
        if before.state == ModelState::Active {
            return Err(Error::already_exists("model", name));
        }
        let mut tx = self.ensure_developer(tx, principal, &before, &[], Action::ModelRestore, &subject).await?;
        let mut after = patch.apply(&before);
        after.state = ModelState::Active;
        after.updated_at = tx.now();
        tx.update_model(&after).await?;
        let pending = event(tx.as_ref(), Action::ModelRestore, subject, Some(snapshot(&before)?), Some(snapshot(&after)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// MLflow's rename: the model, its versions, aliases, tags and records
    /// go by the new name; one `model.rename` event links the two (earlier
    /// events keep the name they were recorded under).
    pub async fn rename_model(&self, principal: &Principal, name: &ModelName, new_name: ModelName) -> Result<Model> {
        let subject = model_subject(name.as_str());
        let permit = self.authorize(principal, Action::ModelRename, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let before = lock_active_model(tx.as_mut(), name).await?;
        let mut tx = self.ensure_developer(tx, principal, &before, &[], Action::ModelRename, &subject).await?;
        if new_name == *name {
            return Ok(before);
        }
        if let Some(deployment) = tx.live_deployments_of(name).await?.first() {
            // A deployment names its model; renaming under it would leave it serving a name that no longer exists.
            return Err(Error::Conflict(format!("model `{name}` is served by deployment `{}`; retire the deployment before renaming the model", deployment.name)));
        }
        let after = Model { name: new_name.clone(), updated_at: tx.now(), ..before.clone() };
        tx.rename_model(name, &after).await?;
        let record = |m: &Model| serde_json::json!({ "name": m.name.as_str() });
        let pending = event(tx.as_ref(), Action::ModelRename, model_subject(new_name.as_str()), Some(record(&before)), Some(record(&after)));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// MLflow's delete of a registered model: the model and every version
    /// retired (with the events retiring records) and hidden from MLflow,
    /// in one transaction.
    pub async fn mlflow_delete_model(&self, principal: &Principal, name: &ModelName) -> Result<()> {
        self.mlflow_model(principal, name).await?;
        self.retire_model_as(principal, name, true).await.map(drop)
    }

    /// MLflow's delete of a version: retired (audited) and hidden from
    /// MLflow, in one transaction.
    pub async fn mlflow_delete_version(&self, principal: &Principal, name: &ModelName, number: u32) -> Result<()> {
        self.mlflow_version(principal, name, number).await?;
        self.retire_version_as(principal, name, number, true).await.map(drop)
    }

    async fn with_manifest(&self, version: ModelVersion) -> Result<MlflowVersion> {
        let manifest = if version.artifact.filename == MANIFEST_FILENAME { self.manifest(&version.artifact.sha256).await? } else { None };
        Ok(MlflowVersion { version, manifest })
    }

    /// A version MLflow shows: of an active model, not deleted through MLflow.
    pub async fn mlflow_version(&self, principal: &Principal, name: &ModelName, number: u32) -> Result<MlflowVersion> {
        self.authorize(principal, Action::Read, &model_subject(name.as_str())).await?;
        let version = self.store().get_version(name, number).await?;
        // Retiring a model retires its versions, and only retired versions
        // are hidden: a version not retired is shown (one read, the common case).
        if version.state == VersionState::Retired {
            if self.store().get_model(name).await?.state != ModelState::Active {
                return Err(deleted(name));
            }
            if self.store().hidden_versions(Some(name)).await?.contains(&(name.clone(), number)) {
                return Err(version_not_found(name, number));
            }
        }
        self.with_manifest(version).await
    }

    /// The version an alias points at, as MLflow shows it (aliases point
    /// only at versions not retired, of active models).
    pub async fn mlflow_version_by_alias(&self, principal: &Principal, name: &ModelName, alias: &modelops_core::name::AliasName) -> Result<MlflowVersion> {
        self.authorize(principal, Action::Read, &model_subject(name.as_str())).await?;
        let version = self.store().get_version_by_alias(name, alias).await?;
        self.with_manifest(version).await
    }

    /// The versions MLflow shows, of one model or of every active model,
    /// by model then number.
    pub async fn mlflow_versions(&self, principal: &Principal, model: Option<&ModelName>) -> Result<Vec<MlflowVersion>> {
        match model {
            Some(name) => self.mlflow_versions_of(principal, std::slice::from_ref(name)).await,
            None => {
                self.authorize(principal, Action::Read, "models").await?;
                let versions = self.store().versions_shown_in_mlflow(None).await?;
                self.with_manifests(versions).await
            }
        }
    }

    /// The versions MLflow shows of these models (one read for all).
    pub async fn mlflow_versions_of(&self, principal: &Principal, models: &[ModelName]) -> Result<Vec<MlflowVersion>> {
        self.authorize(principal, Action::Read, "models").await?;
        let versions = self.store().versions_shown_in_mlflow(Some(models)).await?;
        self.with_manifests(versions).await
    }

    /// The highest shown version in each state of these models (one read):
    /// enough for MLflow's `latest_versions` (the highest per stage).
    pub async fn mlflow_latest_versions_of(&self, principal: &Principal, models: &[ModelName]) -> Result<Vec<MlflowVersion>> {
        self.authorize(principal, Action::Read, "models").await?;
        let versions = self.store().latest_shown_in_mlflow(models).await?;
        self.with_manifests(versions).await
    }

    async fn with_manifests(&self, versions: Vec<ModelVersion>) -> Result<Vec<MlflowVersion>> {
        let mut out = Vec::with_capacity(versions.len());
        for version in versions {
            out.push(self.with_manifest(version).await?);
        }
        Ok(out)
    }

    /// The files a version registered from `source` consists of: a logged
    /// model's (by id, or named by `models:/m-…` or by the run that logged
    /// it, `runs:/<run>/<name>`), or those under an `mlflow-artifacts:`
    /// location. Any other source (a bucket, a path on the client's disk, a
    /// run this server never saw) is recorded with no files.
    async fn source_files(&self, source: &str, model_id: Option<&str>) -> Result<(Option<String>, Vec<ArtifactFile>, String)> {
        // Another registered version (`copy_model_version`): its manifest's files.
        if let Some((name, number)) = source.strip_prefix("models:/").and_then(|rest| rest.rsplit_once('/')) {
            if let (Ok(name), Ok(number)) = (ModelName::parse(name), number.parse::<u32>()) {
                let version = self.store().get_version(&name, number).await.map_err(|e| match e {
                    Error::NotFound { .. } => Error::invalid("source", format!("{} names no registered version", quote(source))),
                    other => other,
                })?;
                let version = self.with_manifest(version).await?;
                let dir = format!("{MANIFEST_ROOT}/{}", version.version.artifact.sha256);
                let files = if version.manifest.is_some() { self.files_under(&dir).await? } else { Vec::new() };
                return Ok((version.model_id().map(str::to_string), files, dir));
            }
        }
        let logged_id = model_id.map(str::to_string).or_else(|| {
            source.strip_prefix("models:/").filter(|id| id.starts_with("m-") && !id.contains('/')).map(str::to_string)
        });
        if let Some(id) = logged_id {
            let logged = self.store().logged_model(&id).await?.ok_or_else(|| {
                Error::invalid("model_id", format!("{} is not a logged model of this server", quote(&id)))
            })?;
            let dir = artifact_path_of(&logged.artifact_uri).unwrap_or_default().to_string();
            let files = if dir.is_empty() { Vec::new() } else { self.files_under(&dir).await? };
            return Ok((Some(id), files, dir));
        }
        if let Some(rest) = source.strip_prefix("runs:/") {
            let (run_id, path) = rest.split_once('/').unwrap_or((rest, ""));
            let path = path.trim_matches('/');
            if let Some(run) = self.store().run(run_id).await? {
                if let Some(root) = artifact_path_of(&run.info.artifact_uri) {
                    let dir = if path.is_empty() { root.to_string() } else { format!("{root}/{path}") };
                    let files = self.files_under(&dir).await?;
                    if !files.is_empty() {
                        return Ok((None, files, dir));
                    }
                }
                // MLflow 3 keeps a run's models apart: the one it logged by that name.
                let logged = self.store().logged_models(&[run.info.experiment_id]).await?;
                if let Some(m) = logged.iter().rev().find(|m| m.source_run_id.as_deref() == Some(run_id) && m.name == path) {
                    let dir = artifact_path_of(&m.artifact_uri).unwrap_or_default().to_string();
                    let files = if dir.is_empty() { Vec::new() } else { self.files_under(&dir).await? };
                    return Ok((Some(m.model_id.clone()), files, dir));
                }
            }
            return Ok((None, Vec::new(), String::new()));
        }
        if let Some(dir) = artifact_path_of(source).filter(|d| !d.is_empty()) {
            let files = self.files_under(dir).await?;
            return Ok((None, files, dir.to_string()));
        }
        Ok((None, Vec::new(), String::new()))
    }

    /// MLflow's `create_model_version`: the source's files hashed into a
    /// manifest (stored content-addressed), then the next version of the
    /// model through the same use case as a native push.
    pub async fn mlflow_create_version(&self, principal: &Principal, name: &ModelName, new: NewMlflowVersion) -> Result<MlflowVersion> {
        self.authorize(principal, Action::VersionCreate, &model_subject(name.as_str())).await?;
        self.mlflow_model(principal, name).await?;
        modelops_core::model::check_text("source", &new.source, 4096)?;
        modelops_core::model::check_text("run_link", &new.run_link, 4096)?;
        let (model_id, files, dir) = self.source_files(&new.source, new.model_id.as_deref()).await?;
        let run_id = match (&new.run_id, &model_id) {
            (Some(id), _) if !id.is_empty() => Some(id.clone()),
            // A version of a logged model names the run that logged it.
            (_, Some(id)) => self.store().logged_model(id).await?.and_then(|m| m.source_run_id),
            _ => None,
        };
        let prefix = format!("{dir}/");
        let manifest = ModelManifest {
            format: MANIFEST_FORMAT.to_string(),
            source: new.source,
            model_id,
            run_id: run_id.clone(),
            run_link: new.run_link,
            files: files
                .into_iter()
                .map(|f| ManifestFile { path: f.path.strip_prefix(&prefix).unwrap_or(&f.path).to_string(), sha256: f.sha256, size: f.size })
                .collect(),
        };
        let bytes = manifest.to_bytes();
        let body = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(bytes::Bytes::from(bytes)) });
        let stored = self.artifacts().put_stream(body, None).await?;
        let version = NewVersion {
            artifact: ArtifactSpec { sha256: stored.sha256, filename: MANIFEST_FILENAME.to_string() },
            lineage: Lineage { mlflow_run_id: run_id, ..Lineage::default() },
            signature: Default::default(),
            card: Default::default(),
            description: new.description,
            tags: new.tags,
        };
        let created = self.create_version(principal, name, version).await?;
        Ok(MlflowVersion { version: created, manifest: Some(manifest) })
    }

    /// MLflow's `transition_model_version_stage`, as the governed
    /// transition each stage names: `Staging` submits a draft for
    /// validation, `Production` promotes (the production gate; the previous
    /// production version returns to approved, or is retired with
    /// `archive_existing`), `Archived` retires, `None` only for a draft.
    /// With `archive_existing`, the model's other versions in the target
    /// stage are retired after the transition.
    pub async fn mlflow_transition(
        &self,
        principal: &Principal,
        name: &ModelName,
        number: u32,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<MlflowVersion> {
        let current = self.mlflow_version(principal, name, number).await?;
        let state = current.version.state;
        let refuse = |hint: &str| {
            Err(Error::Conflict(format!(
                "version `{name}/{number}` is `{state}` (stage {}); it cannot move to stage {}: {hint}",
                Stage::of(state).as_str(),
                stage.as_str()
            )))
        };
        let mut previous_production = None;
        match (stage, state) {
            (Stage::None, VersionState::Draft | VersionState::Rejected) => {}
            (Stage::None, _) => return refuse("a version submitted for validation keeps its history; register a new version instead"),
            (Stage::Staging, VersionState::Draft) => {
                self.submit_version(principal, name, number).await?;
            }
            (Stage::Staging, VersionState::InValidation | VersionState::Approved) => {}
            (Stage::Staging, VersionState::Production) => return refuse("promote another version to production first"),
            (Stage::Staging, _) => return refuse("register a new version instead"),
            (Stage::Production, _) => {
                previous_production = self.promote_version(principal, name, number).await?.previous_production.filter(|p| *p != number);
            }
            (Stage::Archived, VersionState::Retired) => {}
            (Stage::Archived, VersionState::Production) => return refuse("promote another version to production first"),
            (Stage::Archived, _) => {
                self.retire_version(principal, name, number).await?;
            }
        }
        if archive_existing && stage != Stage::Archived {
            let others: BTreeSet<u32> = self
                .mlflow_versions(principal, Some(name))
                .await?
                .into_iter()
                .filter(|v| v.version.number != number && (v.stage() == stage || Some(v.version.number) == previous_production))
                .map(|v| v.version.number)
                .collect();
            for other in others {
                self.retire_version(principal, name, other).await?;
            }
        }
        self.mlflow_version(principal, name, number).await
    }
}
