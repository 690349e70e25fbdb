//! The prediction recorder: every call answered through a deployment is
//! written to the store's [`PredictionLog`] off the request path, in
//! batches, and every record that is not kept is counted.
//!
//! The request path pays one enqueue: [`Recorder::submit`] bumps two
//! atomic counters of its deployment (found under a shared read lock; the
//! write lock is taken once, the first time a deployment is seen) and
//! `try_send`s the [`PendingRecord`] — tensors as they are, not JSON — into
//! a bounded tokio channel. It never awaits: when the queue is full, or the
//! recorder has stopped, the record is counted as `dropped` for its
//! deployment and `submit` returns `false`. The bound is the backpressure:
//! a store slower than the traffic costs records, counted and exposed
//! through [`Recorder::counters`], never memory or request latency.
//!
//! One writer task drains the queue: it collects up to `batch` records or
//! whatever arrived within `flush_every` of the first, serialises them into
//! [`PredictionRecord`]s on a blocking thread (a batch of large tensors
//! can take milliseconds to turn into JSON; that must not stall the async
//! threads serving requests), and appends them in one call. A failed append
//! is logged, retried once after a short pause, then its records are
//! counted as `failed`. Memory is flat: at most `queue` records wait in the
//! channel and one batch is in hand — in bytes, `queue` times a record's
//! size: about 1.5 KB for four float features and two outputs, so some
//! 100 MB at the default 65,536 when the store stalls.
//!
//! Inputs and outputs are stored as JSON arrays of Open Inference Protocol
//! tensors (`{"name","datatype","shape","data"}`, data flat, row-major),
//! written by the runtime's [`FlatData`], the same form the server's OIP
//! answers use: NaN and ±infinity become `null` (JSON has no such numbers),
//! which [`modelops_runtime::tensor_json::decode`] reads back as NaN. The
//! inputs are shared (`Arc`) between a primary call and its shadows; the
//! writer serialises them once when those records follow each other.
//!
//! `flush` and `shutdown` travel through the same channel as the records,
//! so they wait exactly for what was submitted before them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use modelops_core::deployment::{PredictionRecord, RecordRoute};
use modelops_core::name::ModelName;
use modelops_core::repo::PredictionLog;
use modelops_runtime::tensor::oip_datatype;
use modelops_runtime::tensor_json::FlatData;
use modelops_runtime::Tensor;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the writer waits before retrying a failed append.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The longest queue configured (tokio's channel has a bound of its own).
const MAX_QUEUE: usize = 1 << 26;
/// Records a batch's buffers are allocated for up front.
const PREALLOCATE: usize = 4_096;

/// The recorder's bounds.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Records waiting to be written, at most (1 to 2^26). A `flush` or
    /// `shutdown` in progress takes one place too.
    pub queue: usize,
    /// Records per append, at most (at least 1).
    pub batch: usize,
    /// How long the first record of a batch waits for others to join it.
    pub flush_every: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self { queue: 65_536, batch: 1_000, flush_every: Duration::from_millis(50) }
    }
}

/// One call as the request path hands it over: tensors, not JSON
/// (serialising happens on the writer).
#[derive(Debug, Clone)]
pub struct PendingRecord {
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub deployment: ModelName,
    pub model: ModelName,
    pub version: u32,
    pub route: RecordRoute,
    /// Shared between the primary call and its shadows.
    pub inputs: Arc<Vec<Tensor>>,
    /// Empty when the call failed.
    pub outputs: Vec<Tensor>,
    pub error: Option<String>,
    pub latency_us: u64,
}

/// What happened to one deployment's records since the recorder started.
///
/// At rest (nothing being submitted) `submitted = written + dropped +
/// failed + queued`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordCounters {
    /// Handed to `submit`.
    pub submitted: u64,
    /// Appended to the store.
    pub written: u64,
    /// Refused by `submit`: the queue was full or the recorder stopped.
    pub dropped: u64,
    /// Lost to a store error (after one retry) or to serialisation.
    pub failed: u64,
    /// Accepted and not yet written or failed (now).
    pub queued: u64,
}

