//! The Merkle tree over the audit events.
//!
//! Event sequence `s` is leaf `s - 1`; the tree of size `n` holds events
//! `1..=n`. Hashes are stored by `tlog_tiles`' stored-hash index (Go's
//! `sumdb/tlog` layout): appending leaf `n` stores its leaf hash and the
//! hash of every subtree it completes, at indexes
//! `stored_hash_index(0, n)..`, so every perfect subtree is stored once and
//! never changes.
//!
//! The tlog algorithms read stored hashes through a synchronous
//! [`tlog_tiles::HashReader`]; the stores are asynchronous. So every read of
//! the tree is a [`TreeRead`] run twice: [`TreeRead::needs`] answers with
//! zeros and records the indexes asked for, the caller fetches exactly those
//! (one query), and [`TreeRead::run`] computes the answer from them. The
//! algorithms ask for the same indexes whatever the hashes are, so the two
//! runs agree.

use crate::{AuditError, Result};
use modelops_core::audit::AuditEvent;
use std::cell::RefCell;
use std::collections::HashMap;
use tlog_tiles::HashReader;

pub use tlog_tiles::{Hash, EMPTY_HASH};

/// The leaf hash of an event: SHA-256(0x00 ‖ its canonical bytes), the bytes
/// its chain hash covers after the previous hash.
pub fn leaf_hash(event: &AuditEvent) -> Result<Hash> {
    let bytes = event.canonical_bytes().map_err(|e| AuditError::malformed(format!("event {}", event.sequence), e))?;
    Ok(tlog_tiles::record_hash(&bytes))
}

/// The leaf hash of an entry's bytes: SHA-256(0x00 ‖ bytes).
pub fn entry_hash(bytes: &[u8]) -> Hash {
    tlog_tiles::record_hash(bytes)
}

/// The leaf index of event `sequence` (1-based), `None` below 1.
pub fn leaf_index(sequence: i64) -> Option<u64> {
    u64::try_from(sequence).ok()?.checked_sub(1)
}

/// The stored-hash index of the first hash written with leaf `n`.
pub fn first_stored_index(n: u64) -> u64 {
    tlog_tiles::stored_hash_index(0, n)
}

/// How many hashes a tree of `size` leaves has stored.
pub fn stored_count(size: u64) -> u64 {
    tlog_tiles::stored_hash_count(size)
}

/// Hex text of a hash, as the API and the bundle write it.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash.0)
}

/// A hash from its hex text; `what` names it in the error.
pub fn from_hex(what: &str, text: &str) -> Result<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|e| AuditError::malformed(what, format!("`{}` is not 64 hexadecimal digits: {e}", bounded(text))))?;
    Ok(Hash(out))
}

fn bounded(text: &str) -> String {
    text.chars().take(80).collect()
}

/// One read of the stored tree.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TreeRead {
    /// The hashes to store when appending leaf `n` with hash `leaf`: the leaf
    /// itself, then each subtree it completes.
    Append { n: u64, leaf: Hash },
    /// The root of the tree of `size` leaves (one hash).
    Root { size: u64 },
    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    Inclusion { size: u64, index: u64 },
    /// The consistency proof from the tree of `from` leaves to that of `to`.
    Consistency { from: u64, to: u64 },
}

impl TreeRead {
    /// Refuses reads the tree cannot answer, before the algorithms (which
    /// assert on them) see them.
    pub fn check(&self) -> Result<()> {
        let bad = |reason: String| Err(AuditError::malformed("tree read", reason));
        match *self {
            TreeRead::Append { .. } | TreeRead::Root { .. } => Ok(()),
            TreeRead::Inclusion { size, index } if index >= size => {
                bad(format!("leaf {index} is not in a tree of {size} leaves"))
            }
            TreeRead::Consistency { from, to } if from == 0 || from > to => {
                bad(format!("no consistency proof from size {from} to size {to}: it needs 1 <= from <= to"))
            }
            _ => Ok(()),
        }
    }

    /// The stored-hash indexes this read needs, in the order asked.
    pub fn needs(&self) -> Result<Vec<u64>> {
        self.check()?;
        let recorder = Recorder::default();
        self.with(&recorder)?;
        Ok(recorder.asked.into_inner())
    }

    /// The answer, from the hashes at the indexes [`TreeRead::needs`] gave.
    pub fn run(&self, hashes: &HashMap<u64, Hash>) -> Result<Vec<Hash>> {
        self.check()?;
        self.with(&Known(hashes))
    }

    /// [`TreeRead::needs`] then [`TreeRead::run`] over a synchronous source.
    pub fn run_with(&self, fetch: impl FnOnce(&[u64]) -> Result<Vec<Hash>>) -> Result<Vec<Hash>> {
        let needs = self.needs()?;
        let hashes = fetch(&needs)?;
        if hashes.len() != needs.len() {
            return Err(AuditError::Mismatch(format!("{} stored hashes read for {} asked", hashes.len(), needs.len())));
        }
        self.run(&needs.into_iter().zip(hashes).collect())
    }

    fn with<R: HashReader>(&self, reader: &R) -> Result<Vec<Hash>> {
        let tlog = |e: tlog_tiles::Error| AuditError::Mismatch(format!("the stored tree cannot answer: {e}"));
        match *self {
            TreeRead::Append { n, leaf } => tlog_tiles::stored_hashes_for_record_hash(n, leaf, reader).map_err(tlog),
            TreeRead::Root { size } => Ok(vec![tlog_tiles::tree_hash(size, reader).map_err(tlog)?]),
            TreeRead::Inclusion { size, index } => tlog_tiles::prove_record(size, index, reader).map_err(tlog),
            TreeRead::Consistency { from, to } => tlog_tiles::prove_tree(to, from, reader).map_err(tlog),
        }
    }
}

