//! The canary's rollback condition: a CEL expression over the live
//! statistics of the canary and of the stable version in the current step,
//! compiled through `modelops-expr` against a declared context
//! ([`schema`]) so a misspelt name is refused when the canary is asked for,
//! not discovered when traffic is already flowing.
//!
//! The condition says when to roll back: true trips. A condition that fails
//! to evaluate (a division by zero, a context that does not bind) trips too:
//! a canary nobody can judge must not keep growing its traffic.
//!
//! Besides the two snapshots, the context carries `prediction_drift`: the
//! two-sample Kolmogorov–Smirnov test between the routes' prediction
//! samples, SciPy's `ks_2samp` through `modelops-monitor`. Both routes see
//! the same traffic split at random, so a shift in predictions is the
//! model's doing, not the inputs'.

use crate::stats::StatsSnapshot;
use modelops_core::{Error, Result};
use modelops_expr::{Bindings, ExprError, Expression, Schema, Type};
use serde::Serialize;
use std::sync::{Arc, LazyLock};

/// The condition a canary runs with unless it names its own. Reading it:
///
/// - `canary.requests >= 20`: no verdict on fewer calls; one or two
///   failures in a handful of calls say nothing about a version.
/// - Errors: at least 3 and an error rate above twice the stable one plus
///   one point. With no errors on stable this is Flagger's published floor
///   (success rate below 99 %); relative to stable, an upstream failing for
///   both versions does not blame the canary. Against a stable 1 %, a
///   canary at the same rate trips with probability ~2 % at 100 calls and
///   vanishingly rarely later; at 30 % against 0 % it trips at once.
/// - Latency: p99 above twice the stable p99 plus 50 ms, judged once both
///   routes have 100 calls. Below 100 calls a nearest-rank p99 is the
///   slowest call, which one cold cache or pause decides; the 50 ms margin
///   keeps a 1 ms → 2 ms jitter of a fast model from tripping, and the
///   doubling scales to slow models (Flagger's absolute 500 ms would fail
///   every LLM). Stable's guard matters at the last step, where stable gets
///   no traffic and reports 0 ms.
/// - Predictions: a Kolmogorov–Smirnov shift with p < 0.001 (the test
///   needs ≥ 30 values per side, or reports no evidence) and D ≥ 0.2. A new
///   version is expected to predict somewhat differently — that is why it
///   was trained — and with thousands of values any difference becomes
///   significant; D ≥ 0.2 (a fifth of the distribution moved) is a model
///   that is broken (inputs misread, constant output), not improved.
pub const DEFAULT_CONDITION: &str = "canary.requests >= 20 && (
  (canary.errors >= 3 && canary.error_rate > 2.0 * stable.error_rate + 0.01)
  || (canary.requests >= 100 && stable.requests >= 100 && canary.p99_ms > 2.0 * stable.p99_ms + 50.0)
  || (prediction_drift.statistic >= 0.2 && prediction_drift.p_value < 0.001)
)";

/// Below this many predictions on either side the drift test reports no
/// evidence (D 0, p 1): the exact p-value of a few values swings too much
/// to roll a version back on.
pub const MIN_DRIFT_SAMPLES: usize = 30;

/// The field errors name.
const FIELD: &str = "canary.condition";

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let route = || {
        Type::object([
            ("requests", Type::Int),
            ("errors", Type::Int),
            ("error_rate", Type::Double),
            ("p50_ms", Type::Double),
            ("p99_ms", Type::Double),
            ("mean_latency_ms", Type::Double),
            ("predictions", Type::Int),
            ("prediction_mean", Type::Double),
            ("tokens", Type::Int),
            ("cost", Type::Double),
        ])
    };
    Schema::new()
        .var("canary", route())
        .var("stable", route())
        .var("prediction_drift", Type::object([("statistic", Type::Double), ("p_value", Type::Double), ("samples", Type::Int)]))
});

