//! Loaded models, bounded by the memory they hold, least recently used
//! evicted first. Concurrent first calls of one version load it once.

use modelops_core::name::ModelName;
use modelops_core::version::Sha256Hex;
use modelops_core::Result;
use modelops_runtime::LoadedModel;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
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

/// What a caller holding a model needs to keep it recent without the
/// cache's lock: when it was last used, and whether it has been evicted.
#[derive(Default)]
struct Residency {
    last_used: AtomicU64,
    evicted: AtomicBool,
}

/// A model from the cache. [`ModelCache::touch`] marks it used again.
#[derive(Clone)]
pub struct Cached {
    pub model: Arc<dyn LoadedModel>,
    residency: Arc<Residency>,
}

struct Slot {
    cell: Cell,
    /// Zero until loaded.
    bytes: u64,
    residency: Arc<Residency>,
}

#[derive(Default)]
struct State {
    slots: HashMap<CacheKey, Slot>,
    used: u64,
}

pub struct ModelCache {
    capacity: u64,
    state: Mutex<State>,
    /// Orders uses for eviction; outside the lock, as hits do not take it.
    clock: AtomicU64,
}

impl ModelCache {
    pub fn new(capacity: u64) -> Self {
        Self { capacity, state: Mutex::new(State::default()), clock: AtomicU64::new(0) }
    }

    /// Marks a model got from [`ModelCache::get_or_load`] as used now,
    /// without the cache's lock; false when it has been evicted since (the
    /// caller should get it again, so the memory bound holds).
    pub fn touch(&self, cached: &Cached) -> bool {
        if cached.residency.evicted.load(Relaxed) {
            return false;
        }
        cached.residency.last_used.store(self.clock.fetch_add(1, Relaxed) + 1, Relaxed);
        true
    }

    /// The memory the loaded models hold, and how many there are.
    pub fn usage(&self) -> (u64, usize) {
        self.state.lock().map(|s| (s.used, s.slots.len())).unwrap_or_default()
    }

    /// The model under `key`, loading it with `load` when absent. A failed
    /// load leaves nothing behind, so the next call tries again. A model
    /// larger than the whole capacity is served and then evicted first.
    pub async fn get_or_load<F, Fut>(&self, key: CacheKey, load: F) -> Result<Cached>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Arc<dyn LoadedModel>>>,
    {
        let (cell, residency) = {
            let mut state = self.lock();
            let slot = state.slots.entry(key.clone()).or_insert_with(|| Slot { cell: Cell::default(), bytes: 0, residency: Arc::default() });
            let (cell, residency) = (slot.cell.clone(), slot.residency.clone());
            drop(state);
            let cached = cell.get().map(|model| Cached { model: model.clone(), residency: residency.clone() });
            if let Some(cached) = cached {
                self.touch(&cached);
                return Ok(cached);
            }
            (cell, residency)
        };
        match cell.get_or_try_init(load).await {
            Ok(model) => {
                let cached = Cached { model: model.clone(), residency };
                self.touch(&cached);
                self.account(&key, &cell, model.memory_bytes() as u64);
                Ok(cached)
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
                .min_by_key(|(_, s)| s.residency.last_used.load(Relaxed))
                .map(|(k, _)| k.clone());
            let Some(victim) = victim else { break };
            if let Some(slot) = state.slots.remove(&victim) {
                slot.residency.evicted.store(true, Relaxed);
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

    async fn get(cache: &ModelCache, version: u32, bytes: usize, loads: &AtomicUsize) -> Cached {
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
    async fn a_touch_keeps_a_model_recent_and_tells_when_it_was_evicted() {
        let cache = ModelCache::new(200);
        let loads = AtomicUsize::new(0);
        let one = get(&cache, 1, 100, &loads).await;
        let two = get(&cache, 2, 100, &loads).await;
        // Used through its handle only (as the serving hot path does): 2 is now the oldest.
        assert!(cache.touch(&one));
        get(&cache, 3, 100, &loads).await;
        assert!(cache.touch(&one), "1 stayed");
        assert!(!cache.touch(&two), "2 was evicted, and its holder is told");
        assert_eq!(cache.usage(), (200, 2));
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
