// Monitoring of one deployment: per monitor, drift score per feature over
// its windows, reference and current histograms of a chosen window,
// performance and estimated performance over time, fairness by group, and
// the alerts fired and resolved.

use crate::charts::{self, Series};
use crate::model::model_name;
use crate::page::{self, badge, enc, time, ForViewer, PageResult, Section};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::{html, Markup};
use modelops_core::monitoring::WindowResult;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
pub struct Choice {
    monitor: Option<String>,
    /// Index of the window (0 = oldest shown) whose histograms to draw.
    window: Option<String>,
}

/// Windows shown at most (the newest).
const WINDOWS: u32 = 60;

fn drift_columns(result: &WindowResult) -> Vec<&Value> {
    result.body.get("drift").and_then(|d| d.get("columns")).and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default()
}

fn numbers(value: Option<&Value>) -> BTreeMap<String, f64> {
    value.and_then(Value::as_object).map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_f64()?))).collect()).unwrap_or_default()
}

fn label(result: &WindowResult) -> String {
    result.end.format("%m-%d %H:%M:%S").to_string()
}

/// Lines of `metric(result) -> name → value` over the windows.
fn series_of(results: &[WindowResult], metric: impl Fn(&WindowResult) -> BTreeMap<String, f64>) -> Vec<Series> {
    let mut by_name: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for (i, r) in results.iter().enumerate() {
        for (name, v) in metric(r) {
            by_name.entry(name).or_default().push((i, v));
        }
    }
    by_name.into_iter().map(|(name, points)| Series { name, points }).collect()
}

