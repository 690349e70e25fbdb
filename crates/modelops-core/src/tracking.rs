//! Experiment tracking, as MLflow's tracking API records it: experiments,
//! runs, and each run's parameters, metrics and tags.
//!
//! Tracking is the bookkeeping of training, not the governed inventory: a
//! training loop logs thousands of metrics, so logging takes neither the
//! registry's write lock nor an audit event per value. What a run produces
//! enters governance when it is registered as a model version.
//!
//! Times are milliseconds since the Unix epoch, as MLflow's clients send
//! and read them.

use crate::error::{Error, Result};
use crate::name::quote;
use async_trait::async_trait;

/// The experiment every installation has, which runs started without one use.
pub const DEFAULT_EXPERIMENT_ID: i64 = 0;
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";

/// MLflow's limits (`mlflow/utils/validation.py`), which its client
/// respects: longer values are refused, never cut.
pub const MAX_KEY_LEN: usize = 250;
pub const MAX_PARAM_VALUE_LEN: usize = 6000;
pub const MAX_TAG_VALUE_LEN: usize = 8000;
pub const MAX_NAME_LEN: usize = 500;
/// Entities in one `log-batch`.
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS_AND_TAGS: usize = 100;

/// Whether an experiment or run is deleted (restorable) or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifecycleStage {
    Active,
    Deleted,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(Self::Active),
            "deleted" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// Which lifecycle stages a search covers (MLflow's `ViewType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

impl ViewType {
    /// MLflow's names, or its enum numbers (1, 2, 3) as some clients send.
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        match text.to_ascii_uppercase().as_str() {
            "ACTIVE_ONLY" | "1" => Ok(Self::ActiveOnly),
            "DELETED_ONLY" | "2" => Ok(Self::DeletedOnly),
            "ALL" | "3" => Ok(Self::All),
            _ => Err(Error::invalid(field, format!("{} is not ACTIVE_ONLY, DELETED_ONLY or ALL", quote(text)))),
        }
    }

    pub fn includes(self, stage: LifecycleStage) -> bool {
        match self {
            Self::ActiveOnly => stage == LifecycleStage::Active,
            Self::DeletedOnly => stage == LifecycleStage::Deleted,
            Self::All => true,
        }
    }
}

/// A run's state, MLflow's `RunStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Running,
    Scheduled,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "RUNNING",
            Self::Scheduled => "SCHEDULED",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
            Self::Killed => "KILLED",
        }
    }

    /// MLflow's names, or its enum numbers (1–5).
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        match text.to_ascii_uppercase().as_str() {
            "RUNNING" | "1" => Ok(Self::Running),
            "SCHEDULED" | "2" => Ok(Self::Scheduled),
            "FINISHED" | "3" => Ok(Self::Finished),
            "FAILED" | "4" => Ok(Self::Failed),
            "KILLED" | "5" => Ok(Self::Killed),
            _ => Err(Error::invalid(field, format!("{} is not RUNNING, SCHEDULED, FINISHED, FAILED or KILLED", quote(text)))),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub id: i64,
    pub name: String,
    /// Where its runs' artifacts go; `None`: the default, `mlflow-artifacts:/<id>`.
    pub artifact_location: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub creation_time: i64,
    pub last_update_time: i64,
    /// By key.
    pub tags: Vec<(String, String)>,
}

impl Experiment {
    pub fn artifact_location(&self) -> String {
        self.artifact_location.clone().unwrap_or_else(|| format!("mlflow-artifacts:/{}", self.id))
    }
}

/// What creating an experiment needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewExperiment {
    pub name: String,
    pub artifact_location: Option<String>,
    pub tags: Vec<(String, String)>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// 32 lowercase hex characters.
    pub run_id: String,
    pub run_name: String,
    pub experiment_id: i64,
    pub user_id: String,
    pub status: RunStatus,
    pub start_time: i64,
    pub end_time: Option<i64>,
    pub artifact_uri: String,
    pub lifecycle_stage: LifecycleStage,
}

/// One logged value of a metric. NaN and ±infinity are values like any other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricValue {
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
}

