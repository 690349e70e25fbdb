//! modelops-runtime: makes a registered version executable.
//!
//! Owns: loading an artifact by its model kind ([`load`]) into a
//! [`LoadedModel`] that predicts on batches, the batch types ([`Tensor`],
//! [`TensorData`]), checking a batch against a version's signature
//! ([`check_inputs`]), explanations ([`Explanation`]) and the runtimes:
//! - [`onnx`]: tract-onnx for the standard operators plus our own
//!   `ai.onnx.ml` operators (tree ensembles, ZipMap, Scaler, …) registered
//!   into it, and TreeSHAP over the tree operators;
//! - [`rules`]: ordered rule sets and decision tables of CEL expressions
//!   (through modelops-expr, the policies' expression language);
//! - [`statistical`]: linear and logistic regression and scorecards from a
//!   JSON spec;
//! - [`llm`]: a prompt template sent to an OpenAI-compatible upstream whose
//!   address and key come from [`RuntimeConfig`], never from the artifact;
//! - [`external`]: a model served elsewhere over the Open Inference
//!   Protocol, proxied;
//! - [`upstream`]: what those two share: secrets that never print, bounded
//!   retries and timeouts, the upstream's error message.
//!
//! Must not depend on: an HTTP server framework, SQL or the store, the
//! registry. The upstream clients (llm, external) are HTTP *clients*
//! (reqwest); serving, authorisation and caching live in modelops-serving.

pub mod error;
pub mod explain;
pub mod external;
pub mod llm;
pub mod mlflow;
pub mod onnx;
pub mod rules;
pub mod sample;
mod spec;
pub mod statistical;
pub mod tensor;
pub mod tensor_json;
pub mod upstream;

pub use error::RuntimeError;
pub use explain::Explanation;
pub use tensor::{check_inputs, Tensor, TensorData};

use async_trait::async_trait;
use modelops_core::model::ModelKind;
use modelops_core::version::Signature;
use std::sync::Arc;

/// What a runtime needs from the server's configuration. Secrets (LLM API
/// keys) live here, never in an artifact, the registry or the audit log.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub llm: llm::LlmConfig,
    pub external: external::ExternalConfig,
}

/// One prediction call: the inputs in the order of the signature's inputs,
/// already checked by [`check_inputs`] (names, datatypes, shapes, one batch
/// size `rows`).
#[derive(Debug, Clone)]
pub struct PredictRequest {
    pub inputs: Vec<Tensor>,
    pub rows: usize,
    /// Return one [`Explanation`] per row.
    pub explain: bool,
    /// Request-level parameters (OIP `parameters`), e.g. LLM sampling.
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

/// Tokens and cost of one call to a metered upstream (LLM models).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// In the currency of the configured price table.
    pub cost: f64,
    pub upstream_latency_ms: f64,
}

/// The answer to a [`PredictRequest`]: every output of the signature, each
/// with `rows` as its first dimension.
#[derive(Debug, Clone, Default)]
pub struct Prediction {
    pub outputs: Vec<Tensor>,
    /// One per row when asked for.
    pub explanations: Option<Vec<Explanation>>,
    pub usage: Option<Usage>,
}

/// A loaded version. Loading validates everything that can be validated
/// without data; predicting never panics. `Send + Sync`: one loaded model
/// serves concurrent requests.
#[async_trait]
pub trait LoadedModel: Send + Sync {
    /// The signature the artifact declares (ONNX graph inputs and outputs,
    /// the rule set's declared features, …).
    fn signature(&self) -> &Signature;
    /// The OIP `platform` string: `onnx_onnxv1`, `modelops_rules`, …
    fn platform(&self) -> &'static str;
    /// Approximate memory held, for the cache's bound.
    fn memory_bytes(&self) -> usize;
    /// Whether CPU work dominates (the caller may move big batches off the
    /// async executor) rather than waiting on an upstream.
    fn is_compute(&self) -> bool {
        true
    }
    /// The class labels behind an output's columns (a classifier's
    /// probabilities: column `i` is the probability of label `i`).
    fn class_labels(&self, _output: &str) -> Option<Vec<String>> {
        None
    }
    async fn predict(&self, request: PredictRequest) -> Result<Prediction, RuntimeError>;
}

/// Loads an artifact as a model of `kind`. Fails with
/// [`RuntimeError::Load`] naming the reason (an unsupported operator, a
/// malformed spec) and never panics.
pub fn load(kind: ModelKind, artifact: &[u8], config: &RuntimeConfig) -> Result<Arc<dyn LoadedModel>, RuntimeError> {
    match kind {
        ModelKind::Onnx => Ok(Arc::new(onnx::OnnxModel::load(artifact)?)),
        ModelKind::Rules => Ok(Arc::new(rules::RulesModel::load(artifact)?)),
        ModelKind::Statistical => Ok(Arc::new(statistical::StatisticalModel::load(artifact)?)),
        ModelKind::Llm => Ok(Arc::new(llm::LlmModel::load(artifact, &config.llm)?)),
        ModelKind::External => Ok(Arc::new(external::ExternalModel::load(artifact, &config.external)?)),
        ModelKind::Mlflow => Err(RuntimeError::Load(
            "a model of kind `mlflow` is a manifest of files: load the file its flavour names (`mlflow::servable_flavour`)".into(),
        )),
    }
}
