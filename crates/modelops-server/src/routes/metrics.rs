//! `GET /metrics`: the Prometheus text exposition (format 0.0.4) of what
//! this process counts, encoded with `prometheus-client` at scrape time from
//! the counters that already exist — nothing is counted twice on the
//! request path:
//!
//! | family | type | labels | from |
//! |---|---|---|---|
//! | `modelops_build_info` | gauge (1) | `version` | the crate's version |
//! | `modelops_deployment_requests_total` | counter | `deployment`, `version`, `route` | [`Deployments::traffic`] |
//! | `modelops_deployment_errors_total` | counter | `deployment`, `version`, `route` | [`Deployments::traffic`] |
//! | `modelops_deployment_request_duration_seconds` | histogram | `deployment`, `version`, `route` | [`Deployments::traffic`] |
//! | `modelops_prediction_records_total` | counter | `deployment`, `outcome` (`written`, `dropped`, `failed`) | the recorder's counters |
//! | `modelops_prediction_record_queue_depth` | gauge | `deployment` | the recorder's counters |
//! | `modelops_inference_calls_total`, `…_rows_total`, `…_errors_total`, `…_upstream_timeouts_total` | counter | `model`, `version` | `Serving::metrics` |
//! | `modelops_inference_tokens_total`, `modelops_inference_cost_total` | counter | `model`, `version` | `Serving::metrics`, versions that reported usage (LLM) |
//!
//! `route` is `primary` (answered the caller) or `shadow` (mirrored). Label
//! values are bounded: deployments, models and versions this process served,
//! never request data.
//!
//! # Adding families (the extension point)
//!
//! [`MetricsSources`] is what a scrape reads. [`sources`] builds it from the
//! API's state; a component with numbers of its own (e.g. live monitoring:
//! drift scores, alerts) adds them there with one call, either
//!
//! - [`MetricsSources::with_families`]: a closure over an `Arc`'d snapshot
//!   provider that writes its families with [`gauge_family`] /
//!   [`counter_family`], e.g.
//!
//!   ```ignore
//!   let monitors = state.monitors.clone();
//!   sources.with_families(move |encoder| {
//!       let drift = monitors.snapshot();
//!       gauge_family(encoder, "modelops_monitor_drift_score", "Drift score of the latest window.",
//!           drift.iter().map(|d| ([("deployment", d.deployment.as_str())], d.score)))
//!   })
//!   ```
//!
//! - or [`MetricsSources::with_collector`]: any `prometheus_client`
//!   [`Collector`].
//!
//! Either is called once per scrape, after the built-in families; it reads
//! current values (a snapshot), it does not count. Keep names in
//! Prometheus' conventions (`modelops_` prefix, base units in the name,
//! counters given without `_total`: the encoder appends it) and labels
//! bounded.
//!
//! Authorisation: any valid token (`read`, like every API route); Prometheus
//! sends it with `authorization: {credentials: <token>}` in its scrape
//! config (docs/metrics.md).

use crate::error::{ApiError, ApiResult};
use crate::extract::Actor;
use crate::wire::ErrorBody;
use crate::ApiState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use modelops_deploy::traffic::{TrafficSnapshot, LATENCY_BUCKETS};
use modelops_deploy::Deployments;
use modelops_serving::metrics::VersionMetricsSnapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeCounterValue, EncodeGaugeValue, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;

/// The `Content-Type` of the answer (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Writes metric families into a scrape; see [`MetricsSources::with_families`].
pub type Families = Arc<dyn Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync>;

/// What a scrape of `/metrics` reads: `modelops_build_info`, then every
/// source in the order added. Cheap to clone.
#[derive(Clone, Default)]
pub struct MetricsSources {
    sources: Vec<Source>,
}

#[derive(Clone)]
enum Source {
    Families(Families),
    Collector(Arc<dyn Collector>),
}

impl MetricsSources {
    /// No sources: only `modelops_build_info`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds families written by `families` at each scrape (see the module
    /// documentation). An error it returns fails the scrape (500).
    pub fn with_families(mut self, families: impl Fn(&mut DescriptorEncoder) -> fmt::Result + Send + Sync + 'static) -> Self {
        self.sources.push(Source::Families(Arc::new(families)));
        self
    }

    /// Adds a `prometheus_client` collector, encoded at each scrape.
    pub fn with_collector(mut self, collector: impl Collector) -> Self {
        self.sources.push(Source::Collector(Arc::new(collector)));
        self
    }

