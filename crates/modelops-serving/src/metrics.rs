//! Counters per served version: calls, rows, errors, upstream timeouts,
//! LLM tokens and cost, time spent. Lock-free on the hot path.

use crate::Prediction;
use modelops_core::{Error, Result};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct VersionMetrics {
    calls: AtomicU64,
    rows: AtomicU64,
    errors: AtomicU64,
    upstream_timeouts: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    /// Cost in millionths of the price table's currency.
    cost_micros: AtomicU64,
    busy_micros: AtomicU64,
}

/// What [`VersionMetrics`] counted so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VersionMetricsSnapshot {
    pub calls: u64,
    pub rows: u64,
    pub errors: u64,
    pub upstream_timeouts: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: f64,
    pub mean_latency_ms: f64,
}

impl VersionMetrics {
    pub(crate) fn record(&self, result: &Result<Prediction>, took: Duration) {
        self.calls.fetch_add(1, Relaxed);
        self.busy_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Relaxed);
        match result {
            Ok(prediction) => {
                let rows = prediction.outputs.first().and_then(|t| t.shape.first().copied()).unwrap_or(0);
                self.rows.fetch_add(rows as u64, Relaxed);
                if let Some(usage) = &prediction.usage {
                    self.prompt_tokens.fetch_add(usage.prompt_tokens, Relaxed);
                    self.completion_tokens.fetch_add(usage.completion_tokens, Relaxed);
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    self.cost_micros.fetch_add((usage.cost * 1e6).round().max(0.0) as u64, Relaxed);
                }
            }
            Err(e) => {
                self.errors.fetch_add(1, Relaxed);
                if matches!(e, Error::GatewayTimeout(_)) {
                    self.upstream_timeouts.fetch_add(1, Relaxed);
                }
            }
        }
    }

    #[allow(clippy::cast_precision_loss)]
    pub fn snapshot(&self) -> VersionMetricsSnapshot {
        let calls = self.calls.load(Relaxed);
        VersionMetricsSnapshot {
            calls,
            rows: self.rows.load(Relaxed),
            errors: self.errors.load(Relaxed),
            upstream_timeouts: self.upstream_timeouts.load(Relaxed),
            prompt_tokens: self.prompt_tokens.load(Relaxed),
            completion_tokens: self.completion_tokens.load(Relaxed),
            cost: self.cost_micros.load(Relaxed) as f64 / 1e6,
            mean_latency_ms: if calls == 0 { 0.0 } else { self.busy_micros.load(Relaxed) as f64 / calls as f64 / 1000.0 },
        }
    }
}
