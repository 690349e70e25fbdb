//! Streaming verification of a log against signed checkpoints: the hash
//! chain (core's [`ChainVerifier`]), the Merkle root at every size a
//! checkpoint signs, and that no signed event is missing. Constant memory
//! (the chain's head and the tree's frontier), so a database, an export
//! bundle or a rewritten copy streams through at the speed of hashing.
//!
//! The attack the chain alone misses — every row and the head rewritten
//! with recomputed hashes — changes the root at the size of every checkpoint
//! signed before the rewrite; the first such checkpoint is named.

use crate::checkpoint::SignedCheckpoint;
use crate::tree::{Frontier, Hash};
use chrono::SecondsFormat;
use modelops_core::audit::{ChainBreak, ChainHead, ChainRecord, ChainVerifier, EventLink};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a log does not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// The hash chain breaks at an event.
    Chain { sequence: i64, reason: String },
    /// The log's root at a checkpoint's size is not the signed root: the
    /// history up to it was rewritten.
    Diverged { checkpoint_size: u64, signed_at: String, signed_root: String, log_root: String },
    /// A checkpoint signs more events than the log holds.
    Truncated { checkpoint_size: u64, signed_at: String, log_size: u64 },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Chain { sequence, reason } => write!(f, "audit chain broken at event {sequence}: {reason}"),
            Failure::Diverged { checkpoint_size, signed_at, signed_root, log_root } => write!(
                f,
                "the log diverges from the checkpoint of {checkpoint_size} events signed at {signed_at}: its root there is {log_root}, the signed root {signed_root} (history up to event {checkpoint_size} was rewritten)"
            ),
            Failure::Truncated { checkpoint_size, signed_at, log_size } => write!(
                f,
                "the checkpoint signed at {signed_at} covers {checkpoint_size} events, the log holds only {log_size}: events were removed"
            ),
        }
    }
}

impl From<ChainBreak> for Failure {
    fn from(b: ChainBreak) -> Self {
        Failure::Chain { sequence: b.sequence, reason: b.reason }
    }
}

/// What a verified log showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogSummary {
    /// Events verified.
    pub events: u64,
    pub head: Option<ChainHead>,
    /// The tree's size and root after the last event.
    pub tree_size: u64,
    pub root: String,
    /// Checkpoints whose root was recomputed and matched, by size.
    pub checkpoints_matched: Vec<u64>,
}

/// A row reduced to what verifying it in order needs: the event's link and
/// Merkle leaf, its content already checked ([`Prepared::of`] — the costly
/// part, which needs no other event, so callers run it in parallel and drop
/// the event where it was parsed).
#[derive(Debug, Clone)]
pub enum Prepared {
    Event { link: EventLink, leaf: Option<Hash> },
    Unreadable(ChainRecord),
}

impl Prepared {
    pub fn of(record: ChainRecord) -> Prepared {
        match record {
            ChainRecord::Event(event) => {
                let (link, canonical) = EventLink::of(event);
                Prepared::Event { link, leaf: canonical.map(|c| tlog_tiles::record_hash(&c)) }
            }
            unreadable @ ChainRecord::Unreadable { .. } => Prepared::Unreadable(unreadable),
        }
    }
}

/// Verifies events pushed in sequence order against checkpoints whose
/// signatures the caller checked.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    chain: ChainVerifier,
    tree: Frontier,
    /// Checkpoints not reached yet, by size.
    pending: BTreeMap<u64, SignedCheckpoint>,
    matched: Vec<u64>,
}

impl LogVerifier {
    /// From the first event.
    pub fn new(checkpoints: impl IntoIterator<Item = SignedCheckpoint>) -> Self {
        Self::with(ChainVerifier::new(), Frontier::new(), checkpoints)
    }

    /// From the event after `head`, whose tree is `frontier` (an export
    /// bundle starting in the middle). Checkpoints below the frontier's size
    /// cannot be recomputed here and are ignored.
    pub fn starting_after(head: ChainHead, frontier: Frontier, checkpoints: impl IntoIterator<Item = SignedCheckpoint>) -> Self {
        Self::with(ChainVerifier::starting_after(head), frontier, checkpoints)
    }

