//! LLM models: a prompt template sent to an OpenAI-compatible upstream.
//! (Being written.)
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use modelops_core::version::Signature;

/// Upstreams and prices, from the server's configuration and environment.
#[derive(Debug, Clone, Default)]
pub struct LlmConfig {}

pub struct LlmModel {
    signature: Signature,
}

impl LlmModel {
    pub fn load(_artifact: &[u8], _config: &LlmConfig) -> Result<Self, RuntimeError> {
        Err(RuntimeError::Load("llm runtime not implemented yet".into()))
    }
}

#[async_trait]
impl LoadedModel for LlmModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn platform(&self) -> &'static str {
        "modelops_llm"
    }
    fn memory_bytes(&self) -> usize {
        0
    }
    fn is_compute(&self) -> bool {
        false
    }
    async fn predict(&self, _request: PredictRequest) -> Result<Prediction, RuntimeError> {
        Err(RuntimeError::Internal("not implemented".into()))
    }
}
