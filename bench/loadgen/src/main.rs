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
//! - `deploy-latency` (`bench/deployments.sh`): per-call latency of several
//!   requests through the whole application in this process, the stored
//!   deployments served and every prediction recorded as `modelops serve`
//!   does, the requests interleaved block by block so that noise on the
//!   shared machine falls on all of them alike; p50/p99 per request and the
//!   p50 difference to the first (routing plus recording over the direct
//!   version route).
//! - `record-sustained` (`bench/deployments.sh`): the prediction recorder
//!   alone over a fresh SQLite store, fed as fast as its queue accepts (or
//!   at a fixed rate): records written per second, the recorder's counters
//!   and the process's peak memory along the run.
//! - `audit-bundle`, `audit-db`, `audit-proofs` (`bench/audit.sh`): the
//!   verifiable audit log at a million events (see `audit.rs`).
//! - `monitor-ingest` (`bench/monitoring.sh`): live monitoring's engine
//!   reading a million recorded calls, its memory along the run, where the
//!   time goes, and a closed window's drift (see `monitor.rs`).

mod audit;
mod monitor;

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
    /// Per-call latency of several requests through the whole application
    /// in this process, deployments served and recorded (as JSON).
    DeployLatency {
        #[arg(long)]
        data_dir: std::path::PathBuf,
        /// `LABEL=METHOD PATH`; repeat. Differences are taken to the first.
        #[arg(long = "request", required = true)]
        requests: Vec<String>,
        /// A file of request bodies (JSON), one per line, sent in turn.
        #[arg(long)]
        body: std::path::PathBuf,
        /// Measured calls per request.
        #[arg(long, default_value_t = 20_000)]
        calls: u32,
        /// Unmeasured calls per request first.
        #[arg(long, default_value_t = 2_000)]
        warmup: u32,
        /// The calls of each request are made in this many blocks, the
        /// requests taking turns block by block.
        #[arg(long, default_value_t = 4)]
        blocks: u32,
    },
    /// The prediction recorder alone into a fresh SQLite store (as JSON).
    RecordSustained {
        /// A directory for the database (created; should be empty).
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 2_000_000)]
        records: u64,
        /// Records offered per second; 0: as fast as the queue accepts, a
        /// refused record being offered again after a pause (backpressure).
        /// At a fixed rate a refused record is not offered again (as a
        /// server would lose it, counted).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// The recorder's queue (records); the server's default.
        #[arg(long, default_value_t = 65_536)]
        queue: usize,
        /// Records per append; the server's default.
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
    },
    /// Writes a synthetic, valid audit export bundle (events, checkpoints,
    /// consistency proofs) signed with a fresh key; prints JSON with the key.
    AuditBundle {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// A signed checkpoint every this many events (and at the last).
        #[arg(long, default_value_t = 100_000)]
        checkpoint_every: u64,
        /// The bundle's folder (created; must be empty).
        #[arg(short = 'o', long)]
        output: std::path::PathBuf,
    },
    /// Appends events to a fresh SQLite store through the store's write
    /// path, signs a checkpoint, and times inclusion proofs (as JSON).
    AuditDb {
        /// A data dir for the database and the signing key (created; must hold no database).
        #[arg(long)]
        dir: std::path::PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Events per transaction.
        #[arg(long, default_value_t = 1_000)]
        batch: u64,
        /// Inclusion proofs of random events to time.
        #[arg(long, default_value_t = 1_000)]
        proofs: u32,
    },
    /// Live monitoring's engine over `--records` recorded calls appended to
    /// a copy of a data dir set up by `bench/monitoring.sh` (as JSON).
    MonitorIngest {
        /// The data dir (a copy; `modelops serve` must not run on it).
        #[arg(long)]
        dir: std::path::PathBuf,
        /// A deployment of the 10-input rules model that nobody calls.
        #[arg(long, default_value = "ingest")]
        deployment: String,
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// The monitor's count windows (rows).
        #[arg(long, default_value_t = 1_000_000)]
        window_rows: u64,
        /// Records per append (one transaction each).
        #[arg(long, default_value_t = 10_000)]
        append_batch: usize,
        /// RSS sampled this often during the engine's run.
        #[arg(long, default_value_t = 100)]
        sample_ms: u64,
        /// Then time the ingest path's sections in a second pass.
        #[arg(long)]
        split: bool,
        /// Rebuild the first closed window, time its drift, and write it
        /// here (window.parquet, profile.json, server_window.json).
        #[arg(long)]
        window_out: Option<std::path::PathBuf>,
    },
    /// Times inclusion proofs of random events over HTTP (as JSON).
    AuditProofs {
        #[arg(long)]
        server: String,
        #[arg(long, default_value_t = 1_000)]
        count: u32,
        /// Events are drawn from 1..=max-seq.
        #[arg(long)]
        max_seq: u64,
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
        Cmd::DeployLatency { data_dir, requests, body, calls, warmup, blocks } => deploy_latency(&data_dir, &requests, &body, calls, warmup, blocks).await,
        Cmd::RecordSustained { dir, records, rate, queue, batch } => record_sustained(&dir, records, rate, queue, batch).await,
        Cmd::AuditBundle { events, checkpoint_every, output } => audit::audit_bundle(&output, events, checkpoint_every),
        Cmd::AuditDb { dir, events, batch, proofs } => audit::audit_db(&dir, events, batch, proofs).await,
        Cmd::AuditProofs { server, count, max_seq } => audit::audit_proofs(&server, count, max_seq).await,
        Cmd::MonitorIngest { dir, deployment, records, window_rows, append_batch, sample_ms, split, window_out } => {
            monitor::monitor_ingest(monitor::IngestArgs { dir, deployment, records, window_rows, append_batch, sample_ms, split, window_out }).await
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

/// The application as `modelops serve` wires it over a data dir: token
/// authentication, the serving layer, deployments loaded from the store and
/// their controller running, every prediction recorded by a recorder with
/// the server's default settings over the store's prediction log.
async fn application(data_dir: &std::path::Path) -> anyhow::Result<(axum::Router, modelops_deploy::Deployments, String)> {
    let data_dir = &std::fs::canonicalize(data_dir).with_context(|| format!("cannot open {}", data_dir.display()))?;
    let token = std::fs::read_to_string(data_dir.join("admin.token")).context("the data dir has no admin.token")?;
    let clock: Arc<dyn modelops_core::clock::Clock> = Arc::new(modelops_core::clock::SystemClock);
    let database = format!("sqlite://{}", data_dir.join("modelops.db").display());
    let store = modelops_store::connect(&database, clock.clone()).await?;
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&format!("file://{}", data_dir.join("artifacts").display()), std::iter::empty::<(String, String)>())?;
    let registry = modelops_registry::Registry::new(store, artifacts, clock);
    let serving = modelops_serving::Serving::new(registry.clone(), modelops_serving::ServingConfig::default());
    let state = modelops_server::AppState::new(registry.clone(), modelops_server::ServerConfig::default()).with_serving(serving.clone());
    // As the binary does: the default state's recorder is replaced by one it starts itself.
    state.deployments.recorder().shutdown().await;
    let recorder = modelops_deploy::recorder::Recorder::start(registry.prediction_log(), modelops_deploy::recorder::RecorderConfig::default());
    let deployments = modelops_deploy::Deployments::new(registry, serving, recorder, modelops_deploy::DeployConfig::default());
    // Loads the stored deployments (and keeps the controller running).
    let _controller = deployments.start().await;
    let app = modelops_server::router(state.with_deployments(deployments.clone()));
    Ok((app, deployments, format!("Bearer {}", token.trim())))
}

/// Waits for the shadow calls in flight (tasks of their own) to hand over
/// their records, then for every record submitted to be written.
async fn settle(deployments: &modelops_deploy::Deployments) {
    let mut last = deployments.recorder().totals().submitted;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = deployments.recorder().totals().submitted;
        if now == last {
            break;
        }
        last = now;
    }
    deployments.recorder().flush().await;
}

