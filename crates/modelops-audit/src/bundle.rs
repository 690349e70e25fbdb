//! The export bundle: a folder an auditor verifies with the public key
//! alone — no server, no database.
//!
//! ```text
//! bundle/
//!   log.json                       origin, public key, the events' range, and
//!                                  where the tree stood before the first one
//!   events.jsonl                   one event per line, oldest first, as the API shows it
//!   checkpoints/<size>.note        signed checkpoints (C2SP signed notes)
//!   proofs/consistency-<a>-<b>.json  between consecutive checkpoints
//!   README.txt                     how to verify
//! ```
//!
//! Verification ([`verify_bundle`]) opens every checkpoint with the key,
//! checks every consistency proof, and streams the events through the chain
//! and the tree: the root at every checkpoint's size must be the signed one,
//! and the last event must be the last checkpoint's. A bundle that starts
//! in the middle of the log carries the tree's compact range before its
//! first event; a forged range cannot reach a signed root.

use crate::checkpoint::SignedCheckpoint;
use crate::key::PublicKey;
use crate::proof::ConsistencyProof;
use crate::tree::{from_hex, to_hex, Frontier, Hash};
use crate::verify::{Failure, LogSummary, LogVerifier, Prepared};
use crate::{AuditError, Result};
use modelops_core::audit::{AuditEvent, ChainHead, ChainRecord};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "modelops-audit-bundle/1";

/// `log.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHeader {
    pub format: String,
    pub origin: String,
    /// For reading only: verification takes the key from the auditor.
    pub public_key: String,
    /// The first and last event in `events.jsonl`.
    pub first_sequence: i64,
    pub last_sequence: i64,
    /// The chain hash of the event before the first (zeros from the start).
    pub prev_hash: String,
    /// The tree's perfect subtrees before the first event, largest first.
    pub start_range: Vec<String>,
}

/// Writes a bundle into `dir` (created; must be empty if it exists).
pub struct BundleWriter {
    dir: PathBuf,
    events: BufWriter<std::fs::File>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |e| AuditError::Io(format!("`{}`: {e}", path.display()))
}

impl BundleWriter {
    pub fn create(dir: &Path, header: &BundleHeader) -> Result<Self> {
        if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
            return Err(AuditError::Io(format!("`{}` is not empty: a bundle goes into a new or empty folder", dir.display())));
        }
        for sub in ["checkpoints", "proofs"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io(dir))?;
        }
        let path = dir.join("log.json");
        let text = serde_json::to_string_pretty(header).map_err(|e| AuditError::Io(e.to_string()))?;
        std::fs::write(&path, text + "\n").map_err(io(&path))?;
        let path = dir.join("README.txt");
        std::fs::write(&path, readme(header)).map_err(io(&path))?;
        let path = dir.join("events.jsonl");
        let events = BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
        Ok(Self { dir: dir.to_path_buf(), events })
    }

    pub fn event(&mut self, event: &AuditEvent) -> Result<()> {
        serde_json::to_writer(&mut self.events, event).map_err(|e| AuditError::Io(e.to_string()))?;
        self.events.write_all(b"\n").map_err(io(&self.dir))
    }

    pub fn checkpoint(&self, checkpoint: &SignedCheckpoint) -> Result<()> {
        let path = self.dir.join("checkpoints").join(format!("{}.note", checkpoint.size));
        std::fs::write(&path, &checkpoint.note).map_err(io(&path))
    }

    pub fn consistency(&self, proof: &ConsistencyProof) -> Result<()> {
        let path = self.dir.join("proofs").join(format!("consistency-{}-{}.json", proof.from, proof.to));
        let text = serde_json::to_string_pretty(proof).map_err(|e| AuditError::Io(e.to_string()))?;
        std::fs::write(&path, text + "\n").map_err(io(&path))
    }

    pub fn finish(mut self) -> Result<()> {
        self.events.flush().map_err(io(&self.dir))?;
        self.events.get_ref().sync_all().map_err(io(&self.dir))
    }
}

fn readme(header: &BundleHeader) -> String {
    format!(
        "modelops audit bundle ({FORMAT})\n\nEvents {} to {} of the audit log `{}`, the checkpoints that sign them,\nand consistency proofs between the checkpoints.\n\nVerify with the log's public key, obtained from its operator by another channel\n(it is also in log.json, which proves nothing):\n\n    modelops audit verify --bundle . --key '{}'\n",
        header.first_sequence, header.last_sequence, header.origin, header.public_key
    )
}

/// What a verified bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleReport {
    pub origin: String,
    pub first_sequence: i64,
    pub last_sequence: i64,
    pub checkpoints: usize,
    pub consistency_proofs: usize,
    #[serde(flatten)]
    pub log: LogSummary,
}

/// Why a bundle does not verify: a file that cannot be used, or a log that
/// fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("{0}")]
    Unusable(#[from] AuditError),
    #[error("{0}")]
    Failed(Failure),
}

/// Lines of `events.jsonl` parsed and hashed in parallel at a time (~10 MB).
const PARALLEL_CHUNK: usize = 16_384;

