//! µs per row of an ONNX model at 1 row and at 1,000 rows, for the
//! benchmark. Run after the ONNX tests made the fixtures:
//!
//! cargo run --release -p modelops-runtime --example onnx_timing [-- FIXTURE_DIR [NAME]]
//!
//! (default: target/onnx-fixtures, rf_classifier: 100 trees of depth 8).

use modelops_runtime::onnx::OnnxModel;
use modelops_runtime::{Tensor, TensorData};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/onnx-fixtures").into());
    let name = args.next().unwrap_or_else(|| "rf_classifier".into());
    let model = OnnxModel::load(&std::fs::read(format!("{dir}/{name}.onnx"))?)?;
    let inputs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}.inputs.json"))?)?;
    let rows: Vec<Vec<f32>> = inputs["X"]
        .as_array()
        .ok_or("no X")?
        .iter()
        .map(|r| r.as_array().map(|r| r.iter().map(|v| v.as_f64().unwrap_or(f64::NAN) as f32).collect()).unwrap_or_default())
        .collect();
    let width = rows[0].len();
    let batch = |n: usize| {
        let data: Vec<f32> = rows.iter().cycle().take(n).flatten().copied().collect();
        vec![Tensor::new("X", vec![n, width], TensorData::Float32(data))]
    };
    for (n, iterations) in [(1usize, 20_000usize), (1000, 200)] {
        let input = batch(n);
        for _ in 0..iterations / 10 {
            model.run(&input)?;
        }
        let start = Instant::now();
        for _ in 0..iterations {
            model.run(&input)?;
        }
        let per_row = start.elapsed().as_secs_f64() * 1e6 / (iterations * n) as f64;
        println!("{name}: {n} row(s): {per_row:.3} µs/row");
    }
    Ok(())
}
