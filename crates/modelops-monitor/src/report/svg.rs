//! Inline SVG charts. Plain strings, no script: the report must open offline
//! and show the same thing in every browser. Each bar carries a `<title>`
//! so hovering shows its exact value.

use std::fmt::Write;

use super::html::{escape, fmt_num};

pub const REFERENCE_COLOUR: &str = "#5b7fbf";
pub const CURRENT_COLOUR: &str = "#e08a3c";
const AXIS: &str = "#9aa3ad";
const TEXT: &str = "#4a5360";

/// Reference and current shares per bin, drawn as overlaid bars.
pub struct Overlay<'a> {
    /// One label per bin (`[0.1, 0.2)` or a category).
    pub labels: &'a [String],
    pub reference: &'a [f64],
    pub current: &'a [f64],
    /// Numeric bins sit side by side on a continuous axis; categories get
    /// paired bars with labels underneath.
    pub numeric: bool,
    /// Axis labels at the ends of a numeric axis.
    pub range: Option<(f64, f64)>,
}

fn max_of(values: &[f64]) -> f64 {
    values.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max)
}

/// A reference-vs-current histogram.
pub fn overlay(chart: &Overlay<'_>) -> String {
    let (width, height) = (420.0, 190.0);
    let (left, right, top, bottom) = (40.0, 8.0, 10.0, if chart.numeric { 24.0 } else { 46.0 });
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let bins = chart.labels.len().max(1);
    let ymax = max_of(chart.reference).max(max_of(chart.current)).max(1e-12);
    let y = |v: f64| top + plot_h - (v.max(0.0) / ymax) * plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Horizontal grid at 0, 50 %, 100 % of the tallest bar.
    for frac in [0.0, 0.5, 1.0] {
        let gy = y(ymax * frac);
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{}" y1="{gy:.1}" y2="{gy:.1}" stroke="{AXIS}" stroke-width="{}" stroke-opacity="0.6"/><text x="{}" y="{:.1}" font-size="9" fill="{TEXT}" text-anchor="end">{}</text>"#,
            width - right,
            if frac == 0.0 { 1.0 } else { 0.4 },
            left - 4.0,
            gy + 3.0,
            percent(ymax * frac)
        );
    }
    let slot = plot_w / bins as f64;
    for (i, label) in chart.labels.iter().enumerate() {
        let r = chart.reference.get(i).copied().unwrap_or(0.0);
        let c = chart.current.get(i).copied().unwrap_or(0.0);
        let x0 = left + slot * i as f64;
        let tip = format!("{}: reference {}, current {}", escape(label), percent(r), percent(c));
        if chart.numeric {
            let w = (slot - 1.0).max(0.5);
            for (v, colour) in [(r, REFERENCE_COLOUR), (c, CURRENT_COLOUR)] {
                let _ = write!(
                    s,
                    r#"<rect class="bar" x="{:.2}" y="{:.2}" width="{w:.2}" height="{:.2}" fill="{colour}" fill-opacity="0.55"><title>{tip}</title></rect>"#,
                    x0 + 0.5,
                    y(v),
                    top + plot_h - y(v)
                );
            }
        } else {
            let w = (slot * 0.38).max(0.5);
            let gap = slot * 0.08;
            for (k, (v, colour)) in [(r, REFERENCE_COLOUR), (c, CURRENT_COLOUR)].into_iter().enumerate() {
                let _ = write!(
                    s,
                    r#"<rect class="bar" x="{:.2}" y="{:.2}" width="{w:.2}" height="{:.2}" fill="{colour}" fill-opacity="0.85"><title>{tip}</title></rect>"#,
                    x0 + gap + k as f64 * w,
                    y(v),
                    top + plot_h - y(v)
                );
            }
            if bins <= 24 {
                let lx = x0 + slot / 2.0;
                let ly = top + plot_h + 10.0;
                let _ = write!(
                    s,
                    r#"<text x="{lx:.1}" y="{ly:.1}" font-size="9" fill="{TEXT}" text-anchor="end" transform="rotate(-35 {lx:.1} {ly:.1})">{}</text>"#,
                    escape(&truncate(label, 14))
                );
            }
        }
    }
    if let (true, Some((lo, hi))) = (chart.numeric, chart.range) {
        let ly = top + plot_h + 14.0;
        let _ = write!(
            s,
            r#"<text x="{left}" y="{ly}" font-size="9" fill="{TEXT}">{}</text><text x="{}" y="{ly}" font-size="9" fill="{TEXT}" text-anchor="end">{}</text>"#,
            fmt_num(lo),
            width - right,
            fmt_num(hi)
        );
    }
    s.push_str("</svg>");
    s
}

