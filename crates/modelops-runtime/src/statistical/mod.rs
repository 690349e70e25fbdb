//! Statistical models from a JSON spec (YAML is read too, told apart by
//! content): linear and logistic regression, and credit scorecards.
//!
//! ```json
//! {"type": "logistic_regression", "intercept": -3.2,
//!  "coefficients": {"income": 0.00002, "debt_ratio": 2.5}, "threshold": 0.5}
//! ```
//!
//! - `linear_regression`: `prediction = intercept + Σ coefficient × x`.
//! - `logistic_regression`: `probability = σ(intercept + Σ coefficient × x)`
//!   and `label` (int) = 1 when `probability >= threshold` (default 0.5),
//!   else 0.
//!
//! `intercept` defaults to 0; `coefficients` maps each input to its
//! coefficient, in the signature's order (the order written). Every input
//! is a double (`FP64`; integers are accepted and widened); NaN and
//! infinities are refused, naming the input and the row.
//!
//! `scorecard`: see [`scorecard`] — points per bin of each feature, summed
//! with `base_points` into `score`, and optionally scaled to `probability`.
//!
//! Explanations: the regressions give [`Explanation::Contributions`]
//! (coefficient × x per input, in input order; `base_value` = intercept; the
//! value scale for linear, log-odds for logistic, so base value plus the
//! contributions is the output, before the sigmoid for logistic);
//! scorecards give [`Explanation::Scorecard`].
//!
//! Load refuses, naming the member: unknown fields, members of another
//! type's spec (`threshold` on a linear regression), non-finite numbers, an
//! empty or repeated input, and the scorecard checks.

pub mod scorecard;
#[cfg(test)]
mod tests;

use crate::explain::{Contribution, ContributionScale, Explanation};
use crate::spec::{self, quote, OrderedMap};
use crate::tensor::{oip_datatype, Tensor, TensorData};
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use modelops_core::version::{DataType, Signature, SignatureField};
use scorecard::{RawFeature, RawScaling, Scorecard};
use serde::Deserialize;

/// The most inputs a spec may have.
pub const MAX_FEATURES: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SpecType {
    LinearRegression,
    LogisticRegression,
    Scorecard,
}

impl SpecType {
    fn name(self) -> &'static str {
        match self {
            SpecType::LinearRegression => "linear_regression",
            SpecType::LogisticRegression => "logistic_regression",
            SpecType::Scorecard => "scorecard",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    #[serde(rename = "type")]
    ty: SpecType,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    intercept: Option<f64>,
    #[serde(default)]
    coefficients: Option<OrderedMap<f64>>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    base_points: Option<f64>,
    #[serde(default)]
    features: Option<Vec<RawFeature>>,
    #[serde(default)]
    score_to_probability: Option<RawScaling>,
}

#[derive(Debug)]
enum Model {
    Linear(Regression),
    Logistic { regression: Regression, threshold: f64 },
    Scorecard(Scorecard),
}

#[derive(Debug)]
struct Regression {
    intercept: f64,
    coefficients: Vec<f64>,
}

/// A loaded statistical model.
#[derive(Debug)]
pub struct StatisticalModel {
    signature: Signature,
    model: Model,
}

pub(crate) fn load_error(path: &str, problem: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Load(format!("{path}: {problem}"))
}

pub(crate) fn finite(path: &str, x: f64) -> Result<f64, RuntimeError> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(load_error(path, format!("`{x}` is not a finite number")))
    }
}

/// A feature name: non-empty, no control characters, at most 200
/// characters, not repeated.
pub(crate) fn check_name(path: &str, name: &str, earlier: &[String]) -> Result<(), RuntimeError> {
    if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 200 {
        return Err(load_error(path, format!("{} is not a valid input name", quote(name))));
    }
    if earlier.iter().any(|n| n == name) {
        return Err(load_error(path, format!("`{name}` is given twice")));
    }
    Ok(())
}

fn field(name: &str, dtype: DataType, allow_nan: bool) -> SignatureField {
    SignatureField { name: name.to_string(), dtype, shape: vec![], allow_nan }
}

