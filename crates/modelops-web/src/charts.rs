// Charts drawn on the server as inline SVG: no script, nothing fetched.
// Each chart has a text title and description for screen readers, and the
// numbers it draws are also in a table beside it.

use maud::{html, Markup};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const PAD_LEFT: f64 = 48.0;
const PAD_RIGHT: f64 = 12.0;
const PAD_TOP: f64 = 12.0;
const PAD_BOTTOM: f64 = 28.0;

/// One line of a line chart: a name and its points (x in 0..n, y).
pub struct Series {
    pub name: String,
    pub points: Vec<(usize, f64)>,
}

/// Lines over `x_labels` (one per window), with an optional horizontal
/// threshold line.
pub fn lines(id: &str, title: &str, description: &str, x_labels: &[String], series: &[Series], threshold: Option<f64>) -> Markup {
    let mut max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    if let Some(t) = threshold {
        max = max.max(t);
    }
    if max <= 0.0 {
        max = 1.0;
    }
    max *= 1.1;
    let n = x_labels.len().max(2) - 1;
    let x = |i: usize| PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) * i as f64 / n as f64;
    let y = |v: f64| PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) * (1.0 - v / max);
    let id = format!("chart-{id}");
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby={ (id) "-t " (id) "-d" } {
                title id={ (id) "-t" } { (title) }
                desc id={ (id) "-d" } { (description) }
                line.axis x1=(PAD_LEFT) y1=(HEIGHT - PAD_BOTTOM) x2=(WIDTH - PAD_RIGHT) y2=(HEIGHT - PAD_BOTTOM) {}
                line.axis x1=(PAD_LEFT) y1=(PAD_TOP) x2=(PAD_LEFT) y2=(HEIGHT - PAD_BOTTOM) {}
                @for k in 0..=4 {
                    @let v = max * f64::from(k) / 4.0;
                    text.tick x=(PAD_LEFT - 4.0) y=(y(v) + 4.0) text-anchor="end" { (crate::page::number(v)) }
                }
                @if let Some(t) = threshold {
                    line.threshold x1=(PAD_LEFT) y1=(y(t)) x2=(WIDTH - PAD_RIGHT) y2=(y(t)) {}
                }
                @for (k, s) in series.iter().enumerate() {
                    @let path: Vec<String> = s.points.iter().filter(|p| p.1.is_finite()).map(|(i, v)| format!("{:.1},{:.1}", x(*i), y(*v))).collect();
                    polyline class={ "series s" (k % 8) } points=(path.join(" ")) {}
                    @for (i, v) in s.points.iter().filter(|p| p.1.is_finite()) {
                        circle class={ "dot s" (k % 8) } cx=(format!("{:.1}", x(*i))) cy=(format!("{:.1}", y(*v))) r="2.5" {}
                    }
                }
                @if let (Some(first), Some(last)) = (x_labels.first(), x_labels.last()) {
                    text.tick x=(PAD_LEFT) y=(HEIGHT - 8.0) { (first) }
                    text.tick x=(WIDTH - PAD_RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (last) }
                }
            }
            figcaption {
                ul.legend {
                    @for (k, s) in series.iter().enumerate() {
                        li { span class={ "swatch s" (k % 8) } aria-hidden="true" {} (s.name) }
                    }
                    @if threshold.is_some() {
                        li { span.swatch.threshold aria-hidden="true" {} "threshold" }
                    }
                }
            }
        }
    }
}

/// Reference and current shares per bin, side by side.
pub fn histogram(id: &str, title: &str, labels: &[String], reference: &[u64], current: &[u64]) -> Markup {
    let share = |counts: &[u64]| {
        let total: u64 = counts.iter().sum();
        counts.iter().map(|c| if total == 0 { 0.0 } else { *c as f64 / total as f64 }).collect::<Vec<f64>>()
    };
    let (r, c) = (share(reference), share(current));
    let max = r.iter().chain(c.iter()).fold(0.0f64, |a, b| a.max(*b)).max(0.01) * 1.1;
    let bins = labels.len().max(1) as f64;
    let slot = (WIDTH - PAD_LEFT - PAD_RIGHT) / bins;
    let bar = (slot * 0.4).max(1.0);
    let y = |v: f64| PAD_TOP + (HEIGHT - PAD_TOP - PAD_BOTTOM) * (1.0 - v / max);
    let id = format!("chart-{id}");
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-labelledby={ (id) "-t" } {
                title id={ (id) "-t" } { (title) ": share of rows per bin, reference and current" }
                line.axis x1=(PAD_LEFT) y1=(HEIGHT - PAD_BOTTOM) x2=(WIDTH - PAD_RIGHT) y2=(HEIGHT - PAD_BOTTOM) {}
                @for k in 0..=4 {
                    @let v = max * f64::from(k) / 4.0;
                    text.tick x=(PAD_LEFT - 4.0) y=(y(v) + 4.0) text-anchor="end" { (format!("{:.0}%", v * 100.0)) }
                }
                @for (i, label) in labels.iter().enumerate() {
                    @let x0 = PAD_LEFT + slot * i as f64 + slot * 0.1;
                    rect.ref x=(format!("{x0:.1}")) y=(format!("{:.1}", y(r[i]))) width=(format!("{bar:.1}")) height=(format!("{:.1}", (HEIGHT - PAD_BOTTOM - y(r[i])).max(0.0))) {
                        title { (label) ": reference " (format!("{:.1}%", r[i] * 100.0)) }
                    }
                    rect.cur x=(format!("{:.1}", x0 + bar)) y=(format!("{:.1}", y(c[i]))) width=(format!("{bar:.1}")) height=(format!("{:.1}", (HEIGHT - PAD_BOTTOM - y(c[i])).max(0.0))) {
                        title { (label) ": current " (format!("{:.1}%", c[i] * 100.0)) }
                    }
                }
                @if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
                    text.tick x=(PAD_LEFT) y=(HEIGHT - 8.0) { (first) }
                    text.tick x=(WIDTH - PAD_RIGHT) y=(HEIGHT - 8.0) text-anchor="end" { (last) }
                }
            }
            figcaption {
                ul.legend {
                    li { span.swatch.ref aria-hidden="true" {} "reference" }
                    li { span.swatch.cur aria-hidden="true" {} "current" }
                }
            }
        }
    }
}
