//! Loaded models, bounded by the memory they hold, least recently used
//! evicted first. Concurrent first calls of one version load it once.

use modelops_core::name::ModelName;
use modelops_core::version::Sha256Hex;
use modelops_core::Result;
use modelops_runtime::LoadedModel;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// A version's artifact: the digest keeps a reused number (never happens;
/// versions are immutable) from ever serving other bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub model: ModelName,
    pub version: u32,
    pub sha256: Sha256Hex,
}

type Cell = Arc<OnceCell<Arc<dyn LoadedModel>>>;

struct Slot {
    cell: Cell,
    /// Zero until loaded.
    bytes: u64,
    last_used: u64,
}

#[derive(Default)]
struct State {
    slots: HashMap<CacheKey, Slot>,
    used: u64,
    clock: u64,
}

pub struct ModelCache {
    capacity: u64,
    state: Mutex<State>,
}

impl ModelCache {
    pub fn new(capacity: u64) -> Self {
        Self { capacity, state: Mutex::new(State::default()) }
    }

    /// The memory the loaded models hold, and how many there are.
    pub fn usage(&self) -> (u64, usize) {
        self.state.lock().map(|s| (s.used, s.slots.len())).unwrap_or_default()
    }

    /// The model under `key`, loading it with `load` when absent. A failed
    /// load leaves nothing behind, so the next call tries again. A model
    /// larger than the whole capacity is served and then evicted first.
    pub async fn get_or_load<F, Fut>(&self, key: CacheKey, load: F) -> Result<Arc<dyn LoadedModel>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<dyn LoadedModel>>>,
    {
        let cell = {
            let mut state = self.lock();
            state.clock += 1;
            let now = state.clock;
            let slot = state.slots.entry(key.clone()).or_insert_with(|| Slot { cell: Cell::default(), bytes: 0, last_used: now });
            slot.last_used = now;
            if let Some(model) = slot.cell.get() {
                return Ok(model.clone());
            }
            slot.cell.clone()
        };
        match cell.get_or_try_init(load).await {
            Ok(model) => {
                let model = model.clone();
                self.account(&key, &cell, model.memory_bytes() as u64);
                Ok(model)
            }
            Err(e) => {
                let mut state = self.lock();
                if state.slots.get(&key).is_some_and(|s| Arc::ptr_eq(&s.cell, &cell) && s.cell.get().is_none()) {
                    state.slots.remove(&key);
                }
                Err(e)
            }
        }
    }

    /// Records a loaded model's size (once) and evicts the least recently
    /// used others until the cache fits.
    fn account(&self, key: &CacheKey, cell: &Cell, bytes: u64) {
        let mut state = self.lock();
        let bytes = bytes.max(1);
        match state.slots.get_mut(key) {
            Some(slot) if Arc::ptr_eq(&slot.cell, cell) && slot.bytes == 0 => slot.bytes = bytes,
            _ => return,
        }
        state.used += bytes;
        while state.used > self.capacity {
            let victim = state
                .slots
                .iter()
                .filter(|(k, s)| *k != key && s.bytes > 0)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(slot) = state.slots.remove(&victim) {
                state.used -= slot.bytes;
                tracing::info!(model = %victim.model, version = victim.version, bytes = slot.bytes, "evicted a loaded model");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent counters (every
        // update is one statement), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
