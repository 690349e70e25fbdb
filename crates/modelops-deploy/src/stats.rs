//! Live statistics of one route: one version within one canary step. The
//! rollback condition ([`crate::condition`]) reads their [`StatsSnapshot`].
//!
//! [`RouteStats::record`] runs on every request, from many threads at once,
//! so it takes no lock for counts and latencies: counters and a fixed
//! log-bucketed histogram of atomics. Only the predictions take a mutex,
//! once per call and only when the call gave predictions, because the
//! reservoir sample and the exact running mean must move together. A fresh
//! `RouteStats` per step keeps a step's verdict about that step's traffic.
//!
//! A snapshot reads the atomics one by one, not as a transaction: taken
//! while calls are being recorded, its counts may disagree by the calls in
//! flight (the quantiles are consistent with the histogram they were read
//! from). Once recording stops, every number is exact.
//!
//! The reservoir's random numbers come from a PRNG seeded per route
//! (splitmix64), never from a global RNG, so one sequence of calls on one
//! thread always keeps the same sample and tests reproduce.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The most predictions the reservoir keeps for the two-sample test. 2,000
/// per side resolve a Kolmogorov–Smirnov D of ~0.06 at p < 0.001 and keep
/// the exact test cheap (a few milliseconds per evaluation).
pub const SAMPLE_SIZE: usize = 2_000;

/// Sub-buckets per power of two: 2^5 = 32, so a bucket is at most 1/32 of
/// its lower bound wide and its midpoint is within 1/64 (~1.6 %) of any
/// latency it holds.
const SUB_BITS: u32 = 5;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Latencies are histogrammed in nanoseconds below 2^40 ns (~1,100 s);
/// longer ones count as the last bucket (a call that long has timed out
/// long before).
const MAX_BITS: u32 = 40;
const MAX_NANOS: u64 = (1 << MAX_BITS) - 1;
/// Values below [`SUB_BUCKETS`] ns have a bucket each; every power of two
/// from 2^SUB_BITS up to 2^MAX_BITS has [`SUB_BUCKETS`].
const BUCKETS: usize = SUB_BUCKETS * (MAX_BITS - SUB_BITS + 1) as usize;

/// The default seed of the reservoir's PRNG.
const DEFAULT_SEED: u64 = 0x6d6f_6465_6c6f_7073;

/// Live statistics of one route. `Send + Sync`; share it behind an `Arc`.
pub struct RouteStats {
    requests: AtomicU64,
    errors: AtomicU64,
    latency_nanos: AtomicU64,
    tokens: AtomicU64,
    /// The bits of an `f64`, added to with compare-and-swap.
    cost_bits: AtomicU64,
    latency: Box<[AtomicU64]>,
    predictions: Mutex<Predictions>,
}

impl Default for RouteStats {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RouteStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteStats")
            .field("requests", &self.requests.load(Ordering::Relaxed))
            .field("errors", &self.errors.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RouteStats {
    pub fn new() -> Self {
        Self::with_seed(DEFAULT_SEED)
    }

    /// Like [`new`](Self::new), with the reservoir's PRNG seeded by `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self {
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency_nanos: AtomicU64::new(0),
            tokens: AtomicU64::new(0),
            cost_bits: AtomicU64::new(0f64.to_bits()),
            latency: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            predictions: Mutex::new(Predictions::new(seed)),
        }
    }

    /// One call: its latency, whether it failed, the per-row scalar
    /// predictions it gave (empty on error), LLM tokens and cost (0
    /// otherwise). Predictions and costs that are NaN or infinite are
    /// ignored: one would poison the mean and the test for good.
    pub fn record(&self, latency: Duration, error: bool, predictions: &[f64], tokens: u64, cost: f64) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.requests.fetch_add(1, Ordering::Relaxed);
        if error {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.latency[bucket(nanos)].fetch_add(1, Ordering::Relaxed);
        if tokens > 0 {
            self.tokens.fetch_add(tokens, Ordering::Relaxed);
        }
        if cost != 0.0 && cost.is_finite() {
            // The closure always returns `Some`, so this never fails.
            let _ = self.cost_bits.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + cost).to_bits()));
        }
        if predictions.iter().any(|p| p.is_finite()) {
            // A panic cannot happen while the lock is held, and the state
            // stays consistent between two values anyway.
            self.predictions.lock().unwrap_or_else(PoisonError::into_inner).add(predictions);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        self.tally().snapshot()
    }

    /// The counts as they add up across replicas (see [`Tally`]).
    pub fn tally(&self) -> Tally {
        let latency = self
            .latency
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c.load(Ordering::Relaxed) {
                0 => None,
                n => Some((i as u32, n)),
            })
            .collect();
        let (predictions, prediction_sum, prediction_sample) = {
            let p = self.predictions.lock().unwrap_or_else(PoisonError::into_inner);
            (p.count, p.sum + p.compensation, p.sample.clone())
        };
        Tally {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_nanos: self.latency_nanos.load(Ordering::Relaxed),
            tokens: self.tokens.load(Ordering::Relaxed),
            cost: f64::from_bits(self.cost_bits.load(Ordering::Relaxed)),
            latency,
            predictions,
            prediction_sum,
            prediction_sample,
        }
    }
}

