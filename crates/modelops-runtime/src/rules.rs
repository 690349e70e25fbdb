//! Rule-based models: an ordered rule set or decision table of CEL
//! expressions. (Being written.)
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use modelops_core::version::Signature;

pub struct RulesModel {
    signature: Signature,
}

impl RulesModel {
    pub fn load(_artifact: &[u8]) -> Result<Self, RuntimeError> {
        Err(RuntimeError::Load("rules runtime not implemented yet".into()))
    }
}

#[async_trait]
impl LoadedModel for RulesModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn platform(&self) -> &'static str {
        "modelops_rules"
    }
    fn memory_bytes(&self) -> usize {
        0
    }
    async fn predict(&self, _request: PredictRequest) -> Result<Prediction, RuntimeError> {
        Err(RuntimeError::Internal("not implemented".into()))
    }
}