/// One request as wrk sends it, answered through `app`; its status and body.
async fn call(app: &axum::Router, method: &axum::http::Method, path: &str, authorization: &str, body: &bytes::Bytes) -> anyhow::Result<(axum::http::StatusCode, bytes::Bytes)> {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method(method.clone())
        .uri(path)
        .header("host", "127.0.0.1:5980")
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.clone()))?;
    let response = app.clone().oneshot(request).await?;
    let status = response.status();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What each deployment among `targets` (a path `/v2/models/{name}/infer`)
/// counts: its `live` calls and records (`GET /api/v1/deployments/{name}`);
/// null for the other requests.
async fn live_counters(app: &axum::Router, targets: &[(String, axum::http::Method, String)], authorization: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut all = Vec::new();
    for (_, _, path) in targets {
        let name = path.strip_prefix("/v2/models/").and_then(|p| p.strip_suffix("/infer")).filter(|n| !n.contains('/'));
        let Some(name) = name else {
            all.push(serde_json::Value::Null);
            continue;
        };
        let (status, answer) = call(app, &axum::http::Method::GET, &format!("/api/v1/deployments/{name}"), authorization, &bytes::Bytes::new()).await?;
        if !status.is_success() {
            bail!("GET /api/v1/deployments/{name} answered {status}: {}", String::from_utf8_lossy(&answer));
        }
        let status: serde_json::Value = serde_json::from_slice(&answer)?;
        all.push(status["live"].clone());
    }
    Ok(all)
}

