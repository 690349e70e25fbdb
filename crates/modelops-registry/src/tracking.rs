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
use modelops_core::tracking::{
    check_key, check_name, check_run_id, check_value, Experiment, ExperimentUpdate, LifecycleStage, MetricValue, NewExperiment, Run,
    RunBatch, RunInfo, RunStatus, RunUpdate, MAX_BATCH_METRICS, MAX_BATCH_PARAMS_AND_TAGS, MAX_PARAM_VALUE_LEN, MAX_TAG_VALUE_LEN,
};
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
    fn millis(&self) -> i64 {
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
}