/// A route's statistics as counts that add up: what one replica publishes
/// for the others (the canary's judge on the replica leading the background
/// work adds every replica's, so a step's hold counts all its calls).
/// Everything but the prediction sample adds exactly; the samples are
/// drawn from in proportion to the predictions each part saw, which keeps
/// the merged sample uniform over all of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Tally {
    pub requests: u64,
    pub errors: u64,
    pub latency_nanos: u64,
    pub tokens: u64,
    pub cost: f64,
    /// The latency histogram's non-empty buckets: (index, count).
    pub latency: Vec<(u32, u64)>,
    pub predictions: u64,
    /// The predictions' (compensated) sum.
    pub prediction_sum: f64,
    /// A uniform sample of at most [`SAMPLE_SIZE`] predictions.
    pub prediction_sample: Vec<f64>,
}

impl Tally {
    /// The sum of `parts`.
    pub fn merge(parts: &[Tally]) -> Tally {
        let mut histogram = vec![0u64; BUCKETS];
        let mut total = Tally::default();
        for part in parts {
            total.requests += part.requests;
            total.errors += part.errors;
            total.latency_nanos = total.latency_nanos.saturating_add(part.latency_nanos);
            total.tokens += part.tokens;
            total.cost += part.cost;
            total.predictions += part.predictions;
            total.prediction_sum += part.prediction_sum;
            for &(index, count) in &part.latency {
                if let Some(slot) = histogram.get_mut(index as usize) {
                    *slot += count;
                }
            }
        }
        total.latency = histogram.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| (i as u32, *c)).collect();
        total.prediction_sample = merge_samples(parts, total.predictions);
        total
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut counts = vec![0u64; BUCKETS];
        for &(index, count) in &self.latency {
            if let Some(slot) = counts.get_mut(index as usize) {
                *slot += count;
            }
        }
        let ratio = |n: f64, d: u64| if d == 0 { 0.0 } else { n / d as f64 };
        StatsSnapshot {
            requests: self.requests,
            errors: self.errors,
            error_rate: ratio(self.errors as f64, self.requests),
            p50_ms: quantile(&counts, 0.5) / 1e6,
            p99_ms: quantile(&counts, 0.99) / 1e6,
            mean_latency_ms: ratio(self.latency_nanos as f64, self.requests) / 1e6,
            predictions: self.predictions,
            prediction_mean: ratio(self.prediction_sum, self.predictions),
            prediction_sample: self.prediction_sample.clone(),
            tokens: self.tokens,
            cost: self.cost,
        }
    }
}

/// At most [`SAMPLE_SIZE`] of the parts' samples, each part contributing in
/// proportion to the predictions it saw (a uniform draw from its sample).
fn merge_samples(parts: &[Tally], total: u64) -> Vec<f64> {
    let kept: usize = parts.iter().map(|p| p.prediction_sample.len()).sum();
    if kept <= SAMPLE_SIZE {
        return parts.iter().flat_map(|p| p.prediction_sample.iter().copied()).collect();
    }
    let mut rng = SplitMix64(DEFAULT_SEED ^ total);
    let mut out = Vec::with_capacity(SAMPLE_SIZE);
    for part in parts {
        let share = if total == 0 { 0 } else { ((SAMPLE_SIZE as u128 * u128::from(part.predictions)) / u128::from(total)) as usize };
        let mut pool = part.prediction_sample.clone();
        let take = share.min(pool.len());
        // A partial Fisher–Yates shuffle: the first `take` are a uniform draw.
        for i in 0..take {
            let j = i + rng.below((pool.len() - i) as u64) as usize;
            pool.swap(i, j);
        }
        out.extend_from_slice(&pool[..take]);
    }
    out
}