impl MetricValue {
    /// MLflow's "latest" value of a metric: the highest step, then the
    /// latest timestamp, then the largest value (NaN above every number).
    pub fn is_later_than(&self, other: &MetricValue) -> bool {
        let rank = |v: &MetricValue| (v.step, v.timestamp, v.value.is_nan());
        rank(self).cmp(&rank(other)).then_with(|| if self.value.is_nan() { std::cmp::Ordering::Equal } else { self.value.total_cmp(&other.value) })
            == std::cmp::Ordering::Greater
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub key: String,
    pub value: MetricValue,
}

/// A run with its data: the latest value of each metric, every param and
/// tag, each by key.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub info: RunInfo,
    pub metrics: Vec<Metric>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// The logged models this run produced, with the step of each.
    pub model_outputs: Vec<(String, i64)>,
    /// The datasets this run read, in the order first logged.
    pub dataset_inputs: Vec<DatasetInput>,
    /// The logged models this run used (evaluated, scored), in the order
    /// first logged.
    pub model_inputs: Vec<String>,
}

/// A dataset a run read (MLflow's `log_inputs`): what the client computed
/// of it (name, digest, where it came from, its schema and profile as the
/// JSON texts MLflow sends) and the input's tags (`mlflow.data.context`:
/// training, evaluation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInput {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    pub schema: Option<String>,
    pub profile: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// What one `log-batch` (and each single log call) writes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunBatch {
    pub metrics: Vec<Metric>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// Changes to a run's info; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    pub end_time: Option<i64>,
    pub run_name: Option<String>,
    pub lifecycle_stage: Option<LifecycleStage>,
}

/// Changes to an experiment; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExperimentUpdate {
    pub name: Option<String>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub at: i64,
}

/// Where a logged model's files stand (MLflow's `LoggedModelStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoggedModelStatus {
    Pending,
    Ready,
    UploadFailed,
}

impl LoggedModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "LOGGED_MODEL_PENDING",
            Self::Ready => "LOGGED_MODEL_READY",
            Self::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }

    /// MLflow's names, or its enum numbers (1–3).
    pub fn parse(field: &str, text: &str) -> Result<Self> {
        match text.to_ascii_uppercase().as_str() {
            "LOGGED_MODEL_PENDING" | "1" => Ok(Self::Pending),
            "LOGGED_MODEL_READY" | "2" => Ok(Self::Ready),
            "LOGGED_MODEL_UPLOAD_FAILED" | "3" => Ok(Self::UploadFailed),
            _ => Err(Error::invalid(
                field,
                format!("{} is not LOGGED_MODEL_PENDING, LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED", quote(text)),
            )),
        }
    }
}

/// A model logged by a run (MLflow 3): a directory of files under its
/// artifact location, not yet governed. Registering it makes a model
/// version whose artifact is the manifest of those files.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedModel {
    /// `m-` and 32 lowercase hex characters.
    pub model_id: String,
    pub experiment_id: i64,
    pub name: String,
    pub artifact_uri: String,
    pub status: LoggedModelStatus,
    pub model_type: String,
    pub source_run_id: Option<String>,
    pub creation_time: i64,
    pub last_update_time: i64,
    /// By key.
    pub tags: Vec<(String, String)>,
    /// By key.
    pub params: Vec<(String, String)>,
}

/// A file stored through MLflow's artifact proxy: its path under the
/// artifact root and the content-addressed blob holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    pub path: String,
    pub sha256: crate::version::Sha256Hex,
    pub size: u64,
}

/// One file of a [`ModelManifest`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestFile {
    /// Relative to the model's directory.
    pub path: String,
    pub sha256: crate::version::Sha256Hex,
    pub size: u64,
}

/// The artifact of a version registered through MLflow: the files of the
/// logged model (each a content-addressed blob) and where they came from.
/// Stored as canonical JSON, so the version's digest covers every byte of
/// every file, and the files a version serves can never change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelManifest {
    /// [`MANIFEST_FORMAT`]; tells a manifest from any other artifact.
    pub format: String,
    /// The `source` the version was created from (`models:/m-…`, `runs:/…`, a URI).
    pub source: String,
    pub model_id: Option<String>,
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_link: String,
    /// By path.
    pub files: Vec<ManifestFile>,
}