/// The declared context: `canary` and `stable` (each a [`StatsSnapshot`]
/// without its sample) and `prediction_drift` (a [`PredictionDrift`]).
pub fn schema() -> &'static Schema {
    &SCHEMA
}

/// The two-sample Kolmogorov–Smirnov test between the canary's and the
/// stable version's prediction samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PredictionDrift {
    /// D, the largest distance between the two empirical distributions.
    pub statistic: f64,
    /// SciPy's two-sided p-value (exact up to 10,000 values per side).
    pub p_value: f64,
    /// The smaller of the two sample sizes.
    pub samples: u64,
}

impl PredictionDrift {
    /// The test between `canary`'s and `stable`'s samples; no evidence (D 0,
    /// p 1) when either has fewer than [`MIN_DRIFT_SAMPLES`] values.
    pub fn between(canary: &StatsSnapshot, stable: &StatsSnapshot) -> PredictionDrift {
        let samples = canary.prediction_sample.len().min(stable.prediction_sample.len());
        let none = PredictionDrift { statistic: 0.0, p_value: 1.0, samples: samples as u64 };
        if samples < MIN_DRIFT_SAMPLES {
            return none;
        }
        // `ks_2samp` wants sorted samples; the snapshots hold finite values only.
        let sorted = |s: &[f64]| {
            let mut v = s.to_vec();
            v.sort_unstable_by(f64::total_cmp);
            v
        };
        match modelops_monitor::drift::stats::ks_2samp(&sorted(&canary.prediction_sample), &sorted(&stable.prediction_sample)) {
            Some((statistic, p_value)) => PredictionDrift { statistic, p_value, ..none },
            None => none,
        }
    }
}

/// A compiled rollback condition. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Condition {
    expression: Expression,
    /// The source on one line, as reasons quote it.
    quoted: Arc<str>,
}

/// What a condition says about the current step.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Healthy,
    /// Roll back; `reason` is for the audit log: the condition and the
    /// numbers it saw.
    Tripped {
        reason: String,
    },
}

impl Condition {
    /// Compiles and type-checks `source` against [`schema`]. An error is
    /// `InvalidInput` on `canary.condition`, naming the position and the
    /// problem.
    pub fn compile(source: &str) -> Result<Self> {
        let expression = modelops_expr::compile_condition(source, schema()).map_err(|e| Error::invalid(FIELD, problem(&e)))?;
        Ok(Condition { quoted: source.split_whitespace().collect::<Vec<_>>().join(" ").into(), expression })
    }

    /// The shipped [`DEFAULT_CONDITION`], compiled.
    pub fn default_condition() -> Result<Self> {
        Self::compile(DEFAULT_CONDITION)
    }

    pub fn source(&self) -> &str {
        self.expression.source()
    }

    /// Evaluates over the canary's and the stable version's statistics in
    /// the current step. An evaluation error counts as tripped.
    pub fn evaluate(&self, canary: &StatsSnapshot, stable: &StatsSnapshot) -> Verdict {
        let drift = PredictionDrift::between(canary, stable);
        let context = serde_json::json!({ "canary": canary, "stable": stable, "prediction_drift": drift });
        // A value that does not bind (a NaN serialises as `null`) is an
        // evaluation error like any other.
        let result = Bindings::from_object(schema(), &context).and_then(|b| self.expression.evaluate_bool(&b));
        match result {
            Ok(false) => Verdict::Healthy,
            Ok(true) => {
                Verdict::Tripped { reason: format!("rollback condition `{}` is true: {}", self.quoted, describe(canary, stable, &drift)) }
            }
            Err(e) => {
                Verdict::Tripped { reason: format!("rollback condition `{}` failed to evaluate (counted as tripped): {e}", self.quoted) }
            }
        }
    }
}