/// `after − before` of the numeric counters of two `live` documents
/// (calls, shadow calls, records…).
fn delta(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    let counters = |v: &serde_json::Value| -> Vec<(String, i64)> {
        let mut all = Vec::new();
        if let Some(map) = v.as_object() {
            for (k, x) in map {
                if let Some(n) = x.as_i64() {
                    all.push((k.clone(), n));
                }
            }
            if let Some(records) = map.get("records").and_then(|r| r.as_object()) {
                for (k, x) in records {
                    if let Some(n) = x.as_i64() {
                        all.push((format!("records_{k}"), n));
                    }
                }
            }
        }
        all
    };
    let before: std::collections::HashMap<String, i64> = counters(before).into_iter().collect();
    for (k, n) in counters(after) {
        out.insert(k.clone(), serde_json::json!(n - before.get(&k).copied().unwrap_or(0)));
    }
    if after.is_null() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Object(out)
    }
}

/// Context switches of every thread of this process so far (voluntary and
/// not): a wake-up handed to another thread shows here.
fn context_switches() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1).and_then(|n| n.parse::<u64>().ok()))
                .collect::<Vec<_>>()
        })
        .sum()
}

async fn deploy_latency(data_dir: &std::path::Path, requests: &[String], body: &std::path::Path, calls: u32, warmup: u32, blocks: u32) -> anyhow::Result<()> {
    // One request body per line, sent in turn.
    let text = std::fs::read_to_string(body).with_context(|| format!("cannot read {}", body.display()))?;
    let bodies: Vec<bytes::Bytes> = text.lines().filter(|l| !l.trim().is_empty()).map(|l| bytes::Bytes::from(l.to_string())).collect();
    if bodies.is_empty() {
        bail!("{} holds no request body", body.display());
    }
    let mut targets = Vec::new();
    for spec in requests {
        let (label, request) = spec.split_once('=').context("--request is `LABEL=METHOD PATH`")?;
        let (method, path) = request.split_once(' ').context("--request is `LABEL=METHOD PATH`")?;
        targets.push((label.to_string(), axum::http::Method::from_bytes(method.as_bytes())?, path.to_string()));
    }
    let (app, deployments, authorization) = application(data_dir).await?;
    let mut n = 0usize;
    for (label, method, path) in &targets {
        let (status, answer) = call(&app, method, path, &authorization, &bodies[0]).await?;
        if !status.is_success() {
            bail!("{label}: {method} {path} answered {status}: {}", String::from_utf8_lossy(&answer));
        }
        for _ in 0..warmup {
            n += 1;
            call(&app, method, path, &authorization, &bodies[n % bodies.len()]).await?;
        }
    }
    // The warm-up's records (shadows' too: they run on tasks of their own)
    // are written before the measured calls start.
    settle(&deployments).await;
    let before = deployments.recorder().totals();
    let live_before = live_counters(&app, &targets, &authorization).await?;
    let blocks = blocks.clamp(1, calls.max(1));
    let per_block = calls / blocks;
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(calls as usize); targets.len()];
    // Each block's p50, per request: the spread of the difference.
    let mut block_p50: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut failed = vec![0u64; targets.len()];
    let mut switches = vec![0u64; targets.len()];
    let started = Instant::now();
    for _ in 0..blocks {
        for (i, (_, method, path)) in targets.iter().enumerate() {
            let mut block = Vec::with_capacity(per_block as usize);
            let switched = context_switches();
            for _ in 0..per_block {
                n += 1;
                let body = &bodies[n % bodies.len()];
                let t = Instant::now();
                let (status, _) = call(&app, method, path, &authorization, body).await?;
                block.push(t.elapsed().as_secs_f64() * 1e6);
                if !status.is_success() {
                    failed[i] += 1;
                }
            }
            switches[i] += context_switches().saturating_sub(switched);
            samples[i].extend_from_slice(&block);
            block.sort_by(f64::total_cmp);
            block_p50[i].push(percentile(&block, 0.5));
        }
    }
    let elapsed = started.elapsed();
    let flush_started = Instant::now();
    settle(&deployments).await;
    let flush_ms = flush_started.elapsed().as_secs_f64() * 1e3;
    let after = deployments.recorder().totals();
    let live_after = live_counters(&app, &targets, &authorization).await?;
    let mut result = Vec::new();
    let mut base = (f64::NAN, f64::NAN);
    for (i, (label, method, path)) in targets.iter().enumerate() {
        let all = &mut samples[i];
        all.sort_by(f64::total_cmp);
        let p50 = percentile(all, 0.5);
        let mean = all.iter().sum::<f64>() / all.len().max(1) as f64;
        if i == 0 {
            base = (p50, mean);
        }
        // The median over blocks of (this block's p50 − the first request's
        // p50 in the same block).
        let mut diffs: Vec<f64> = block_p50[i].iter().zip(&block_p50[0]).map(|(a, b)| a - b).collect();
        diffs.sort_by(f64::total_cmp);
        result.push(serde_json::json!({
            "label": label,
            "request": format!("{method} {path}"),
            "calls": all.len(),
            "failed": failed[i],
            "p25_us": round2(percentile(all, 0.25)),
            "p50_us": round2(p50),
            "p75_us": round2(percentile(all, 0.75)),
            "p90_us": round2(percentile(all, 0.9)),
            "p99_us": round2(percentile(all, 0.99)),
            "mean_us": round2(mean),
            "p50_minus_first_us": round2(p50 - base.0),
            "mean_minus_first_us": round2(mean - base.1),
            "block_p50_minus_first_us": {"median": round2(percentile(&diffs, 0.5)), "min": round2(percentile(&diffs, 0.0)), "max": round2(percentile(&diffs, 1.0))},
            "context_switches_per_call": round2(switches[i] as f64 / all.len().max(1) as f64),
            "live": delta(&live_before[i], &live_after[i]),
        }));
    }
    let records = serde_json::json!({
        "submitted": after.submitted - before.submitted,
        "written": after.written - before.written,
        "dropped": after.dropped - before.dropped,
        "failed": after.failed - before.failed,
        "queued_after_flush": after.queued,
        "settle_ms": round2(flush_ms),
        "totals_since_start": after,
        "balanced": after.submitted == after.written + after.dropped + after.failed + after.queued,
    });
    println!(
        "{}",
        serde_json::json!({"calls_per_request": per_block * blocks, "blocks": blocks, "warmup": warmup, "bodies": bodies.len(), "seconds": round2(elapsed.as_secs_f64()), "requests": result, "records": records})
    );
    deployments.recorder().shutdown().await;
    Ok(())
}

