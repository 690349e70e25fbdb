//! Statistical models: linear, logistic regression, scorecards.
//! (Being written.)
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use modelops_core::version::Signature;

pub struct StatisticalModel {
    signature: Signature,
}

impl StatisticalModel {
    pub fn load(_artifact: &[u8]) -> Result<Self, RuntimeError> {
        Err(RuntimeError::Load("statistical runtime not implemented yet".into()))
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
        0
    }
    async fn predict(&self, _request: PredictRequest) -> Result<Prediction, RuntimeError> {
        Err(RuntimeError::Internal("not implemented".into()))
    }
}