    /// The exposition: every source's current values in the Prometheus
    /// text format.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(BuildInfo));
        for source in &self.sources {
            registry.register_collector(Box::new(Shared(source.clone())));
        }
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
        Ok(out)
    }
}

/// What `/metrics` exposes for this API's state. A component with families
/// of its own adds its source here (the extension point); the built-in
/// sources use the same two ways.
pub(crate) fn sources(state: &ApiState) -> MetricsSources {
    let serving = state.serving.clone();
    let watch = state.watch.clone();
    let leadership = state.deployments.leadership().clone();
    MetricsSources::new()
        .with_families(move |encoder| {
            let leader = i64::from(leadership.is_leader());
            gauge_family(
                encoder,
                "modelops_background_leader",
                "1 while this replica holds the background lease (signs checkpoints, judges canaries, follows monitors, starts retraining).",
                std::iter::once((Labels::new(), leader)),
            )
        })
        .with_collector(DeploymentMetrics(state.deployments.clone()))
        .with_families(move |encoder| encode_inference(encoder, &serving.metrics()))
        .with_families(move |encoder| encode_monitoring(encoder, &watch.metrics()))
}

type Labels = Vec<(&'static str, String)>;

/// Live monitoring: the latest closed window of each monitor and serving
/// version (drift per feature, performance, its estimate, fairness), the
/// alerts firing, degraded deployments, the engine's counters. Features are
/// bounded by the monitor (at most 1,000 columns); metrics by the
/// statistics computed.
fn encode_monitoring(encoder: &mut DescriptorEncoder, m: &modelops_watch::WatchMetrics) -> fmt::Result {
    let window = |w: &modelops_watch::WindowGauges| -> Labels {
        vec![("deployment", w.deployment.clone()), ("monitor", w.monitor.clone()), ("version", w.version.to_string())]
    };
    let with = |mut labels: Labels, key: &'static str, value: &str| {
        labels.push((key, value.to_string()));
        labels
    };
    gauge_family(
        encoder,
        "modelops_monitor_drift_score",
        "Drift score of each feature in the latest closed window (a p-value for ks, chisquare and z; a distance otherwise), by method.",
        m.windows.iter().flat_map(|w| w.drift.iter().map(move |(feature, score, _, method)| (with(with(window(w), "feature", feature), "method", method), *score))),
    )?;
    gauge_family(
        encoder,
        "modelops_monitor_drift_detected",
        "1 when the feature drifted in the latest closed window.",
        m.windows.iter().flat_map(|w| w.drift.iter().map(move |(feature, _, detected, _)| (with(window(w), "feature", feature), i64::from(*detected)))),
    )?;
    gauge_family(
        encoder,
        "modelops_monitor_drifted_feature_share",
        "Share of the monitored features that drifted in the latest closed window.",
        m.windows.iter().filter_map(|w| w.drift_share.map(|s| (window(w), s))),
    )?;
    gauge_family(
        encoder,
        "modelops_monitor_dataset_drift",
        "1 when the latest closed window drifted as a dataset (the share reached the monitor's drift_share).",
        m.windows.iter().filter_map(|w| w.dataset_drift.map(|d| (window(w), i64::from(d)))),
    )?;
    gauge_family(encoder, "modelops_monitor_window_rows", "Predicted rows in the latest closed window.", m.windows.iter().map(|w| (window(w), w.rows as i64)))?;
    for (name, help, pick) in [
        ("modelops_monitor_performance", "Performance over the labelled calls of the latest closed window, by metric.", 0),
        ("modelops_monitor_estimated_performance", "Label-free performance estimate (CBPE) of the latest closed window, by metric.", 1),
        ("modelops_monitor_fairness", "Fairness gaps over the protected attribute in the latest closed window, by metric.", 2),
    ] {
        gauge_family(
            encoder,
            name,
            help,
            m.windows.iter().flat_map(move |w| {
                let values = match pick {
                    0 => &w.performance,
                    1 => &w.estimated,
                    _ => &w.fairness,
                };
                values.iter().map(move |(metric, v)| (with(window(w), "metric", metric), *v))
            }),
        )?;
    }
    gauge_family(
        encoder,
        "modelops_alerts_firing",
        "1 for each alert rule firing now.",
        m.firing.iter().map(|(d, monitor, rule)| (vec![("deployment", d.clone()), ("monitor", monitor.clone()), ("rule", rule.clone())], 1i64)),
    )?;
    gauge_family(encoder, "modelops_deployment_degraded", "1 while an alert marks the deployment degraded.", m.degraded.iter().map(|d| (vec![("deployment", d.clone())], 1i64)))?;
    let monitor = |d: &String, name: &String| -> Labels { vec![("deployment", d.clone()), ("monitor", name.clone())] };
    counter_family(encoder, "modelops_monitor_rows_read", "Predicted rows a monitor read from the prediction log.", m.monitors.iter().map(|(d, n, s)| (monitor(d, n), s.rows_read)))?;
    counter_family(encoder, "modelops_monitor_windows_closed", "Windows a monitor closed.", m.monitors.iter().map(|(d, n, s)| (monitor(d, n), s.windows_closed)))?;
    counter_family(
        encoder,
        "modelops_monitor_late_records",
        "Recorded calls that arrived after their window had closed (left out).",
        m.monitors.iter().map(|(d, n, s)| (monitor(d, n), s.late_records)),
    )?;
    counter_family(encoder, "modelops_alert_webhook_attempts", "Webhook delivery attempts.", std::iter::once((Labels::new(), m.webhook_attempts)))?;
    counter_family(encoder, "modelops_alert_webhook_failures", "Webhook delivery attempts that failed.", std::iter::once((Labels::new(), m.webhook_failures)))
}