/// An expression error as `canary.condition`'s reason: `at 1:8: …`.
fn problem(e: &ExprError) -> String {
    let text = e.to_string();
    match e.position() {
        Some(p) => {
            let prefix = format!("{p}: ");
            format!("at {p}: {}", text.strip_prefix(&prefix).unwrap_or(&text))
        }
        None => text,
    }
}

/// The numbers a reviewer needs to judge a rollback, both sides.
fn describe(canary: &StatsSnapshot, stable: &StatsSnapshot, drift: &PredictionDrift) -> String {
    let mut parts = vec![
        format!("canary requests {} (stable {})", canary.requests, stable.requests),
        format!("error_rate {:.4} (stable {:.4})", canary.error_rate, stable.error_rate),
        format!("p99 {:.1} ms (stable {:.1} ms)", canary.p99_ms, stable.p99_ms),
    ];
    if canary.predictions > 0 || stable.predictions > 0 {
        parts.push(format!("prediction_mean {} (stable {})", number(canary.prediction_mean), number(stable.prediction_mean)));
        parts.push(format!("prediction drift D={:.3} p={} over {} samples", drift.statistic, p_value(drift.p_value), drift.samples));
    }
    if canary.tokens > 0 || stable.tokens > 0 {
        parts.push(format!(
            "tokens {} (stable {}), cost {} (stable {})",
            canary.tokens,
            stable.tokens,
            number(canary.cost),
            number(stable.cost)
        ));
    }
    parts.join(", ")
}

/// Four significant digits, in scientific notation when very large or small.
fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let magnitude = x.abs().log10().floor();
    if !(-3.0..6.0).contains(&magnitude) {
        format!("{x:.3e}")
    } else {
        format!("{:.*}", (3.0 - magnitude).max(0.0) as usize, x)
    }
}

