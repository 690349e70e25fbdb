//! `bench/audit.sh`: the verifiable audit log at a million events.
//!
//! - `audit-bundle`: a synthetic but valid export bundle written in this
//!   process with `modelops-audit` (events sealed onto the chain as the
//!   store seals them, personal values as commitments; the tree
//!   grown in memory, checkpoints signed with a fresh key, consistency proofs
//!   between consecutive checkpoints), for timing `modelops audit verify
//!   --bundle` on it;
//! - `audit-db`: a fresh SQLite store filled with events through the store's
//!   own write path (`Store::begin` + `AuditAppend::record`, so every event
//!   writes its Merkle hashes in its transaction), a checkpoint signed by the
//!   registry over it, then inclusion proofs of random events through
//!   `Registry::inclusion_proof`: time, hash count and size;
//! - `audit-proofs`: the same proofs over HTTP from a running server
//!   (`GET /api/v1/audit/events/{seq}/proof`), each checked with the log's key.

use super::{files_bytes, percentile, round2};
use anyhow::{bail, Context};
use modelops_audit::bundle::{BundleHeader, BundleWriter, FORMAT};
use modelops_audit::personal::{self, PersonKey};
use modelops_audit::proof::ConsistencyProof;
use modelops_audit::tree::{first_stored_index, leaf_hash, stored_count, Frontier, Hash, TreeRead};
use modelops_audit::{LogSigner, PublicKey, SignedCheckpoint};
use modelops_core::audit::{ChainHead, PendingEvent};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The origin of the benchmark's logs.
const ORIGIN: &str = "bench.local/audit";

/// The people acting in the synthetic events.
const ACTORS: [&str; 5] = ["ana", "bo", "chen", "dara", "ci-bot"];

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `1..=n`.
    fn sequence(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n + 1).unwrap_or(1)
    }
}

/// Event `i` of a registry's life: mostly version creations (a version's
/// snapshot, ~400 bytes of JSON with an artifact digest, lineage and a
/// float metric), with alias moves, state changes and tags among them;
/// 60 models, 5 actors. Deterministic in `i`.
fn synthetic_event(i: u64) -> PendingEvent {
    let actor = ACTORS[(i % 5) as usize].to_string();
    let model = format!("credit-risk-{}", i % 60);
    let number = i / 60 + 1;
    let mut rng = Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let digest = format!("{:016x}{:016x}{:016x}{:016x}", rng.next(), rng.next(), rng.next(), rng.next());
    let (action, subject, before, after) = match i % 10 {
        0 => (
            "alias.set",
            format!("model/{model}/alias/champion"),
            Some(json!({"version": number.saturating_sub(1).max(1)})),
            Some(json!({"version": number})),
        ),
        5 => (
            "version.submit",
            format!("model/{model}/version/{number}"),
            Some(json!({"state": "draft"})),
            Some(json!({"state": "submitted", "validator": "vic", "comment": "ready for validation"})),
        ),
        7 => (
            "tag.set",
            format!("model/{model}/version/{number}"),
            None,
            Some(json!({"key": "dataset", "value": format!("loans-2026-{:02}", i % 12 + 1)})),
        ),
        _ => (
            "version.create",
            format!("model/{model}/version/{number}"),
            None,
            Some(json!({
                "model": model,
                "number": number,
                "state": "draft",
                "artifact": {"sha256": digest, "filename": "model.onnx", "size": 4096 + i % 1024},
                "description": format!("nightly retrain {i}"),
                "lineage": {
                    "code_commit": format!("{:07x}", rng.next() & 0xfff_ffff),
                    "hyperparameters": {"depth": 6 + i % 3, "learning_rate": 0.05},
                    "training_metrics": {"auc": 0.9 + (i % 97) as f64 / 1000.0},
                },
                "tags": {"team": "risk"},
                "created_by": ACTORS[(i % 5) as usize],
            })),
        ),
    };
    PendingEvent { actor, action: action.to_string(), subject, before, after }
}