/// Prometheus metrics of this process: deployments' traffic, latency and
/// prediction records, inference per version, build information.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "The Prometheus text exposition (format 0.0.4)", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "No token, or a wrong, expired or revoked one", body = ErrorBody),
        (status = 500, description = "A failure on the server's side; the body says nothing more", body = ErrorBody),
    ))]
pub(crate) async fn metrics(State(state): State<ApiState>, _actor: Actor) -> ApiResult<Response> {
    let text = sources(&state).render().map_err(|e| ApiError::internal(format!("cannot encode the metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))], text).into_response())
}

/// Writes one gauge family: `name` (exposed as is), `help`, one series per
/// (labels, value). Labels are e.g. `[("deployment", name)]`.
pub fn gauge_family<L: EncodeLabelSet, V: EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// Writes one counter family: `name` (the encoder appends `_total`; a name
/// given with it is taken without), `help`, one series per (labels, value).
pub fn counter_family<L: EncodeLabelSet, V: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let name = name.strip_suffix("_total").unwrap_or(name);
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        family.encode_family(&labels)?.encode_counter::<NoLabelSet, V, f64>(&value, None)?;
    }
    Ok(())
}

/// An added source as a collector.
struct Shared(Source);

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Families(_) => f.write_str("Families"),
            Source::Collector(c) => c.fmt(f),
        }
    }
}

impl Collector for Shared {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        match &self.0 {
            Source::Families(families) => families(&mut encoder),
            Source::Collector(collector) => collector.encode(encoder),
        }
    }
}

/// `modelops_build_info{version} 1`.
#[derive(Debug)]
struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        gauge_family(
            &mut encoder,
            "modelops_build_info",
            "The modelops version this process runs (always 1).",
            [([("version", env!("CARGO_PKG_VERSION"))], 1u64)],
        )
    }
}

/// Deployments' cumulative traffic and prediction records, read at each
/// scrape ([`Deployments::traffic`]).
struct DeploymentMetrics(Deployments);

impl fmt::Debug for DeploymentMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeploymentMetrics")
    }
}

impl Collector for DeploymentMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        encode_traffic(&mut encoder, &self.0.traffic())
    }
}