/// Answers zeros and remembers what was asked.
#[derive(Default)]
struct Recorder {
    asked: RefCell<Vec<u64>>,
}

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        self.asked.borrow_mut().extend_from_slice(indexes);
        Ok(vec![Hash([0; 32]); indexes.len()])
    }
}

/// Answers from hashes fetched beforehand.
struct Known<'a>(&'a HashMap<u64, Hash>);

impl HashReader for Known<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes.iter().map(|i| self.0.get(i).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

/// The right edge of a tree grown leaf by leaf in memory: the roots of its
/// perfect subtrees, largest first (at most 64). What offline verification
/// keeps to compute the root at every size without storing the tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frontier {
    size: u64,
    /// (leaves in the subtree, its hash), sizes strictly decreasing powers of two.
    subtrees: Vec<(u64, Hash)>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The frontier of a tree of `size` leaves from the hashes of its perfect
    /// subtrees, largest first: what [`compact_range_indexes`] names and an
    /// export bundle carries to start from the middle of the log. A wrong
    /// hash here is caught when a later root is compared with a checkpoint.
    pub fn from_range(size: u64, hashes: &[Hash]) -> Result<Self> {
        let sizes: Vec<u64> = (0..64).rev().map(|bit| 1u64 << bit).filter(|b| size & b != 0).collect();
        if sizes.len() != hashes.len() {
            return Err(AuditError::malformed(
                "compact range",
                format!("a tree of {size} leaves has {} perfect subtrees, {} hashes were given", sizes.len(), hashes.len()),
            ));
        }
        Ok(Self { size, subtrees: sizes.into_iter().zip(hashes.iter().copied()).collect() })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = (1u64, leaf);
        while let Some(&(size, left)) = self.subtrees.last() {
            if size != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (size * 2, tlog_tiles::node_hash(left, node.1));
        }
        self.subtrees.push(node);
        self.size += 1;
    }

    /// RFC 9162's MTH of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.subtrees.iter().rev();
        let Some(&(_, mut hash)) = iter.next() else {
            return EMPTY_HASH;
        };
        for &(_, left) in iter {
            hash = tlog_tiles::node_hash(left, hash);
        }
        hash
    }

    /// The perfect subtrees' hashes, largest first.
    pub fn hashes(&self) -> Vec<Hash> {
        self.subtrees.iter().map(|(_, h)| *h).collect()
    }
}

/// The stored-hash indexes of the perfect subtrees of a tree of `size`
/// leaves, largest first: its compact range, from which its root and every
/// later root follow.
pub fn compact_range_indexes(size: u64) -> Vec<u64> {
    tlog_tiles::sub_tree_index(0, size, vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u64) -> Hash {
        tlog_tiles::record_hash(format!("leaf {i}").as_bytes())
    }

    /// A store in memory: what the SQL stores do, without SQL.
    fn grow(n: u64) -> HashMap<u64, Hash> {
        let mut stored = HashMap::new();
        for i in 0..n {
            let read = TreeRead::Append { n: i, leaf: leaf(i) };
            let hashes = read.run_with(|idx| Ok(idx.iter().map(|i| stored[i]).collect())).unwrap();
            for (k, h) in hashes.into_iter().enumerate() {
                stored.insert(first_stored_index(i) + k as u64, h);
            }
        }
        assert_eq!(stored.len() as u64, stored_count(n));
        stored
    }

    #[test]
    fn stored_roots_equal_the_frontier_and_proofs_check() {
        let stored = grow(37);
        let mut frontier = Frontier::new();
        for size in 1..=37u64 {
            frontier.push(leaf(size - 1));
            let root = TreeRead::Root { size }.run_with(|idx| Ok(idx.iter().map(|i| stored[i]).collect())).unwrap()[0];
            assert_eq!(root, frontier.root(), "size {size}");
            let range: Vec<Hash> = compact_range_indexes(size).iter().map(|i| stored[i]).collect();
            assert_eq!(Frontier::from_range(size, &range).unwrap(), frontier);
            for index in [0, size / 2, size - 1] {
                let proof = TreeRead::Inclusion { size, index }.run_with(|idx| Ok(idx.iter().map(|i| stored[i]).collect())).unwrap();
                tlog_tiles::check_record(&proof, size, root, index, leaf(index)).unwrap();
                assert!(tlog_tiles::check_record(&proof, size, root, index, leaf(index + 1)).is_err());
            }
        }
        let root_of = |size: u64| TreeRead::Root { size }.run_with(|idx| Ok(idx.iter().map(|i| stored[i]).collect())).unwrap()[0];
        for (from, to) in [(1, 37), (16, 37), (20, 21), (37, 37)] {
            let proof = TreeRead::Consistency { from, to }.run_with(|idx| Ok(idx.iter().map(|i| stored[i]).collect())).unwrap();
            tlog_tiles::check_tree(&proof, to, root_of(to), from, root_of(from)).unwrap();
        }
    }

    #[test]
    fn reads_the_tree_cannot_answer_are_refused_not_panicked() {
        assert!(TreeRead::Inclusion { size: 3, index: 3 }.needs().is_err());
        assert!(TreeRead::Consistency { from: 0, to: 3 }.needs().is_err());
        assert!(TreeRead::Consistency { from: 4, to: 3 }.needs().is_err());
        assert!(Frontier::from_range(5, &[leaf(0)]).is_err());
        assert_eq!(Frontier::new().root(), EMPTY_HASH);
    }
}