impl std::ops::AddAssign for RecordCounters {
    fn add_assign(&mut self, other: Self) {
        self.submitted += other.submitted;
        self.written += other.written;
        self.dropped += other.dropped;
        self.failed += other.failed;
        self.queued += other.queued;
    }
}

/// One deployment's live counters.
#[derive(Debug, Default)]
struct DeploymentCounters {
    submitted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    queued: AtomicU64,
}

impl DeploymentCounters {
    fn snapshot(&self) -> RecordCounters {
        RecordCounters {
            submitted: self.submitted.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }

    /// Moves one accepted record from `queued` to `written` or `failed`.
    fn settle(&self, outcome: &AtomicU64) {
        outcome.fetch_add(1, Ordering::Relaxed);
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Message {
    /// A record and its deployment's counters (so the writer never looks
    /// them up).
    Record(PendingRecord, Arc<DeploymentCounters>),
    /// Write what is in hand, then answer.
    Flush(oneshot::Sender<()>),
    /// Stop accepting, write everything queued, answer and end.
    Shutdown(oneshot::Sender<()>),
}

struct Inner {
    tx: mpsc::Sender<Message>,
    stopped: AtomicBool,
    counters: RwLock<HashMap<String, Arc<DeploymentCounters>>>,
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

/// Records predictions off the request path. Cheap to clone: the clones
/// share one queue, one writer and one set of counters. When the last clone
/// is dropped without [`Recorder::shutdown`], the writer still writes what
/// is queued and ends.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("totals", &self.totals()).finish_non_exhaustive()
    }
}

impl Recorder {
    /// Spawns the writer task on the current tokio runtime (panics outside
    /// one, like `tokio::spawn`).
    pub fn start(log: Arc<dyn PredictionLog>, config: RecorderConfig) -> Self {
        let (tx, rx) = mpsc::channel(config.queue.clamp(1, MAX_QUEUE));
        let writer = Writer { log, batch: config.batch.max(1), flush_every: config.flush_every };
        let handle = tokio::spawn(writer.run(rx));
        Self {
            inner: Arc::new(Inner {
                tx,
                stopped: AtomicBool::new(false),
                counters: RwLock::new(HashMap::new()),
                writer: tokio::sync::Mutex::new(Some(handle)),
            }),
        }
    }

    /// Never blocks and never awaits: enqueues the record and returns
    /// `true`, or — queue full, or the recorder stopped — counts it as
    /// dropped for its deployment and returns `false`.
    pub fn submit(&self, record: PendingRecord) -> bool {
        let counters = self.counters_of(record.deployment.as_str());
        counters.submitted.fetch_add(1, Ordering::Relaxed);
        if self.inner.stopped.load(Ordering::Acquire) {
            count_dropped(&counters, &record.deployment, "the recorder has stopped");
            return false;
        }
        // Counted as queued before it is sent, so the writer never settles
        // a record that is not yet counted.
        counters.queued.fetch_add(1, Ordering::Relaxed);
        match self.inner.tx.try_send(Message::Record(record, Arc::clone(&counters))) {
            Ok(()) => true,
            Err(err) => {
                counters.queued.fetch_sub(1, Ordering::Relaxed);
                let (reason, record) = match err {
                    mpsc::error::TrySendError::Full(Message::Record(r, _)) => ("the queue is full", r),
                    mpsc::error::TrySendError::Closed(Message::Record(r, _)) => ("the recorder has stopped", r),
                    // Only records are sent with `try_send`.
                    _ => return false,
                };
                count_dropped(&counters, &record.deployment, reason);
                false
            }
        }
    }

    /// Counts for one deployment since start (zeros for one never seen).
    pub fn counters(&self, deployment: &str) -> RecordCounters {
        let map = self.inner.counters.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(deployment).map(|c| c.snapshot()).unwrap_or_default()
    }

    /// Totals over all deployments.
    pub fn totals(&self) -> RecordCounters {
        let map = self.inner.counters.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut total = RecordCounters::default();
        for counters in map.values() {
            total += counters.snapshot();
        }
        total
    }

    /// Waits until everything submitted before the call is written or
    /// counted as failed. Returns at once after `shutdown`.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.tx.send(Message::Flush(done)).await.is_ok() {
            // An error means the writer ended, having written what it had.
            let _ = wait.await;
        }
    }

