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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use modelops_core::version::Signature;
    use modelops_runtime::{PredictRequest, Prediction, RuntimeError};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Sized(usize, Signature);

    #[async_trait::async_trait]
    impl LoadedModel for Sized {
        fn signature(&self) -> &Signature {
            &self.1
        }
        fn platform(&self) -> &'static str {
            "test"
        }
        fn memory_bytes(&self) -> usize {
            self.0
        }
        async fn predict(&self, _: PredictRequest) -> Result<Prediction, RuntimeError> {
            Ok(Prediction::default())
        }
    }

    fn key(version: u32) -> CacheKey {
        CacheKey {
            model: ModelName::parse("m").unwrap(),
            version,
            sha256: Sha256Hex::from_digest(&[u8::try_from(version).unwrap(); 32]),
        }
    }

    async fn get(cache: &ModelCache, version: u32, bytes: usize, loads: &AtomicUsize) -> Arc<dyn LoadedModel> {
        cache
            .get_or_load(key(version), || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(Arc::new(Sized(bytes, Signature::default())) as Arc<dyn LoadedModel>)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_least_recently_used_go_first_when_memory_runs_out() {
        let cache = ModelCache::new(300);
        let loads = AtomicUsize::new(0);
        get(&cache, 1, 100, &loads).await;
        get(&cache, 2, 100, &loads).await;
        get(&cache, 3, 100, &loads).await;
        assert_eq!(cache.usage(), (300, 3));
        get(&cache, 1, 100, &loads).await; // 1 is now the most recent: 2 is the oldest
        assert_eq!(loads.load(Ordering::SeqCst), 3, "a cached model is not loaded again");
        get(&cache, 4, 100, &loads).await;
        assert_eq!(cache.usage(), (300, 3));
        get(&cache, 1, 100, &loads).await;
        get(&cache, 3, 100, &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 4, "1 and 3 stayed");
        get(&cache, 2, 100, &loads).await;
        assert_eq!(loads.load(Ordering::SeqCst), 5, "2 was evicted and loads again");
        // A model bigger than the whole cache is served, and evicts the rest.
        get(&cache, 5, 1000, &loads).await;
        assert_eq!(cache.usage(), (1000, 1));
    }

    #[tokio::test]
    async fn concurrent_first_calls_load_once_and_a_failed_load_leaves_nothing() {
        let cache = Arc::new(ModelCache::new(1 << 20));
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, loads) = (cache.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load(key(1), || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok(Arc::new(Sized(10, Signature::default())) as Arc<dyn LoadedModel>)
                    })
                    .await
                    .map(|_| ())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let failed = cache.get_or_load(key(2), || async { Err(modelops_core::Error::Conflict("bad artifact".into())) }).await;
        assert!(failed.is_err());
        assert_eq!(cache.usage(), (10, 1), "the failed load left no entry");
    }
}