fn p_value(p: f64) -> String {
    if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RouteStats;
    use modelops_core::ErrorKind;
    use std::time::Duration;

    /// Uniform in [0, 1), reproducible.
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// A route that answered `requests` calls, every `error_every`-th one
    /// failing (0: none), in `latency_ms` (±10 %), each success predicting
    /// one value from `prediction`.
    fn route(seed: u64, requests: u64, error_every: u64, latency_ms: f64, mut prediction: impl FnMut(&mut Rng) -> f64) -> StatsSnapshot {
        let stats = RouteStats::with_seed(seed);
        let mut rng = Rng(seed);
        for i in 1..=requests {
            let latency = Duration::from_secs_f64(latency_ms * (0.9 + 0.2 * rng.unit()) / 1e3);
            let error = error_every > 0 && i % error_every == 0;
            let p = if error { vec![] } else { vec![prediction(&mut rng)] };
            stats.record(latency, error, &p, 0, 0.0);
        }
        stats.snapshot()
    }

    /// Scores around 0.3 (the sum of two uniforms, scaled).
    fn around_0_3(rng: &mut Rng) -> f64 {
        0.15 * (rng.unit() + rng.unit()) + 0.15
    }

    fn healthy(seed: u64) -> StatsSnapshot {
        route(seed, 400, 0, 8.0, around_0_3)
    }

    fn default() -> Condition {
        Condition::default_condition().unwrap()
    }

    fn reason(v: Verdict) -> String {
        match v {
            Verdict::Tripped { reason } => reason,
            Verdict::Healthy => panic!("expected a trip"),
        }
    }

    #[test]
    fn the_schema_declares_what_a_snapshot_serialises() {
        let json = serde_json::to_value(healthy(1)).unwrap();
        let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        let Some(Type::Object(fields)) = schema().get("canary") else { panic!("canary is an object") };
        let mut declared: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        declared.sort_unstable();
        assert_eq!(keys, declared);
        assert_eq!(schema().get("stable"), schema().get("canary"));
        let drift = serde_json::to_value(PredictionDrift { statistic: 0.0, p_value: 1.0, samples: 0 }).unwrap();
        Bindings::from_object(schema(), &serde_json::json!({"canary": json, "stable": json, "prediction_drift": drift})).unwrap();
    }

    #[test]
    fn the_default_compiles_and_stays_healthy_on_healthy_stats() {
        let c = default();
        assert_eq!(c.source(), DEFAULT_CONDITION);
        let stats = healthy(1);
        assert_eq!(c.evaluate(&stats, &stats), Verdict::Healthy, "identical stats");
        // Same distribution, other draws, other latencies within 10 %.
        assert_eq!(c.evaluate(&healthy(2), &healthy(3)), Verdict::Healthy, "independent healthy routes");
        // Nothing yet on either side (the step has just begun), or on
        // stable (the last step gives the canary all traffic).
        let empty = StatsSnapshot::default();
        assert_eq!(c.evaluate(&empty, &empty), Verdict::Healthy);
        assert_eq!(c.evaluate(&healthy(4), &empty), Verdict::Healthy, "a slow-ish canary alone is not judged on latency");
    }

    #[test]
    fn the_default_tolerates_noise_it_should() {
        let c = default();
        // One failure in 20 against none: not yet evidence.
        let canary = route(5, 20, 20, 8.0, around_0_3);
        assert_eq!(canary.errors, 1);
        assert_eq!(c.evaluate(&canary, &healthy(6)), Verdict::Healthy);
        // 1 ms → 2 ms is jitter, not a regression.
        assert_eq!(c.evaluate(&route(7, 400, 0, 2.0, around_0_3), &route(8, 400, 0, 1.0, around_0_3)), Verdict::Healthy);
        // The same 2 % error rate on both sides is the upstream's, not the canary's.
        assert_eq!(c.evaluate(&route(9, 400, 50, 8.0, around_0_3), &route(10, 4_000, 50, 8.0, around_0_3)), Verdict::Healthy);
        // A tiny real shift of the predictions, significant with 2,000
        // values per side, is what a new version does.
        let shifted = route(11, 4_000, 0, 8.0, |r| around_0_3(r) + 0.01);
        let drift = PredictionDrift::between(&shifted, &route(12, 4_000, 0, 8.0, around_0_3));
        assert!(drift.statistic < 0.2, "{drift:?}");
        assert_eq!(c.evaluate(&shifted, &route(12, 4_000, 0, 8.0, around_0_3)), Verdict::Healthy);
    }

    #[test]
    fn the_default_trips_on_errors() {
        // 30 % against none.
        let canary = route(1, 100, 0, 8.0, around_0_3);
        let canary = StatsSnapshot { errors: 30, error_rate: 0.3, ..canary };
        let r = reason(default().evaluate(&canary, &healthy(2)));
        assert!(r.starts_with("rollback condition `canary.requests >= 20 && ( (canary.errors >= 3"), "{r}");
        assert!(r.contains("is true: canary requests 100 (stable 400), error_rate 0.3000 (stable 0.0000), p99 "), "{r}");
        // Few calls, but every one failing.
        let broken = route(3, 20, 1, 8.0, around_0_3);
        assert!(matches!(default().evaluate(&broken, &healthy(4)), Verdict::Tripped { .. }));
    }

    #[test]
    fn the_default_trips_on_latency() {
        let canary = route(1, 200, 0, 720.0, around_0_3);
        let stable = route(2, 200, 0, 4.5, around_0_3);
        assert!(canary.p99_ms > 750.0 && stable.p99_ms < 5.5, "{} vs {}", canary.p99_ms, stable.p99_ms);
        let r = reason(default().evaluate(&canary, &stable));
        assert!(r.contains(&format!("p99 {:.1} ms (stable {:.1} ms)", canary.p99_ms, stable.p99_ms)), "{r}");
        // Not on its 99 fastest calls alone.
        let early = route(3, 99, 0, 720.0, around_0_3);
        assert_eq!(default().evaluate(&early, &stable), Verdict::Healthy);
    }

    #[test]
    fn the_default_trips_on_shifted_predictions() {
        // Canary around 0.9 (a different shape, too) against stable around 0.3.
        let canary = route(1, 200, 0, 8.0, |r| 0.8 + 0.2 * r.unit());
        let stable = route(2, 200, 0, 8.0, around_0_3);
        assert!((canary.prediction_mean - 0.9).abs() < 0.02 && (stable.prediction_mean - 0.3).abs() < 0.02);
        let r = reason(default().evaluate(&canary, &stable));
        let means = format!("prediction_mean {} (stable {})", number(canary.prediction_mean), number(stable.prediction_mean));
        assert!(r.contains(&means), "{r}");
        assert!(r.contains("prediction drift D=1.000 p=") && r.contains("over 200 samples"), "{r}");
    }

    #[test]
    fn drift_needs_enough_values_on_both_sides() {
        let canary = route(1, 29, 0, 8.0, |_| 1.0);
        let stable = route(2, 400, 0, 8.0, around_0_3);
        assert_eq!(PredictionDrift::between(&canary, &stable), PredictionDrift { statistic: 0.0, p_value: 1.0, samples: 29 });
        let canary = route(1, 30, 0, 8.0, |_| 1.0);
        let drift = PredictionDrift::between(&canary, &stable);
        assert_eq!((drift.statistic, drift.samples), (1.0, 30));
        assert!(drift.p_value < 1e-10, "{drift:?}");
    }

    fn compile_error(source: &str) -> String {
        let e = Condition::compile(source).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let text = e.to_string();
        assert!(text.starts_with("invalid `canary.condition`: "), "{text}");
        text
    }

    #[test]
    fn compile_errors_name_the_field_the_position_and_the_problem() {
        let e = compile_error("canray.requests > 10");
        assert!(e.contains("at 1:1: `canray` is not declared (variables: `canary`, `stable`, `prediction_drift`)"), "{e}");
        let e = compile_error("canary.requests > 10 && canary.error_rat > 0.1");
        assert!(e.contains("`error_rat` is not a field of `canary`") && e.contains("error_rate"), "{e}");
        assert!(e.contains("at 1:"), "{e}");
        let e = compile_error("canary.requests");
        assert!(e.contains("not a bool"), "{e}");
        let e = compile_error("canary.p99_ms > stable.p99_ms + 1");
        assert!(e.contains("canary.condition"), "{e}");
        compile_error("");
    }

    #[test]
    fn an_evaluation_error_trips() {
        let c = Condition::compile("canary.requests / 0 > 1").unwrap();
        let r = reason(c.evaluate(&healthy(1), &healthy(2)));
        assert_eq!(r, "rollback condition `canary.requests / 0 > 1` failed to evaluate (counted as tripped): division by zero");
    }

    #[test]
    fn a_custom_condition_reads_every_part_of_the_context() {
        let c = Condition::compile(
            "canary.tokens > 2 * stable.tokens || canary.cost > stable.cost * 1.5 || canary.mean_latency_ms > 100.0 \
             || canary.p50_ms > 100.0 || prediction_drift.samples < 0 || canary.predictions < 0 \
             || canary.prediction_mean > 10.0",
        )
        .unwrap();
        let stats = healthy(1);
        assert_eq!(c.evaluate(&stats, &stats), Verdict::Healthy);
        let llm = StatsSnapshot { tokens: 5_000, cost: 0.5, ..stats.clone() };
        let stable = StatsSnapshot { tokens: 1_000, cost: 0.1, ..stats };
        let r = reason(c.evaluate(&llm, &stable));
        assert!(r.contains("tokens 5000 (stable 1000), cost 0.5000 (stable 0.1000)"), "{r}");
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(number(0.35), "0.3500");
        assert_eq!(number(123.456), "123.5");
        assert_eq!(number(12_345.6), "12346");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1.5e-7), "1.500e-7");
        assert_eq!(p_value(1.2e-9), "1.2e-9");
        assert_eq!(p_value(0.5), "0.500");
    }
}
