//! Explanations returned with a prediction when asked (`explain: true`),
//! one per row. Each runtime gives the kind that is exact for it.

use serde::Serialize;
use std::collections::BTreeMap;

/// One row's explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Explanation {
    /// A rule set: the rule(s) that fired (first-match: one; collect: all,
    /// in order) and the inputs the rules read.
    Rules { fired: Vec<String>, inputs: BTreeMap<String, serde_json::Value> },
    /// Additive models (linear regression: the value; logistic regression:
    /// the log-odds): `base_value + Σ contributions = output`.
    Contributions { scale: ContributionScale, base_value: f64, contributions: Vec<Contribution> },
    /// A scorecard: points per feature, and reason codes ordered by points
    /// lost (the most lost first) against the best bin of each feature.
    Scorecard { score: f64, points: Vec<Contribution>, reasons: Vec<ReasonCode> },
    /// SHAP values of a tree ensemble (TreeSHAP, path-dependent, over the
    /// node covers), one set per output: one for a regressor, one per class
    /// for a classifier, in the model's raw score space (the margin, before
    /// the post-transform), as `shap.TreeExplainer` gives them.
    TreeShap { outputs: Vec<ShapOutput> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContributionScale {
    Value,
    LogOdds,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub feature: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCode {
    pub feature: String,
    /// The code the scorecard gives the bin (or the feature's name).
    pub code: String,
    pub points: f64,
    /// The feature's best bin's points minus these points.
    pub points_lost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShapOutput {
    /// The class label, or `value` for a regressor.
    pub output: String,
    /// The expected raw score over the training data (from the covers).
    pub base_value: f64,
    /// One per input feature, in input order (`feature_0`… for a tensor input).
    pub values: Vec<Contribution>,
}
