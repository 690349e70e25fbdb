#[path = "it/onnx.rs"]
mod onnx;