pub const MANIFEST_FORMAT: &str = "modelops.mlflow-model/1";
/// The file name a manifest is stored under.
pub const MANIFEST_FILENAME: &str = "mlflow-model.json";

impl ModelManifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        // Struct fields serialise in declaration order: canonical.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// `None` when `bytes` is not a manifest (another kind's artifact).
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes).ok().filter(|m| m.format == MANIFEST_FORMAT)
    }
}

/// The longest artifact path accepted (bytes).
pub const MAX_ARTIFACT_PATH_LEN: usize = 1024;

/// An artifact path relative to the root: `/`-separated segments, none
/// empty, `.` or `..`, no backslash, no control characters.
pub fn check_artifact_path(field: &str, path: &str) -> Result<()> {
    if path.len() > MAX_ARTIFACT_PATH_LEN {
        return Err(Error::invalid(field, format!("{} is longer than {MAX_ARTIFACT_PATH_LEN} bytes", quote(path))));
    }
    if path.chars().any(char::is_control) || path.contains('\\') {
        return Err(Error::invalid(field, format!("{} contains a control character or a backslash", quote(path))));
    }
    if path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(Error::invalid(field, format!("{} is not a relative path of named segments (no empty, `.` or `..` segment)", quote(path))));
    }
    Ok(())
}

/// Storage of experiments and runs. Each method is one statement or one
/// transaction of its own, outside the registry's write lock.
#[async_trait]
pub trait TrackingStore: Send + Sync {
    /// The new experiment's id; `AlreadyExists` (`experiment`) when the name is taken.
    async fn insert_experiment(&self, new: &NewExperiment) -> Result<i64>;
    async fn experiment(&self, id: i64) -> Result<Option<Experiment>>;
    async fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>>;
    /// Every experiment, by id.
    async fn experiments(&self) -> Result<Vec<Experiment>>;
    /// `NotFound` for an unknown id; `AlreadyExists` for a taken new name.
    async fn update_experiment(&self, id: i64, update: &ExperimentUpdate) -> Result<()>;
    async fn set_experiment_tag(&self, id: i64, key: &str, value: &str, at: i64) -> Result<()>;
    async fn delete_experiment_tag(&self, id: i64, key: &str, at: i64) -> Result<()>;
    /// Inserts a run with its first tags.
    async fn insert_run(&self, info: &RunInfo, tags: &[(String, String)]) -> Result<()>;
    async fn run(&self, run_id: &str) -> Result<Option<Run>>;
    /// The runs of these experiments, every lifecycle stage, oldest first.
    async fn runs(&self, experiment_ids: &[i64]) -> Result<Vec<Run>>;
    /// `NotFound` (`run`) for an unknown id.
    async fn update_run(&self, run_id: &str, update: &RunUpdate) -> Result<()>;
    /// Writes a batch in one transaction: metric values appended (a value
    /// logged twice identically is kept once), params inserted, tags set.
    /// A param already logged with another value refuses the whole batch
    /// (`InvalidInput` naming it): params are immutable.
    async fn log_batch(&self, run_id: &str, batch: &RunBatch) -> Result<()>;
    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()>;
    /// Every value of a metric, by step then timestamp.
    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricValue>>;
    /// Records that the run produced these logged models (at these steps);
    /// recording one twice keeps it once.
    async fn log_run_outputs(&self, run_id: &str, outputs: &[(String, i64)]) -> Result<()>;
    /// Records the datasets and logged models a run read; one already
    /// recorded for the run (a dataset's name and digest, a model's id)
    /// keeps its first record.
    async fn log_run_inputs(&self, run_id: &str, datasets: &[DatasetInput], models: &[String]) -> Result<()>;

