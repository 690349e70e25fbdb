//! Live monitoring's vocabulary (DESIGN §6): the reference profile stored
//! with a version, a monitor over a deployment's recorded predictions and
//! its alert rules, the result of one window, a label joined to a recorded
//! call, an alert as it fired and resolved, and a retraining request.
//!
//! The rules here are structural (names, windows, thresholds, actions);
//! the statistics are `modelops-monitor`'s, the CEL conditions are compiled
//! by `modelops-watch` when a monitor is created, and what a window holds is
//! decided by the engine there.

use crate::error::{Error, Result};
use crate::model::{check_text, string_enum, MAX_SHORT_TEXT_LEN};
use crate::name::{quote, ModelName};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most monitors one deployment holds.
pub const MAX_MONITORS: usize = 32;
/// The most alert rules (and actions per rule) a monitor holds.
pub const MAX_RULES: usize = 16;
/// The most features a monitor names.
pub const MAX_FEATURES: usize = 1_000;
/// The shortest time window: one second.
pub const MIN_WINDOW_MS: u64 = 1_000;
/// The longest time window: 31 days.
pub const MAX_WINDOW_MS: u64 = 31 * 24 * 3_600_000;
/// The largest count window.
pub const MAX_WINDOW_ROWS: u64 = 100_000_000;
/// A CEL condition's longest text.
pub const MAX_CONDITION_LEN: usize = 4_096;

/// A version's reference profile (`modelops-monitor`'s profile JSON),
/// set once: immutable like lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceProfile {
    pub model: ModelName,
    pub version: u32,
    /// sha256 of `profile`.
    pub sha256: String,
    /// The profile as JSON text.
    pub profile: String,
    /// Where it came from: the file it was fitted from, or a window.
    pub source: String,
    pub rows: u64,
    /// The label-free performance estimator (CBPE) fitted on the reference's
    /// scores and labels, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimator: Option<String>,
    /// The reference data itself, kept as an artifact when asked: what
    /// evidently-mode monitors compare whole windows with (Evidently works
    /// on raw values, which a profile does not hold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ReferenceData>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// The file a reference profile was fitted from, stored as an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceData {
    pub sha256: String,
    /// Its name as uploaded; the extension says how it reads (`.parquet`,
    /// `.csv`).
    pub filename: String,
}

impl ReferenceData {
    /// A digest, and a bare `.parquet` or `.csv` file name (how it reads).
    pub fn validate(&self) -> Result<()> {
        crate::version::Sha256Hex::parse_field("data.sha256", self.sha256.clone())?;
        crate::version::check_file_name("data.filename", &self.filename)?;
        let extension = std::path::Path::new(&self.filename).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !matches!(extension.as_deref(), Some("parquet" | "csv")) {
            return Err(Error::invalid("data.filename", format!("{} is not a `.parquet` or `.csv` file", quote(&self.filename))));
        }
        Ok(())
    }
}

/// How a monitor computes a window's drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMode {
    /// Against the version's reference profile, from aggregates merged as
    /// calls arrive (bounded memory; provisional results while open).
    #[default]
    Default,
    /// Evidently's `DataDriftPreset`, number for number, over every call
    /// of the window against the reference data kept with the version;
    /// computed when the window closes (the window's calls read again).
    Evidently,
}

impl DriftMode {
    pub fn is_default(&self) -> bool {
        *self == DriftMode::Default
    }
}

/// How a monitor cuts the stream of recorded rows into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct Window {
    /// Tumbling windows of this many milliseconds, aligned to the Unix
    /// epoch (hourly windows start on the hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// Windows of this many predicted rows, in the order they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

impl Window {
    pub fn check(&self) -> Result<()> {
        match (self.every_ms, self.rows) {
            (Some(_), Some(_)) | (None, None) => Err(Error::invalid("window", "give either `every` (a duration such as `1h`) or `rows` (a count), not both and not neither")),
            (Some(ms), None) if !(MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&ms) => Err(Error::invalid("window.every", format!("`{ms}` ms is outside 1 s to 31 days"))),
            (None, Some(n)) if n == 0 || n > MAX_WINDOW_ROWS => Err(Error::invalid("window.rows", format!("`{n}` is outside 1 to {MAX_WINDOW_ROWS}"))),
            _ => Ok(()),
        }
    }
}

