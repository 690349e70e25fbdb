//! ONNX models: tract-onnx plus our ai.onnx.ml operators.
//! (Being written.)
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use modelops_core::version::Signature;

pub struct OnnxModel {
    signature: Signature,
}

impl OnnxModel {
    pub fn load(_artifact: &[u8]) -> Result<Self, RuntimeError> {
        Err(RuntimeError::Load("onnx runtime not implemented yet".into()))
    }
}

#[async_trait]
impl LoadedModel for OnnxModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn platform(&self) -> &'static str {
        "onnx_onnxv1"
    }
    fn memory_bytes(&self) -> usize {
        0
    }
    async fn predict(&self, _request: PredictRequest) -> Result<Prediction, RuntimeError> {
        Err(RuntimeError::Internal("not implemented".into()))
    }
}

pub mod tree_shap;
