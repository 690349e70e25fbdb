//! `monitor-ingest` (`bench/monitoring.sh`): live monitoring's engine over
//! a million recorded calls, in this process.
//!
//! Over a copy of a data dir set up by the script (a rules model of ten
//! FP64 inputs `f0 … f9` and the output `score`, its reference profile, and
//! a deployment nobody calls), the command creates a count-window monitor
//! on the deployment through [`Watch::create_monitor`], appends `--records`
//! records straight through the store's `append_predictions` — each the
//! JSON the recorder writes for one `/predict` row of that model — and then
//! times [`Watch::run_once`] until the engine has read them all, sampling
//! the process's RSS every `--sample-ms` along the run.
//!
//! With `--split` a second pass over the same log times the ingest path's
//! sections, batch by batch as the engine reads them: the SQLite read
//! (`list_predictions`), the monitored columns read from the records' JSON
//! (`window::table_for`, the engine's way), the aggregates
//! (`window::summarise`) and the merge into the window's (`WindowAgg::merge`,
//! the bounded reservoir); and, for comparison, the general way
//! (`window::table_of`: the parse into arrow builders `ParquetExport::push`,
//! `into_batch`, `table_from_batch`). With `--window-out DIR` that pass
//! also rebuilds the first closed window's aggregates, times the drift
//! computed from them (`compare_aggregates`, what the engine does when a
//! window closes), checks it against the result the engine stored, and
//! writes the window's records as Parquet (`ParquetExport`, as `modelops
//! predictions export`), the reference profile and the engine's drift, for
//! `modelops drift`.

use crate::{memory_mib, round2};
use anyhow::{bail, Context};
use modelops_core::auth::{Principal, Role};
use modelops_core::deployment::{PredictionQuery, PredictionRecord, RecordRoute};
use modelops_core::monitoring::MonitorSpec;
use modelops_core::name::ModelName;
use modelops_deploy::export::ParquetExport;
use modelops_monitor::data::table_from_batch;
use modelops_monitor::drift::{compare_aggregates, DriftOptions, Method, Mode, Profile, Source};
use modelops_watch::window::{self, WindowAgg};
use modelops_watch::{Watch, WatchConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The features' means and standard deviations in the reference
/// (`bench/monitoring.sh` draws its training data alike).
pub const FEATURES: usize = 10;

fn mean_sd(i: usize) -> (f64, f64) {
    (i as f64 * 0.5, 1.0 + i as f64 * 0.1)
}

/// The model's answer and the rule that gave it (the rule set of
/// `bench/monitoring.sh`).
fn score(f: &[f64; FEATURES]) -> (f64, &'static str) {
    if f[0] < -2.0 {
        (0.0, "low")
    } else {
        (f[0] * 0.3 + f[1] * 0.2 + f[2] * 0.1 - f[3] * 0.1 + f[4] * 0.05, "default")
    }
}

/// Deterministic normal draws (xorshift64* + Box-Muller).
struct Normal {
    state: u64,
    spare: Option<f64>,
}

impl Normal {
    fn new(seed: u64) -> Self {
        Normal { state: seed | 1, spare: None }
    }

    fn uniform(&mut self) -> f64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let x = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let t = std::f64::consts::TAU * v;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}

/// A JSON number as serde_json writes an f64 (the recorder's writer).
fn number(x: f64) -> String {
    serde_json::to_string(&x).unwrap_or_else(|_| "null".into())
}

/// The traffic: like the reference, but `f0` shifted by a quarter of its
/// standard deviation and `f1` 20 % wider, so that some columns drift.
fn features(rng: &mut Normal) -> [f64; FEATURES] {
    let mut f = [0.0; FEATURES];
    for (i, x) in f.iter_mut().enumerate() {
        let (mean, sd) = mean_sd(i);
        let z = rng.next();
        *x = match i {
            0 => mean + 0.25 * sd + z * sd,
            1 => mean + z * sd * 1.2,
            _ => mean + z * sd,
        };
    }
    f
}

/// One record as the recorder writes a `/predict` call of one row of the
/// rules model: one FP64 tensor per input, shape `[1]`; the output and the
/// rule that matched.
fn record(i: u64, at: chrono::DateTime<chrono::Utc>, deployment: &ModelName, model: &ModelName, version: u32, f: &[f64; FEATURES]) -> PredictionRecord {
    let mut inputs = String::with_capacity(64 * FEATURES);
    inputs.push('[');
    for (j, x) in f.iter().enumerate() {
        if j > 0 {
            inputs.push(',');
        }
        inputs.push_str(&format!(r#"{{"name":"f{j}","datatype":"FP64","shape":[1],"data":[{}]}}"#, number(*x)));
    }
    inputs.push(']');
    let (score, rule) = score(f);
    let outputs = format!(r#"[{{"name":"score","datatype":"FP64","shape":[1],"data":[{}]}},{{"name":"rule","datatype":"BYTES","shape":[1],"data":["{rule}"]}}]"#, number(score));
    PredictionRecord {
        id: 0,
        request_id: format!("{i:016x}-bench-monitor"),
        at,
        deployment: deployment.clone(),
        model: model.clone(),
        version,
        route: RecordRoute::Primary,
        inputs,
        outputs,
        error: None,
        latency_us: 20 + i % 13,
    }
}

/// RSS samples of this process on a thread of its own.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            loop {
                let (_, rss) = memory_mib();
                out.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((started.elapsed().as_secs_f64(), rss));
                if s.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(every);
            }
        });
        Sampler { stop, samples, thread: Some(thread) }
    }

    fn finish(mut self) -> Vec<(f64, f64)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

