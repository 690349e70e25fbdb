//! Experiment tracking use cases (what MLflow's tracking API calls):
//! experiments, runs, and each run's params, metrics and tags.
//!
//! Reading needs any role (`read`), recording needs `track` (developers,
//! validators, admins); a refusal is audited like any other. Recording
//! itself is not: tracking is the bookkeeping of training (see
//! `modelops_core::tracking`), so it takes neither the write lock nor the
//! audit chain. The rules MLflow's clients rely on live here: names and keys
//! checked, only active experiments take runs and only active runs take
//! values, params never change, `mlflow.runName` and the run's name are one.

use crate::Registry;
use modelops_core::auth::{Action, Principal};
use modelops_core::name::quote;
use bytes::Bytes;
use futures::Stream;
use modelops_artifacts::Download;
use modelops_core::tracking::{
    DatasetInput,
    check_artifact_path, check_key, check_name, check_run_id, check_value, ArtifactFile, Experiment, ExperimentUpdate, LifecycleStage,
    LoggedModel, LoggedModelStatus, ManifestFile, MetricValue, ModelManifest, NewExperiment, Run, RunBatch, RunInfo, RunStatus, RunUpdate,
    MAX_BATCH_METRICS, MAX_BATCH_PARAMS_AND_TAGS, MAX_PARAM_VALUE_LEN, MAX_TAG_VALUE_LEN,
};
use modelops_core::version::Sha256Hex;
use modelops_core::{Error, Result};

/// The tag MLflow keeps a run's name in.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// What starting a run needs.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub experiment_id: i64,
    /// Milliseconds; `None`: now.
    pub start_time: Option<i64>,
    pub run_name: Option<String>,
    pub tags: Vec<(String, String)>,
}

fn experiment_subject(id: i64) -> String {
    format!("experiment/{id}")
}

fn run_subject(id: &str) -> String {
    format!("run/{id}")
}

/// What logging a model (MLflow 3's `POST logged-models`) needs.
#[derive(Debug, Clone, Default)]
pub struct NewLoggedModel {
    pub experiment_id: i64,
    pub name: Option<String>,
    pub model_type: String,
    pub source_run_id: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// One entry of an artifact directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactEntry {
    /// The entry's own name (no directory part).
    pub name: String,
    /// `None` for a directory.
    pub size: Option<u64>,
}

/// The scheme of the locations this server hands out for artifacts it
/// stores itself (MLflow's own, which its client resolves to the proxy).
pub const ARTIFACT_SCHEME: &str = "mlflow-artifacts:/";

/// Where the files of registered versions are read: `_manifests/<sha256>/…`
/// names the files of the manifest with that digest. Read-only, and never
/// an experiment's directory (those are numbers).
pub const MANIFEST_ROOT: &str = "_manifests";

/// At most as many inputs in one `log_inputs` call as MLflow's server takes.
const MAX_INPUTS_PER_CALL: usize = 1000;

/// The path under the artifact root of an `mlflow-artifacts:` location.
pub fn artifact_path_of(uri: &str) -> Option<&str> {
    uri.strip_prefix(ARTIFACT_SCHEME).map(|p| p.trim_start_matches('/').trim_end_matches('/'))
}

fn logged_model_subject(id: &str) -> String {
    format!("logged-model/{id}")
}

/// A run name MLflow's way: two words and a number, e.g. `calm-heron-417`.
fn generated_run_name() -> String {
    use rand::Rng;
    const ADJECTIVES: &[&str] = &[
        "able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "gentle", "glad", "keen", "kind", "lively", "lucky",
        "merry", "noble", "proud", "quick", "quiet", "rare", "sharp", "steady", "sunny", "swift", "tidy", "vast", "warm", "wise", "zesty",
    ];
    const ANIMALS: &[&str] = &[
        "ant", "bass", "bear", "crane", "deer", "dove", "eagle", "finch", "fox", "goat", "hare", "hawk", "heron", "ibis", "koala", "lark",
        "lynx", "mole", "newt", "otter", "owl", "panda", "quail", "robin", "seal", "squid", "swan", "tiger", "wolf", "wren",
    ];
    let mut rng = rand::rng();
    let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    let animal = ANIMALS[rng.random_range(0..ANIMALS.len())];
    format!("{adjective}-{animal}-{}", rng.random_range(0..1000))
}

