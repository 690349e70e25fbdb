//! Benchmark helper for `bench/registry.sh`, not part of the product.
//!
//! - `baseline`: the smallest axum server that answers a JSON body, the
//!   ceiling of loopback HTTP on this machine, measured with the same load
//!   generator as modelops.
//! - `populate`: creates versions with distinct artifacts over the real API
//!   at a fixed concurrency and reports throughput and latency percentiles.
//!   A version is two dependent requests (stream the artifact, then create
//!   the version that references its digest), which a URL-driven load
//!   generator such as wrk cannot express.

use anyhow::{bail, Context};
use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
enum Cmd {
    /// Serve `GET /` → a small JSON document.
    Baseline {
        #[arg(long, default_value = "127.0.0.1:5999")]
        addr: String,
    },
    /// Create `--versions` versions of model `--model`.
    Populate {
        #[arg(long)]
        server: String,
        #[arg(long, default_value = "bench")]
        model: String,
        #[arg(long, default_value_t = 10_000)]
        versions: u64,
        #[arg(long, default_value_t = 4096)]
        artifact_bytes: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: u64,
    },
    /// Model-only time of ONNX models through modelops' runtime: µs per row
    /// for one row and for a batch, medians, as JSON.
    ModelTime {
        /// `NAME=PATH` of an ONNX model with one [N, F] float input.
        #[arg(long = "model", required = true)]
        models: Vec<String>,
        /// A JSON array of rows (the batch; its first row is the single row).
        #[arg(long)]
        batch: std::path::PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Baseline { addr } => baseline(&addr).await,
        Cmd::Populate { server, model, versions, artifact_bytes, concurrency } => {
            populate(&server, &model, versions, artifact_bytes, concurrency).await
        }
        Cmd::ModelTime { models, batch } => model_time(&models, &batch).await,
    }
}

async fn baseline(addr: &str) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"name": "bench", "version": 1, "state": "draft"})) }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn populate(server: &str, model: &str, versions: u64, artifact_bytes: usize, concurrency: u64) -> anyhow::Result<()> {
    // Every request carries the token (`MODELOPS_TOKEN`, the bootstrap admin's in bench/registry.sh).
    let token = std::env::var("MODELOPS_TOKEN").context("MODELOPS_TOKEN must hold an API token")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?);
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency as usize).default_headers(headers).build()?;
    let base = server.trim_end_matches('/').to_string();
    let created = client
        .post(format!("{base}/api/v1/models"))
        .json(&serde_json::json!({"name": model, "kind": "onnx", "owner": "bench", "risk_tier": "low"}))
        .send()
        .await?;
    if !created.status().is_success() && created.status() != reqwest::StatusCode::CONFLICT {
        bail!("creating model `{model}`: {} {}", created.status(), created.text().await.unwrap_or_default());
    }

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, base, model, next) = (client.clone(), base.clone(), model.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= versions {
                    break;
                }
                let t = Instant::now();
                create_one(&client, &base, &model, i, artifact_bytes).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{{\"versions\": {}, \"seconds\": {:.3}, \"per_second\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}}}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99))
    );
    Ok(())
}

/// Streams one distinct (valid ONNX) artifact and creates the version that references it.
async fn create_one(client: &reqwest::Client, base: &str, model: &str, i: u64, bytes: usize) -> anyhow::Result<()> {
    // A real ONNX model (the server loads every `onnx` artifact it is
    // pushed), distinct per version through its doc string.
    let body = modelops_runtime::sample::doubling_onnx(10, &format!("bench model {i}"), bytes);
    let uploaded: serde_json::Value = client
        .post(format!("{base}/api/v1/artifacts?filename=model-{i}.onnx"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await?
        .error_for_status()
        .context("uploading an artifact")?
        .json()
        .await?;
    let sha256 = uploaded["sha256"].as_str().context("upload answer has no `sha256`")?;
    client
        .post(format!("{base}/api/v1/models/{model}/versions"))
        .json(&serde_json::json!({
            "artifact": {"sha256": sha256, "filename": format!("model-{i}.onnx")},
            "description": format!("bench version {i}"),
            "lineage": {"code_commit": "0123abc", "hyperparameters": {"depth": 6}, "training_metrics": {"auc": 0.91}},
        }))
        .send()
        .await?
        .error_for_status()
        .context("creating a version")?;
    Ok(())
}

async fn model_time(models: &[String], batch: &std::path::Path) -> anyhow::Result<()> {
    use modelops_runtime::{check_inputs, load, PredictRequest, RuntimeConfig, Tensor, TensorData};
    let rows: Vec<Vec<f32>> = serde_json::from_slice(&std::fs::read(batch)?)?;
    let width = rows.first().map_or(0, Vec::len);
    let mut result = serde_json::Map::new();
    for spec in models {
        let (name, path) = spec.split_once('=').context("--model takes NAME=PATH")?;
        let model = load(modelops_core::model::ModelKind::Onnx, &std::fs::read(path)?, &RuntimeConfig::default())?;
        let input_name = model.signature().inputs.first().context("the model has no input")?.name.clone();
        for (key, n) in [("1_row_us", 1), ("1000_rows_us_per_row", rows.len())] {
            let data: Vec<f32> = rows[..n].iter().flatten().copied().collect();
            let (inputs, count) = check_inputs(model.signature(), vec![Tensor::new(&input_name, vec![n, width], TensorData::Float32(data))])?;
            let request = PredictRequest { inputs, rows: count, explain: false, parameters: Default::default() };
            for _ in 0..20 {
                model.predict(request.clone()).await?;
            }
            let mut samples = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline || samples.len() < 20 {
                let request = request.clone();
                let t = Instant::now();
                model.predict(request).await?;
                samples.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
            }
            samples.sort_by(f64::total_cmp);
            result.insert(format!("{name}/{key}"), serde_json::json!(samples[samples.len() / 2]));
        }
    }
    println!("{}", serde_json::Value::Object(result));
    Ok(())
}