/// A table of any JSON object or array of objects (fairness by group).
fn json_table(caption: &str, value: &Value) -> Markup {
    let rows: Vec<(String, &serde_json::Map<String, Value>)> = match value {
        Value::Array(items) => items.iter().enumerate().filter_map(|(i, v)| Some((i.to_string(), v.as_object()?))).collect(),
        Value::Object(map) => map.iter().filter_map(|(k, v)| Some((k.clone(), v.as_object()?))).collect(),
        _ => Vec::new(),
    };
    let scalars: Vec<(&String, &Value)> = value.as_object().map(|m| m.iter().filter(|(_, v)| !v.is_object() && !v.is_array()).collect()).unwrap_or_default();
    let mut columns: Vec<String> = Vec::new();
    for (_, row) in &rows {
        for k in row.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let cell = |v: Option<&Value>| match v {
        Some(Value::Number(n)) => n.as_f64().map(page::number).unwrap_or_default(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "—".into(),
        Some(other) => other.to_string(),
    };
    html! {
        @if !scalars.is_empty() {
            table.compact { caption { (caption) } tbody { @for (k, v) in &scalars { tr { th scope="row" { (k) } td { (cell(Some(v))) } } } } }
        }
        @if !rows.is_empty() {
            div.table-wrap {
                table.compact {
                    caption { (caption) " by group" }
                    thead { tr { th scope="col" { "group" } @for c in &columns { th scope="col" { (c) } } } }
                    tbody { @for (k, row) in &rows { tr { th scope="row" { (k) } @for c in &columns { td { (cell(row.get(c))) } } } } }
                }
            }
        }
        @if let Some(arrays) = value.as_object() {
            @for (k, v) in arrays.iter().filter(|(_, v)| v.is_object() || v.is_array()).filter(|(_, v)| !v.as_object().is_some_and(|o| o.values().all(Value::is_object))) {
                @if !v.as_array().is_some_and(|a| a.iter().all(Value::is_object)) {
                    details { summary { (k) } pre tabindex="0" { code { (serde_json::to_string_pretty(v).unwrap_or_default()) } } }
                }
            }
        }
    }
}

fn histograms(result: &WindowResult) -> Markup {
    html! {
        @for (k, c) in drift_columns(result).into_iter().enumerate() {
            @let name = c.get("column").and_then(Value::as_str).unwrap_or("?");
            @let h = c.get("histogram");
            @if let Some(h) = h {
                @let reference: Vec<u64> = h.get("reference").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
                @let current: Vec<u64> = h.get("current").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
                @let labels: Vec<String> = match h.get("type").and_then(Value::as_str) {
                    Some("categories") => h.get("labels").and_then(Value::as_array).map(|a| a.iter().map(|l| l.as_str().unwrap_or("?").to_string()).collect()).unwrap_or_default(),
                    _ => h.get("edges").and_then(Value::as_array).map(|e| e.windows(2).map(|w| format!("{}–{}", w[0].as_f64().map(page::number).unwrap_or_default(), w[1].as_f64().map(page::number).unwrap_or_default())).collect()).unwrap_or_default(),
                };
                @if labels.len() == reference.len() && reference.len() == current.len() && !labels.is_empty() {
                    div.hist {
                        h3 { (name) @if let Some(s) = c.get("score").and_then(Value::as_f64) { " · score " (page::number(s)) } @if c.get("drift_detected").and_then(Value::as_bool) == Some(true) { " " (badge("drifted")) } }
                        (charts::histogram(&format!("hist-{k}"), &format!("{name} histogram"), &labels, &reference, &current))
                    }
                }
            }
        }
    }
}

pub async fn page(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>, Query(choice): Query<Choice>) -> PageResult {
    let name = model_name(&name, &viewer)?;
    let deployment = state.registry.get_deployment(&viewer.principal, &name).await.for_viewer(&viewer)?;
    let monitors = state.registry.monitors(&viewer.principal, Some(&name)).await.for_viewer(&viewer)?;
    let alerts = state.registry.alerts(&viewer.principal, Some(&name), false, 50).await.for_viewer(&viewer)?;
    let chosen = choice.monitor.clone().or_else(|| monitors.first().map(|m| m.spec.name.clone()));
    let mut results = match &chosen {
        Some(m) => state.registry.monitor_results(&viewer.principal, &name, m, None, WINDOWS).await.for_viewer(&viewer)?,
        None => Vec::new(),
    };
    results.sort_by_key(|r| r.start);
    let labels: Vec<String> = results.iter().map(label).collect();
    let drift = series_of(&results, |r| {
        drift_columns(r).into_iter().filter_map(|c| Some((c.get("column")?.as_str()?.to_string(), c.get("score")?.as_f64()?))).collect()
    });
    let threshold = results.iter().rev().flat_map(drift_columns).find_map(|c| c.get("threshold").and_then(Value::as_f64));
    let performance = series_of(&results, |r| numbers(r.body.get("performance").and_then(|p| p.get("metrics"))));
    let estimated = series_of(&results, |r| numbers(r.body.get("estimated")));
    let picked = choice.window.as_deref().and_then(|w| w.parse::<usize>().ok()).filter(|i| *i < results.len()).or(results.len().checked_sub(1));
    let base = format!("/ui/deployments/{}/monitoring", enc(name.as_str()));
    let monitor_q = chosen.as_deref().map(|m| format!("monitor={}&", enc(m))).unwrap_or_default();
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/deployments" { "Deployments" } " / " a href={ "/ui/deployments/" (enc(name.as_str())) } { (name) } " / " span aria-current="page" { "Monitoring" } }
        h1 { "Monitoring " (deployment.name) }
        @if monitors.is_empty() {
            p.empty { "No monitor watches this deployment (" code { "modelops monitor create" } ")." }
        } @else {
            form.filters method="get" action=(base) {
                div.field {
                    label for="monitor" { "Monitor" }
                    select id="monitor" name="monitor" { @for m in &monitors { option value=(m.spec.name) selected[Some(&m.spec.name) == chosen.as_ref()] { (m.spec.name) } } }
                }
                div.field.buttons { button type="submit" { "Show" } }
            }
            @if results.is_empty() {
                p.empty { "No window has been computed yet." }
            } @else {
                section aria-labelledby="drift-h" {
                    h2 id="drift-h" { "Drift score per feature" }
                    @if drift.is_empty() {
                        p.empty { "Drift was not computed: " (results.last().and_then(|r| r.body.get("drift")).and_then(|d| d.get("not_computed")).and_then(Value::as_str).or_else(|| results.last().and_then(|r| r.body.get("not_computed")).and_then(Value::as_str)).unwrap_or("no reference profile or too few rows")) }
                    } @else {
                        (charts::lines("drift", "Drift score per feature", "Each line is one feature's drift score per window, oldest on the left; the dashed line is the threshold.", &labels, &drift, threshold))
                    }
                    div.table-wrap {
                        table.compact {
                            caption { "Windows (newest first)" }
                            thead { tr { th scope="col" { "Window" } th scope="col" { "Rows" } th scope="col" { "Version" } th scope="col" { "Drifted features" } th scope="col" { "Histograms" } } }
                            tbody {
                                @for (i, r) in results.iter().enumerate().rev() {
                                    @let cols = drift_columns(r);
                                    @let drifted: Vec<&str> = cols.iter().filter(|c| c.get("drift_detected").and_then(Value::as_bool) == Some(true)).filter_map(|c| c.get("column").and_then(Value::as_str)).collect();
                                    tr.selected[Some(i) == picked] {
                                        th scope="row" { (time(&r.start)) " – " (time(&r.end)) @if !r.closed { " (open)" } }
                                        td { (r.rows) } td { "v" (r.version) }
                                        td { @if cols.is_empty() { "—" } @else if drifted.is_empty() { "none of " (cols.len()) } @else { (drifted.join(", ")) } }
                                        td { a href={ (base) "?" (monitor_q) "window=" (i) } aria-current=[(Some(i) == picked).then_some("true")] { "show" } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(i) = picked {
                    section aria-labelledby="hist-h" {
                        h2 id="hist-h" { "Reference vs current: window ending " (time(&results[i].end)) }
                        (histograms(&results[i]))
                    }
                }
                @if !performance.is_empty() {
                    section aria-labelledby="perf-h" {
                        h2 id="perf-h" { "Performance (labelled calls)" }
                        (charts::lines("performance", "Performance", "Measured metrics per window, from the ground truth sent for recorded calls.", &labels, &performance, None))
                    }
                }
                @if !estimated.is_empty() {
                    section aria-labelledby="est-h" {
                        h2 id="est-h" { "Estimated performance (no labels)" }
                        (charts::lines("estimated", "Estimated performance", "Performance estimated from the model's confidence (CBPE) per window.", &labels, &estimated, None))
                    }
                }
                @if let Some(f) = results.iter().rev().find_map(|r| r.body.get("fairness")) {
                    section aria-labelledby="fair-h" {
                        h2 id="fair-h" { "Fairness (latest window with labels)" }
                        (json_table("Fairness", f))
                    }
                }
            }
        }
        section aria-labelledby="alerts-h" {
            h2 id="alerts-h" { "Alerts" }
            @if alerts.is_empty() { p.empty { "No alert has fired." } } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Alerts" }
                        thead { tr { th scope="col" { "Rule" } th scope="col" { "Monitor" } th scope="col" { "State" } th scope="col" { "Version" } th scope="col" { "Fired" } th scope="col" { "Resolved" } } }
                        tbody {
                            @for a in &alerts {
                                tr { th scope="row" { (a.rule) } td { (a.monitor) } td { (badge(a.state.as_str())) } td { "v" (a.version) } td { (time(&a.fired_at)) } td { (page::opt_time(a.resolved_at.as_ref())) } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Deployments, &format!("Monitoring {}", deployment.name), None, body).into_response())
}