/// `VmHWM` and `VmRSS` of this process, MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| round2(kb / 1024.0))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Bytes of the files in `dir` whose name starts with `prefix`.
fn files_bytes(dir: &std::path::Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

async fn record_sustained(dir: &std::path::Path, records: u64, rate: u64, queue: usize, batch: usize) -> anyhow::Result<()> {
    use modelops_core::deployment::RecordRoute;
    use modelops_core::name::ModelName;
    use modelops_deploy::recorder::{PendingRecord, Recorder, RecorderConfig};
    use modelops_runtime::{Tensor, TensorData};
    std::fs::create_dir_all(dir)?;
    let dir = &std::fs::canonicalize(dir)?;
    let clock: Arc<dyn modelops_core::clock::Clock> = Arc::new(modelops_core::clock::SystemClock);
    let store = modelops_store::connect(&format!("sqlite://{}", dir.join("modelops.db").display()), clock.clone()).await?;
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&format!("file://{}", dir.join("artifacts").display()), std::iter::empty::<(String, String)>())?;
    let registry = modelops_registry::Registry::new(store, artifacts, clock);
    let recorder = Recorder::start(registry.prediction_log(), RecorderConfig { queue, batch, ..RecorderConfig::default() });
    let deployment = ModelName::parse("bench-live")?;
    let model = ModelName::parse("logreg")?;
    // A logistic regression's call: 10 FP32 features in, a label and two
    // class probabilities out; every record its own values.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut make = |i: u64| {
        let inputs: Vec<f32> = (0..10).map(|_| next() * 4.0 - 2.0).collect();
        let p = next();
        PendingRecord {
            request_id: format!("{i:016x}"),
            at: registry.now(),
            deployment: deployment.clone(),
            model: model.clone(),
            version: 1,
            route: RecordRoute::Primary,
            inputs: Arc::new(vec![Tensor::new("X", vec![1, 10], TensorData::Float32(inputs))]),
            outputs: vec![
                Tensor::new("output_label", vec![1], TensorData::Int64(vec![i64::from(p > 0.5)])),
                Tensor::new("output_probability", vec![1, 2], TensorData::Float32(vec![1.0 - p, p])),
            ],
            error: None,
            latency_us: 3 + i % 7,
        }
    };
    let checkpoints = [records / 4, records / 2, records * 3 / 4, records];
    let mut marks = Vec::new();
    let mut refused = 0u64;
    let started = Instant::now();
    let start_at = tokio::time::Instant::now();
    for i in 0..records {
        if rate > 0 && i % 500 == 0 {
            tokio::time::sleep_until(start_at + Duration::from_secs_f64(i as f64 / rate as f64)).await;
        }
        let mut accepted = recorder.submit(make(i));
        while !accepted && rate == 0 {
            // Backpressure: the queue is full. Leave the cores to the writer a moment.
            refused += 1;
            tokio::time::sleep(Duration::from_micros(500)).await;
            accepted = recorder.submit(make(i));
        }
        if !accepted {
            refused += 1;
        }
        if i % 4096 == 0 {
            tokio::task::yield_now().await;
        }
        if checkpoints.contains(&(i + 1)) {
            let (hwm, rss) = memory_mib();
            let c = recorder.totals();
            marks.push(serde_json::json!({
                "submitted_share": round2((i + 1) as f64 / records as f64),
                "seconds": round2(started.elapsed().as_secs_f64()),
                "written": c.written, "queued": c.queued, "dropped": c.dropped,
                "vm_hwm_mib": hwm, "vm_rss_mib": rss,
            }));
        }
    }
    let submitted_in = started.elapsed();
    recorder.flush().await;
    let elapsed = started.elapsed();
    let (hwm, rss) = memory_mib();
    let c = recorder.totals();
    let balanced = c.submitted == c.written + c.dropped + c.failed + c.queued;
    println!(
        "{}",
        serde_json::json!({
            "records": records,
            "offered_rate": rate,
            "queue": queue,
            "batch": batch,
            "seconds": round2(elapsed.as_secs_f64()),
            "submit_seconds": round2(submitted_in.as_secs_f64()),
            "written_per_second": (c.written as f64 / elapsed.as_secs_f64()).round(),
            "counters": c,
            "refused_submits": refused,
            "balanced": balanced,
            "memory": marks,
            "after_flush": {"vm_hwm_mib": hwm, "vm_rss_mib": rss},
            "database_bytes": files_bytes(dir, "modelops.db"),
        })
    );
    recorder.shutdown().await;
    Ok(())
}