/// Writes a bundle of `events` events into `dir`; prints a JSON report with
/// the public key.
pub fn audit_bundle(dir: &Path, events: u64, every: u64) -> anyhow::Result<()> {
    if events == 0 || every == 0 {
        bail!("--events and --checkpoint-every must be positive");
    }
    let (signer, _private) = LogSigner::generate(ORIGIN)?;
    let key = signer.public_key().clone();
    let header = BundleHeader {
        format: FORMAT.to_string(),
        origin: ORIGIN.to_string(),
        public_key: key.text().to_string(),
        first_sequence: 1,
        last_sequence: i64::try_from(events)?,
        prev_hash: modelops_core::audit::GENESIS_HASH.to_string(),
        start_range: Vec::new(),
    };
    let started = Instant::now();
    let mut writer = BundleWriter::create(dir, &header)?;
    // The stored hashes, by stored-hash index (contiguous from 0), as a store keeps them.
    let mut stored: Vec<Hash> = Vec::with_capacity(usize::try_from(stored_count(events))?);
    let mut frontier = Frontier::new();
    let mut head: Option<ChainHead> = None;
    let mut checkpoints: Vec<SignedCheckpoint> = Vec::new();
    let mut proof_hashes = Vec::new();
    // Events 250 ms apart, ending now.
    let start = modelops_core::clock::Clock::now(&modelops_core::clock::SystemClock) - Duration::from_millis(250 * events);
    // Events as the server hashes them: personal values (the actor, authors,
    // comments) replaced by their commitments (encoding 3); the bundle carries
    // them without the encrypted values, as `modelops audit export` writes it.
    let people: std::collections::HashMap<String, PersonKey> =
        ACTORS.iter().map(|n| (n.to_string(), PersonKey { id: personal::new_person_id(), key: personal::new_person_key() })).collect();
    for i in 0..events {
        let (hashed, sealed) = personal::seal(synthetic_event(i), &people)?;
        let mut event = hashed.seal_personal(head.as_ref(), start + Duration::from_millis(250 * i), sealed)?;
        event.personal.clear();
        let leaf = leaf_hash(&event)?;
        if stored.len() as u64 != first_stored_index(i) {
            bail!("the in-memory tree holds {} hashes before leaf {i}, {} expected", stored.len(), first_stored_index(i));
        }
        let new = TreeRead::Append { n: i, leaf }.run_with(|idx| Ok(idx.iter().map(|&k| stored[k as usize]).collect()))?;
        stored.extend(new);
        frontier.push(leaf);
        writer.event(&event)?;
        let size = i + 1;
        if size % every == 0 || size == events {
            let root = frontier.root();
            let from_store = TreeRead::Root { size }.run_with(|idx| Ok(idx.iter().map(|&k| stored[k as usize]).collect()))?[0];
            if from_store != root {
                bail!("the stored tree's root at {size} is not the frontier's");
            }
            let checkpoint = SignedCheckpoint::sign(&signer, size, root, event.time)?;
            writer.checkpoint(&checkpoint)?;
            if let Some(previous) = checkpoints.last() {
                let hashes = TreeRead::Consistency { from: previous.size, to: size }
                    .run_with(|idx| Ok(idx.iter().map(|&k| stored[k as usize]).collect()))?;
                let proof = ConsistencyProof::new(previous.size, size, &hashes);
                proof.verify(previous, &checkpoint)?;
                proof_hashes.push(hashes.len());
                writer.consistency(&proof)?;
            }
            checkpoints.push(checkpoint);
        }
        head = Some(event.head());
    }
    writer.finish()?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = files_bytes(dir, "events.jsonl");
    println!(
        "{}",
        json!({
            "events": events,
            "checkpoints": checkpoints.len(),
            "consistency_proofs": proof_hashes.len(),
            "consistency_proof_hashes": proof_hashes,
            "seconds": round2(seconds),
            "events_jsonl_bytes": bytes,
            "public_key": key.text(),
        })
    );
    Ok(())
}

fn summary(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len().max(1) as f64;
    json!({
        "n": samples.len(),
        "p50": round2(percentile(&samples, 0.5)),
        "p90": round2(percentile(&samples, 0.9)),
        "p99": round2(percentile(&samples, 0.99)),
        "max": round2(samples.last().copied().unwrap_or(f64::NAN)),
        "mean": round2(mean),
    })
}

fn counts(mut samples: Vec<usize>) -> serde_json::Value {
    samples.sort_unstable();
    json!({
        "min": samples.first(),
        "median": samples.get(samples.len() / 2),
        "max": samples.last(),
    })
}