    /// Stops accepting (later submits count as dropped), writes what is
    /// queued and ends the writer. Calling it again waits for the first
    /// call to finish.
    pub async fn shutdown(&self) {
        let mut writer = self.inner.writer.lock().await;
        let Some(handle) = writer.take() else { return };
        self.inner.stopped.store(true, Ordering::Release);
        let (done, wait) = oneshot::channel();
        if self.inner.tx.send(Message::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
        if let Err(err) = handle.await {
            tracing::error!(error = %err, "the prediction recorder's writer ended abnormally");
        }
    }

    fn counters_of(&self, deployment: &str) -> Arc<DeploymentCounters> {
        {
            let map = self.inner.counters.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(counters) = map.get(deployment) {
                return Arc::clone(counters);
            }
        }
        let mut map = self.inner.counters.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry(deployment.to_string()).or_default())
    }
}

/// Counts a dropped record, logging the first drop of a deployment and
/// then at each power of two, so a sustained overload is visible in the log
/// without one line per record.
fn count_dropped(counters: &DeploymentCounters, deployment: &ModelName, reason: &str) {
    let dropped = counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
    if dropped.is_power_of_two() {
        tracing::warn!(%deployment, dropped, "prediction records dropped: {reason}");
    }
}

/// The writer task's settings.
struct Writer {
    log: Arc<dyn PredictionLog>,
    batch: usize,
    flush_every: Duration,
}

type Batch = Vec<(PendingRecord, Arc<DeploymentCounters>)>;

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut pending: Batch = Vec::with_capacity(self.batch.min(PREALLOCATE));
        let mut messages: Vec<Message> = Vec::with_capacity(self.batch.min(PREALLOCATE));
        // When the batch in hand must be written, if no other record fills it.
        let mut deadline: Option<Instant> = None;
        loop {
            // Never more in hand than one batch: the queue's bound is the
            // backpressure, and memory stays at `queue + batch` records.
            // (`pending` is below `batch` here: it is written on reaching it.)
            let room = self.batch - pending.len();
            let received = match deadline {
                None => rx.recv_many(&mut messages, room).await,
                Some(at) => match tokio::time::timeout_at(at, rx.recv_many(&mut messages, room)).await {
                    Ok(n) => n,
                    Err(_elapsed) => {
                        self.write(&mut pending).await;
                        deadline = None;
                        continue;
                    }
                },
            };
            if received == 0 {
                // Every `Recorder` is gone: write what is in hand and end.
                self.write(&mut pending).await;
                return;
            }
            // Who asked the writer to stop, once the rest of what was
            // received is in hand.
            let mut stopping: Vec<oneshot::Sender<()>> = Vec::new();
            for message in messages.drain(..) {
                match message {
                    Message::Record(record, counters) => {
                        if pending.is_empty() {
                            deadline = Some(Instant::now() + self.flush_every);
                        }
                        pending.push((record, counters));
                        if pending.len() >= self.batch {
                            self.write(&mut pending).await;
                            deadline = None;
                        }
                    }
                    Message::Flush(done) => {
                        self.write(&mut pending).await;
                        deadline = None;
                        let _ = done.send(());
                    }
                    Message::Shutdown(done) => stopping.push(done),
                }
            }
            if !stopping.is_empty() {
                // Refuse new records; those already queued (submitted
                // before the refusal) are still written.
                rx.close();
                while let Some(message) = rx.recv().await {
                    match message {
                        Message::Record(record, counters) => {
                            pending.push((record, counters));
                            if pending.len() >= self.batch {
                                self.write(&mut pending).await;
                            }
                        }
                        Message::Flush(done) => {
                            self.write(&mut pending).await;
                            let _ = done.send(());
                        }
                        Message::Shutdown(done) => stopping.push(done),
                    }
                }
                self.write(&mut pending).await;
                stopping.into_iter().for_each(|done| {
                    let _ = done.send(());
                });
                return;
            }
        }
    }

    /// Serialises and appends `pending` (emptying it), settling each
    /// record's counters.
    async fn write(&self, pending: &mut Batch) {
        if pending.is_empty() {
            return;
        }
        let batch = std::mem::replace(pending, Vec::with_capacity(self.batch.min(PREALLOCATE)));
        let (batch, counters): (Vec<PendingRecord>, Vec<Arc<DeploymentCounters>>) = batch.into_iter().unzip();
        let converted = match tokio::task::spawn_blocking(move || convert(batch)).await {
            Ok(converted) => converted,
            Err(err) => {
                tracing::warn!(error = %err, records = counters.len(), "serialising prediction records failed; the records are lost");
                counters.iter().for_each(|c| c.settle(&c.failed));
                return;
            }
        };
        let mut records = Vec::with_capacity(converted.len());
        let mut kept = Vec::with_capacity(converted.len());
        for (record, counters) in converted.into_iter().zip(counters) {
            match record {
                Some(record) => {
                    records.push(record);
                    kept.push(counters);
                }
                None => counters.settle(&counters.failed),
            }
        }
        if records.is_empty() {
            return;
        }
        let mut result = self.log.append_predictions(&records).await;
        if let Err(err) = &result {
            tracing::warn!(error = %err, records = records.len(), "appending prediction records failed; retrying once");
            tokio::time::sleep(RETRY_PAUSE).await;
            result = self.log.append_predictions(&records).await;
        }
        match result {
            Ok(()) => kept.iter().for_each(|c| c.settle(&c.written)),
            Err(err) => {
                tracing::warn!(error = %err, records = records.len(), "appending prediction records failed again; the records are lost");
                kept.iter().for_each(|c| c.settle(&c.failed));
            }
        }
    }
}

