//! The verifiable audit log's use cases (`modelops-audit` does the
//! cryptography): signing checkpoints, serving them with inclusion and
//! consistency proofs, the compact range an export starts from, and
//! verifying the whole log against the signed checkpoints.
//!
//! The server never signs a tree it has not checked: a new checkpoint is
//! made only after the leaves since the last one are found to be the
//! events' — re-hashed from the stored rows for events another writer
//! appended, compared with the leaves this process hashed itself for its
//! own — and the stored tree is proved consistent with the last signed
//! root. A tree rewritten between two checkpoints therefore stops the
//! signing (and is reported) instead of being signed over. A row of this
//! process's own edited after its append (its leaf left alone) does not:
//! the checkpoint then signs the leaf of what was written, and `audit
//! verify` names the edited event against it.

use crate::Registry;
use modelops_audit::proof::{ConsistencyProof, InclusionProof};
use modelops_audit::tree::{entry_hash, first_stored_index, leaf_index, to_hex, Hash};
use modelops_audit::verify::{Failure, LogSummary, LogVerifier};
use modelops_audit::witness::Witness;
use modelops_audit::{LogSigner, PublicKey, SignedCheckpoint, TreeRead};
use modelops_core::audit::{AuditEvent, ChainRecord, ChainVerifier, StoredCheckpoint};
use modelops_core::auth::{Action, Principal};
use modelops_core::repo::VERIFY_BATCH;
use modelops_core::{Error, Result};
use std::sync::Arc;

/// The log's signing key and where checkpoints are also written.
#[derive(Debug)]
pub struct AuditSigning {
    pub signer: LogSigner,
    pub witnesses: Vec<Witness>,
}

/// A checkpoint newly signed or the latest one, with what its witnesses
/// answered (empty when none is configured or it was not new).
#[derive(Debug, Clone)]
pub struct Signed {
    pub checkpoint: StoredCheckpoint,
    /// Whether this call signed it (false: the tree had not grown).
    pub new: bool,
    /// `(witness, error)` for each witness that could not be written.
    pub witness_failures: Vec<(String, String)>,
}

/// An inclusion proof with what it proves against.
#[derive(Debug, Clone)]
pub struct Inclusion {
    pub proof: InclusionProof,
    /// The event as hashed (personal values as commitments).
    pub event: AuditEvent,
    /// The event as people read it.
    pub readable: AuditEvent,
    pub checkpoint: StoredCheckpoint,
}

/// A consistency proof with the two checkpoints it links.
#[derive(Debug, Clone)]
pub struct Consistency {
    pub proof: ConsistencyProof,
    /// The stored checkpoint of the older size, when there is one.
    pub from: Option<StoredCheckpoint>,
    pub to: StoredCheckpoint,
}

fn audit_err(e: modelops_audit::AuditError) -> Error {
    Error::Internal(format!("the audit log: {e}"))
}

fn size_of(sequence: i64) -> u64 {
    u64::try_from(sequence).unwrap_or(0)
}

impl Registry {
    /// Signs checkpoints with `signing` (and writes them to its witnesses).
    /// Call before the registry is shared.
    pub fn with_audit_signing(self, signing: AuditSigning) -> Self {
        Self { audit_signing: Some(Arc::new(signing)), ..self }
    }

    /// The log's public key, when this server signs checkpoints.
    pub fn audit_public_key(&self) -> Option<&PublicKey> {
        self.audit_signing.as_ref().map(|s| s.signer.public_key())
    }

    fn signing(&self) -> Result<&AuditSigning> {
        self.audit_signing
            .as_deref()
            .ok_or_else(|| Error::Conflict("this server has no audit signing key, so it signs no checkpoints".into()))
    }

    /// Signs a checkpoint of the log as it stands now, on demand.
    pub async fn sign_checkpoint(&self, principal: &Principal) -> Result<Signed> {
        self.authorize(principal, Action::AuditCheckpoint, "audit").await?;
        self.sign_checkpoint_now().await
    }

