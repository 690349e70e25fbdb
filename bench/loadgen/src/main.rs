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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Baseline { addr } => baseline(&addr).await,
        Cmd::Populate { server, model, versions, artifact_bytes, concurrency } => {
            populate(&server, &model, versions, artifact_bytes, concurrency).await
        }
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
