//! Inclusion and consistency proofs (RFC 9162 §2.1.3, §2.1.4), as the API
//! serves them and `modelops audit verify --proof` checks them. Hashes are
//! lowercase hex, like every other hash modelops shows.

use crate::checkpoint::SignedCheckpoint;
use crate::tree::{from_hex, leaf_index, to_hex, Hash};
use crate::{AuditError, Result};
use serde::{Deserialize, Serialize};

/// "Event `sequence` is leaf `sequence - 1` of the tree of `tree_size`
/// leaves": the audit path from its leaf to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub sequence: i64,
    pub tree_size: u64,
    /// SHA-256(0x00 ‖ entry).
    pub leaf_hash: String,
    /// The event's canonical bytes (the hashed entry), so the leaf hash can be
    /// recomputed from them and compared with the event shown.
    pub entry: String,
    /// The audit path, from the leaf's sibling up.
    pub hashes: Vec<String>,
}

impl InclusionProof {
    pub fn new(sequence: i64, tree_size: u64, entry: String, hashes: &[Hash]) -> Self {
        let leaf = tlog_tiles::record_hash(entry.as_bytes());
        Self { sequence, tree_size, leaf_hash: to_hex(&leaf), entry, hashes: hashes.iter().map(to_hex).collect() }
    }

    /// Checks the proof against a checkpoint whose signature was checked:
    /// the entry hashes to the leaf, and the path leads to the signed root.
    pub fn verify(&self, checkpoint: &SignedCheckpoint) -> Result<()> {
        if checkpoint.size != self.tree_size {
            return Err(AuditError::Mismatch(format!(
                "the proof is for a tree of {} events, the checkpoint signs {}",
                self.tree_size, checkpoint.size
            )));
        }
        let index = leaf_index(self.sequence)
            .filter(|i| *i < self.tree_size)
            .ok_or_else(|| AuditError::Mismatch(format!("event {} is not in a tree of {} events", self.sequence, self.tree_size)))?;
        let leaf = from_hex("leaf_hash", &self.leaf_hash)?;
        if tlog_tiles::record_hash(self.entry.as_bytes()) != leaf {
            return Err(AuditError::Mismatch(format!("the entry of event {} does not hash to the proof's leaf hash", self.sequence)));
        }
        let path = parse_hashes(&self.hashes)?;
        tlog_tiles::check_record(&path, self.tree_size, checkpoint.root, index, leaf).map_err(|_| {
            AuditError::Mismatch(format!(
                "event {} is not in the log the checkpoint of {} events signs: the audit path does not lead to root {}",
                self.sequence,
                checkpoint.size,
                checkpoint.root_base64()
            ))
        })
    }
}

/// "The tree of `from` leaves is a prefix of the tree of `to` leaves."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub hashes: Vec<String>,
}

impl ConsistencyProof {
    pub fn new(from: u64, to: u64, hashes: &[Hash]) -> Self {
        Self { from, to, hashes: hashes.iter().map(to_hex).collect() }
    }

    /// Checks the proof between two checkpoints whose signatures were
    /// checked: the later log still holds the earlier one, unchanged.
    pub fn verify(&self, older: &SignedCheckpoint, newer: &SignedCheckpoint) -> Result<()> {
        if older.size != self.from || newer.size != self.to {
            return Err(AuditError::Mismatch(format!(
                "the proof is from {} to {} events, the checkpoints sign {} and {}",
                self.from, self.to, older.size, newer.size
            )));
        }
        let path = parse_hashes(&self.hashes)?;
        tlog_tiles::check_tree(&path, self.to, newer.root, self.from, older.root).map_err(|_| {
            AuditError::Mismatch(format!(
                "the log of {} events does not extend the one of {} events signed at {}: its history was rewritten",
                self.to,
                self.from,
                older.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
        })
    }
}

fn parse_hashes(hashes: &[String]) -> Result<Vec<Hash>> {
    hashes.iter().enumerate().map(|(i, h)| from_hex(&format!("hashes[{i}]"), h)).collect()
}