pub struct IngestArgs {
    pub dir: PathBuf,
    pub deployment: String,
    pub records: u64,
    pub window_rows: u64,
    pub append_batch: usize,
    pub sample_ms: u64,
    pub split: bool,
    pub window_out: Option<PathBuf>,
}

/// The registry and the monitoring engine over a data dir, as `modelops
/// serve` wires them (the engine's default settings), and an admin.
async fn open(dir: &Path) -> anyhow::Result<(modelops_registry::Registry, Watch, modelops_deploy::recorder::Recorder, Principal)> {
    let dir = &std::fs::canonicalize(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    let clock: Arc<dyn modelops_core::clock::Clock> = Arc::new(modelops_core::clock::SystemClock);
    let store = modelops_store::connect(&format!("sqlite://{}", dir.join("modelops.db").display()), clock.clone()).await?;
    let artifacts = modelops_artifacts::ArtifactStore::from_url(&format!("file://{}", dir.join("artifacts").display()), std::iter::empty::<(String, String)>())?;
    let registry = modelops_registry::Registry::new(store, artifacts, clock);
    let serving = modelops_serving::Serving::new(registry.clone(), modelops_serving::ServingConfig::default());
    let recorder = modelops_deploy::recorder::Recorder::start(registry.prediction_log(), modelops_deploy::recorder::RecorderConfig::default());
    let deployments = modelops_deploy::Deployments::new(registry.clone(), serving, recorder.clone(), modelops_deploy::DeployConfig::default());
    let watch = Watch::new(registry.clone(), deployments, WatchConfig::default());
    Ok((registry, watch, recorder, Principal::new("bench", [Role::Admin])?))
}

pub async fn monitor_ingest(args: IngestArgs) -> anyhow::Result<()> {
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    let (_, rss_at_start) = memory_mib();
    let (registry, watch, recorder, admin) = open(&args.dir).await?;
    let config = WatchConfig::default();
    let (read_batch, reservoir) = (config.read_batch, config.reservoir);
    let deployment_name = ModelName::parse(&args.deployment)?;
    let deployment = registry.get_deployment(&admin, &deployment_name).await?;
    let model = deployment.model.clone();
    let version = deployment.routes.first().map(|r| r.version).context("the deployment has no route")?;

    let monitor_name = "ingest";
    let spec: MonitorSpec = serde_json::from_value(serde_json::json!({"name": monitor_name, "window": {"rows": args.window_rows}}))?;
    let monitor = watch.create_monitor(&admin, &deployment_name, spec.clone()).await?;

    // The log: `--records` calls of one row, appended as the recorder does
    // (one transaction per batch).
    let log = registry.prediction_log();
    let mut rng = Normal::new(0x9e37_79b9_7f4a_7c15);
    let append_started = Instant::now();
    let mut appended = 0u64;
    while appended < args.records {
        let n = (args.records - appended).min(args.append_batch as u64);
        let at = registry.now();
        let batch: Vec<PredictionRecord> = (appended..appended + n).map(|i| record(i, at, &deployment_name, &model, version, &features(&mut rng))).collect();
        log.append_predictions(&batch).await?;
        appended += n;
    }
    let append_seconds = append_started.elapsed().as_secs_f64();
    let (_, rss_before_run) = memory_mib();

    // The engine's passes until every record is read.
    let sampler = Sampler::start(Duration::from_millis(args.sample_ms.max(1)));
    let started = Instant::now();
    let mut passes = Vec::new();
    let mut stats = None;
    loop {
        let t = Instant::now();
        watch.run_once().await;
        let pass = t.elapsed().as_secs_f64();
        let metrics = watch.metrics();
        let now = metrics.monitors.into_iter().find(|(d, m, _)| d == deployment_name.as_str() && m == monitor_name).map(|(_, _, s)| s);
        let Some(now) = now else { bail!("the engine does not run the monitor") };
        if let Some(e) = &now.last_error {
            bail!("the monitor's pass failed: {e}");
        }
        passes.push(serde_json::json!({"seconds": round2(pass), "rows_read": now.rows_read, "windows_closed": now.windows_closed}));
        let done = now.records_read >= args.records;
        let stuck = passes.len() > 3 && stats.as_ref().is_some_and(|s: &modelops_watch::engine::RunStats| s.records_read == now.records_read);
        stats = Some(now);
        if done || stuck {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let samples = sampler.finish();
    let stats = stats.context("no pass ran")?;
    if stats.records_read < args.records {
        bail!("the engine stopped at {} of {} records", stats.records_read, args.records);
    }
    let (hwm, rss_after) = memory_mib();
    let peak = samples.iter().map(|s| s.1).fold(f64::NAN, f64::max);
    let at_share = |share: f64| {
        let t = seconds * share;
        samples.iter().min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs())).map_or(f64::NAN, |s| s.1)
    };
    let results = registry.monitor_store().results(&deployment_name, monitor_name, None, 1_000).await?;
    let closed: Vec<_> = results.iter().filter(|r| r.closed).collect();

    let mut out = serde_json::json!({
        "records": args.records,
        "features": FEATURES,
        "window_rows": args.window_rows,
        "append": {"seconds": round2(append_seconds), "records_per_second": (args.records as f64 / append_seconds).round(), "batch": args.append_batch},
        "engine": {
            "seconds": round2(seconds),
            "rows_per_second": (stats.rows_read as f64 / seconds).round(),
            "passes": passes,
            "stats": stats,
            "windows_closed": closed.len(),
            "closed_window_rows": closed.iter().map(|r| r.rows).collect::<Vec<_>>(),
            "read_batch": read_batch,
            "reservoir": reservoir,
        },
        "memory_mib": {
            "rss_at_start": rss_at_start,
            "rss_before_run": rss_before_run,
            "peak_rss_during_run": peak,
            "rss_at_25_50_75_100": [at_share(0.25), at_share(0.5), at_share(0.75), at_share(1.0)],
            "rss_after_run": rss_after,
            "vm_hwm": hwm,
            "samples": samples.len(),
            "sample_ms": args.sample_ms,
        },
    });

    if args.split || args.window_out.is_some() {
        let drift_options = DriftOptions {
            mode: Mode::Default,
            columns: None,
            categorical: Vec::new(),
            numerical: Vec::new(),
            method: spec.drift.method.as_deref().and_then(Method::parse),
            threshold: spec.drift.threshold,
            drift_share: spec.drift.drift_share,
        };
        let stored = registry.monitor_store().reference(&model, version).await?.context("the version has no reference profile")?;
        let profile = Profile::from_json(&stored.profile, "stored profile")?;
        let split = split_pass(&registry, &monitor, &profile, &drift_options, read_batch, reservoir, args.window_rows, args.window_out.as_deref()).await?;
        if let Some(dir) = &args.window_out {
            std::fs::write(dir.join("profile.json"), &stored.profile)?;
            let engine = closed.first().context("the engine closed no window")?;
            std::fs::write(dir.join("server_window.json"), serde_json::to_string_pretty(&serde_json::json!({"start": engine.start, "end": engine.end, "rows": engine.rows, "result": engine.body}))?)?;
            // The engine's stored drift against the recomputation here.
            let mine = split.report.as_ref().context("the window was not rebuilt")?;
            let theirs = engine.body.get("drift").and_then(|d| d.get("columns")).and_then(|c| c.as_array()).cloned().unwrap_or_default();
            let same = mine.columns.len() == theirs.len()
                && mine.columns.iter().all(|c| theirs.iter().any(|t| t["column"] == c.column.as_str() && t["score"].as_f64().map(f64::to_bits) == c.score.map(f64::to_bits)));
            out["drift"] = serde_json::json!({
                "window_rows": engine.rows,
                "compare_aggregates_ms": split.compare_ms,
                "equals_engine_result": same,
                "columns": mine.columns.iter().map(|c| serde_json::json!({"column": c.column, "method": c.method.map(|m| m.key()), "score": c.score, "drift_detected": c.drift_detected})).collect::<Vec<_>>(),
                "export_seconds": split.export_seconds,
            });
        }
        out["split"] = split.sections;
    }
    println!("{out}");
    recorder.shutdown().await;
    Ok(())
}

struct Split {
    sections: serde_json::Value,
    report: Option<modelops_monitor::drift::DriftReport>,
    compare_ms: serde_json::Value,
    export_seconds: f64,
}

/// Reads the log again as the engine does and times each section of the
/// ingest path; rebuilds the first window (and exports it) when asked.
#[allow(clippy::too_many_arguments)]
async fn split_pass(
    registry: &modelops_registry::Registry,
    monitor: &modelops_core::monitoring::Monitor,
    profile: &Profile,
    options: &DriftOptions,
    read_batch: u32,
    reservoir: usize,
    window_rows: u64,
    window_out: Option<&Path>,
) -> anyhow::Result<Split> {
    let store = registry.monitor_store();
    let (mut read, mut push, mut batch_s, mut convert, mut aggregate, mut merge) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut fast_s, mut fast_aggregate) = (0.0, 0.0);
    let mut cursor = None;
    let mut rows = 0u64;
    let mut window = WindowAgg::new(monitor.created_at, monitor.created_at);
    let mut export = window_out.map(|_| ParquetExport::new());
    let mut export_seconds = 0.0;
    loop {
        let t = Instant::now();
        let query = PredictionQuery { deployment: monitor.deployment.clone(), since: Some(monitor.created_at), until: None, after_id: cursor, limit: read_batch, payload_only: true };
        let records = store.list_predictions(&query).await?;
        read += t.elapsed().as_secs_f64();
        let Some(last) = records.last() else { break };
        cursor = Some(last.id);

        // The engine's way: the monitored columns read straight from the JSON.
        let t = Instant::now();
        let fast = window::table_for(&records, "recorded predictions", Some(profile), None)?;
        fast_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let fast_columns = window::summarise(&fast, 0..fast.rows, profile, None, options);
        fast_aggregate += t.elapsed().as_secs_f64();
        drop((fast, fast_columns));

        // The general way (`window::table_of`: the whole exported table), by section.
        let t = Instant::now();
        let mut part_export = ParquetExport::new();
        part_export.push(&records)?;
        push += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let batch = part_export.into_batch()?;
        batch_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let table = table_from_batch(&batch, Path::new("recorded predictions"))?;
        convert += t.elapsed().as_secs_f64();
        // The first window: `window_rows` rows (one per record here).
        let take = usize::try_from(window_rows.saturating_sub(rows)).unwrap_or(usize::MAX).min(table.rows);
        let t = Instant::now();
        let columns = window::summarise(&table, 0..table.rows, profile, None, options);
        aggregate += t.elapsed().as_secs_f64();
        if take > 0 {
            let first = if take == table.rows { columns } else { window::summarise(&table, 0..take, profile, None, options) };
            let part = window::Part { rows: take as u64, first_id: records[0].id, last_id: records[take - 1].id, first_at: None, last_at: None, columns: first };
            let t = Instant::now();
            window.merge(&part, reservoir);
            merge += t.elapsed().as_secs_f64();
            if let Some(export) = export.as_mut() {
                let t = Instant::now();
                export.push(&records[..take])?;
                export_seconds += t.elapsed().as_secs_f64();
            }
        }
        rows += table.rows as u64;
    }
    let per = |s: f64| serde_json::json!({"seconds": round2(s), "us_per_row": round2(s * 1e6 / rows.max(1) as f64)});
    // What one batch costs the engine: the read, the table, the aggregates
    // and the merge (the fast way); and the general way for comparison.
    let engine_way = read + fast_s + fast_aggregate + merge;
    let general_way = read + push + batch_s + convert + aggregate + merge;
    let sections = serde_json::json!({
        "rows": rows,
        "sqlite_read": per(read),
        "fast_table": per(fast_s),
        "fast_aggregates": per(fast_aggregate),
        "merge_into_window": per(merge),
        "engine_way": {"us_per_row": round2(engine_way * 1e6 / rows.max(1) as f64), "rows_per_second": (rows as f64 / engine_way).round()},
        "general": {
            "json_parse_and_arrow_builders": per(push),
            "arrow_batch": per(batch_s),
            "table_from_batch": per(convert),
            "aggregates": per(aggregate),
            "us_per_row": round2(general_way * 1e6 / rows.max(1) as f64),
            "rows_per_second": (rows as f64 / general_way).round(),
        },
    });
    let mut report = None;
    let mut compare_ms = serde_json::Value::Null;
    if let (Some(dir), Some(export)) = (window_out, export) {
        std::fs::create_dir_all(dir)?;
        let t = Instant::now();
        export.finish(std::fs::File::create(dir.join("window.parquet"))?)?;
        export_seconds += t.elapsed().as_secs_f64();
        // As the engine computes a closed window's drift.
        let columns: Vec<(String, modelops_monitor::drift::ColumnAggregate)> =
            window::watched(profile, None).into_iter().map(|c| (c.name.clone(), window.columns.get(&c.name).cloned().unwrap_or_default())).collect();
        let source = Source { path: "window".into(), rows: usize::try_from(window.rows).unwrap_or(usize::MAX) };
        let mut times = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            report = Some(compare_aggregates(profile, "reference", &source, &columns, options)?);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        compare_ms = serde_json::json!({"median": round2(times[times.len() / 2]), "runs": times.iter().map(|t| round2(*t)).collect::<Vec<_>>()});
    }
    Ok(Split { sections, report, compare_ms, export_seconds: round2(export_seconds) })
}