    /// Signs a checkpoint when the log grew since the last one: what the
    /// server's timer calls. Returns the latest checkpoint otherwise.
    pub async fn sign_checkpoint_now(&self) -> Result<Signed> {
        let signing = self.signing()?;
        let store = self.store();
        let head = store.head().await?.ok_or_else(|| Error::Conflict("the audit log is empty: there is nothing to sign".into()))?;
        let size = size_of(head.sequence);
        let latest = store.checkpoint(None).await?;
        if let Some(latest) = latest.as_ref().filter(|l| l.size >= size) {
            return Ok(Signed { checkpoint: latest.clone(), new: false, witness_failures: Vec::new() });
        }
        let previous = match &latest {
            Some(stored) => Some(self.open(stored)?),
            None => None,
        };
        self.check_new_leaves(previous.as_ref().map_or(0, |p| p.size), size).await?;
        let root = self.tree_read(TreeRead::Root { size }).await?[0];
        if let Some(previous) = &previous {
            let hashes = self.tree_read(TreeRead::Consistency { from: previous.size, to: size }).await?;
            tlog_check_tree(&hashes, size, root, previous)?;
        }
        let signed = SignedCheckpoint::sign(&signing.signer, size, root, self.now()).map_err(audit_err)?;
        let stored = StoredCheckpoint { size, root: to_hex(&root), time: signed.time, note: signed.note.clone() };
        if !store.add_checkpoint(&stored).await? {
            // Another replica signed this size first: serve its checkpoint.
            let theirs = store.checkpoint(Some(size)).await?.unwrap_or(stored);
            return Ok(Signed { checkpoint: theirs, new: false, witness_failures: Vec::new() });
        }
        let mut witness_failures = Vec::new();
        for witness in &signing.witnesses {
            if let Err(e) = witness.publish(&signed).await {
                tracing::warn!(witness = witness.location(), error = %e, "an audit checkpoint could not be written to a witness");
                witness_failures.push((witness.location().to_string(), e.to_string()));
            }
        }
        tracing::info!(size, root = %stored.root, "signed an audit checkpoint");
        Ok(Signed { checkpoint: stored, new: true, witness_failures })
    }

    /// Checks the stored leaves of events `from+1..=to` before they are
    /// signed. The events this store appended itself are compared with the
    /// leaves it hashed from the bytes it wrote (no need to read them back:
    /// an event edited since then still fails `audit verify` against the
    /// signed leaf); the others — another replica's, or older than what it
    /// remembers — are read, their chain links checked and hashed again.
    async fn check_new_leaves(&self, from: u64, to: u64) -> Result<()> {
        let store = self.store();
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let to = i64::try_from(to).unwrap_or(i64::MAX);
        let mut next = from + 1;
        while next <= to {
            let mut own = Vec::new();
            while next <= to && own.len() < VERIFY_BATCH as usize {
                match store.appended_leaf(next) {
                    Some(leaf) => own.push((next, leaf)),
                    None => break,
                }
                next += 1;
            }
            if !own.is_empty() {
                let indexes: Vec<u64> = own.iter().map(|(sequence, _)| first_stored_index(size_of(*sequence) - 1)).collect();
                let stored = store.tree_hashes(&indexes).await?;
                if let Some(((sequence, _), _)) = own.iter().zip(&stored).find(|((_, leaf), stored)| leaf != *stored) {
                    return Err(refuse(format!("the stored Merkle leaf of event {sequence} is not the one appended")));
                }
                continue;
            }
            // At least one: `next` was not this store's a moment ago.
            let others = next;
            next += 1;
            while next <= to && store.appended_leaf(next).is_none() {
                next += 1;
            }
            self.rehash_leaves(others - 1, next - 1).await?;
        }
        Ok(())
    }

    /// Re-hashes events `from+1..=to` and compares them with the stored
    /// leaves, checking their chain links on the way.
    async fn rehash_leaves(&self, from: i64, to: i64) -> Result<()> {
        let store = self.store();
        let start = from;
        let to = size_of(to);
        let mut chain = if from == 0 {
            ChainVerifier::new()
        } else {
            let before = store.read_chain(Some(start - 1), 1).await?;
            match before.first() {
                Some(ChainRecord::Event(e)) if e.sequence == start => ChainVerifier::starting_after(e.head()),
                _ => return Err(refuse(format!("event {start}, the last one checked, cannot be read"))),
            }
        };
        let mut after = start;
        while size_of(after) < to {
            // No more rows than the range holds (a short run between another
            // writer's events must not read a whole batch each time).
            let limit = u32::try_from(to - size_of(after)).unwrap_or(u32::MAX).min(VERIFY_BATCH);
            let batch = store.read_chain(Some(after), limit).await?;
            let batch: Vec<_> = batch.into_iter().take_while(|r| size_of(r.sequence()) <= to).collect();
            if batch.is_empty() {
                return Err(refuse(format!("events after {after} are missing below the head {to}")));
            }
            let indexes: Vec<u64> = batch.iter().map(|r| first_stored_index(size_of(r.sequence()).saturating_sub(1))).collect();
            let stored = store.tree_hashes(&indexes).await?;
            for (record, stored) in batch.iter().zip(stored) {
                let canonical = chain.push_record_bytes(record).map_err(|b| refuse(b.to_string()))?;
                if entry_hash(&canonical) != Hash(stored) {
                    return Err(refuse(format!("the stored Merkle leaf of event {} is not the hash of the event", record.sequence())));
                }
                after = record.sequence();
            }
        }
        Ok(())
    }