/// Checks the bundle in `dir` with `key` (see the module's documentation).
pub fn verify_bundle(dir: &Path, key: &PublicKey) -> Result<BundleReport, BundleError> {
    let path = dir.join("log.json");
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let header: BundleHeader = serde_json::from_str(&text).map_err(|e| AuditError::malformed("log.json", e))?;
    if header.format != FORMAT {
        return Err(AuditError::malformed("log.json", format!("format `{}` is not `{FORMAT}`", header.format)).into());
    }
    if header.origin != key.origin() {
        return Err(AuditError::Mismatch(format!("the bundle is of log `{}`, the key of log `{}`", header.origin, key.origin())).into());
    }

    let mut checkpoints = read_checkpoints(&dir.join("checkpoints"), key)?;
    checkpoints.sort_by_key(|c| c.size);
    checkpoints.dedup_by_key(|c| c.size);
    let Some(last) = checkpoints.last().cloned() else {
        return Err(AuditError::malformed("checkpoints/", "the bundle holds no checkpoint: nothing in it is signed").into());
    };
    let proofs = check_consistency(&dir.join("proofs"), &checkpoints)?;

    let start_size = u64::try_from(header.first_sequence - 1)
        .map_err(|_| AuditError::malformed("log.json", format!("first_sequence `{}` is below 1", header.first_sequence)))?;
    let range = header.start_range.iter().map(|h| from_hex("start_range", h)).collect::<Result<Vec<Hash>>>()?;
    let frontier = Frontier::from_range(start_size, &range)?;
    let mut verifier = if start_size == 0 {
        LogVerifier::new(checkpoints.clone())
    } else {
        let head = ChainHead { sequence: header.first_sequence - 1, hash: header.prev_hash.clone() };
        LogVerifier::starting_after(head, frontier, checkpoints.clone())
    };
    let path = dir.join("events.jsonl");
    let file = std::fs::File::open(&path).map_err(io(&path))?;
    // Reading and hashing an event needs no other event: chunks of lines
    // are parsed and hashed on every core, then linked in order here.
    let mut lines = std::io::BufReader::with_capacity(1 << 20, file).lines();
    let mut n = 0usize;
    let mut unread = None;
    while unread.is_none() {
        // A line that does not read ends the chunk; the lines before it are
        // checked first, so an earlier break is the one reported.
        let mut chunk = Vec::with_capacity(PARALLEL_CHUNK);
        for line in lines.by_ref().take(PARALLEL_CHUNK) {
            match line {
                Ok(line) => chunk.push(line),
                Err(e) => {
                    unread = Some(e);
                    break;
                }
            }
        }
        if chunk.is_empty() {
            break;
        }
        let first_line = n;
        n += chunk.len();
        let prepared: Vec<Prepared> = chunk
            .par_iter()
            .enumerate()
            .map(|(i, line)| {
                let record = match serde_json::from_str::<AuditEvent>(line) {
                    Ok(event) => ChainRecord::Event(event),
                    Err(e) => ChainRecord::Unreadable {
                        sequence: header.first_sequence.saturating_add(i64::try_from(first_line + i).unwrap_or(i64::MAX)),
                        reason: format!("line {} of events.jsonl is not an event: {e}", first_line + i + 1),
                    },
                };
                Prepared::of(record)
            })
            .collect();
        for p in prepared {
            verifier.push_prepared(p).map_err(BundleError::Failed)?;
        }
    }
    if let Some(e) = unread {
        return Err(io(&path)(e).into());
    }
    let log = verifier.finish_here().map_err(BundleError::Failed)?;
    let last_sequence = log.head.as_ref().map_or(0, |h| h.sequence);
    if u64::try_from(last_sequence).ok() != Some(last.size) || last_sequence != header.last_sequence {
        return Err(AuditError::Mismatch(format!(
            "events.jsonl ends at event {last_sequence}, log.json says {} and the last checkpoint signs {}: events past a checkpoint are not signed",
            header.last_sequence, last.size
        ))
        .into());
    }
    Ok(BundleReport {
        origin: header.origin,
        first_sequence: header.first_sequence,
        last_sequence,
        checkpoints: checkpoints.len(),
        consistency_proofs: proofs,
        log,
    })
}

/// Opens every `*.note` in `dir` with `key`; a bad one is named.
pub fn read_checkpoints(dir: &Path, key: &PublicKey) -> Result<Vec<SignedCheckpoint>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.extension().is_some_and(|e| e == "note") {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let cp = SignedCheckpoint::open(&text, key).map_err(|e| match e {
                AuditError::BadSignature(m) => AuditError::BadSignature(format!("`{}`: {m}", path.display())),
                other => AuditError::Mismatch(format!("`{}`: {other}", path.display())),
            })?;
            out.push(cp);
        }
    }
    Ok(out)
}

/// Every consecutive pair of checkpoints must have its consistency proof,
/// and each must check. Returns how many were checked.
fn check_consistency(dir: &Path, checkpoints: &[SignedCheckpoint]) -> Result<usize> {
    let mut checked = 0;
    for pair in checkpoints.windows(2) {
        let (older, newer) = (&pair[0], &pair[1]);
        let path = dir.join(format!("consistency-{}-{}.json", older.size, newer.size));
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let proof: ConsistencyProof = serde_json::from_str(&text).map_err(|e| AuditError::malformed(path.display().to_string(), e))?;
        proof.verify(older, newer)?;
        checked += 1;
    }
    Ok(checked)
}

/// The header's `start_range` from hashes.
pub fn range_hex(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(to_hex).collect()
}