    fn with(chain: ChainVerifier, tree: Frontier, checkpoints: impl IntoIterator<Item = SignedCheckpoint>) -> Self {
        let start = tree.size();
        let pending = checkpoints.into_iter().filter(|c| c.size > start || (c.size == start && start > 0)).map(|c| (c.size, c)).collect();
        let mut verifier = Self { chain, tree, pending, matched: Vec::new() };
        // A checkpoint at the starting size is judged by the starting frontier.
        if let Some(cp) = verifier.pending.remove(&start) {
            if cp.root != verifier.tree.root() {
                verifier.pending.insert(start, cp);
            } else {
                verifier.matched.push(start);
            }
        }
        verifier
    }

    /// Checks the next stored row.
    pub fn push(&mut self, record: &ChainRecord) -> Result<(), Failure> {
        let canonical = self.chain.push_record_bytes(record)?;
        self.push_leaf(tlog_tiles::record_hash(&canonical))
    }

    /// [`LogVerifier::push`] of a row [`Prepared::of`] made.
    pub fn push_prepared(&mut self, prepared: Prepared) -> Result<(), Failure> {
        match prepared {
            Prepared::Event { link, leaf } => {
                self.chain.push_link(link)?;
                // A link whose content did not check broke the chain above.
                self.push_leaf(leaf.unwrap_or_else(|| tlog_tiles::record_hash(&[])))
            }
            Prepared::Unreadable(record) => self.push(&record),
        }
    }

    /// Checks the next leaf (its event already checked by the caller).
    pub fn push_leaf(&mut self, leaf: Hash) -> Result<(), Failure> {
        if let Some(first) = self.pending.keys().next().copied() {
            if first <= self.tree.size() {
                // Only a starting checkpoint that did not match stays below.
                return Err(self.diverged(first));
            }
        }
        self.tree.push(leaf);
        let size = self.tree.size();
        if self.pending.get(&size).is_some_and(|cp| cp.root == self.tree.root()) {
            self.pending.remove(&size);
            self.matched.push(size);
        } else if self.pending.contains_key(&size) {
            return Err(self.diverged(size));
        }
        Ok(())
    }

    fn diverged(&self, size: u64) -> Failure {
        let cp = &self.pending[&size];
        Failure::Diverged {
            checkpoint_size: size,
            signed_at: cp.time.to_rfc3339_opts(SecondsFormat::Secs, true),
            signed_root: crate::tree::to_hex(&cp.root),
            log_root: crate::tree::to_hex(&self.tree.root()),
        }
    }

    /// Ends where the events end: an export bundle has no head recorded
    /// apart; its last event is checked by the last checkpoint instead.
    pub fn finish_here(self) -> Result<LogSummary, Failure> {
        let head = self.chain.last().cloned();
        self.finish(head.as_ref())
    }

    /// Ends against the head recorded beside the events.
    pub fn finish(self, recorded_head: Option<&ChainHead>) -> Result<LogSummary, Failure> {
        if let Some((&size, cp)) = self.pending.iter().next() {
            return Err(if size <= self.tree.size() {
                self.diverged(size)
            } else {
                Failure::Truncated {
                    checkpoint_size: size,
                    signed_at: cp.time.to_rfc3339_opts(SecondsFormat::Secs, true),
                    log_size: self.tree.size(),
                }
            });
        }
        let tree_size = self.tree.size();
        let root = crate::tree::to_hex(&self.tree.root());
        let summary = self.chain.finish(recorded_head)?;
        Ok(LogSummary { events: summary.events, head: summary.head, tree_size, root, checkpoints_matched: self.matched })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::LogSigner;
    use chrono::{TimeZone, Utc};
    use modelops_core::audit::{AuditEvent, PendingEvent};

    fn chain(n: usize, actor: &str) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 0..n {
            let pending = PendingEvent {
                actor: actor.into(),
                action: "model.create".into(),
                subject: format!("model/m{i}"),
                before: None,
                after: Some(serde_json::json!({"i": i})),
            };
            let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(i as i64);
            out.push(pending.seal(out.last().map(AuditEvent::head).as_ref(), t).unwrap());
        }
        out
    }