impl StatisticalModel {
    /// Parses and checks a spec. Every error names the member at fault.
    pub fn load(artifact: &[u8]) -> Result<Self, RuntimeError> {
        let raw: RawSpec = spec::parse(artifact, "statistical spec")?;
        if let Some(kind) = &raw.kind {
            if kind != "statistical" {
                return Err(load_error("kind", format!("{} is not `statistical`", quote(kind))));
            }
        }
        let ty = raw.ty;
        let refuse = |present: bool, member: &str, applies: &str| {
            if present {
                Err(load_error(member, format!("does not apply to a {}; it belongs to {applies}", ty.name())))
            } else {
                Ok(())
            }
        };
        match ty {
            SpecType::LinearRegression | SpecType::LogisticRegression => {
                refuse(raw.base_points.is_some(), "base_points", "a scorecard")?;
                refuse(raw.features.is_some(), "features", "a scorecard")?;
                refuse(raw.score_to_probability.is_some(), "score_to_probability", "a scorecard")?;
                if ty == SpecType::LinearRegression {
                    refuse(raw.threshold.is_some(), "threshold", "a logistic_regression")?;
                }
                let Some(coefficients) = raw.coefficients else {
                    return Err(load_error("coefficients", "missing: a regression needs a coefficient per input"));
                };
                if coefficients.0.is_empty() {
                    return Err(load_error("coefficients", "a regression needs at least one input"));
                }
                if coefficients.0.len() > MAX_FEATURES {
                    return Err(load_error("coefficients", format!("{} inputs; at most {MAX_FEATURES} are allowed", coefficients.0.len())));
                }
                let mut names: Vec<String> = Vec::with_capacity(coefficients.0.len());
                let mut values = Vec::with_capacity(coefficients.0.len());
                for (name, c) in coefficients.0 {
                    check_name(&format!("coefficients.{name}"), &name, &names)?;
                    values.push(finite(&format!("coefficients.{name}"), c)?);
                    names.push(name);
                }
                let regression = Regression { intercept: finite("intercept", raw.intercept.unwrap_or(0.0))?, coefficients: values };
                let inputs = names.iter().map(|n| field(n, DataType::Float64, false)).collect();
                let (model, outputs) = if ty == SpecType::LinearRegression {
                    (Model::Linear(regression), vec![field("prediction", DataType::Float64, false)])
                } else {
                    let threshold = finite("threshold", raw.threshold.unwrap_or(0.5))?;
                    if !(0.0..=1.0).contains(&threshold) {
                        return Err(load_error("threshold", format!("`{threshold}` is not a probability between 0 and 1")));
                    }
                    (
                        Model::Logistic { regression, threshold },
                        vec![field("probability", DataType::Float64, false), field("label", DataType::Int64, false)],
                    )
                };
                Ok(StatisticalModel { signature: Signature { inputs, outputs }, model })
            }
            SpecType::Scorecard => {
                refuse(raw.intercept.is_some(), "intercept", "a regression")?;
                refuse(raw.coefficients.is_some(), "coefficients", "a regression")?;
                refuse(raw.threshold.is_some(), "threshold", "a logistic_regression")?;
                let Some(features) = raw.features else {
                    return Err(load_error("features", "missing: a scorecard needs its features and their bins"));
                };
                let scorecard = Scorecard::new(raw.base_points.unwrap_or(0.0), &features, raw.score_to_probability.as_ref())?;
                let inputs = scorecard.inputs();
                let mut outputs = vec![field("score", DataType::Float64, false)];
                if scorecard.has_probability() {
                    outputs.push(field("probability", DataType::Float64, false));
                }
                Ok(StatisticalModel { signature: Signature { inputs, outputs }, model: Model::Scorecard(scorecard) })
            }
        }
    }
}