/// What drift a monitor computes (default mode, against the serving
/// version's reference profile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSettings {
    #[serde(default, skip_serializing_if = "DriftMode::is_default")]
    pub mode: DriftMode,
    /// One method for every column (Evidently's key: `ks`, `psi`, …)
    /// instead of the default choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The dataset drifts when at least this share of columns does.
    #[serde(default = "default_drift_share")]
    pub drift_share: f64,
}

fn default_drift_share() -> f64 {
    0.5
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self { mode: DriftMode::Default, method: None, threshold: None, drift_share: default_drift_share() }
    }
}

/// Performance once labels arrive (and its estimate before).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSettings {
    /// The output column holding the predicted label or value (`label`).
    pub prediction: String,
    /// The output column holding the positive class's probability
    /// (`probabilities_1`), for ROC AUC and the label-free estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<String>,
    /// The positive class, when it cannot be inferred (`1`, `true`, `yes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_label: Option<String>,
    /// A protected attribute (an input column): fairness gaps per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness_attribute: Option<String>,
}

string_enum!(
    /// What an alert does when it fires.
    ActionKind {
        // POST a JSON body signed with HMAC-SHA256.
        Webhook => "webhook",
        // Mark the deployment degraded until the alert resolves.
        Degrade => "degrade",
        // Roll back the deployment's running canary, if one runs.
        RollbackCanary => "rollback_canary",
        // Open a retraining request for the model.
        Retrain => "retrain",
    }
);

/// One action of an alert rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertAction {
    pub kind: ActionKind,
    /// Webhook: where to POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Webhook: the environment variable of the server holding the HMAC
    /// secret (the secret itself is never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
}

/// An alert rule: a CEL condition over a window's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: String,
    pub condition: String,
    /// The condition must hold this long (over consecutive windows) before
    /// the alert fires; 0 fires on the first window.
    #[serde(default)]
    pub for_ms: u64,
    /// After firing, the rule does not fire again for this long.
    #[serde(default)]
    pub cooldown_ms: u64,
    #[serde(default)]
    pub actions: Vec<AlertAction>,
}

/// A monitor as asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorSpec {
    pub name: String,
    pub window: Window,
    /// The columns whose drift is computed (inputs and outputs, as the
    /// exported table names them); absent: every column of the reference
    /// profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    #[serde(default)]
    pub drift: DriftSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<PerformanceSettings>,
    /// Fewer rows than this in a window: "not computed", not a verdict.
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    #[serde(default)]
    pub alerts: Vec<AlertRule>,
}

fn default_min_rows() -> u64 {
    30
}

/// Checks a monitor or rule name: 1–63 of `a-z 0-9 - _ .`, starting with a
/// letter or digit.
pub fn check_short_name(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(field, format!("{} is not a name: 1 to 63 of a-z, 0-9, `-`, `_`, `.`, starting with a letter or digit", quote(name))))
    }
}