    fn checkpoint_at(signer: &LogSigner, events: &[AuditEvent], size: usize) -> SignedCheckpoint {
        let mut f = Frontier::new();
        for e in &events[..size] {
            f.push(crate::tree::leaf_hash(e).unwrap());
        }
        SignedCheckpoint::sign(signer, size as u64, f.root(), Utc::now()).unwrap()
    }

    fn run(events: &[AuditEvent], checkpoints: Vec<SignedCheckpoint>) -> Result<LogSummary, Failure> {
        let mut v = LogVerifier::new(checkpoints);
        for e in events {
            v.push(&ChainRecord::Event(e.clone()))?;
        }
        v.finish(events.last().map(AuditEvent::head).as_ref())
    }

    #[test]
    fn a_rewritten_history_is_caught_at_the_first_checkpoint_it_changes() {
        let (signer, _) = LogSigner::generate("test/log").unwrap();
        let honest = chain(20, "ana");
        let cps = vec![checkpoint_at(&signer, &honest, 5), checkpoint_at(&signer, &honest, 12)];
        let ok = run(&honest, cps.clone()).unwrap();
        assert_eq!(ok.checkpoints_matched, vec![5, 12]);
        assert_eq!(ok.events, 20);

        // Same length, every hash recomputed, event 8 changed: the chain
        // verifies on its own, the checkpoint of 12 does not.
        let mut rewritten = honest[..7].to_vec();
        for (i, e) in chain(20, "mallory").into_iter().enumerate().skip(7) {
            let mut e = e;
            e.prev_hash = rewritten.last().map_or(String::new(), |p: &AuditEvent| p.hash.clone());
            e.sequence = i as i64 + 1;
            e.hash = e.compute_hash().unwrap();
            rewritten.push(e);
        }
        assert!(run(&rewritten, vec![]).is_ok(), "the chain alone cannot tell");
        let err = run(&rewritten, cps.clone()).unwrap_err();
        assert!(matches!(err, Failure::Diverged { checkpoint_size: 12, .. }), "{err}");

        // The newest events removed, head moved back.
        let err = run(&honest[..10], cps).unwrap_err();
        assert!(matches!(err, Failure::Truncated { checkpoint_size: 12, log_size: 10, .. }), "{err}");
    }

    #[test]
    fn verification_can_start_in_the_middle_from_a_frontier() {
        let (signer, _) = LogSigner::generate("test/log").unwrap();
        let events = chain(30, "ana");
        let mut f = Frontier::new();
        for e in &events[..10] {
            f.push(crate::tree::leaf_hash(e).unwrap());
        }
        let cps = vec![checkpoint_at(&signer, &events, 10), checkpoint_at(&signer, &events, 30)];
        let mut v = LogVerifier::starting_after(events[9].head(), f.clone(), cps.clone());
        for e in &events[10..] {
            v.push(&ChainRecord::Event(e.clone())).unwrap();
        }
        assert_eq!(v.finish_here().unwrap().checkpoints_matched, vec![10, 30]);

        // A forged frontier cannot reach the signed root.
        let mut forged = Frontier::new();
        for e in &chain(10, "eve") {
            forged.push(crate::tree::leaf_hash(e).unwrap());
        }
        let mut v = LogVerifier::starting_after(events[9].head(), forged, cps);
        let mut failed = None;
        for e in &events[10..] {
            if let Err(f) = v.push(&ChainRecord::Event(e.clone())) {
                failed = Some(f);
                break;
            }
        }
        assert!(matches!(failed, Some(Failure::Diverged { checkpoint_size: 10, .. })), "{failed:?}");
    }
}
