//! Integration tests of modelops-runtime's public API (one test binary).
//! The llm and external runtimes run against small local servers speaking
//! their upstreams' protocols (`fake_openai`, `fake_oip`).

// Helpers outside #[test] fns (the fake servers) unwrap too: a failure
// there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fake_oip;
mod fake_openai;
mod external;
mod llm;
mod onnx;
mod shap;
mod rules;
mod statistical;
