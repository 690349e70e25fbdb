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
//! - `in-process`: one request, sent again and again through modelops'
//!   whole HTTP application in this process (no socket): what the server's
//!   own code costs per request, apart from loopback TCP and the load
//!   generator, which share the same two cores in the wrk runs. For
//!   profiling (`perf record` on this command).

use anyhow::{bail, Context};
use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The allocator the modelops binary uses, so the figures compare.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// µs per request through the whole application in this process, over
    /// the SQLite database and artifacts of a `modelops serve --data-dir`
    /// (stopped or not), as the token in its `admin.token`.
    InProcess {
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// `METHOD PATH`, e.g. `POST /v2/models/logreg/versions/1/infer`.
        #[arg(long, default_value = "GET /healthz")]
        request: String,
        /// A file holding the request body (JSON).
        #[arg(long)]
        body: Option<std::path::PathBuf>,
        #[arg(long, default_value_t = 50_000)]
        requests: u32,
        #[arg(long, default_value_t = 5)]
        rounds: u32,
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
        Cmd::InProcess { data_dir, request, body, requests, rounds } => in_process(&data_dir, &request, body.as_deref(), requests, rounds).await,
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

async fn in_process(data_dir: &std::path::Path, request: &str, body: Option<&std::path::Path>, requests: u32, rounds: u32) -> anyhow::Result<()> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let (method, path) = request.split_once(' ').context("--request is `METHOD PATH`")?;
    let method = axum::http::Method::from_bytes(method.as_bytes())?;
    let body = match body {
        Some(file) => bytes::Bytes::from(std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?),
        None => bytes::Bytes::new(),
    };
    let token = std::fs::read_to_string(data_dir.join("admin.token")).context("the data dir has no admin.token")?;
    let authorization = format!("Bearer {}", token.trim());
    let clock: Arc<dyn modelops_core::clock::Clock> = Arc::new(modelops_core::clock::SystemClock);
    let database = format!("sqlite://{}", data_dir.join("modelops.db").display());
    let store = modelops_store::connect(&database, clock.clone()).await?;
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&format!("file://{}", data_dir.join("artifacts").display()), std::iter::empty::<(String, String)>())?;
    let registry = modelops_registry::Registry::new(store, artifacts, clock);
    let serving = modelops_serving::Serving::new(registry.clone(), modelops_serving::ServingConfig::default());
    let app = modelops_server::router(modelops_server::AppState::new(registry, modelops_server::ServerConfig::default()).with_serving(serving));
    // What wrk sends.
    let make = || {
        axum::http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", "127.0.0.1:5980")
            .header("authorization", &authorization)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.clone()))
    };
    let first = app.clone().oneshot(make()?).await?;
    let status = first.status();
    let answer = first.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{method} {path} answered {status}: {}", String::from_utf8_lossy(&answer));
    }
    let mut per_round = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        for _ in 0..requests {
            let response = app.clone().oneshot(make()?).await?;
            response.into_body().collect().await?;
        }
        per_round.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(requests));
    }
    per_round.sort_by(f64::total_cmp);
    let median = per_round[per_round.len() / 2];
    println!("{}", serde_json::json!({"request": request, "us_per_request": (median * 100.0).round() / 100.0, "rounds": per_round}));
    Ok(())
}