/// The numeric column of input `name`, every value finite.
pub(crate) fn numbers<'a>(tensor: &'a Tensor, name: &str, rows: usize, allow_nan: bool) -> Result<&'a [f64], RuntimeError> {
    let field = || format!("inputs.{name}");
    let TensorData::Float64(values) = &tensor.data else {
        return Err(RuntimeError::input(field(), format!("datatype {} where the signature says FP64", oip_datatype(tensor.data.dtype()))));
    };
    if values.len() != rows {
        return Err(RuntimeError::input(field(), format!("{} values for {rows} rows: each row takes one value", values.len())));
    }
    if let Some((row, x)) = values.iter().enumerate().find(|(_, x)| if allow_nan { x.is_infinite() } else { !x.is_finite() }) {
        let what = if x.is_nan() {
            "NaN (a missing value), which this model does not take".to_string()
        } else {
            format!("`{x}`, not a finite number")
        };
        return Err(RuntimeError::input(field(), format!("row {row} is {what}")));
    }
    Ok(values)
}

/// σ(z), without overflow for large |z|.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl Regression {
    /// The linear predictor per row, and the columns it read.
    fn linear<'a>(&self, signature: &Signature, inputs: &'a [Tensor], rows: usize) -> Result<(Vec<f64>, Vec<&'a [f64]>), RuntimeError> {
        let mut columns = Vec::with_capacity(self.coefficients.len());
        for (field, tensor) in signature.inputs.iter().zip(inputs) {
            columns.push(numbers(tensor, &field.name, rows, false)?);
        }
        let mut out = vec![self.intercept; rows];
        for (c, column) in self.coefficients.iter().zip(&columns) {
            for (acc, x) in out.iter_mut().zip(column.iter()) {
                *acc += c * x;
            }
        }
        if let Some(row) = out.iter().position(|z| !z.is_finite()) {
            return Err(RuntimeError::input("inputs", format!("row {row}: the linear predictor is not finite (an input is too large)")));
        }
        Ok((out, columns))
    }

    fn explain(&self, signature: &Signature, columns: &[&[f64]], row: usize, scale: ContributionScale) -> Explanation {
        Explanation::Contributions {
            scale,
            base_value: self.intercept,
            contributions: signature
                .inputs
                .iter()
                .zip(&self.coefficients)
                .zip(columns)
                .map(|((field, c), column)| Contribution { feature: field.name.clone(), value: c * column[row] })
                .collect(),
        }
    }
}

#[async_trait]
impl LoadedModel for StatisticalModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn platform(&self) -> &'static str {
        "modelops_statistical"
    }

    fn memory_bytes(&self) -> usize {
        let per_input = 64;
        4096 + self.signature.inputs.len() * per_input
            + match &self.model {
                Model::Scorecard(s) => s.memory_bytes(),
                _ => 0,
            }
    }

    async fn predict(&self, request: PredictRequest) -> Result<Prediction, RuntimeError> {
        let rows = request.rows;
        if request.inputs.len() != self.signature.inputs.len() {
            return Err(RuntimeError::Internal(format!(
                "{} input tensors for {} inputs: the batch was not checked",
                request.inputs.len(),
                self.signature.inputs.len()
            )));
        }
        let inputs = &request.inputs;
        match &self.model {
            Model::Linear(regression) => {
                let (prediction, columns) = regression.linear(&self.signature, inputs, rows)?;
                let explanations = request
                    .explain
                    .then(|| (0..rows).map(|r| regression.explain(&self.signature, &columns, r, ContributionScale::Value)).collect());
                Ok(Prediction {
                    outputs: vec![Tensor::new("prediction", vec![rows], TensorData::Float64(prediction))],
                    explanations,
                    usage: None,
                })
            }
            Model::Logistic { regression, threshold } => {
                let (log_odds, columns) = regression.linear(&self.signature, inputs, rows)?;
                let probability: Vec<f64> = log_odds.iter().map(|&z| sigmoid(z)).collect();
                let label: Vec<i64> = probability.iter().map(|&p| i64::from(p >= *threshold)).collect();
                let explanations = request
                    .explain
                    .then(|| (0..rows).map(|r| regression.explain(&self.signature, &columns, r, ContributionScale::LogOdds)).collect());
                Ok(Prediction {
                    outputs: vec![
                        Tensor::new("probability", vec![rows], TensorData::Float64(probability)),
                        Tensor::new("label", vec![rows], TensorData::Int64(label)),
                    ],
                    explanations,
                    usage: None,
                })
            }
            Model::Scorecard(scorecard) => scorecard.predict(inputs, rows, request.explain),
        }
    }
}