fn new_logged_model_id() -> String {
    format!("m-{}", uuid::Uuid::new_v4().simple())
}

/// The immediate children of `dir` among `files` (every file under it):
/// files with their size, directories once each, by name.
fn children(dir: &str, files: &[ArtifactFile]) -> Vec<ArtifactEntry> {
    let prefix_len = if dir.is_empty() { 0 } else { dir.len() + 1 };
    let mut entries: Vec<ArtifactEntry> = Vec::new();
    for file in files {
        let Some(rest) = file.path.get(prefix_len..) else { continue };
        let entry = match rest.split_once('/') {
            Some((sub, _)) => ArtifactEntry { name: sub.to_string(), size: None },
            None => ArtifactEntry { name: rest.to_string(), size: Some(file.size) },
        };
        if entries.last() != Some(&entry) {
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries.dedup();
    entries
}

fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn check_tags(field: &str, tags: &[(String, String)]) -> Result<()> {
    for (key, value) in tags {
        check_key(&format!("{field}.key"), key)?;
        check_value(&format!("{field}.{key}"), value, MAX_TAG_VALUE_LEN)?;
    }
    Ok(())
}

impl Registry {
    pub(crate) fn millis(&self) -> i64 {
        self.now().timestamp_millis()
    }

    pub async fn create_experiment(
        &self,
        principal: &Principal,
        name: &str,
        artifact_location: Option<String>,
        tags: Vec<(String, String)>,
    ) -> Result<i64> {
        self.authorize(principal, Action::Track, &format!("experiment/{name}")).await?;
        check_name("name", name)?;
        check_tags("tags", &tags)?;
        if let Some(location) = &artifact_location {
            check_value("artifact_location", location, 2000)?;
        }
        let artifact_location = artifact_location.filter(|l| !l.is_empty());
        self.store().insert_experiment(&NewExperiment { name: name.to_string(), artifact_location, tags, at: self.millis() }).await
    }

    pub async fn experiment(&self, principal: &Principal, id: i64) -> Result<Experiment> {
        self.authorize(principal, Action::Read, &experiment_subject(id)).await?;
        self.store().experiment(id).await?.ok_or_else(|| Error::not_found("experiment", id))
    }

    pub async fn experiment_by_name(&self, principal: &Principal, name: &str) -> Result<Experiment> {
        self.authorize(principal, Action::Read, &format!("experiment/{name}")).await?;
        // No stored name holds a control character (NUL would not even reach PostgreSQL).
        if name.chars().any(char::is_control) {
            return Err(Error::not_found("experiment", name.escape_debug()));
        }
        self.store().experiment_by_name(name).await?.ok_or_else(|| Error::not_found("experiment", name))
    }

    /// Every experiment, by id (the surfaces filter, order and page).
    pub async fn experiments(&self, principal: &Principal) -> Result<Vec<Experiment>> {
        self.authorize(principal, Action::Read, "experiments").await?;
        self.store().experiments().await
    }

    pub async fn rename_experiment(&self, principal: &Principal, id: i64, new_name: &str) -> Result<()> {
        self.authorize(principal, Action::Track, &experiment_subject(id)).await?;
        check_name("new_name", new_name)?;
        let experiment = self.store().experiment(id).await?.ok_or_else(|| Error::not_found("experiment", id))?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::invalid("experiment_id", format!("cannot rename a non-active experiment ({id})")));
        }
        let update = ExperimentUpdate { name: Some(new_name.to_string()), lifecycle_stage: None, at: self.millis() };
        self.store().update_experiment(id, &update).await
    }

    /// Deletes (`Deleted`) or restores (`Active`) an experiment: it stays
    /// stored, and its name stays taken, as in MLflow.
    pub async fn set_experiment_stage(&self, principal: &Principal, id: i64, stage: LifecycleStage) -> Result<()> {
        self.authorize(principal, Action::Track, &experiment_subject(id)).await?;
        let experiment = self.store().experiment(id).await?.ok_or_else(|| Error::not_found("experiment", id))?;
        if stage == LifecycleStage::Deleted && experiment.id == modelops_core::tracking::DEFAULT_EXPERIMENT_ID {
            return Err(Error::invalid("experiment_id", "the default experiment (0) cannot be deleted"));
        }
        let update = ExperimentUpdate { name: None, lifecycle_stage: Some(stage), at: self.millis() };
        self.store().update_experiment(id, &update).await
    }

    pub async fn set_experiment_tag(&self, principal: &Principal, id: i64, key: &str, value: &str) -> Result<()> {
        self.authorize(principal, Action::Track, &experiment_subject(id)).await?;
        check_key("key", key)?;
        check_value("value", value, MAX_TAG_VALUE_LEN)?;
        let experiment = self.store().experiment(id).await?.ok_or_else(|| Error::not_found("experiment", id))?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::invalid("experiment_id", format!("the experiment {id} must be in the 'active' state")));
        }
        self.store().set_experiment_tag(id, key, value, self.millis()).await
    }

    pub async fn delete_experiment_tag(&self, principal: &Principal, id: i64, key: &str) -> Result<()> {
        self.authorize(principal, Action::Track, &experiment_subject(id)).await?;
        check_key("key", key)?;
        self.store().experiment(id).await?.ok_or_else(|| Error::not_found("experiment", id))?;
        self.store().delete_experiment_tag(id, key, self.millis()).await
    }

    /// Starts a run in an active experiment. Its user is the caller (who the
    /// token says), its name the one given, the `mlflow.runName` tag's, or a
    /// generated one; the tag is set to it.
    pub async fn create_run(&self, principal: &Principal, new: NewRun) -> Result<Run> {
        self.authorize(principal, Action::Track, &experiment_subject(new.experiment_id)).await?;
        check_tags("tags", &new.tags)?;
        let experiment =
            self.store().experiment(new.experiment_id).await?.ok_or_else(|| Error::not_found("experiment", new.experiment_id))?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::invalid(
                "experiment_id",
                format!("the experiment {} must be in the 'active' state to start a run in it", experiment.id),
            ));
        }
        let tagged = new.tags.iter().find(|(k, _)| k == RUN_NAME_TAG).map(|(_, v)| v.clone());
        let run_name = match new.run_name.filter(|n| !n.is_empty()).or(tagged) {
            Some(name) => {
                check_value("run_name", &name, MAX_TAG_VALUE_LEN)?;
                name
            }
            None => generated_run_name(),
        };
        let mut tags: Vec<(String, String)> = new.tags.into_iter().filter(|(k, _)| k != RUN_NAME_TAG).collect();
        tags.push((RUN_NAME_TAG.to_string(), run_name.clone()));
        let run_id = new_run_id();
        let info = RunInfo {
            artifact_uri: format!("{}/{run_id}/artifacts", experiment.artifact_location()),
            run_id,
            run_name,
            experiment_id: experiment.id,
            user_id: principal.name().to_string(),
            status: RunStatus::Running,
            start_time: new.start_time.unwrap_or_else(|| self.millis()),
            end_time: None,
            lifecycle_stage: LifecycleStage::Active,
        };
        self.store().insert_run(&info, &tags).await?;
        self.store().run(&info.run_id).await?.ok_or_else(|| Error::Internal(format!("run `{}` vanished after its insert", info.run_id)))
    }

    pub async fn run(&self, principal: &Principal, run_id: &str) -> Result<Run> {
        self.authorize(principal, Action::Read, &run_subject(run_id)).await?;
        self.find_run(run_id).await
    }

    async fn find_run(&self, run_id: &str) -> Result<Run> {
        check_run_id("run_id", run_id).map_err(|_| Error::not_found("run", run_id))?;
        self.store().run(run_id).await?.ok_or_else(|| Error::not_found("run", run_id))
    }

    async fn active_run(&self, run_id: &str) -> Result<Run> {
        let run = self.find_run(run_id).await?;
        if run.info.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::invalid("run_id", format!("the run {run_id} must be in the 'active' state; it is deleted")));
        }
        Ok(run)
    }

    /// The runs of these experiments (each must exist), every lifecycle
    /// stage, oldest first: the surfaces filter, order and page.
    pub async fn runs(&self, principal: &Principal, experiment_ids: &[i64]) -> Result<Vec<Run>> {
        self.authorize(principal, Action::Read, "runs").await?;
        for id in experiment_ids {
            self.store().experiment(*id).await?.ok_or_else(|| Error::not_found("experiment", id))?;
        }
        self.store().runs(experiment_ids).await
    }

    /// Changes a run's status, end time or name (the name also in its
    /// `mlflow.runName` tag); the run as it is then.
    pub async fn update_run(&self, principal: &Principal, run_id: &str, update: RunUpdate) -> Result<RunInfo> {
        self.authorize(principal, Action::Track, &run_subject(run_id)).await?;
        self.active_run(run_id).await?;
        let update = RunUpdate { run_name: update.run_name.filter(|n| !n.is_empty()), lifecycle_stage: None, ..update };
        if let Some(name) = &update.run_name {
            check_value("run_name", name, MAX_TAG_VALUE_LEN)?;
        }
        self.store().update_run(run_id, &update).await?;
        if let Some(name) = &update.run_name {
            let batch = RunBatch { tags: vec![(RUN_NAME_TAG.to_string(), name.clone())], ..RunBatch::default() };
            self.store().log_batch(run_id, &batch).await?;
        }
        Ok(self.find_run(run_id).await?.info)
    }

    /// Deletes (`Deleted`) or restores (`Active`) a run; it stays stored.
    pub async fn set_run_stage(&self, principal: &Principal, run_id: &str, stage: LifecycleStage) -> Result<()> {
        self.authorize(principal, Action::Track, &run_subject(run_id)).await?;
        self.find_run(run_id).await?;
        self.store().update_run(run_id, &RunUpdate { lifecycle_stage: Some(stage), ..RunUpdate::default() }).await
    }

    /// Records metric values, params and tags on an active run at once
    /// (every single log call too). Nothing is written when anything is
    /// refused.
    pub async fn log_batch(&self, principal: &Principal, run_id: &str, batch: RunBatch) -> Result<()> {
        self.authorize(principal, Action::Track, &run_subject(run_id)).await?;
        if batch.metrics.len() > MAX_BATCH_METRICS {
            return Err(Error::invalid("metrics", format!("{} metrics in one batch; at most {MAX_BATCH_METRICS} are accepted", batch.metrics.len())));
        }
        if batch.params.len() + batch.tags.len() > MAX_BATCH_PARAMS_AND_TAGS {
            return Err(Error::invalid(
                "params",
                format!("{} params and tags in one batch; at most {MAX_BATCH_PARAMS_AND_TAGS} are accepted", batch.params.len() + batch.tags.len()),
            ));
        }
        for metric in &batch.metrics {
            check_key("metrics.key", &metric.key)?;
        }
        let mut seen = std::collections::HashMap::new();
        for (key, value) in &batch.params {
            check_key("params.key", key)?;
            check_value(&format!("params.{key}"), value, MAX_PARAM_VALUE_LEN)?;
            if let Some(other) = seen.insert(key.as_str(), value.as_str()) {
                if other != value {
                    return Err(Error::invalid(
                        format!("params.{key}"),
                        format!("the batch logs param {} twice with different values", quote(key)),
                    ));
                }
            }
        }
        check_tags("tags", &batch.tags)?;
        self.active_run(run_id).await?;
        if batch.metrics.is_empty() && batch.params.is_empty() && batch.tags.is_empty() {
            return Ok(());
        }
        self.store().log_batch(run_id, &batch).await?;
        // The run's name follows its `mlflow.runName` tag.
        if let Some((_, name)) = batch.tags.iter().rev().find(|(k, _)| k == RUN_NAME_TAG) {
            self.store().update_run(run_id, &RunUpdate { run_name: Some(name.clone()), ..RunUpdate::default() }).await?;
        }
        Ok(())
    }

    pub async fn delete_run_tag(&self, principal: &Principal, run_id: &str, key: &str) -> Result<()> {
        self.authorize(principal, Action::Track, &run_subject(run_id)).await?;
        check_key("key", key)?;
        self.active_run(run_id).await?;
        self.store().delete_run_tag(run_id, key).await
    }

    /// Every value logged for a metric of a run, by step then timestamp.
    pub async fn metric_history(&self, principal: &Principal, run_id: &str, key: &str) -> Result<Vec<MetricValue>> {
        self.authorize(principal, Action::Read, &run_subject(run_id)).await?;
        check_key("metric_key", key)?;
        self.find_run(run_id).await?;
        self.store().metric_history(run_id, key).await
    }

    /// Records the logged models a run produced (`runs/outputs`).
    pub async fn log_run_outputs(&self, principal: &Principal, run_id: &str, outputs: &[(String, i64)]) -> Result<()> {
        self.authorize(principal, Action::Track, &run_subject(run_id)).await?;
        self.active_run(run_id).await?;
        for (model_id, _) in outputs {
            self.find_logged_model(model_id).await?;
        }
        self.store().log_run_outputs(run_id, outputs).await
    }

    /// Records the datasets and logged models a run read
    /// (`runs/log-inputs`), each checked against MLflow's limits; one the
    /// run already has (a dataset's name and digest, a model) keeps its
    /// first record.
    pub async fn log_run_inputs(&self, principal: &Principal, run_id: &str, datasets: &[DatasetInput], models: &[String]) -> Result<()> {
        self.authorize(principal, Action::Track, &run_subject(run_id)).await?;
        if datasets.len() + models.len() > MAX_INPUTS_PER_CALL {
            return Err(Error::invalid("datasets", format!("{} inputs in one call; at most {MAX_INPUTS_PER_CALL}", datasets.len() + models.len())));
        }
        for (i, input) in datasets.iter().enumerate() {
            let field = |name: &str| format!("datasets[{i}].dataset.{name}");
            for (name, value, max) in [("name", &input.name, 500), ("digest", &input.digest, 36), ("source_type", &input.source_type, 64), ("source", &input.source, 65_535)] {
                if value.is_empty() {
                    return Err(Error::invalid(field(name), "is required"));
                }
                check_value(&field(name), value, max)?;
            }
            for (name, value, max) in [("schema", &input.schema, 1_048_575), ("profile", &input.profile, 16_777_215)] {
                if let Some(value) = value {
                    check_value(&field(name), value, max)?;
                }
            }
            for (j, (key, value)) in input.tags.iter().enumerate() {
                check_value(&format!("datasets[{i}].tags[{j}].key"), key, 255)?;
                if key.is_empty() {
                    return Err(Error::invalid(format!("datasets[{i}].tags[{j}].key"), "must not be empty"));
                }
                check_value(&format!("datasets[{i}].tags[{j}].value"), value, 500)?;
            }
        }
        for (i, model_id) in models.iter().enumerate() {
            check_value(&format!("models[{i}].model_id"), model_id, 64)?;
        }
        self.active_run(run_id).await?;
        for model_id in models {
            self.find_logged_model(model_id).await?;
        }
        self.store().log_run_inputs(run_id, datasets, models).await
    }

    // ------------------------------------------------------------ logged models

    /// Logs a model in an active experiment (MLflow 3): pending until its
    /// files are uploaded and it is finalized. Its files go under
    /// `<experiment location>/models/<id>/artifacts`.
    pub async fn create_logged_model(&self, principal: &Principal, new: NewLoggedModel) -> Result<LoggedModel> {
        self.authorize(principal, Action::Track, &experiment_subject(new.experiment_id)).await?;
        check_tags("tags", &new.tags)?;
        for (key, value) in &new.params {
            check_key("params.key", key)?;
            check_value(&format!("params.{key}"), value, MAX_PARAM_VALUE_LEN)?;
        }
        check_value("model_type", &new.model_type, MAX_TAG_VALUE_LEN)?;
        let experiment =
            self.store().experiment(new.experiment_id).await?.ok_or_else(|| Error::not_found("experiment", new.experiment_id))?;
        if experiment.lifecycle_stage != LifecycleStage::Active {
            return Err(Error::invalid("experiment_id", format!("the experiment {} must be in the 'active' state", experiment.id)));
        }
        if let Some(run_id) = &new.source_run_id {
            let run = self.find_run(run_id).await?;
            if run.info.experiment_id != experiment.id {
                return Err(Error::invalid("source_run_id", format!("run {run_id} belongs to experiment {}, not {}", run.info.experiment_id, experiment.id)));
            }
        }
        let name = match new.name.filter(|n| !n.is_empty()) {
            Some(name) => {
                check_name("name", &name)?;
                name
            }
            None => generated_run_name(),
        };
        let model_id = new_logged_model_id();
        let now = self.millis();
        let model = LoggedModel {
            artifact_uri: format!("{}/models/{model_id}/artifacts", experiment.artifact_location()),
            model_id,
            experiment_id: experiment.id,
            name,
            status: LoggedModelStatus::Pending,
            model_type: new.model_type,
            source_run_id: new.source_run_id,
            creation_time: now,
            last_update_time: now,
            tags: new.tags,
            params: new.params,
        };
        self.store().insert_logged_model(&model).await?;
        self.find_logged_model(&model.model_id).await
    }

    async fn find_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        self.store().logged_model(model_id).await?.ok_or_else(|| Error::not_found("logged model", model_id))
    }

    pub async fn logged_model(&self, principal: &Principal, model_id: &str) -> Result<LoggedModel> {
        self.authorize(principal, Action::Read, &logged_model_subject(model_id)).await?;
        self.find_logged_model(model_id).await
    }

    /// The logged models of these experiments (each must exist), oldest
    /// first: the surfaces filter, order and page.
    pub async fn logged_models(&self, principal: &Principal, experiment_ids: &[i64]) -> Result<Vec<LoggedModel>> {
        self.authorize(principal, Action::Read, "logged-models").await?;
        for id in experiment_ids {
            self.store().experiment(*id).await?.ok_or_else(|| Error::not_found("experiment", id))?;
        }
        self.store().logged_models(experiment_ids).await
    }

    /// Marks a logged model's upload as finished (or failed).
    pub async fn finalize_logged_model(&self, principal: &Principal, model_id: &str, status: LoggedModelStatus) -> Result<LoggedModel> {
        self.authorize(principal, Action::Track, &logged_model_subject(model_id)).await?;
        self.find_logged_model(model_id).await?;
        self.store().set_logged_model_status(model_id, status, self.millis()).await?;
        self.find_logged_model(model_id).await
    }

    pub async fn set_logged_model_tags(&self, principal: &Principal, model_id: &str, tags: &[(String, String)]) -> Result<()> {
        self.authorize(principal, Action::Track, &logged_model_subject(model_id)).await?;
        if tags.len() > MAX_BATCH_PARAMS_AND_TAGS {
            return Err(Error::invalid("tags", format!("{} tags at once; at most {MAX_BATCH_PARAMS_AND_TAGS} are accepted", tags.len())));
        }
        check_tags("tags", tags)?;
        self.store().set_logged_model_tags(model_id, tags, self.millis()).await
    }

    pub async fn delete_logged_model_tag(&self, principal: &Principal, model_id: &str, key: &str) -> Result<()> {
        self.authorize(principal, Action::Track, &logged_model_subject(model_id)).await?;
        check_key("key", key)?;
        self.store().delete_logged_model_tag(model_id, key, self.millis()).await
    }

    // ------------------------------------------------------------ artifact files

    /// Stores a file at `path` under the artifact root (MLflow's artifact
    /// proxy): the bytes go to the content-addressed store, the path points
    /// at them. Writing a path again replaces what it names; the files of a
    /// registered version are unaffected (its manifest names the blobs).
    pub async fn put_artifact_file<S, E>(&self, principal: &Principal, path: &str, body: S) -> Result<ArtifactFile>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.authorize(principal, Action::Track, "artifacts").await?;
        check_artifact_path("path", path)?;
        if path == MANIFEST_ROOT || path.starts_with(&format!("{MANIFEST_ROOT}/")) {
            return Err(Error::invalid("path", format!("{} holds registered versions' files, which never change", quote(MANIFEST_ROOT))));
        }
        let stored = self.artifacts().put_stream(body, None).await?;
        let file = ArtifactFile { path: path.to_string(), sha256: stored.sha256, size: stored.size };
        self.store().put_artifact_file(&file, self.millis()).await?;
        Ok(file)
    }

    /// The manifest stored under `sha256`, when that blob is one.
    pub(crate) async fn manifest(&self, sha256: &Sha256Hex) -> Result<Option<ModelManifest>> {
        if let Some(cached) = self.inner.manifests.read().ok().and_then(|m| m.get(sha256).cloned()) {
            return Ok(Some(cached));
        }
        let Some(size) = self.artifacts().head(sha256).await? else { return Ok(None) };
        if size > MAX_MANIFEST_SIZE {
            return Ok(None);
        }
        let Some(manifest) = ModelManifest::parse(&self.read_artifact(sha256).await?) else { return Ok(None) };
        if let Ok(mut cache) = self.inner.manifests.write() {
            // Content-addressed, so an entry never goes stale; the bound
            // only limits memory.
            if cache.len() >= MANIFEST_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(sha256.clone(), manifest.clone());
        }
        Ok(Some(manifest))
    }

    /// The files under `dir` when it names a manifest (`_manifests/<sha256>[/…]`),
    /// as stored files with full paths.
    async fn manifest_files(&self, dir: &str) -> Result<Option<Vec<ArtifactFile>>> {
        let Some(rest) = dir.strip_prefix(MANIFEST_ROOT).and_then(|r| r.strip_prefix('/')) else { return Ok(None) };
        let (digest, _) = rest.split_once('/').unwrap_or((rest, ""));
        let Ok(sha256) = Sha256Hex::parse_field("path", digest) else { return Ok(Some(Vec::new())) };
        let Some(manifest) = self.manifest(&sha256).await? else { return Ok(Some(Vec::new())) };
        let root = format!("{MANIFEST_ROOT}/{digest}");
        Ok(Some(
            manifest
                .files
                .into_iter()
                .map(|f: ManifestFile| ArtifactFile { path: format!("{root}/{}", f.path), sha256: f.sha256, size: f.size })
                .collect(),
        ))
    }

    /// Every file under the directory `dir` (`""`: the root), by path.
    pub(crate) async fn files_under(&self, dir: &str) -> Result<Vec<ArtifactFile>> {
        match self.manifest_files(dir).await? {
            Some(files) => {
                let prefix = format!("{dir}/");
                Ok(files.into_iter().filter(|f| f.path.starts_with(&prefix)).collect())
            }
            None => self.store().artifact_files_under(dir).await,
        }
    }

    /// The immediate entries of the directory `dir`; empty when `dir` is a
    /// file or does not exist (MLflow's client reads that as "a file").
    pub async fn list_artifacts(&self, principal: &Principal, dir: &str) -> Result<Vec<ArtifactEntry>> {
        self.authorize(principal, Action::Read, "artifacts").await?;
        let dir = dir.trim_matches('/');
        if !dir.is_empty() {
            check_artifact_path("path", dir)?;
        }
        Ok(children(dir, &self.files_under(dir).await?))
    }

    /// A stored file and its bytes, verified against its digest as read.
    pub async fn read_artifact_file(&self, principal: &Principal, path: &str) -> Result<(ArtifactFile, Download)> {
        self.authorize(principal, Action::Read, "artifacts").await?;
        check_artifact_path("path", path)?;
        let file = match self.manifest_files(path).await? {
            Some(files) => files.into_iter().find(|f| f.path == path),
            None => self.store().artifact_file(path).await?,
        };
        let file = file.ok_or_else(|| Error::not_found("artifact", path))?;
        let download = self.artifacts().get(&file.sha256).await?;
        Ok((file, download))
    }

    /// Removes the file `path`, or every file under the directory `path`;
    /// the blobs stay while a registered version's manifest names them.
    pub async fn delete_artifact_files(&self, principal: &Principal, path: &str) -> Result<()> {
        self.authorize(principal, Action::Track, "artifacts").await?;
        check_artifact_path("path", path)?;
        if path == MANIFEST_ROOT || path.starts_with(&format!("{MANIFEST_ROOT}/")) {
            return Err(Error::invalid("path", format!("{} holds registered versions' files, which are never deleted", quote(MANIFEST_ROOT))));
        }
        if self.store().delete_artifact_files(path).await? == 0 {
            return Err(Error::not_found("artifact", path));
        }
        Ok(())
    }
}

/// A manifest larger than this is not read as one (a model of a million
/// files would still fit).
const MAX_MANIFEST_SIZE: u64 = 256 * 1024 * 1024;
/// Manifests kept parsed in memory.
const MANIFEST_CACHE_ENTRIES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64) -> ArtifactFile {
        ArtifactFile { path: path.into(), sha256: Sha256Hex::from_digest(&[0; 32]), size }
    }

    #[test]
    fn a_listing_names_each_child_once() {
        let files = [file("1/r/artifacts/a.txt", 3), file("1/r/artifacts/sub/b.txt", 4), file("1/r/artifacts/sub/c/d.txt", 5)];
        let entries = children("1/r/artifacts", &files);
        assert_eq!(
            entries,
            vec![ArtifactEntry { name: "a.txt".into(), size: Some(3) }, ArtifactEntry { name: "sub".into(), size: None }]
        );
        assert_eq!(children("", &files), vec![ArtifactEntry { name: "1".into(), size: None }]);
    }
}
