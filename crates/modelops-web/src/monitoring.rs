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

/// Fairness of a window (modelops-monitor's report): the metrics per group
/// of the protected attribute, the differences and ratios between groups,
/// the four-fifths screen and the report's warnings.
fn fairness(value: &Value) -> Markup {
    let num = |v: Option<&Value>| v.and_then(Value::as_f64).map(page::number).unwrap_or_else(|| "—".into());
    let attribute = value.get("attribute").and_then(Value::as_str).unwrap_or("?");
    let groups = value.get("groups").and_then(Value::as_array).cloned().unwrap_or_default();
    let summary = [
        ("demographic parity difference", "demographic_parity_difference"),
        ("demographic parity ratio", "demographic_parity_ratio"),
        ("equalized odds difference", "equalized_odds_difference"),
        ("equalized odds ratio", "equalized_odds_ratio"),
        ("equal opportunity difference", "equal_opportunity_difference"),
        ("equal opportunity ratio", "equal_opportunity_ratio"),
    ];
    let four_fifths = value.get("four_fifths");
    let flagged = four_fifths.and_then(|f| f.get("flagged")).and_then(Value::as_bool) == Some(true);
    let below: Vec<&str> = four_fifths.and_then(|f| f.get("groups_below")).and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let warnings: Vec<&str> = value.get("warnings").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    html! {
        div.table-wrap {
            table.compact {
                caption { "By group of " code { (attribute) } }
                thead { tr { th scope="col" { "Group" } th scope="col" { "Rows" } th scope="col" { "Share" } th scope="col" { "Selection rate" } th scope="col" { "Accuracy" } th scope="col" { "True positive rate" } th scope="col" { "False positive rate" } th scope="col" { "Impact ratio" } } }
                tbody {
                    @for g in &groups {
                        tr {
                            th scope="row" { (g.get("group").and_then(Value::as_str).unwrap_or("?")) }
                            td { (g.get("count").and_then(Value::as_u64).unwrap_or(0)) }
                            td { (num(g.get("share"))) } td { (num(g.get("selection_rate"))) } td { (num(g.get("accuracy"))) }
                            td { (num(g.get("true_positive_rate"))) } td { (num(g.get("false_positive_rate"))) } td { (num(g.get("impact_ratio"))) }
                        }
                    }
                }
            }
        }
        table.compact {
            caption { "Between groups" }
            tbody { @for (label, key) in summary { tr { th scope="row" { (label) } td { (num(value.get(key))) } } } }
        }
        p { "Four-fifths screen: " @if flagged { span.no { "flagged" } @if !below.is_empty() { " — below 80 % of the most selected group: " (below.join(", ")) } } @else { span.ok { "not flagged" } } }
        @if !warnings.is_empty() { ul.help { @for w in &warnings { li { (w) } } } }
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
                        (fairness(f))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fairness_shows_every_group_and_the_screen() {
        let report = serde_json::json!({
            "attribute": "sex", "pos_label": "1", "rows": 300,
            "groups": [
                {"group": "f", "count": 120, "share": 0.4, "selection_rate": 0.2, "accuracy": 0.81, "true_positive_rate": 0.7, "false_positive_rate": 0.1, "impact_ratio": 0.5},
                {"group": "m", "count": 180, "share": 0.6, "selection_rate": 0.4, "accuracy": 0.83, "true_positive_rate": 0.75, "false_positive_rate": 0.12, "impact_ratio": 1.0}
            ],
            "demographic_parity_difference": 0.2, "demographic_parity_ratio": 0.5,
            "four_fifths": {"threshold": 0.8, "ratio": 0.5, "flagged": true, "groups_below": ["f"]},
            "warnings": ["few rows in group f"]
        });
        let html = fairness(&report).into_string();
        for needle in ["<code>sex</code>", ">f</th>", ">m</th>", "<td>120</td>", "<td>0.81</td>", "demographic parity ratio</th><td>0.5</td>", "flagged", "below 80 % of the most selected group: f", "few rows in group f"] {
            assert!(html.contains(needle), "`{needle}` missing from {html}");
        }
    }
}