/// One horizontal bar per group for one or more series sharing the [0, 1]
/// scale, with an optional dashed reference line (the four-fifths bar).
pub struct GroupBars<'a> {
    pub groups: &'a [String],
    /// (series name, colour, values per group).
    pub series: Vec<(&'a str, &'a str, Vec<f64>)>,
    /// (x value, label) of a dashed vertical line.
    pub line: Option<(f64, String)>,
    /// Groups whose bars in the first series are drawn in the alert colour.
    pub highlight: &'a [bool],
}

pub fn group_bars(chart: &GroupBars<'_>) -> String {
    let n_series = chart.series.len().max(1) as f64;
    let bar_h = 12.0;
    let row_h = bar_h * n_series + 10.0;
    // Room above the bars for the reference line's label.
    let (left, right, top) = (120.0, 56.0, if chart.line.is_some() { 18.0 } else { 8.0 });
    let width = 520.0;
    let plot_w = width - left - right;
    let height = top + row_h * chart.groups.len() as f64 + 22.0;
    let x = |v: f64| left + v.clamp(0.0, 1.0) * plot_w;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" viewBox="0 0 {width} {height:.0}" width="100%" xmlns="http://www.w3.org/2000/svg">"#
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let tx = x(tick);
        let _ = write!(
            s,
            r#"<line x1="{tx:.1}" x2="{tx:.1}" y1="{top}" y2="{:.1}" stroke="{AXIS}" stroke-opacity="0.35"/><text x="{tx:.1}" y="{:.1}" font-size="9" fill="{TEXT}" text-anchor="middle">{}</text>"#,
            height - 18.0,
            height - 6.0,
            percent(tick)
        );
    }
    for (gi, group) in chart.groups.iter().enumerate() {
        let gy = top + row_h * gi as f64;
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" fill="{TEXT}" text-anchor="end">{}</text>"#,
            left - 6.0,
            gy + row_h / 2.0,
            escape(&truncate(group, 18))
        );
        for (si, (name, colour, values)) in chart.series.iter().enumerate() {
            let v = values.get(gi).copied().unwrap_or(f64::NAN);
            let by = gy + 4.0 + bar_h * si as f64;
            let alert = si == 0 && chart.highlight.get(gi).copied().unwrap_or(false);
            let fill = if alert { "#c8423b" } else { colour };
            let w = if v.is_finite() { x(v) - left } else { 0.0 };
            let _ = write!(
                s,
                r#"<rect class="bar" x="{left}" y="{by:.1}" width="{w:.2}" height="{:.1}" rx="2" fill="{fill}"><title>{}, {}: {}</title></rect><text x="{:.1}" y="{:.1}" font-size="9" fill="{TEXT}">{}</text>"#,
                bar_h - 2.0,
                escape(group),
                escape(name),
                fmt_num(v),
                left + w + 4.0,
                by + bar_h - 4.0,
                fmt_num(v)
            );
        }
    }
    if let Some((value, label)) = &chart.line {
        let lx = x(*value);
        let _ = write!(
            s,
            r##"<line x1="{lx:.1}" x2="{lx:.1}" y1="{:.1}" y2="{:.1}" stroke="#c8423b" stroke-dasharray="4 3" stroke-width="1.2"/><text x="{lx:.1}" y="{:.1}" font-size="9" fill="#c8423b" text-anchor="middle">{}</text>"##,
            top - 4.0,
            height - 18.0,
            top - 7.0,
            escape(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A small ROC-style square: a bar from 0 to `value` (used for gauges).
pub fn gauge(value: f64) -> String {
    let w = 100.0 * value.clamp(0.0, 1.0);
    format!(
        r##"<svg class="gauge" viewBox="0 0 100 6" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg"><rect width="100" height="6" rx="3" fill="#e6e9ee"/><rect width="{w:.2}" height="6" rx="3" fill="#3d7a5f"/></svg>"##
    )
}

pub fn percent(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let p = v * 100.0;
    if p != 0.0 && p.abs() < 1.0 {
        format!("{p:.2}%")
    } else {
        format!("{p:.0}%")
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_inside_svg() {
        let labels = vec!["<script>alert(1)</script>".to_owned()];
        let svg = overlay(&Overlay { labels: &labels, reference: &[0.5], current: &[0.5], numeric: false, range: None });
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn empty_and_nan_inputs_still_draw() {
        let svg = overlay(&Overlay { labels: &[], reference: &[], current: &[], numeric: true, range: None });
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let groups = vec!["a".to_owned()];
        let svg = group_bars(&GroupBars {
            groups: &groups,
            series: vec![("rate", "#000", vec![f64::NAN])],
            line: None,
            highlight: &[],
        });
        assert!(!svg.contains("NaN"), "{svg}");
    }
}