fn encode_traffic(encoder: &mut DescriptorEncoder, traffic: &TrafficSnapshot) -> fmt::Result {
    let versions: Vec<String> = traffic.routes.iter().map(|r| r.version.to_string()).collect();
    let labels = || {
        traffic.routes.iter().zip(&versions).map(|(r, version)| [("deployment", r.deployment.as_str()), ("version", version.as_str()), ("route", r.route.as_str())])
    };
    counter_family(
        encoder,
        "modelops_deployment_requests",
        "Calls answered through a deployment (successes and errors) since start-up, per version and route (primary: answered the caller; shadow: mirrored).",
        labels().zip(traffic.routes.iter().map(|r| r.requests)),
    )?;
    counter_family(
        encoder,
        "modelops_deployment_errors",
        "Calls through a deployment that failed, per version and route.",
        labels().zip(traffic.routes.iter().map(|r| r.errors)),
    )?;
    let mut family = encoder.encode_descriptor(
        "modelops_deployment_request_duration_seconds",
        "Time to answer a call through a deployment (the model's prediction), per version and route.",
        None,
        MetricType::Histogram,
    )?;
    for (labels, route) in labels().zip(&traffic.routes) {
        // Per-bucket counts with their upper bounds; the last is +Inf.
        let buckets: Vec<(f64, u64)> = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]).zip(route.buckets.iter().copied()).collect();
        family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(route.latency_seconds, route.requests, &buckets, None)?;
    }
    let records = |outcome: &'static str, value: fn(&modelops_deploy::recorder::RecordCounters) -> u64| {
        traffic.records.iter().map(move |(deployment, c)| ([("deployment", deployment.as_str()), ("outcome", outcome)], value(c)))
    };
    counter_family(
        encoder,
        "modelops_prediction_records",
        "Prediction records of a deployment by outcome: written to the store, dropped (the recorder's queue was full or it had stopped), failed (the store refused them).",
        records("written", |c| c.written).chain(records("dropped", |c| c.dropped)).chain(records("failed", |c| c.failed)),
    )?;
    gauge_family(
        encoder,
        "modelops_prediction_record_queue_depth",
        "Prediction records of a deployment accepted and not yet written.",
        traffic.records.iter().map(|(deployment, c)| ([("deployment", deployment.as_str())], c.queued)),
    )
}

fn encode_inference(encoder: &mut DescriptorEncoder, versions: &[(modelops_core::name::ModelName, u32, VersionMetricsSnapshot)]) -> fmt::Result {
    let numbers: Vec<String> = versions.iter().map(|(_, v, _)| v.to_string()).collect();
    let series = |value: fn(&VersionMetricsSnapshot) -> u64| {
        versions.iter().zip(&numbers).map(move |((model, _, m), version)| ([("model", model.as_str()), ("version", version.as_str())], value(m)))
    };
    counter_family(encoder, "modelops_inference_calls", "Predictions run by a model version (direct and through deployments).", series(|m| m.calls))?;
    counter_family(encoder, "modelops_inference_rows", "Rows predicted by a model version.", series(|m| m.rows))?;
    counter_family(encoder, "modelops_inference_errors", "Predictions of a model version that failed.", series(|m| m.errors))?;
    counter_family(
        encoder,
        "modelops_inference_upstream_timeouts",
        "Predictions of a model version that failed because its upstream (LLM provider, external server) did not answer in time.",
        series(|m| m.upstream_timeouts),
    )?;
    // Only versions that reported usage (LLMs): no zero series for the rest.
    let used = || versions.iter().zip(&numbers).filter(|((_, _, m), _)| m.prompt_tokens + m.completion_tokens > 0 || m.cost > 0.0);
    counter_family(
        encoder,
        "modelops_inference_tokens",
        "LLM tokens (prompt and completion) used by a model version.",
        used().map(|((model, _, m), version)| ([("model", model.as_str()), ("version", version.as_str())], m.prompt_tokens + m.completion_tokens)),
    )?;
    counter_family(
        encoder,
        "modelops_inference_cost",
        "Cost of a model version's LLM calls, in the price table's currency.",
        used().map(|((model, _, m), version)| ([("model", model.as_str()), ("version", version.as_str())], m.cost)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_families_follow_the_built_in_ones() {
        let text = MetricsSources::new()
            .with_families(|encoder| gauge_family(encoder, "modelops_monitor_drift_score", "Drift.", [([("deployment", "d")], 0.25)]))
            .render()
            .unwrap_or_default();
        assert!(text.starts_with("# HELP modelops_build_info The modelops version"), "{text}");
        assert!(text.contains(&format!("modelops_build_info{{version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION"))), "{text}");
        assert!(text.contains("# TYPE modelops_monitor_drift_score gauge\nmodelops_monitor_drift_score{deployment=\"d\"} 0.25\n"), "{text}");
    }

    #[test]
    fn counters_are_named_with_one_total() {
        let text = MetricsSources::new()
            .with_families(|encoder| {
                counter_family(encoder, "modelops_a", "A.", [([("deployment", "d")], 2u64)])?;
                counter_family(encoder, "modelops_b_total", "B.", [([("deployment", "d")], 0.5)])
            })
            .render()
            .unwrap_or_default();
        assert!(text.contains("# TYPE modelops_a_total counter\nmodelops_a_total{deployment=\"d\"} 2\n"), "{text}");
        assert!(text.contains("# TYPE modelops_b_total counter\nmodelops_b_total{deployment=\"d\"} 0.5\n"), "{text}");
    }
}