/// A route's statistics at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub errors: u64,
    /// `errors / requests`; 0 when there are no requests.
    pub error_rate: f64,
    /// Nearest-rank quantiles of the latency, each the midpoint of its
    /// histogram bucket (within ~1.6 %); 0 when there are no requests.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_latency_ms: f64,
    /// How many finite scalar predictions were seen.
    pub predictions: u64,
    /// The exact mean of all of them; 0 when there are none.
    pub prediction_mean: f64,
    /// A uniform sample of at most [`SAMPLE_SIZE`] of them, for the
    /// two-sample test; in no particular order.
    #[serde(skip)]
    pub prediction_sample: Vec<f64>,
    pub tokens: u64,
    pub cost: f64,
}

/// The bucket of a latency of `nanos`: exact below 2^SUB_BITS, then the
/// power of two and the SUB_BITS bits that follow the leading one.
fn bucket(nanos: u64) -> usize {
    let v = nanos.min(MAX_NANOS);
    if v < SUB_BUCKETS as u64 {
        return v as usize;
    }
    let high = 63 - v.leading_zeros();
    let sub = (v >> (high - SUB_BITS)) as usize & (SUB_BUCKETS - 1);
    (high - SUB_BITS + 1) as usize * SUB_BUCKETS + sub
}

/// The value that stands for bucket `index`, in nanoseconds: its midpoint.
fn representative(index: usize) -> f64 {
    if index < SUB_BUCKETS {
        return index as f64;
    }
    let octave = (index / SUB_BUCKETS - 1) as u32;
    let low = ((SUB_BUCKETS + index % SUB_BUCKETS) as u64) << octave;
    let width = 1u64 << octave;
    low as f64 + (width - 1) as f64 / 2.0
}

/// The nearest-rank `q` quantile of the histogram `counts`, in nanoseconds:
/// the representative of the bucket holding the ⌈q·n⌉-th smallest value.
fn quantile(counts: &[u64], q: f64) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (index, &count) in counts.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return representative(index);
        }
    }
    representative(counts.len() - 1)
}

/// The predictions' count, compensated sum and reservoir sample.
struct Predictions {
    count: u64,
    sum: f64,
    /// Neumaier's compensation: what `sum` lost to rounding, so the mean
    /// stays exact to the last digits over millions of predictions.
    compensation: f64,
    sample: Vec<f64>,
    rng: SplitMix64,
}

impl Predictions {
    fn new(seed: u64) -> Self {
        Self { count: 0, sum: 0.0, compensation: 0.0, sample: Vec::new(), rng: SplitMix64(seed) }
    }

    /// Vitter's algorithm R, one value at a time: the k-th value replaces a
    /// random slot with probability SAMPLE_SIZE / k, which keeps every value
    /// seen equally likely to be in the sample.
    fn add(&mut self, values: &[f64]) {
        for &x in values.iter().filter(|x| x.is_finite()) {
            self.count += 1;
            let t = self.sum + x;
            self.compensation += if self.sum.abs() >= x.abs() { (self.sum - t) + x } else { (x - t) + self.sum };
            self.sum = t;
            if self.sample.len() < SAMPLE_SIZE {
                self.sample.push(x);
            } else {
                let slot = self.rng.below(self.count);
                if let Some(kept) = self.sample.get_mut(slot as usize) {
                    *kept = x;
                }
            }
        }
    }

}