impl MonitorSpec {
    /// The structural rules; the features against the signature and the
    /// conditions' CEL are checked by the use case.
    pub fn check(&self) -> Result<()> {
        check_short_name("name", &self.name)?;
        self.window.check()?;
        if let Some(features) = &self.features {
            if features.is_empty() {
                return Err(Error::invalid("features", "an empty list watches nothing; leave it out to watch every column of the reference profile"));
            }
            if features.len() > MAX_FEATURES {
                return Err(Error::invalid("features", format!("{} features; at most {MAX_FEATURES}", features.len())));
            }
            for (i, f) in features.iter().enumerate() {
                check_text(&format!("features[{i}]"), f, MAX_SHORT_TEXT_LEN)?;
                if f.is_empty() {
                    return Err(Error::invalid(format!("features[{i}]"), "is empty"));
                }
                if features[..i].contains(f) {
                    return Err(Error::invalid(format!("features[{i}]"), format!("{} is named twice", quote(f))));
                }
            }
        }
        let share = self.drift.drift_share;
        if !(share.is_finite() && share > 0.0 && share <= 1.0) {
            return Err(Error::invalid("drift.drift_share", format!("`{share}` is not a share in (0, 1]")));
        }
        if let Some(t) = self.drift.threshold {
            if !(t.is_finite() && t >= 0.0) {
                return Err(Error::invalid("drift.threshold", format!("`{t}` is not a non-negative number")));
            }
        }
        if let Some(p) = &self.performance {
            check_text("performance.prediction", &p.prediction, MAX_SHORT_TEXT_LEN)?;
            if p.prediction.is_empty() {
                return Err(Error::invalid("performance.prediction", "is empty: name the output column holding the prediction"));
            }
        }
        if self.min_rows == 0 {
            return Err(Error::invalid("min_rows", "`0`: a window needs at least one row"));
        }
        if self.alerts.len() > MAX_RULES {
            return Err(Error::invalid("alerts", format!("{} rules; at most {MAX_RULES}", self.alerts.len())));
        }
        for (i, rule) in self.alerts.iter().enumerate() {
            let field = format!("alerts[{i}]");
            check_short_name(&format!("{field}.name"), &rule.name)?;
            if self.alerts[..i].iter().any(|r| r.name == rule.name) {
                return Err(Error::invalid(format!("{field}.name"), format!("{} is used by another rule", quote(&rule.name))));
            }
            if rule.condition.trim().is_empty() || rule.condition.len() > MAX_CONDITION_LEN {
                return Err(Error::invalid(format!("{field}.condition"), format!("must be a CEL expression of 1 to {MAX_CONDITION_LEN} bytes")));
            }
            if rule.actions.len() > MAX_RULES {
                return Err(Error::invalid(format!("{field}.actions"), format!("{} actions; at most {MAX_RULES}", rule.actions.len())));
            }
            for (j, action) in rule.actions.iter().enumerate() {
                let field = format!("{field}.actions[{j}]");
                match action.kind {
                    ActionKind::Webhook => {
                        let Some(url) = &action.url else {
                            return Err(Error::invalid(format!("{field}.url"), "a webhook needs a `url`"));
                        };
                        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
                            return Err(Error::invalid(format!("{field}.url"), format!("{} is not an http(s) URL", quote(url))));
                        }
                        if let Some(env) = &action.secret_env {
                            if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                                return Err(Error::invalid(format!("{field}.secret_env"), format!("{} is not an environment variable name", quote(env))));
                            }
                        }
                    }
                    _ => {
                        if action.url.is_some() || action.secret_env.is_some() {
                            return Err(Error::invalid(format!("{field}.url"), format!("only a webhook takes a `url` or `secret_env`, not `{}`", action.kind.as_str())));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A monitor as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub deployment: ModelName,
    pub spec: MonitorSpec,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// The result of one window of one monitor for one serving version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult {
    pub deployment: ModelName,
    pub monitor: String,
    pub version: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Predicted rows in the window.
    pub rows: u64,
    /// Whether the window is over (an open window's result is provisional).
    pub closed: bool,
    /// The computed sections (`drift`, `performance`, `estimated`,
    /// `fairness`, `not_computed`), as the engine writes them.
    pub body: serde_json::Value,
    pub computed_at: DateTime<Utc>,
}

string_enum!(
    /// Where an alert stands.
    AlertState { Firing => "firing", Resolved => "resolved" }
);

/// An alert: a rule that fired, and when it resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Assigned by the store.
    pub id: i64,
    pub deployment: ModelName,
    pub monitor: String,
    pub rule: String,
    pub state: AlertState,
    pub version: u32,
    /// The window that fired it.
    pub window_start: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The condition's inputs when it fired, the actions taken and every
    /// webhook delivery attempt.
    pub detail: serde_json::Value,
}

/// A request to retrain a model, opened by an alert (the closed loop
/// executes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrainRequest {
    pub id: i64,
    pub model: ModelName,
    pub deployment: ModelName,
    pub alert_id: i64,
    pub reason: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

/// What a batch of labels did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelOutcome {
    /// Labels joined to a recorded call.
    pub joined: u64,
    /// Labels whose request id no recorded call of the deployment has
    /// (kept, joined if the call is recorded later).
    pub unknown: u64,
    pub unknown_ids: Vec<String>,
}
