//! Cumulative traffic per deployment, version and route (primary or
//! shadow), for monitoring (the server's `/metrics`).
//!
//! The route statistics of [`crate::stats`] describe one canary step and
//! start again at every step; these never do: they count every call since
//! start-up, across the deployment's changes, as Prometheus counters must.
//! [`RouteTraffic::record`] runs on every call: lock-free atomics, one
//! counter for errors, one for the summed latency and a fixed set of
//! Prometheus-style latency buckets ([`LATENCY_BUCKETS`], in seconds). The
//! table ([`TrafficTable`]) is looked up when a deployment's routes are
//! assembled, not per call: each live route holds its own
//! `Arc<RouteTraffic>`.
//!
//! The number of calls is the sum of the buckets, so a snapshot's request
//! count and histogram count always agree. A snapshot reads the atomics one
//! by one: taken while calls are counted, its errors and latency sum may
//! lag its counts by the calls in flight.

use crate::recorder::RecordCounters;
use modelops_core::deployment::RecordRoute;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (500 µs to 10 s); a
/// last, implicit bucket (`+Inf`) counts the slower calls.
pub const LATENCY_BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The same bounds in nanoseconds, compared on the hot path.
const BUCKET_NANOS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Every call of one route of one deployment since start-up.
#[derive(Debug, Default)]
pub struct RouteTraffic {
    errors: AtomicU64,
    latency_nanos: AtomicU64,
    /// Calls per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
}

impl RouteTraffic {
    /// Counts one call: how long it took, whether it failed.
    pub fn record(&self, took: Duration, error: bool) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // Bounds are inclusive (`le`), as Prometheus reads them.
        let bucket = BUCKET_NANOS.iter().position(|&bound| nanos <= bound).unwrap_or(BUCKET_NANOS.len());
        if let Some(count) = self.buckets.get(bucket) {
            count.fetch_add(1, Relaxed);
        }
        self.latency_nanos.fetch_add(nanos, Relaxed);
        if error {
            self.errors.fetch_add(1, Relaxed);
        }
    }

    fn snapshot(&self) -> (u64, u64, f64, Vec<u64>) {
        let buckets: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let requests = buckets.iter().sum();
        #[allow(clippy::cast_precision_loss)]
        let seconds = self.latency_nanos.load(Relaxed) as f64 / 1e9;
        (requests, self.errors.load(Relaxed), seconds, buckets)
    }
}

/// One route's cumulative traffic at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteTrafficSnapshot {
    pub deployment: String,
    pub version: u32,
    pub route: RecordRoute,
    /// Calls answered (successes and errors).
    pub requests: u64,
    pub errors: u64,
    /// The summed latency of those calls, in seconds.
    pub latency_seconds: f64,
    /// Calls per bucket of [`LATENCY_BUCKETS`] (not cumulative), then the
    /// slower ones: `LATENCY_BUCKETS.len() + 1` entries summing to
    /// `requests`.
    pub buckets: Vec<u64>,
}

/// What deployments did since start-up: every route that was served, and
/// the prediction records of every deployment served or called.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficSnapshot {
    /// By deployment, version, then route.
    pub routes: Vec<RouteTrafficSnapshot>,
    /// By deployment name.
    pub records: Vec<(String, RecordCounters)>,
}

type Key = (String, u32, RecordRoute);

/// Every deployment's [`RouteTraffic`], kept for the life of the process
/// (bounded by the routes ever served: a deployment holds at most
/// `MAX_ROUTES` routes and shadows).
#[derive(Debug, Default)]
pub struct TrafficTable {
    routes: RwLock<HashMap<Key, Arc<RouteTraffic>>>,
}

impl TrafficTable {
    /// The counters of one route (made on first use).
    pub fn of(&self, deployment: &str, version: u32, route: RecordRoute) -> Arc<RouteTraffic> {
        let key = (deployment.to_string(), version, route);
        if let Some(found) = self.routes.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return found.clone();
        }
        self.routes.write().unwrap_or_else(PoisonError::into_inner).entry(key).or_default().clone()
    }

    /// Every route's counters, sorted; `records` gives the recorder's
    /// counters of a deployment, asked for every deployment that has a
    /// route here or is in `served`.
    pub fn snapshot(&self, served: impl IntoIterator<Item = String>, records: impl Fn(&str) -> RecordCounters) -> TrafficSnapshot {
        let table: Vec<(Key, Arc<RouteTraffic>)> =
            self.routes.read().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut routes: Vec<RouteTrafficSnapshot> = table
            .into_iter()
            .map(|((deployment, version, route), traffic)| {
                let (requests, errors, latency_seconds, buckets) = traffic.snapshot();
                RouteTrafficSnapshot { deployment, version, route, requests, errors, latency_seconds, buckets }
            })
            .collect();
        routes.sort_by(|a, b| (&a.deployment, a.version, a.route).cmp(&(&b.deployment, b.version, b.route)));
        let mut names: BTreeSet<String> = served.into_iter().collect();
        names.extend(routes.iter().map(|r| r.deployment.clone()));
        let records = names.into_iter().map(|name| {
            let counters = records(&name);
            (name, counters)
        });
        TrafficSnapshot { routes, records: records.collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_fall_in_inclusive_buckets_and_the_count_is_their_sum() {
        let table = TrafficTable::default();
        let route = table.of("d", 1, RecordRoute::Primary);
        route.record(Duration::from_micros(500), false);
        route.record(Duration::from_micros(501), true);
        route.record(Duration::from_secs(10), false);
        route.record(Duration::from_secs(11), false);
        // The same key gives the same counters.
        table.of("d", 1, RecordRoute::Primary).record(Duration::ZERO, false);
        table.of("d", 2, RecordRoute::Shadow);
        let snapshot = table.snapshot(["e".to_string()], |name| RecordCounters { submitted: u64::from(name == "d"), ..Default::default() });
        assert_eq!(snapshot.routes.len(), 2);
        let first = &snapshot.routes[0];
        assert_eq!((first.version, first.route, first.requests, first.errors), (1, RecordRoute::Primary, 5, 1));
        assert_eq!(first.buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!((first.buckets[0], first.buckets[1], first.buckets[13], first.buckets[14]), (2, 1, 1, 1));
        assert!((first.latency_seconds - 21.001_001).abs() < 1e-9, "{}", first.latency_seconds);
        assert_eq!(snapshot.routes[1].requests, 0);
        let names: Vec<(&str, u64)> = snapshot.records.iter().map(|(n, c)| (n.as_str(), c.submitted)).collect();
        assert_eq!(names, [("d", 1), ("e", 0)]);
    }

    #[test]
    fn the_bounds_agree() {
        for (seconds, nanos) in LATENCY_BUCKETS.iter().zip(BUCKET_NANOS) {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let expected = (seconds * 1e9).round() as u64;
            assert_eq!(expected, nanos);
        }
    }
}