/// Steele, Lea and Flood's splitmix64: tiny, fast, and good enough to pick
/// reservoir slots.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (Lemire's multiply-shift; the bias is at
    /// most n / 2^64, far below anything a reservoir of 2,000 could show).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn tallies_of_replicas_add_up_to_the_stats_of_one() {
        // The same calls, recorded by one route and split over three.
        let one = RouteStats::new();
        let parts: Vec<RouteStats> = (0..3).map(RouteStats::with_seed).collect();
        let mut rng = SplitMix64(3);
        for i in 0..9_000u64 {
            let latency = Duration::from_micros(200 + rng.below(5_000));
            let error = i % 17 == 0;
            let predictions = if error { vec![] } else { vec![(i % 100) as f64 / 100.0] };
            one.record(latency, error, &predictions, 3, 0.001);
            parts[(i % 3) as usize].record(latency, error, &predictions, 3, 0.001);
        }
        let merged = Tally::merge(&parts.iter().map(RouteStats::tally).collect::<Vec<_>>()).snapshot();
        let whole = one.snapshot();
        assert_eq!((merged.requests, merged.errors, merged.predictions, merged.tokens), (whole.requests, whole.errors, whole.predictions, whole.tokens));
        assert_eq!((merged.p50_ms, merged.p99_ms), (whole.p50_ms, whole.p99_ms), "same histogram");
        assert!((merged.prediction_mean - whole.prediction_mean).abs() < 1e-12);
        assert!((merged.cost - whole.cost).abs() < 1e-9);
        assert!((merged.mean_latency_ms - whole.mean_latency_ms).abs() < 1e-9);
        // The sample: full size, and drawn from every part alike.
        assert_eq!(merged.prediction_sample.len(), SAMPLE_SIZE - SAMPLE_SIZE % 3);
        let mean = merged.prediction_sample.iter().sum::<f64>() / merged.prediction_sample.len() as f64;
        assert!((mean - whole.prediction_mean).abs() < 0.03, "{mean} vs {}", whole.prediction_mean);
        // A tally survives the trip through JSON that replicas exchange.
        let tally = parts[0].tally();
        assert_eq!(serde_json::from_str::<Tally>(&serde_json::to_string(&tally).unwrap()).unwrap(), tally);
        assert_eq!(Tally::merge(&[]).snapshot(), StatsSnapshot::default());
    }

    /// Exact nearest-rank quantile of sorted values.
    fn exact(sorted: &[u64], q: f64) -> f64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1] as f64
    }

    #[test]
    fn every_latency_falls_in_a_bucket_whose_midpoint_is_within_resolution() {
        let mut rng = SplitMix64(7);
        let mut previous = 0;
        for i in 0..200_000u64 {
            // Small values exhaustively, then log-uniform up to 2^40 ns.
            let v = if i < 5_000 { i } else { (rng.next() >> 24) >> (rng.next() % 40) };
            let b = bucket(v);
            assert!(b < BUCKETS, "{v} → {b}");
            let r = representative(b);
            assert!((r - v as f64).abs() <= v as f64 / 64.0 + 0.5, "{v}: bucket {b} stands for {r}");
            if i < 5_000 {
                assert!(b >= previous, "buckets are monotonic: {v} → {b} after {previous}");
                previous = b;
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket(MAX_NANOS), BUCKETS - 1);
    }

    #[test]
    fn quantiles_match_the_exact_sorted_values_within_the_resolution() {
        let stats = RouteStats::new();
        let mut rng = SplitMix64(42);
        let mut nanos = Vec::new();
        for _ in 0..10_001 {
            // From 1 µs to ~1 s, skewed like real latencies.
            let v = 1_000 + (rng.next() % 1_000_000) * (rng.next() % 1_000) / (1 + rng.next() % 10);
            nanos.push(v);
            stats.record(Duration::from_nanos(v), false, &[], 0, 0.0);
        }
        nanos.sort_unstable();
        let s = stats.snapshot();
        for (got, q) in [(s.p50_ms, 0.5), (s.p99_ms, 0.99)] {
            let want = exact(&nanos, q) / 1e6;
            assert!((got - want).abs() <= want / 64.0, "q{q}: {got} ms, exact {want} ms");
        }
        let mean = nanos.iter().sum::<u64>() as f64 / nanos.len() as f64 / 1e6;
        assert!((s.mean_latency_ms - mean).abs() < 1e-9, "{} vs {mean}", s.mean_latency_ms);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let stats = RouteStats::new();
        // 99 calls of 1 ms and one of 1 s: p99 is the 99th smallest, 1 ms.
        for _ in 0..99 {
            stats.record(Duration::from_millis(1), false, &[], 0, 0.0);
        }
        stats.record(Duration::from_secs(1), false, &[], 0, 0.0);
        let s = stats.snapshot();
        assert!((s.p50_ms - 1.0).abs() < 1.0 / 64.0, "{}", s.p50_ms);
        assert!((s.p99_ms - 1.0).abs() < 1.0 / 64.0, "one slow call in 100 is beyond p99: {}", s.p99_ms);
        stats.record(Duration::from_secs(1), false, &[], 0, 0.0);
        let s = stats.snapshot();
        assert!((s.p99_ms - 1_000.0).abs() < 1_000.0 / 64.0, "two in 101 are not: {}", s.p99_ms);
    }

    #[test]
    fn an_empty_route_reports_zeros() {
        let s = RouteStats::new().snapshot();
        assert_eq!(s, StatsSnapshot::default());
    }

    #[test]
    fn counts_errors_tokens_and_cost() {
        let stats = RouteStats::new();
        stats.record(Duration::from_millis(3), true, &[], 0, 0.0);
        stats.record(Duration::from_millis(5), false, &[0.5, f64::NAN, 1.5], 120, 0.25);
        stats.record(Duration::from_millis(7), false, &[f64::INFINITY], 30, f64::NAN);
        stats.record(Duration::from_millis(9), false, &[2.5], 0, 0.5);
        let s = stats.snapshot();
        assert_eq!((s.requests, s.errors), (4, 1));
        assert_eq!(s.error_rate, 0.25);
        assert_eq!(s.predictions, 3, "NaN and infinity are not predictions");
        assert_eq!(s.prediction_mean, 1.5);
        assert_eq!(s.prediction_sample, vec![0.5, 1.5, 2.5]);
        assert_eq!((s.tokens, s.cost), (150, 0.75));
        assert!((s.mean_latency_ms - 6.0).abs() < 1e-12);
        let json = serde_json::to_value(&s).unwrap();
        assert!(json.get("prediction_sample").is_none(), "the sample is not serialised: {json}");
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let stats = Arc::new(RouteStats::new());
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    for i in 0..5_000u64 {
                        let p = (t * 5_000 + i) as f64;
                        stats.record(Duration::from_micros(100 + i % 100), i % 10 == 0, &[p, p], 2, 0.5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = stats.snapshot();
        assert_eq!(s.requests, 40_000);
        assert_eq!(s.errors, 4_000);
        assert_eq!(s.tokens, 80_000);
        assert_eq!(s.cost, 20_000.0, "halves add exactly");
        assert_eq!(s.predictions, 80_000);
        // Every value 0..40,000 twice: the mean is 19,999.5 exactly.
        assert_eq!(s.prediction_mean, 19_999.5);
        assert_eq!(s.prediction_sample.len(), SAMPLE_SIZE);
        let total: u64 = stats.latency.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, 40_000, "every latency is in the histogram");
    }

    #[test]
    fn the_reservoir_is_bounded_uniform_and_reproducible() {
        let fill = |seed| {
            let stats = RouteStats::with_seed(seed);
            let mut rng = SplitMix64(1);
            let mut sum = 0.0;
            let mut n = 0u64;
            for _ in 0..1_000 {
                // Batches of up to 100 rows, values uniform in [0, 1) with a
                // trend so a sample biased to early or late values shows.
                let rows: Vec<f64> =
                    (0..1 + rng.next() % 100).map(|_| (rng.next() >> 11) as f64 / (1u64 << 53) as f64 + n as f64 / 50_000.0).collect();
                sum += rows.iter().sum::<f64>();
                n += rows.len() as u64;
                stats.record(Duration::from_millis(1), false, &rows, 0, 0.0);
            }
            (stats.snapshot(), sum / n as f64)
        };
        let (s, mean) = fill(3);
        assert!(s.predictions > 40_000, "{}", s.predictions);
        assert_eq!(s.prediction_sample.len(), SAMPLE_SIZE);
        assert!((s.prediction_mean - mean).abs() < 1e-12, "{} vs {mean}", s.prediction_mean);
        let sample_mean = s.prediction_sample.iter().sum::<f64>() / SAMPLE_SIZE as f64;
        // The values' standard deviation is ~0.4; the sample mean's is
        // ~0.4 / √2000 ≈ 0.009.
        assert!((sample_mean - mean).abs() < 0.04, "sample mean {sample_mean}, mean {mean}");
        assert_eq!(fill(3).0.prediction_sample, s.prediction_sample, "the same calls keep the same sample");
        assert_ne!(fill(4).0.prediction_sample, s.prediction_sample, "another seed keeps another sample");
    }
}
