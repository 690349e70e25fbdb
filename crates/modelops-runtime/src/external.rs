//! External models: served elsewhere over the Open Inference Protocol, proxied.
//! (Being written.)
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use modelops_core::version::Signature;

/// Timeouts and credentials for external servers.
#[derive(Debug, Clone, Default)]
pub struct ExternalConfig {}

pub struct ExternalModel {
    signature: Signature,
}

impl ExternalModel {
    pub fn load(_artifact: &[u8], _config: &ExternalConfig) -> Result<Self, RuntimeError> {
        Err(RuntimeError::Load("external runtime not implemented yet".into()))
    }
}

#[async_trait]
impl LoadedModel for ExternalModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn platform(&self) -> &'static str {
        "modelops_external"
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