    /// Reads the stored tree (two passes, see `modelops_audit::tree`).
    async fn tree_read(&self, read: TreeRead) -> Result<Vec<Hash>> {
        let needs = read.needs().map_err(|e| Error::invalid("size", e.to_string()))?;
        let hashes = self.store().tree_hashes(&needs).await?;
        read.run(&needs.into_iter().zip(hashes.into_iter().map(Hash)).collect()).map_err(audit_err)
    }

    /// A stored checkpoint, its signature checked with this server's key.
    fn open(&self, stored: &StoredCheckpoint) -> Result<SignedCheckpoint> {
        let key = self.signing()?.signer.public_key();
        SignedCheckpoint::open(&stored.note, key).map_err(|e| {
            refuse(format!("the stored checkpoint of {} events does not verify with this server's key: {e}", stored.size))
        })
    }

    /// Stored checkpoints with `size > after`, smallest first.
    pub async fn checkpoints(&self, principal: &Principal, after: Option<u64>, limit: u32) -> Result<Vec<StoredCheckpoint>> {
        self.authorize(principal, Action::AuditRead, "audit").await?;
        self.store().checkpoints(after, limit.clamp(1, 1000)).await
    }

    /// The checkpoint of `size`, or the latest.
    pub async fn checkpoint(&self, principal: &Principal, size: Option<u64>) -> Result<StoredCheckpoint> {
        self.authorize(principal, Action::AuditRead, "audit").await?;
        self.stored_checkpoint(size).await
    }

    async fn stored_checkpoint(&self, size: Option<u64>) -> Result<StoredCheckpoint> {
        self.store().checkpoint(size).await?.ok_or_else(|| match size {
            Some(size) => Error::not_found("checkpoint", size.to_string()),
            None => Error::not_found("checkpoint", "latest (none is signed yet: `modelops audit checkpoint` signs one)"),
        })
    }

    /// The inclusion proof of event `sequence` in the checkpoint of `size`
    /// (the latest when `None`).
    pub async fn inclusion_proof(&self, principal: &Principal, sequence: i64, size: Option<u64>) -> Result<Inclusion> {
        self.authorize(principal, Action::AuditRead, "audit").await?;
        let mut checkpoint = self.store().checkpoint(size).await?;
        // Asked against the latest and the event is newer than it: sign the
        // log as it stands (the server would within the interval anyway).
        let uncovered = checkpoint.as_ref().is_none_or(|c| leaf_index(sequence).is_some_and(|i| i >= c.size));
        if size.is_none() && uncovered && self.audit_signing.is_some() {
            checkpoint = Some(self.sign_checkpoint_now().await?.checkpoint);
        }
        let checkpoint = match checkpoint {
            Some(c) => c,
            None => self.stored_checkpoint(size).await?,
        };
        let index = leaf_index(sequence)
            .filter(|i| *i < checkpoint.size)
            .ok_or_else(|| Error::invalid("seq", format!("`{sequence}` is not an event of the checkpoint of {} events", checkpoint.size)))?;
        let event = match self.store().read_chain(Some(sequence - 1), 1).await?.into_iter().next() {
            Some(ChainRecord::Event(e)) if e.sequence == sequence => e,
            _ => return Err(Error::Internal(format!("audit event `{sequence}` cannot be read; run `modelops audit verify`"))),
        };
        let hashes = self.tree_read(TreeRead::Inclusion { size: checkpoint.size, index }).await?;
        let entry = event.canonical_bytes().map_err(|e| Error::Internal(format!("audit event `{sequence}` cannot be hashed: {e}")))?;
        let entry = String::from_utf8(entry).map_err(|e| Error::Internal(e.to_string()))?;
        let proof = InclusionProof::new(sequence, checkpoint.size, entry, &hashes);
        let readable = self.unseal(vec![event.clone()]).await?.into_iter().next().unwrap_or_else(|| event.clone());
        let mut event = event;
        event.personal.clear();
        Ok(Inclusion { proof, event, readable, checkpoint })
    }

