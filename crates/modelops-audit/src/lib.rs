//! The verifiable audit log (DESIGN §6): what lets someone outside the
//! database check modelops' audit events with one public key.
//!
//! The hash chain of `modelops-core::audit` detects an edited row, but not a
//! history rewritten together with its head. This crate adds, after
//! Certificate Transparency (RFC 9162):
//!
//! - [`tree`]: a Merkle tree over the events — leaf = SHA-256(0x00 ‖ the
//!   event's canonical bytes), node = SHA-256(0x01 ‖ left ‖ right) — kept in
//!   the stored-hash layout of Go's `sumdb/tlog` (through the `tlog_tiles`
//!   crate), so a store appends at most `1 + log₂ n` hashes per event and any
//!   root or proof reads `O(log n)` of them;
//! - [`checkpoint`] and [`key`]: signed tree heads in the C2SP
//!   `tlog-checkpoint` text, signed as C2SP signed notes with Ed25519 (the
//!   `signed_note` crate), and the key file they are signed with;
//! - [`proof`]: inclusion and consistency proofs and their checks;
//! - [`verify`]: streaming verification of events against signed
//!   checkpoints (a database, an export bundle or a witness), in constant
//!   memory;
//! - [`bundle`]: the export bundle (events, checkpoints, proofs as files)
//!   and its offline verification;
//! - [`witness`]: the places a checkpoint is also written to;
//! - [`personal`]: personal values sealed out of the hashed bytes, so a
//!   person can be erased and the log still verifies.
//!
//! Must not depend on: SQL or a concrete store, an HTTP server, the
//! registry. The stores call [`tree::TreeRead`] to maintain the tree; the
//! registry calls the rest.

pub mod bundle;
pub mod checkpoint;
pub mod key;
pub mod personal;
pub mod proof;
pub mod tree;
pub mod verify;
pub mod witness;

pub use checkpoint::SignedCheckpoint;
pub use key::{LogSigner, PublicKey};
pub use tree::{Hash, TreeRead};

/// Why something handed to this crate does not verify or cannot be used.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// A key, checkpoint, proof or bundle file that is malformed.
    #[error("{what} is malformed: {reason}")]
    Malformed { what: String, reason: String },
    /// A signature that does not verify with the given key.
    #[error("{0}")]
    BadSignature(String),
    /// A proof, root or event that does not match what was signed.
    #[error("{0}")]
    Mismatch(String),
    /// Reading or writing a file.
    #[error("{0}")]
    Io(String),
}

impl AuditError {
    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        AuditError::Malformed { what: what.into(), reason: reason.to_string() }
    }
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;
