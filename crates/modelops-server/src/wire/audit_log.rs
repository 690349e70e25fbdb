//! The verifiable audit log on the wire: checkpoints, proofs, the compact
//! range an export starts from (shared with the CLI, which checks the
//! proofs offline with `modelops-audit`).

use super::AuditEventResponse;
use chrono::{DateTime, Utc};
use modelops_core::audit::StoredCheckpoint;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A signed checkpoint: the tree head of the first `size` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointWire {
    pub size: u64,
    /// The RFC 9162 root, hex (the note carries it in base64).
    pub root: String,
    pub time: DateTime<Utc>,
    /// The C2SP signed note, byte for byte as signed: what a verifier checks.
    pub note: String,
}

impl From<StoredCheckpoint> for CheckpointWire {
    fn from(c: StoredCheckpoint) -> Self {
        Self { size: c.size, root: c.root, time: c.time, note: c.note }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointList {
    /// Smallest first.
    pub checkpoints: Vec<CheckpointWire>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckpointParams {
    /// Checkpoints of more than this many events.
    pub after: Option<u64>,
    #[param(minimum = 1, maximum = 1000)]
    pub page_size: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WitnessFailureWire {
    pub witness: String,
    pub error: String,
}

/// The answer to signing on demand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignedCheckpointResponse {
    pub checkpoint: CheckpointWire,
    /// False when the log had not grown since the latest checkpoint, which
    /// is answered instead.
    pub new: bool,
    /// Witnesses the checkpoint could not be written to (retried with the next).
    pub witness_failures: Vec<WitnessFailureWire>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofParams {
    /// The size of the checkpoint to prove against; the latest when absent.
    pub checkpoint: Option<u64>,
}

/// "Event `sequence` is in the log the checkpoint signs."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofResponse {
    pub sequence: i64,
    pub tree_size: u64,
    /// SHA-256(0x00 ‖ entry), hex.
    pub leaf_hash: String,
    /// The event's canonical bytes: the hashed entry.
    pub entry: String,
    /// The audit path, hex, from the leaf's sibling up.
    pub hashes: Vec<String>,
    /// The event as hashed: personal values as `sealed:` commitments.
    pub event: AuditEventResponse,
    /// The same event as people read it (names and comments opened).
    pub readable_event: AuditEventResponse,
    pub checkpoint: CheckpointWire,
}

impl InclusionProofResponse {
    /// The proof alone, for `modelops-audit` to check.
    pub fn proof(&self) -> modelops_audit::proof::InclusionProof {
        modelops_audit::proof::InclusionProof {
            sequence: self.sequence,
            tree_size: self.tree_size,
            leaf_hash: self.leaf_hash.clone(),
            entry: self.entry.clone(),
            hashes: self.hashes.clone(),
        }
    }
}

impl From<modelops_registry::audit::Inclusion> for InclusionProofResponse {
    fn from(i: modelops_registry::audit::Inclusion) -> Self {
        Self {
            sequence: i.proof.sequence,
            tree_size: i.proof.tree_size,
            leaf_hash: i.proof.leaf_hash,
            entry: i.proof.entry,
            hashes: i.proof.hashes,
            event: i.event.into(),
            readable_event: i.readable.into(),
            checkpoint: i.checkpoint.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The older tree size (any, e.g. a witnessed checkpoint's).
    pub from: u64,
    /// The size of the newer checkpoint; the latest when absent.
    pub to: Option<u64>,
}

/// "The log of `to` events extends the log of `from` events unchanged."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofResponse {
    pub from: u64,
    pub to: u64,
    /// Hex, RFC 9162 §2.1.4.
    pub hashes: Vec<String>,
    /// The server's checkpoint of the older size, when it has one.
    pub from_checkpoint: Option<CheckpointWire>,
    pub to_checkpoint: CheckpointWire,
}

impl ConsistencyProofResponse {
    pub fn proof(&self) -> modelops_audit::proof::ConsistencyProof {
        modelops_audit::proof::ConsistencyProof { from: self.from, to: self.to, hashes: self.hashes.clone() }
    }
}

impl From<modelops_registry::audit::Consistency> for ConsistencyProofResponse {
    fn from(c: modelops_registry::audit::Consistency) -> Self {
        Self { from: c.proof.from, to: c.proof.to, hashes: c.proof.hashes, from_checkpoint: c.from.map(Into::into), to_checkpoint: c.to.into() }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// The tree size (number of events) whose perfect subtrees are wanted.
    pub size: u64,
}

/// The perfect subtrees of the tree of `size` events, largest first: the
/// state an export starting after event `size` begins from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompactRangeResponse {
    pub size: u64,
    pub hashes: Vec<String>,
}

/// What erasing a person did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasureResponse {
    /// What their name reads as from now on.
    pub pseudonym: String,
    /// Events hashed by a release before personal values were sealed that
    /// still name them (erasing those would break the chain).
    pub legacy_events: u64,
}