/// The stored form of each record of a batch, in order; `None` for one
/// that does not serialise (which serde_json cannot make happen for these
/// types, but a lost record must still be counted).
fn convert(batch: Vec<PendingRecord>) -> Vec<Option<PredictionRecord>> {
    let mut records: Vec<Option<PredictionRecord>> = Vec::with_capacity(batch.len());
    // The inputs last serialised and the record holding their JSON. Holding
    // the `Arc` keeps its address from being reused, so pointer equality
    // means the same tensors (a primary and its shadows).
    let mut last: Option<(Arc<Vec<Tensor>>, usize)> = None;
    for record in batch {
        let shared = match &last {
            Some((inputs, at)) if Arc::ptr_eq(inputs, &record.inputs) => records[*at].as_ref().map(|r| r.inputs.clone()),
            _ => None,
        };
        let inputs = shared.map_or_else(|| tensors_json(&record.inputs), Ok);
        let converted = inputs.and_then(|inputs| Ok((inputs, tensors_json(&record.outputs)?)));
        let (inputs, outputs) = match converted {
            Ok(json) => json,
            Err(err) => {
                tracing::warn!(error = %err, request_id = %record.request_id, "a prediction record does not serialise");
                records.push(None);
                continue;
            }
        };
        last = Some((Arc::clone(&record.inputs), records.len()));
        records.push(Some(PredictionRecord {
            id: 0,
            request_id: record.request_id,
            at: record.at,
            deployment: record.deployment,
            model: record.model,
            version: record.version,
            route: record.route,
            inputs,
            outputs,
            error: record.error,
            latency_us: record.latency_us,
        }));
    }
    records
}

/// One tensor in the Open Inference Protocol's JSON form.
#[derive(Serialize)]
struct OipTensor<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [usize],
    data: FlatData<'a>,
}

