// What a store remembers between its own write transactions so that an
// audit append does not read it back: the people's keys it has used and the
// Merkle tree's right edge (its compact range). Each statement inside the
// write lock costs a round trip to the database's thread or socket, and
// these two reads were two of the five an append made.
//
// Why this is safe with other writers (another replica, a second process on
// the same SQLite file, an operator's SQL): every audited write takes the
// audit head's lock and moves the head, so the cache is tagged with the head
// this store last committed, and a transaction that finds any other head
// under the lock drops it and reads from the database as before. An erasure
// deletes a key: the transaction that erases clears the cache when it
// commits, and one erasing elsewhere moved the head. A transaction that
// rolls back leaves the cache as it was, which still matches the head.
//
// Beside it, and kept whatever other writers do: the Merkle leaves of the
// events this store committed, by sequence, so that the checkpoint signer
// need not read those events back and hash them again (it compares the
// stored leaf with the one hashed from the bytes the append wrote).

use modelops_audit::personal::PersonKey;
use modelops_audit::tree::{compact_range_indexes, Hash};
use modelops_core::audit::ChainHead;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The tree's compact range at `size` leaves: the hashes every later root
/// and append need.
#[derive(Clone, Debug)]
pub(crate) struct Frontier {
    pub(crate) size: u64,
    pub(crate) hashes: HashMap<u64, Hash>,
}

impl Frontier {
    /// After leaf `size` was appended and `stored` hashes written from index
    /// `first` on: the compact range one leaf larger.
    pub(crate) fn advance(&mut self, first: u64, stored: &[Hash]) {
        for (k, hash) in stored.iter().enumerate() {
            self.hashes.insert(first + k as u64, *hash);
        }
        self.size += 1;
        let keep = compact_range_indexes(self.size);
        self.hashes.retain(|index, _| keep.contains(index));
    }
}

#[derive(Default)]
struct Cached {
    /// The head this store last committed; `Some(None)` is the empty log.
    valid_at: Option<Option<ChainHead>>,
    keys: Arc<HashMap<String, PersonKey>>,
    frontier: Option<Frontier>,
}

/// How many of its own events' leaves a store remembers: the events of
/// about a minute at a busy registry's rate, a few MiB. Older ones the
/// signer reads back and hashes, as it does another writer's.
const OWN_LEAVES_KEPT: usize = 1 << 16;

/// Shared by a store and its clones.
#[derive(Clone, Default)]
pub(crate) struct AppendCache {
    inner: Arc<Mutex<Cached>>,
    own_leaves: Arc<Mutex<BTreeMap<i64, Hash>>>,
}

impl std::fmt::Debug for AppendCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.write_str("AppendCache")
    }
}

/// What a transaction takes from the cache at its start.
#[derive(Default)]
pub(crate) struct Snapshot {
    pub(crate) keys: Arc<HashMap<String, PersonKey>>,
    pub(crate) frontier: Option<Frontier>,
}

impl AppendCache {
    fn lock(&self) -> MutexGuard<'_, Cached> {
        // The data is a cache: a panic elsewhere while it was held leaves
        // nothing that reading it again from the database would not fix.
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut cached = poisoned.into_inner();
            *cached = Cached::default();
            cached
        })
    }

    /// At a transaction's start, under the write lock: what is still true at
    /// `head`, or nothing.
    pub(crate) fn snapshot(&self, head: &Option<ChainHead>) -> Snapshot {
        let mut cached = self.lock();
        if cached.valid_at.as_ref() != Some(head) {
            *cached = Cached::default();
            return Snapshot::default();
        }
        Snapshot { keys: cached.keys.clone(), frontier: cached.frontier.clone() }
    }

    /// After a transaction committed with the head at `head`: the keys it
    /// read or created join the cache and its tree's right edge replaces it
    /// (all of it dropped if the transaction erased someone), and the leaves
    /// of the events it appended are remembered. The cache still holds what
    /// the transaction's snapshot saw, or nothing: no other transaction of
    /// this store commits while one holds the write lock.
    pub(crate) fn committed(&self, head: &Option<ChainHead>, learned: HashMap<String, PersonKey>, frontier: Option<Frontier>, erased: bool, leaves: Vec<(i64, Hash)>) {
        if !leaves.is_empty() {
            let mut own = self.own_leaves.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            own.extend(leaves);
            while own.len() > OWN_LEAVES_KEPT {
                own.pop_first();
            }
        }
        let mut cached = self.lock();
        if erased {
            *cached = Cached::default();
            return;
        }
        if !learned.is_empty() {
            Arc::make_mut(&mut cached.keys).extend(learned);
        }
        cached.frontier = frontier.filter(|f| head.as_ref().map_or(0, |h| h.sequence) as u64 == f.size);
        cached.valid_at = Some(head.clone());
    }

    /// The leaf of event `sequence` if this store appended it and still
    /// remembers it.
    pub(crate) fn own_leaf(&self, sequence: i64) -> Option<Hash> {
        self.own_leaves.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&sequence).copied()
    }
}
