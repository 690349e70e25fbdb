//! `modelops monitor show --format html`: a monitor's windows as one
//! self-contained page (no script, nothing fetched): line charts over time
//! of the drift share, each column's drift score against its threshold, and
//! the performance metrics once labels arrived; then the table of windows.

use modelops_monitor::report::html::escape;
use modelops_server::wire::WindowResultList;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const PAD: f64 = 40.0;
const COLOURS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// One line: `(x index, y)` points.
struct Series {
    name: String,
    points: Vec<(usize, f64)>,
}

fn chart(title: &str, labels: &[String], series: &[Series], threshold: Option<f64>) -> String {
    let mut out = String::new();
    let values: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).chain(threshold).filter(|v| v.is_finite()).collect();
    if values.is_empty() {
        return format!("<h3>{}</h3><p class=\"none\">nothing computed yet</p>", escape(title));
    }
    let (mut lo, mut hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    lo = lo.min(0.0);
    if hi <= lo {
        hi = lo + 1.0;
    }
    let n = labels.len().max(2) - 1;
    let x = |i: usize| PAD + (WIDTH - 2.0 * PAD) * i as f64 / n as f64;
    let y = |v: f64| HEIGHT - PAD / 2.0 - (HEIGHT - PAD) * (v - lo) / (hi - lo);
    let _ = write!(out, "<h3>{}</h3><svg viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\">", escape(title), escape(title));
    let _ = write!(out, "<line x1=\"{PAD}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>", y(lo), WIDTH - PAD, y(lo));
    for v in [lo, (lo + hi) / 2.0, hi] {
        let _ = write!(out, "<text x=\"2\" y=\"{:.1}\" font-size=\"10\">{}</text>", y(v) + 3.0, escape(&format!("{v:.3}")));
    }
    if let Some(t) = threshold {
        let _ = write!(out, "<line x1=\"{PAD}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>", y(t), WIDTH - PAD);
    }
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let path: Vec<String> = s.points.iter().filter(|p| p.1.is_finite()).map(|&(i, v)| format!("{:.1},{:.1}", x(i), y(v))).collect();
        let _ = write!(out, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>", path.join(" "), escape(&s.name));
        for &(i, v) in s.points.iter().filter(|p| p.1.is_finite()) {
            let _ = write!(out, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{} {}: {v:.4}</title></circle>", x(i), y(v), escape(&s.name), escape(&labels[i]));
        }
    }
    if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
        let _ = write!(out, "<text x=\"{PAD}\" y=\"{HEIGHT}\" font-size=\"10\">{}</text>", escape(first));
        let _ = write!(out, "<text x=\"{}\" y=\"{HEIGHT}\" font-size=\"10\" text-anchor=\"end\">{}</text>", WIDTH - PAD, escape(last));
    }
    out.push_str("</svg><p class=\"legend\">");
    for (k, s) in series.iter().enumerate() {
        let _ = write!(out, "<span style=\"color:{}\">■</span> {} ", COLOURS[k % COLOURS.len()], escape(&s.name));
    }
    out.push_str("</p>");
    out
}

pub fn html(list: &WindowResultList) -> String {
    let labels: Vec<String> = list.results.iter().map(|w| format!("{} v{}", w.start.format("%Y-%m-%d %H:%M:%S"), w.version)).collect();
    let mut share = Series { name: "share of drifted columns".into(), points: Vec::new() };
    let mut scores: BTreeMap<String, Series> = BTreeMap::new();
    let mut thresholds = Vec::new();
    let mut metrics: BTreeMap<String, Series> = BTreeMap::new();
    for (i, w) in list.results.iter().enumerate() {
        let drift = w.result.get("drift");
        if let Some(s) = drift.and_then(|d| d.get("share_of_drifted_columns")).and_then(Value::as_f64) {
            share.points.push((i, s));
        }
        for c in drift.and_then(|d| d.get("columns")).and_then(Value::as_array).into_iter().flatten() {
            let (Some(name), Some(score)) = (c.get("column").and_then(Value::as_str), c.get("score").and_then(Value::as_f64)) else { continue };
            let method = c.get("method").and_then(Value::as_str).unwrap_or("");
            scores.entry(name.to_string()).or_insert_with(|| Series { name: format!("{name} ({method})"), points: Vec::new() }).points.push((i, score));
            if let Some(t) = c.get("threshold").and_then(Value::as_f64) {
                thresholds.push(t);
            }
        }
        for (k, v) in w.result.get("performance").and_then(|p| p.get("metrics")).and_then(Value::as_object).into_iter().flatten() {
            if let Some(v) = v.as_f64() {
                metrics.entry(k.clone()).or_insert_with(|| Series { name: k.clone(), points: Vec::new() }).points.push((i, v));
            }
        }
        for k in ["accuracy", "roc_auc"] {
            if let Some(v) = w.result.get("estimated").and_then(|e| e.get(k)).and_then(Value::as_f64) {
                let name = format!("{k} (estimated, CBPE)");
                metrics.entry(name.clone()).or_insert_with(|| Series { name, points: Vec::new() }).points.push((i, v));
            }
        }
    }
    let common_threshold = thresholds.first().copied().filter(|t| thresholds.iter().all(|x| x == t));
    let mut out = String::from("<!doctype html><html><head><meta charset=\"utf-8\"><title>");
    let title = format!("Monitor {} of deployment {}", list.monitor, list.deployment);
    out.push_str(&escape(&title));
    out.push_str("</title><style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}.none{color:#777}.legend{font-size:12px}</style></head><body>");
    let _ = write!(out, "<h1>{}</h1><p>{} windows.</p>", escape(&title), list.results.len());
    out.push_str(&chart("Dataset drift: share of drifted columns", &labels, &[share], None));
    let score_series: Vec<Series> = scores.into_values().collect();
    out.push_str(&chart("Drift score per column (dashed: threshold)", &labels, &score_series, common_threshold));
    let metric_series: Vec<Series> = metrics.into_values().collect();
    out.push_str(&chart("Performance: measured over labelled calls, and estimated without labels", &labels, &metric_series, None));
    out.push_str("<h2>Windows</h2><table><tr><th>start</th><th>end</th><th>version</th><th>rows</th><th>state</th><th>drift share</th><th>drifted</th><th>labelled</th><th>note</th></tr>");
    for w in &list.results {
        let drift = w.result.get("drift");
        let drifted: Vec<&str> = drift
            .and_then(|d| d.get("columns"))
            .and_then(Value::as_array)
            .map(|c| c.iter().filter(|c| c.get("drift_detected") == Some(&Value::Bool(true))).filter_map(|c| c.get("column").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        let note = w.result.get("not_computed").or_else(|| drift.and_then(|d| d.get("not_computed"))).and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            w.start.to_rfc3339(),
            w.end.to_rfc3339(),
            w.version,
            w.rows,
            if w.closed { "closed" } else { "open" },
            drift.and_then(|d| d.get("share_of_drifted_columns")).and_then(Value::as_f64).map(|v| format!("{v:.2}")).unwrap_or_default(),
            escape(&drifted.join(", ")),
            w.result.get("labeled_rows").and_then(Value::as_u64).map(|v| v.to_string()).unwrap_or_default(),
            escape(note)
        );
    }
    out.push_str("</table></body></html>\n");
    out
}