/// Fills a fresh SQLite store in `dir` with `events` events through the
/// store's write path, `batch` to a transaction; signs a checkpoint; times
/// `proofs` inclusion proofs of random events. Prints JSON.
pub async fn audit_db(dir: &Path, events: u64, batch: u64, proofs: u32) -> anyhow::Result<()> {
    use modelops_core::auth::{authorize, Action, Principal, Role};
    use modelops_core::repo::Store;
    if events == 0 || batch == 0 {
        bail!("--events and --batch must be positive");
    }
    std::fs::create_dir_all(dir)?;
    let dir = &std::fs::canonicalize(dir)?;
    if dir.join("modelops.db").exists() {
        bail!("{} already holds a database: the benchmark starts from an empty one", dir.display());
    }
    let clock: Arc<dyn modelops_core::clock::Clock> = Arc::new(modelops_core::clock::SystemClock);
    let store: Arc<dyn Store> = Arc::new(modelops_store::SqliteStore::open(&dir.join("modelops.db"), clock.clone()).await?);
    let principal = Principal::new("bench", [Role::Admin])?;
    let permit = authorize(&principal, Action::VersionCreate)?;

    // Appends, with the rate of each tenth of the run (does it slow as the tree grows?).
    let started = Instant::now();
    let mut done = 0u64;
    let mut slices = Vec::new();
    let (mut slice_start, mut slice_events) = (Instant::now(), 0u64);
    let slice = (events / 10).max(1);
    while done < events {
        let mut tx = store.begin(&permit).await?;
        let n = batch.min(events - done);
        for _ in 0..n {
            tx.record(synthetic_event(done)).await?;
            done += 1;
        }
        tx.commit().await?;
        slice_events += n;
        if slice_events >= slice || done == events {
            slices.push(round2(slice_events as f64 / slice_start.elapsed().as_secs_f64()));
            (slice_start, slice_events) = (Instant::now(), 0);
        }
    }
    let build_seconds = started.elapsed().as_secs_f64();
    let head = store.head().await?.context("the store holds no head after appending")?;
    if u64::try_from(head.sequence)? != events {
        bail!("the head is event {}, {events} were appended", head.sequence);
    }

    // The server's key file in the data dir, so `modelops serve --data-dir` signs with the same key.
    let (signer, _) = LogSigner::load_or_create(&dir.join("audit-signing.key"), Some(ORIGIN))?;
    let key = signer.public_key().clone();
    let artifacts = modelops_artifacts::ArtifactStore::local(dir.join("artifacts"))?;
    let registry = modelops_registry::Registry::new(store.clone(), artifacts, clock)
        .with_audit_signing(modelops_registry::audit::AuditSigning { signer, witnesses: Vec::new() });
    // The first checkpoint re-hashes every event and compares it with its stored leaf.
    let signing = Instant::now();
    let signed = registry.sign_checkpoint_now().await?;
    let sign_seconds = signing.elapsed().as_secs_f64();
    let checkpoint = SignedCheckpoint::open(&signed.checkpoint.note, &key)?;
    if checkpoint.size != events {
        bail!("the checkpoint signs {} events, {events} were appended", checkpoint.size);
    }

    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..proofs.min(100) {
        registry.inclusion_proof(&principal, rng.sequence(events), None).await?;
    }
    let (mut times, mut checks, mut hashes, mut json_bytes, mut path_bytes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..proofs {
        let seq = rng.sequence(events);
        let t = Instant::now();
        let inclusion = registry.inclusion_proof(&principal, seq, None).await?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        inclusion.proof.verify(&checkpoint)?;
        checks.push(t.elapsed().as_secs_f64() * 1e6);
        hashes.push(inclusion.proof.hashes.len());
        path_bytes.push(inclusion.proof.hashes.len() * 32);
        json_bytes.push(serde_json::to_vec(&inclusion.proof)?.len());
    }
    // The size once the write-ahead log is folded in (closing checkpoints it).
    store.close().await;
    let database_bytes = files_bytes(dir, "modelops.db");
    println!(
        "{}",
        json!({
            "events": events,
            "batch": batch,
            "build_seconds": round2(build_seconds),
            "events_per_second": (events as f64 / build_seconds).round(),
            "events_per_second_by_tenth": slices,
            "database_bytes": database_bytes,
            "database_bytes_per_event": round2(database_bytes as f64 / events as f64),
            "first_checkpoint_seconds": round2(sign_seconds),
            "public_key": key.text(),
            "proofs": {
                "n": proofs,
                "tree_size": checkpoint.size,
                "registry_us": summary(times),
                "verify_us": summary(checks),
                "hashes": counts(hashes),
                "path_bytes": counts(path_bytes),
                "proof_json_bytes": counts(json_bytes),
            },
        })
    );
    Ok(())
}

/// `count` inclusion proofs of random events `1..=max_seq` over HTTP, one at
/// a time, each checked with the server's key (outside the timing).
pub async fn audit_proofs(server: &str, count: u32, max_seq: u64) -> anyhow::Result<()> {
    use modelops_server::wire::InclusionProofResponse;
    let token = std::env::var("MODELOPS_TOKEN").context("MODELOPS_TOKEN must hold an API token")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))?);
    let client = reqwest::Client::builder().default_headers(headers).build()?;
    let base = server.trim_end_matches('/').to_string();
    let key = PublicKey::parse(&client.get(format!("{base}/api/v1/audit/key")).send().await?.error_for_status()?.text().await?)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let get = |seq: i64| {
        let client = client.clone();
        let url = format!("{base}/api/v1/audit/events/{seq}/proof");
        async move { anyhow::Ok(client.get(url).send().await?.error_for_status()?.bytes().await?) }
    };
    for _ in 0..count.min(100) {
        get(rng.sequence(max_seq)).await?;
    }
    let (mut times, mut bytes, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    let mut opened: Option<SignedCheckpoint> = None;
    for _ in 0..count {
        let seq = rng.sequence(max_seq);
        let t = Instant::now();
        let body = get(seq).await?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
        bytes.push(body.len());
        let answer: InclusionProofResponse = serde_json::from_slice(&body)?;
        let checkpoint = match opened.take().filter(|c| c.note == answer.checkpoint.note) {
            Some(c) => c,
            None => SignedCheckpoint::open(&answer.checkpoint.note, &key)?,
        };
        answer.proof().verify(&checkpoint)?;
        hashes.push(answer.hashes.len());
        opened = Some(checkpoint);
    }
    println!(
        "{}",
        json!({
            "n": count,
            "tree_size": opened.map(|c| c.size),
            "http_us": summary(times),
            "response_bytes": counts(bytes),
            "hashes": counts(hashes),
        })
    );
    Ok(())
}