    /// Inserts a logged model with its tags and params.
    async fn insert_logged_model(&self, model: &LoggedModel) -> Result<()>;
    async fn logged_model(&self, model_id: &str) -> Result<Option<LoggedModel>>;
    /// The logged models of these experiments, oldest first.
    async fn logged_models(&self, experiment_ids: &[i64]) -> Result<Vec<LoggedModel>>;
    /// `NotFound` (`logged model`) for an unknown id.
    async fn set_logged_model_status(&self, model_id: &str, status: LoggedModelStatus, at: i64) -> Result<()>;
    /// Sets tags (replacing values of keys already set). `NotFound` for an unknown id.
    async fn set_logged_model_tags(&self, model_id: &str, tags: &[(String, String)], at: i64) -> Result<()>;
    /// `NotFound` (`logged model tag`) when the tag is not set.
    async fn delete_logged_model_tag(&self, model_id: &str, key: &str, at: i64) -> Result<()>;

    /// Points an artifact path at a stored blob (replacing what it held).
    async fn put_artifact_file(&self, file: &ArtifactFile, at: i64) -> Result<()>;
    async fn artifact_file(&self, path: &str) -> Result<Option<ArtifactFile>>;
    /// Every file under the directory `dir` (its descendants, at any
    /// depth), by path; `""` is the root.
    async fn artifact_files_under(&self, dir: &str) -> Result<Vec<ArtifactFile>>;
    /// Removes the file `path` or every file under the directory `path`;
    /// how many were removed.
    async fn delete_artifact_files(&self, path: &str) -> Result<u64>;
}

/// A key (param, metric or tag): 1–250 characters, none a control
/// character; `/`-separated segments may not be `.` or `..` (MLflow's rule,
/// as keys can become file paths).
pub fn check_key(field: &str, key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if key.chars().count() > MAX_KEY_LEN {
        return Err(Error::invalid(field, format!("{} is longer than {MAX_KEY_LEN} characters", quote(key))));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("{} contains a control character", quote(key))));
    }
    if key.starts_with('/') || key.split('/').any(|s| s == "." || s == "..") {
        return Err(Error::invalid(field, format!("{} is not a valid key: it must be a relative path without `.` or `..`", quote(key))));
    }
    Ok(())
}

/// A value of at most `max` characters, without NUL (which neither database keeps).
pub fn check_value(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("is longer than {max} characters ({} given)", value.chars().count())));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL character"));
    }
    Ok(())
}

/// An experiment or run name: 1–500 characters, no control characters.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::invalid(field, format!("{} is longer than {MAX_NAME_LEN} characters", quote(name))));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(field, format!("{} contains a control character", quote(name))));
    }
    Ok(())
}

/// A run id: 32 lowercase hex characters, as this server makes them.
pub fn check_run_id(field: &str, id: &str) -> Result<()> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{} is not a run id (32 lowercase hex characters)", quote(id))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_value_is_the_highest_step_then_time_then_value() {
        let v = |value, timestamp, step| MetricValue { value, timestamp, step };
        assert!(v(0.0, 1, 2).is_later_than(&v(9.0, 9, 1)));
        assert!(v(0.0, 2, 1).is_later_than(&v(9.0, 1, 1)));
        assert!(v(2.0, 1, 1).is_later_than(&v(1.0, 1, 1)));
        assert!(v(f64::NAN, 1, 1).is_later_than(&v(f64::INFINITY, 1, 1)));
        assert!(!v(1.0, 1, 1).is_later_than(&v(1.0, 1, 1)));
    }

    #[test]
    fn keys_follow_mlflow_rules() {
        assert!(check_key("key", "rmse").is_ok());
        assert!(check_key("key", "a/b.c-d e").is_ok());
        assert!(check_key("key", "").is_err());
        assert!(check_key("key", "../x").is_err());
        assert!(check_key("key", "/x").is_err());
        assert!(check_key("key", "a\nb").is_err());
        assert!(check_key("key", &"k".repeat(251)).is_err());
        assert!(check_run_id("run_id", "0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_run_id("run_id", "0123456789ABCDEF0123456789abcdef").is_err());
        assert!(check_run_id("run_id", "x").is_err());
    }

    #[test]
    fn artifact_paths_are_relative_and_named() {
        assert!(check_artifact_path("path", "2/abc/artifacts/model/MLmodel").is_ok());
        for bad in ["", "/etc/passwd", "a//b", "a/../b", "./a", "a/", "a\\b", "a\nb"] {
            assert!(check_artifact_path("path", bad).is_err(), "{bad:?} accepted");
        }
    }
}