    /// The consistency proof from the tree of `from` events (any size, so a
    /// checkpoint kept elsewhere — a witness's — can be checked even when
    /// the database lost its own) to the checkpoint of `to` events (the
    /// latest when `None`).
    pub async fn consistency_proof(&self, principal: &Principal, from: u64, to: Option<u64>) -> Result<Consistency> {
        self.authorize(principal, Action::AuditRead, "audit").await?;
        let to = self.stored_checkpoint(to).await?;
        if from == 0 || from > to.size {
            return Err(Error::invalid("from", format!("`{from}` must be between 1 and the checkpoint's size {}", to.size)));
        }
        let hashes = self.tree_read(TreeRead::Consistency { from, to: to.size }).await?;
        let from_checkpoint = self.store().checkpoint(Some(from)).await?;
        Ok(Consistency { proof: ConsistencyProof::new(from, to.size, &hashes), from: from_checkpoint, to })
    }

    /// The hashes of the perfect subtrees of the tree of `size` events,
    /// largest first: where an export starting after event `size` begins.
    pub async fn compact_range(&self, principal: &Principal, size: u64) -> Result<Vec<String>> {
        self.authorize(principal, Action::AuditRead, "audit").await?;
        let head = self.store().head().await?.map_or(0, |h| size_of(h.sequence));
        if size > head {
            return Err(Error::invalid("size", format!("`{size}` is larger than the log ({head} events)")));
        }
        let indexes = modelops_audit::tree::compact_range_indexes(size);
        let hashes = self.store().tree_hashes(&indexes).await?;
        Ok(hashes.iter().map(hex::encode).collect())
    }

    /// Verifies the whole log: the chain, and the root at every stored
    /// checkpoint's size (each checkpoint's signature checked with `key`,
    /// this server's own when `None`). Without a key only the chain is
    /// checked.
    pub async fn verify_log(&self, key: Option<&PublicKey>) -> Result<std::result::Result<LogSummary, Failure>> {
        let key = key.or_else(|| self.audit_public_key());
        verify_log(self.store(), key).await
    }
}

/// [`Registry::verify_log`] over any audit log (also a read-only database
/// an auditor opened).
pub async fn verify_log(
    log: &dyn modelops_core::repo::AuditLog,
    key: Option<&PublicKey>,
) -> Result<std::result::Result<LogSummary, Failure>> {
    let mut checkpoints = Vec::new();
    if let Some(key) = key {
        let mut after = None;
        loop {
            let page = log.checkpoints(after, 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.size);
            for stored in &page {
                match SignedCheckpoint::open(&stored.note, key) {
                    Ok(cp) if to_hex(&cp.root) == stored.root && cp.size == stored.size => checkpoints.push(cp),
                    Ok(_) => {
                        return Ok(Err(Failure::Chain {
                            sequence: i64::try_from(stored.size).unwrap_or(i64::MAX),
                            reason: format!("the stored checkpoint of {} events does not match its signed note", stored.size),
                        }))
                    }
                    Err(e) => {
                        return Ok(Err(Failure::Chain {
                            sequence: i64::try_from(stored.size).unwrap_or(i64::MAX),
                            reason: format!("the stored checkpoint of {} events is not signed by the log's key: {e}", stored.size),
                        }))
                    }
                }
            }
        }
    }
    verify_log_against(log, checkpoints).await
}

/// Verifies the whole log against checkpoints whose signatures were checked
/// (a witness's, or the stored ones): the first one whose root the events no
/// longer reproduce is named.
pub async fn verify_log_against(
    log: &dyn modelops_core::repo::AuditLog,
    checkpoints: Vec<SignedCheckpoint>,
) -> Result<std::result::Result<LogSummary, Failure>> {
    let mut verifier = LogVerifier::new(checkpoints);
    Ok(match modelops_core::repo::stream_chain(log, |record| verifier.push(record)).await? {
        Ok(head) => verifier.finish(head.as_ref()),
        Err(failure) => Err(failure),
    })
}

fn refuse(reason: String) -> Error {
    Error::Conflict(format!("refusing to sign a checkpoint: {reason}; run `modelops audit verify`"))
}

fn tlog_check_tree(hashes: &[Hash], size: u64, root: Hash, previous: &SignedCheckpoint) -> Result<()> {
    let proof = ConsistencyProof::new(previous.size, size, hashes);
    let now = SignedCheckpoint { size, root, ..previous.clone() };
    proof.verify(previous, &now).map_err(|e| refuse(e.to_string()))
}