/// `tensors` as a JSON array of OIP tensors.
pub(crate) fn tensors_json(tensors: &[Tensor]) -> serde_json::Result<String> {
    let wire: Vec<OipTensor<'_>> = tensors
        .iter()
        .map(|t| OipTensor { name: &t.name, datatype: oip_datatype(t.data.dtype()), shape: &t.shape, data: FlatData(&t.data) })
        .collect();
    serde_json::to_string(&wire)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    //! Time is tokio's paused clock (the log's delays, `flush_every`, the
    //! retry pause advance it, not the wall clock), except in the one
    //! multi-threaded test, which synchronises through the log's gate.

    use super::*;
    use async_trait::async_trait;
    use modelops_core::deployment::PredictionQuery;
    use modelops_core::Error;
    use modelops_runtime::TensorData;
    use std::sync::Mutex;
    use tokio::sync::{Notify, Semaphore};

    /// The store's `PredictionLog` as a test double: keeps what it is
    /// given; optionally waits before each append, or at a gate, or fails
    /// a number of appends.
    #[derive(Default)]
    struct MemoryLog {
        records: Mutex<Vec<PredictionRecord>>,
        batches: Mutex<Vec<usize>>,
        calls: AtomicU64,
        /// Told when an append begins.
        entered: Notify,
        delay: Duration,
        /// Appends that fail before the first success.
        fail_first: u64,
        /// When set, every append waits for a permit.
        gate: Option<Semaphore>,
    }

    #[async_trait]
    impl PredictionLog for MemoryLog {
        async fn append_predictions(&self, records: &[PredictionRecord]) -> modelops_core::Result<()> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            self.entered.notify_one();
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("open").forget();
            }
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            if call < self.fail_first {
                return Err(Error::Unavailable("the database is down".into()));
            }
            let mut stored = self.records.lock().unwrap();
            let first = i64::try_from(stored.len()).unwrap() + 1;
            stored.extend(records.iter().cloned().zip(first..).map(|(mut r, id)| {
                r.id = id;
                r
            }));
            self.batches.lock().unwrap().push(records.len());
            Ok(())
        }

        async fn list_predictions(&self, _query: &PredictionQuery) -> modelops_core::Result<Vec<PredictionRecord>> {
            Ok(self.records.lock().unwrap().clone())
        }

        async fn prune_predictions(&self, _before: DateTime<Utc>, _limit: u32) -> modelops_core::Result<u64> {
            Ok(0)
        }
    }

    impl MemoryLog {
        fn stored(&self) -> Vec<PredictionRecord> {
            self.records.lock().unwrap().clone()
        }

        fn request_ids(&self) -> Vec<String> {
            self.stored().into_iter().map(|r| r.request_id).collect()
        }
    }

    fn name(s: &str) -> ModelName {
        ModelName::parse(s).unwrap()
    }

    fn record(deployment: &str, request_id: &str, x: f32) -> PendingRecord {
        PendingRecord {
            request_id: request_id.into(),
            at: DateTime::parse_from_rfc3339("2025-03-01T12:00:00.123456Z").unwrap().with_timezone(&Utc),
            deployment: name(deployment),
            model: name("churn"),
            version: 3,
            route: RecordRoute::Primary,
            inputs: Arc::new(vec![
                Tensor::new("income", vec![2], TensorData::Float32(vec![x, f32::NAN])),
                Tensor::new("segment", vec![2, 1], TensorData::String(vec!["a".into(), "b\"c".into()])),
            ]),
            outputs: vec![
                Tensor::new("label", vec![2], TensorData::Int64(vec![1, 0])),
                Tensor::new("probabilities", vec![2, 2], TensorData::Float64(vec![0.25, 0.75, f64::INFINITY, 0.5])),
            ],
            error: None,
            latency_us: 420,
        }
    }

    fn config(queue: usize, batch: usize, flush_every_ms: u64) -> RecorderConfig {
        RecorderConfig { queue, batch, flush_every: Duration::from_millis(flush_every_ms) }
    }

    fn numbered(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("req-{i}")).collect()
    }

    fn balanced(c: RecordCounters) -> bool {
        c.submitted == c.written + c.dropped + c.failed + c.queued
    }

    #[tokio::test(start_paused = true)]
    async fn records_arrive_in_order_with_their_fields_as_oip_json() {
        let log = Arc::new(MemoryLog::default());
        let recorder = Recorder::start(log.clone(), RecorderConfig::default());
        for i in 0..10u8 {
            let mut r = record("churn-prod", &format!("req-{i}"), f32::from(i) + 0.5);
            if i == 9 {
                r.route = RecordRoute::Shadow;
                r.version = 4;
                r.outputs = vec![];
                r.error = Some("model failed: boom".into());
            }
            assert!(recorder.submit(r));
        }
        recorder.flush().await;
        assert_eq!(log.request_ids(), numbered(10));
        let stored = log.stored();
        let first = &stored[0];
        assert_eq!(first.id, 1, "the log assigns ids; the recorder sends 0");
        assert_eq!(first.deployment.as_str(), "churn-prod");
        assert_eq!(first.model.as_str(), "churn");
        assert_eq!((first.version, first.route, first.latency_us), (3, RecordRoute::Primary, 420));
        assert_eq!(first.at.to_rfc3339(), "2025-03-01T12:00:00.123456+00:00");
        assert_eq!(first.error, None);
        assert_eq!(
            first.inputs,
            r#"[{"name":"income","datatype":"FP32","shape":[2],"data":[0.5,null]},{"name":"segment","datatype":"BYTES","shape":[2,1],"data":["a","b\"c"]}]"#
        );
        assert_eq!(
            first.outputs,
            r#"[{"name":"label","datatype":"INT64","shape":[2],"data":[1,0]},{"name":"probabilities","datatype":"FP64","shape":[2,2],"data":[0.25,0.75,null,0.5]}]"#
        );
        // The stored JSON reads back through the runtime's OIP decoder,
        // NaN included.
        let parsed: serde_json::Value = serde_json::from_str(&first.inputs).unwrap();
        let values = modelops_runtime::tensor_json::flatten(&parsed[0]["data"]).unwrap();
        let income = modelops_runtime::tensor_json::decode("FP32", &values).unwrap();
        assert!(matches!(&income, TensorData::Float32(v) if v[0] == 0.5 && v[1].is_nan()), "{income:?}");
        let failed = &stored[9];
        assert_eq!((failed.version, failed.route), (4, RecordRoute::Shadow));
        assert_eq!(failed.outputs, "[]");
        assert_eq!(failed.error.as_deref(), Some("model failed: boom"));
        let c = recorder.counters("churn-prod");
        assert_eq!(c, RecordCounters { submitted: 10, written: 10, dropped: 0, failed: 0, queued: 0 });
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn inputs_shared_with_a_shadow_are_stored_for_both() {
        let log = Arc::new(MemoryLog::default());
        let recorder = Recorder::start(log.clone(), RecorderConfig::default());
        let primary = record("churn-prod", "req-1", 1.0);
        let mut shadow = primary.clone();
        shadow.route = RecordRoute::Shadow;
        shadow.outputs = vec![Tensor::new("label", vec![2], TensorData::Int64(vec![0, 0]))];
        let mut other = record("churn-prod", "req-2", 2.0);
        other.outputs = vec![];
        assert!(Arc::ptr_eq(&primary.inputs, &shadow.inputs));
        assert!(recorder.submit(primary));
        assert!(recorder.submit(shadow));
        assert!(recorder.submit(other));
        recorder.flush().await;
        let stored = log.stored();
        assert!(stored[0].inputs.contains("[1.0,null]"), "{}", stored[0].inputs);
        assert_eq!(stored[0].inputs, stored[1].inputs);
        assert_ne!(stored[0].outputs, stored[1].outputs);
        assert!(stored[2].inputs.contains("[2.0,null]"), "{}", stored[2].inputs);
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_log_sees_batches_bounded_by_the_batch_size() {
        let log = Arc::new(MemoryLog { delay: Duration::from_millis(20), ..Default::default() });
        let recorder = Recorder::start(log.clone(), config(10_000, 100, 5));
        for i in 0..1_000 {
            assert!(recorder.submit(record("churn-prod", &format!("req-{i}"), 1.0)));
        }
        recorder.flush().await;
        let batches = log.batches.lock().unwrap().clone();
        assert_eq!(batches, vec![100; 10], "full batches, not one record per append");
        assert_eq!(log.request_ids(), numbered(1_000));
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn records_arriving_while_the_log_is_busy_join_one_batch() {
        let log = Arc::new(MemoryLog { delay: Duration::from_millis(20), ..Default::default() });
        let recorder = Recorder::start(log.clone(), config(10_000, 1_000, 5));
        assert!(recorder.submit(record("churn-prod", "req-0", 1.0)));
        // The lone record goes when `flush_every` passes; the next ones
        // arrive while it is being appended.
        log.entered.notified().await;
        for i in 1..50 {
            assert!(recorder.submit(record("churn-prod", &format!("req-{i}"), 1.0)));
        }
        recorder.flush().await;
        assert_eq!(*log.batches.lock().unwrap(), [1, 49]);
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_record_is_written_when_flush_every_passes() {
        let log = Arc::new(MemoryLog::default());
        let recorder = Recorder::start(log.clone(), config(100, 1_000, 10));
        assert!(recorder.submit(record("churn-prod", "req-1", 1.0)));
        tokio::time::sleep(Duration::from_millis(9)).await;
        assert_eq!(recorder.counters("churn-prod").queued, 1, "waiting for others to join its batch");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(recorder.counters("churn-prod").written, 1);
        assert_eq!(log.request_ids(), ["req-1"]);
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_and_counts_without_blocking() {
        let log = Arc::new(MemoryLog { gate: Some(Semaphore::new(0)), ..Default::default() });
        let recorder = Recorder::start(log.clone(), config(4, 2, 1));
        // The writer takes the first batch and waits in the log; then the
        // queue fills. `submit` is not async: it cannot wait for room.
        assert!(recorder.submit(record("churn-prod", "req-0", 1.0)));
        assert!(recorder.submit(record("churn-prod", "req-1", 1.0)));
        log.entered.notified().await;
        let accepted: Vec<bool> = (2..10).map(|i| recorder.submit(record("churn-prod", &format!("req-{i}"), 1.0))).collect();
        assert_eq!(accepted, [true, true, true, true, false, false, false, false]);
        let c = recorder.counters("churn-prod");
        assert_eq!(c, RecordCounters { submitted: 10, written: 0, dropped: 4, failed: 0, queued: 6 });
        assert!(balanced(c));
        log.gate.as_ref().unwrap().add_permits(1_000);
        recorder.flush().await;
        let c = recorder.counters("churn-prod");
        assert_eq!(c, RecordCounters { submitted: 10, written: 6, dropped: 4, failed: 0, queued: 0 });
        assert_eq!(log.request_ids(), numbered(6));
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_log_is_retried_once_then_counted_as_failed() {
        // The first append fails and its retry succeeds.
        let log = Arc::new(MemoryLog { fail_first: 1, ..Default::default() });
        let recorder = Recorder::start(log.clone(), RecorderConfig::default());
        assert!(recorder.submit(record("churn-prod", "req-1", 1.0)));
        recorder.flush().await;
        assert_eq!(log.calls.load(Ordering::SeqCst), 2);
        assert_eq!(recorder.counters("churn-prod"), RecordCounters { submitted: 1, written: 1, dropped: 0, failed: 0, queued: 0 });
        recorder.shutdown().await;

        // Both attempts fail: the batch is lost and counted; the next one
        // is written.
        let log = Arc::new(MemoryLog { fail_first: 2, ..Default::default() });
        let recorder = Recorder::start(log.clone(), RecorderConfig::default());
        for i in 0..3 {
            assert!(recorder.submit(record("churn-prod", &format!("req-{i}"), 1.0)));
        }
        recorder.flush().await;
        assert_eq!(log.calls.load(Ordering::SeqCst), 2);
        assert_eq!(recorder.counters("churn-prod"), RecordCounters { submitted: 3, written: 0, dropped: 0, failed: 3, queued: 0 });
        assert!(recorder.submit(record("churn-prod", "req-3", 1.0)));
        recorder.flush().await;
        assert_eq!(recorder.counters("churn-prod"), RecordCounters { submitted: 4, written: 1, dropped: 0, failed: 3, queued: 0 });
        assert_eq!(log.request_ids(), ["req-3"]);
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn flush_waits_for_what_was_submitted_before_it() {
        let log = Arc::new(MemoryLog { delay: Duration::from_millis(30), ..Default::default() });
        // A long `flush_every`: only flush makes the partial batch go.
        let recorder = Recorder::start(log.clone(), config(1_000, 1_000, 60_000));
        for i in 0..5 {
            assert!(recorder.submit(record("churn-prod", &format!("req-{i}"), 1.0)));
        }
        tokio::task::yield_now().await;
        assert_eq!(log.stored().len(), 0);
        recorder.flush().await;
        assert_eq!(log.request_ids(), numbered(5));
        assert_eq!(recorder.counters("churn-prod").queued, 0);
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_drains_the_queue_and_refuses_later_records() {
        let log = Arc::new(MemoryLog { delay: Duration::from_millis(5), ..Default::default() });
        let recorder = Recorder::start(log.clone(), config(10_000, 50, 60_000));
        for i in 0..500 {
            assert!(recorder.submit(record("churn-prod", &format!("req-{i}"), 1.0)));
        }
        recorder.shutdown().await;
        assert_eq!(log.request_ids(), numbered(500));
        assert!(!recorder.submit(record("churn-prod", "late", 1.0)));
        let c = recorder.counters("churn-prod");
        assert_eq!(c, RecordCounters { submitted: 501, written: 500, dropped: 1, failed: 0, queued: 0 });
        // Flush and a second shutdown return at once.
        recorder.flush().await;
        recorder.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_that_races_shutdown_into_the_queue_is_still_written() {
        let log = Arc::new(MemoryLog { gate: Some(Semaphore::new(0)), ..Default::default() });
        let recorder = Recorder::start(log.clone(), config(100, 10, 1));
        assert!(recorder.submit(record("churn-prod", "req-0", 1.0)));
        log.entered.notified().await;
        // While the writer waits in the log: the stop request, then a
        // record whose `submit` saw the recorder still running — the two
        // reach the writer together.
        let (done, stopped) = oneshot::channel();
        assert!(recorder.inner.tx.try_send(Message::Shutdown(done)).is_ok());
        assert!(recorder.submit(record("churn-prod", "req-1", 1.0)));
        log.gate.as_ref().unwrap().add_permits(10);
        stopped.await.unwrap();
        assert_eq!(log.request_ids(), ["req-0", "req-1"]);
        assert_eq!(recorder.counters("churn-prod"), RecordCounters { submitted: 2, written: 2, dropped: 0, failed: 0, queued: 0 });
        assert!(!recorder.submit(record("churn-prod", "req-2", 1.0)), "the writer has ended");
        assert_eq!(recorder.counters("churn-prod").dropped, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_every_recorder_still_writes_what_was_queued() {
        let log = Arc::new(MemoryLog::default());
        let recorder = Recorder::start(log.clone(), config(100, 1_000, 60_000));
        let handle = recorder.inner.writer.lock().await.take().unwrap();
        assert!(recorder.submit(record("churn-prod", "req-0", 1.0)));
        drop(recorder);
        handle.await.unwrap();
        assert_eq!(log.request_ids(), ["req-0"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn totals_sum_the_deployments_and_every_record_is_accounted_for() {
        // The log holds its first append until every producer is done, so
        // the small queue overflows; that append then fails twice.
        let log = Arc::new(MemoryLog { gate: Some(Semaphore::new(0)), fail_first: 2, ..Default::default() });
        let recorder = Recorder::start(log.clone(), config(64, 16, 1));
        let mut tasks = Vec::new();
        for t in 0..4 {
            let recorder = recorder.clone();
            tasks.push(tokio::spawn(async move {
                let deployment = ["a", "b", "c"][t % 3];
                let mut accepted = 0u64;
                for i in 0..2_000 {
                    accepted += u64::from(recorder.submit(record(deployment, &format!("{t}-{i}"), 1.0)));
                }
                accepted
            }));
        }
        let mut accepted = 0;
        for task in tasks {
            accepted += task.await.unwrap();
        }
        let waiting = recorder.totals();
        assert!(waiting.dropped >= 8_000 - 64 - 16, "{waiting:?}");
        assert!(balanced(waiting), "{waiting:?}");
        log.gate.as_ref().unwrap().add_permits(100_000);
        recorder.flush().await;
        let per: Vec<RecordCounters> = ["a", "b", "c"].iter().map(|d| recorder.counters(d)).collect();
        let mut sum = RecordCounters::default();
        per.iter().for_each(|c| sum += *c);
        let totals = recorder.totals();
        assert_eq!(totals, sum);
        assert_eq!(totals.submitted, 8_000);
        assert_eq!(totals.submitted - totals.dropped, accepted);
        assert_eq!(totals.queued, 0);
        assert!(per.iter().all(|c| balanced(*c)), "{per:?}");
        assert!(totals.failed > 0 && totals.written > 0, "{totals:?}");
        assert_eq!(totals.written as usize, log.stored().len());
        assert_eq!(recorder.counters("never-seen"), RecordCounters::default());
        recorder.shutdown().await;
    }
}
