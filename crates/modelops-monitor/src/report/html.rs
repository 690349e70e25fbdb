//! The HTML page: one self-contained file, inline CSS and SVG, no script and
//! no network (a Content-Security-Policy says so to the browser). Every
//! string that came from the data goes through [`escape`].

use std::fmt::Write;

use super::svg::{self, GroupBars, Overlay, CURRENT_COLOUR, REFERENCE_COLOUR};
use super::{ColumnDrift, DriftView, Histogram, Report};
use crate::evaluation::{Evaluation, Fairness, Performance};
use crate::fairness::FairnessReport;
use crate::performance::MetricSet;

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for people: four significant decimals, scientific when tiny.
pub fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        return "–".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "∞".to_owned() } else { "−∞".to_owned() };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 1000.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".to_owned() } else { s.to_owned() }
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), fmt_num)
}

const STYLE: &str = r#"
:root{--ink:#1f2630;--muted:#5d6875;--line:#e3e7ec;--bg:#f6f7f9;--card:#fff;--ok:#2f7d57;--ok-bg:#e5f3ec;--bad:#b9382f;--bad-bg:#fbe9e7;--na:#6b7280;--na-bg:#eef0f3;--accent:#33527f}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
header{background:#1f2b3d;color:#fff;padding:28px 40px 24px}
header .brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;opacity:.7}
header h1{margin:4px 0 6px;font-size:26px;font-weight:600}
header .meta{font-size:13px;opacity:.8}
header code{background:rgba(255,255,255,.12);padding:1px 5px;border-radius:4px}
main{max-width:1180px;margin:0 auto;padding:24px 40px 48px}
nav{margin:0 0 18px;font-size:13px}
nav a{color:var(--accent);margin-right:16px;text-decoration:none}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(190px,1fr));gap:14px;margin-bottom:28px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.card .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.card .value{font-size:26px;font-weight:600;margin-top:4px;font-variant-numeric:tabular-nums}
.card .sub{font-size:12px;color:var(--muted)}
.card.bad{border-left:4px solid var(--bad)}.card.ok{border-left:4px solid var(--ok)}.card.na{border-left:4px solid var(--na)}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:22px 24px;margin-bottom:24px}
section h2{margin:0 0 4px;font-size:19px}
section .lead{color:var(--muted);margin:0 0 16px}
h3{font-size:15px;margin:20px 0 8px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em;background:#fafbfc}
td.num,th.num{text-align:right}
.badge{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.bad{color:var(--bad);background:var(--bad-bg)}.badge.ok{color:var(--ok);background:var(--ok-bg)}.badge.na{color:var(--na);background:var(--na-bg)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:16px;margin-top:16px}
.col{border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.col h4{margin:0;font-size:14px;display:flex;justify-content:space-between;gap:8px;align-items:center;word-break:break-all}
.col .stats{font-size:12px;color:var(--muted);margin:2px 0 6px}
.legend{font-size:12px;color:var(--muted)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px;vertical-align:-1px}
.metrics{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:12px}
.metric{border:1px solid var(--line);border-radius:10px;padding:10px 12px}
.metric .name{font-size:12px;color:var(--muted)}
.metric .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums}
.metric .why{font-size:12px;color:var(--na)}
.gauge{width:100%;height:6px;display:block;margin-top:6px}
.confusion td{text-align:center;width:90px;font-size:16px;font-weight:600}
.confusion th{text-align:center}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:20px}
.note{background:#fff8e6;border:1px solid #f1dfae;border-radius:8px;padding:10px 12px;font-size:13px;color:#6b5518;margin-top:14px}
.warn{margin:10px 0 0;padding-left:18px;color:#6b5518;font-size:13px}
.chart{display:block;max-width:100%;height:auto}
footer{color:var(--muted);font-size:12px;text-align:center;padding:8px 0 24px}
"#;

pub(super) fn page(report: &Report<'_>) -> String {
    let mut s = String::with_capacity(64 * 1024);
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    // Nothing may be fetched: the report is one file that works offline.
    s.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    let _ = write!(s, "<title>{}</title><style>{STYLE}</style></head><body>", escape(&report.title));
    let _ = write!(
        s,
        "<header><div class=\"brand\">modelops · monitoring report</div><h1>{}</h1><div class=\"meta\">{}</div></header><main>",
        escape(&report.title),
        report.sources.iter().map(|(k, v)| format!("{}: <code>{}</code>", escape(k), escape(v))).collect::<Vec<_>>().join(" · ")
    );
    nav(&mut s, report);
    summary_cards(&mut s, report);
    if let Some(drift) = report.drift {
        drift_section(&mut s, drift);
    }
    if let Some(eval) = report.evaluation {
        performance_section(&mut s, eval);
        if let Some(f) = &eval.fairness {
            fairness_section(&mut s, f);
        }
    }
    let _ = writeln!(
        s,
        "</main><footer>Generated by modelops {}. Self-contained: no scripts, no network.</footer></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    s
}

fn nav(s: &mut String, report: &Report<'_>) {
    s.push_str("<nav>");
    if report.drift.is_some() {
        s.push_str("<a href=\"#drift\">Data drift</a>");
    }
    if let Some(e) = report.evaluation {
        s.push_str("<a href=\"#performance\">Performance</a>");
        if e.fairness.is_some() {
            s.push_str("<a href=\"#fairness\">Fairness</a>");
        }
    }
    s.push_str("</nav>");
}

fn card(s: &mut String, class: &str, label: &str, value: &str, sub: &str) {
    let _ = write!(
        s,
        "<div class=\"card {class}\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"sub\">{}</div></div>",
        escape(label),
        escape(value),
        escape(sub)
    );
}

fn summary_cards(s: &mut String, report: &Report<'_>) {
    s.push_str("<div class=\"cards\" id=\"summary\">");
    if let Some(d) = report.drift {
        let (class, value) = if d.dataset_drift { ("bad", "Yes") } else { ("ok", "No") };
        card(s, class, "Dataset drift", value, &format!("drifted if share ≥ {}", svg::percent(d.drift_share)));
        let share = if d.columns_total == 0 { 0.0 } else { d.drifted as f64 / d.columns_total as f64 };
        card(
            s,
            class,
            "Drifted columns",
            &svg::percent(share),
            &format!("{} of {} columns", d.drifted, d.columns_total),
        );
        if d.not_computed > 0 {
            card(s, "na", "Not computed", &d.not_computed.to_string(), "columns without a score");
        }
    }
    if let Some(e) = report.evaluation {
        let key: &[(&str, &str)] = match &e.performance {
            Performance::Classification(_) => &[("accuracy", "Accuracy"), ("roc_auc", "ROC AUC"), ("f1", "F1")],
            Performance::Regression(_) => &[("rmse", "RMSE"), ("r2", "R²")],
        };
        let metrics = metrics_of(&e.performance);
        for (name, title) in key {
            if let Some(v) = metrics.value(name) {
                card(s, "", title, &fmt_num(v), &format!("{} rows", e.rows - e.rows_dropped_missing));
            }
        }
        if let Some(Fairness::Classification(f)) = &e.fairness {
            let (class, sub) = if f.four_fifths.flagged {
                ("bad", format!("below {} (four-fifths flag)", fmt_num(f.four_fifths.threshold)))
            } else {
                ("ok", format!("not below {}", fmt_num(f.four_fifths.threshold)))
            };
            card(s, class, "Demographic parity ratio", &opt(f.demographic_parity_ratio), &sub);
        }
    }
    s.push_str("</div>");
}

fn metrics_of(p: &Performance) -> &MetricSet {
    match p {
        Performance::Classification(c) => &c.metrics,
        Performance::Regression(r) => &r.metrics,
    }
}

fn verdict(c: &ColumnDrift) -> &'static str {
    match (c.not_computed.is_some(), c.drifted) {
        (true, _) | (_, None) => "<span class=\"badge na\">Not computed</span>",
        (false, Some(true)) => "<span class=\"badge bad\">Drift</span>",
        (false, Some(false)) => "<span class=\"badge ok\">No drift</span>",
    }
}

fn legend() -> String {
    format!(
        "<span class=\"legend\"><span class=\"swatch\" style=\"background:{REFERENCE_COLOUR}\"></span>reference<span class=\"swatch\" style=\"background:{CURRENT_COLOUR}\"></span>current</span>"
    )
}

fn drift_section(s: &mut String, d: &DriftView) {
    let _ = write!(
        s,
        "<section id=\"drift\"><h2>Data drift</h2><p class=\"lead\">{} of {} columns drifted ({}); the dataset counts as drifted when the share reaches {}. {}</p>",
        d.drifted,
        d.columns_total,
        svg::percent(if d.columns_total == 0 { 0.0 } else { d.drifted as f64 / d.columns_total as f64 }),
        svg::percent(d.drift_share),
        escape(&d.note)
    );
    s.push_str("<table><thead><tr><th>Column</th><th>Type</th><th>Method</th><th class=\"num\">Score</th><th class=\"num\">Threshold</th><th>Verdict</th></tr></thead><tbody>");
    for c in &d.columns {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}{}</td></tr>",
            escape(&c.name),
            escape(&c.kind),
            escape(&c.method),
            opt(c.score),
            opt(c.threshold),
            verdict(c),
            c.not_computed.as_ref().map(|r| format!(" <span class=\"legend\">{}</span>", escape(r))).unwrap_or_default()
        );
    }
    s.push_str("</tbody></table>");
    let _ = write!(s, "<h3>Reference vs current</h3>{}<div class=\"grid\">", legend());
    for c in &d.columns {
        let stats = match c.score {
            Some(score) => format!("{} · score {} (threshold {})", escape(&c.method), fmt_num(score), opt(c.threshold)),
            None => String::new(),
        };
        let _ = write!(
            s,
            "<div class=\"col\"><h4><span>{}</span>{}</h4><div class=\"stats\">{stats}</div>",
            escape(&c.name),
            verdict(c),
        );
        match &c.histogram {
            Some(h) => s.push_str(&histogram_svg(h)),
            None => {
                let _ = write!(s, "<div class=\"legend\">No histogram{}</div>", c.not_computed.as_ref().map(|r| format!(": {}", escape(r))).unwrap_or_default());
            }
        }
        s.push_str("</div>");
    }
    s.push_str("</div></section>");
}

fn histogram_svg(h: &Histogram) -> String {
    match h {
        Histogram::Numeric { edges, reference, current } => {
            let labels: Vec<String> =
                edges.windows(2).map(|w| format!("[{}, {})", fmt_num(w[0]), fmt_num(w[1]))).collect();
            let range = match (edges.first(), edges.last()) {
                (Some(&a), Some(&b)) => Some((a, b)),
                _ => None,
            };
            svg::overlay(&Overlay { labels: &labels, reference, current, numeric: true, range })
        }
        Histogram::Categorical { categories, reference, current } => {
            svg::overlay(&Overlay { labels: categories, reference, current, numeric: false, range: None })
        }
    }
}

fn performance_section(s: &mut String, e: &Evaluation) {
    let used = e.rows - e.rows_dropped_missing;
    let _ = write!(
        s,
        "<section id=\"performance\"><h2>Performance</h2><p class=\"lead\">{} · target <code>{}</code>, prediction <code>{}</code>{} · {} rows evaluated{}</p>",
        escape(&e.task.to_string()),
        escape(&e.target),
        escape(&e.prediction),
        e.score.as_ref().map(|sc| format!(", score <code>{}</code>", escape(sc))).unwrap_or_default(),
        used,
        if e.rows_dropped_missing > 0 { format!(", {} dropped for missing values", e.rows_dropped_missing) } else { String::new() }
    );
    s.push_str("<div class=\"metrics\">");
    let metrics = metrics_of(&e.performance);
    let bounded = |name: &str| !matches!(name, "log_loss" | "mae" | "mse" | "rmse");
    for m in &metrics.0 {
        match &m.value {
            Ok(v) => {
                let _ = write!(
                    s,
                    "<div class=\"metric\"><div class=\"name\">{}</div><div class=\"v\">{}</div>{}</div>",
                    escape(m.title),
                    fmt_num(*v),
                    if bounded(m.name) { svg::gauge(*v) } else { String::new() }
                );
            }
            Err(why) => {
                let _ = write!(
                    s,
                    "<div class=\"metric\"><div class=\"name\">{}</div><div class=\"v\">–</div><div class=\"why\">not computed: {}</div></div>",
                    escape(m.title),
                    escape(why)
                );
            }
        }
    }
    s.push_str("</div>");
    if let Performance::Classification(c) = &e.performance {
        if let (Some(cm), Some(pos)) = (&c.confusion, &c.pos_label) {
            let _ = write!(
                s,
                "<h3>Confusion matrix</h3><p class=\"legend\">positive label <code>{}</code></p><table class=\"confusion\" style=\"width:auto\"><tr><th></th><th>predicted positive</th><th>predicted negative</th></tr><tr><th>actual positive</th><td style=\"background:#e5f3ec\">{}</td><td style=\"background:#fbe9e7\">{}</td></tr><tr><th>actual negative</th><td style=\"background:#fbe9e7\">{}</td><td style=\"background:#e5f3ec\">{}</td></tr></table>",
                escape(pos),
                cm.tp,
                cm.fn_,
                cm.fp,
                cm.tn
            );
        } else {
            let _ = write!(
                s,
                "<p class=\"legend\">Labels: {}</p>",
                c.labels.iter().take(50).map(|l| format!("<code>{}</code>", escape(l))).collect::<Vec<_>>().join(" ")
            );
        }
    }
    s.push_str("</section>");
}

fn fairness_section(s: &mut String, f: &Fairness) {
    match f {
        Fairness::NotComputed(n) => {
            let _ = write!(
                s,
                "<section id=\"fairness\"><h2>Fairness</h2><p class=\"lead\"><span class=\"badge na\">Not computed</span> {}</p></section>",
                escape(&n.not_computed)
            );
        }
        Fairness::Regression { attribute, groups, not_computed } => {
            let _ = write!(
                s,
                "<section id=\"fairness\"><h2>Fairness by <code>{}</code></h2><p class=\"lead\">{}</p><table><thead><tr><th>Group</th><th class=\"num\">Rows</th><th class=\"num\">MAE</th><th class=\"num\">RMSE</th><th class=\"num\">R²</th></tr></thead><tbody>",
                escape(attribute),
                escape(not_computed)
            );
            for g in groups {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    escape(&g.group),
                    g.count,
                    fmt_num(g.mae),
                    fmt_num(g.rmse),
                    opt(g.r2)
                );
            }
            s.push_str("</tbody></table></section>");
        }
        Fairness::Classification(r) => classification_fairness(s, r),
    }
}

fn classification_fairness(s: &mut String, r: &FairnessReport) {
    let _ = write!(
        s,
        "<section id=\"fairness\"><h2>Fairness by <code>{}</code></h2><p class=\"lead\">{} groups, positive label <code>{}</code>. Differences are max − min over groups (0 is parity); ratios are min / max (1 is parity).</p>",
        escape(&r.attribute),
        r.groups.len(),
        escape(&r.pos_label)
    );
    s.push_str("<table style=\"width:auto;min-width:60%\"><thead><tr><th>Metric</th><th class=\"num\">Difference</th><th class=\"num\">Ratio</th><th>Over</th></tr></thead><tbody>");
    for (name, d, q, over) in [
        ("Demographic parity", r.demographic_parity_difference, r.demographic_parity_ratio, "selection rate"),
        ("Equalized odds", r.equalized_odds_difference, r.equalized_odds_ratio, "worst of TPR and FPR"),
        ("Equal opportunity", r.equal_opportunity_difference, r.equal_opportunity_ratio, "true positive rate"),
    ] {
        let _ = write!(
            s,
            "<tr><td>{name}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"legend\">{over}</td></tr>",
            opt(d),
            opt(q)
        );
    }
    let flag = if r.four_fifths.flagged {
        "<span class=\"badge bad\">Flagged</span>"
    } else if r.four_fifths.ratio.is_none() {
        "<span class=\"badge na\">Not defined</span>"
    } else {
        "<span class=\"badge ok\">Not flagged</span>"
    };
    let _ = write!(
        s,
        "<tr><td>Four-fifths rule</td><td></td><td class=\"num\">{}</td><td>{flag} <span class=\"legend\">ratio &lt; {}</span></td></tr></tbody></table>",
        opt(r.four_fifths.ratio),
        fmt_num(r.four_fifths.threshold)
    );

    // Show the biggest groups when there are many; the table below has all.
    let shown: Vec<&crate::fairness::GroupStats> = {
        let mut g: Vec<_> = r.groups.iter().collect();
        if g.len() > 30 {
            g.sort_by_key(|x| std::cmp::Reverse(x.count));
            g.truncate(30);
        }
        g
    };
    let names: Vec<String> = shown.iter().map(|g| g.group.clone()).collect();
    let below: Vec<bool> = shown.iter().map(|g| r.four_fifths.groups_below.contains(&g.group)).collect();
    let max_sr = shown.iter().map(|g| g.selection_rate).fold(0.0, f64::max);
    let sr_chart = svg::group_bars(&GroupBars {
        groups: &names,
        series: vec![("selection rate", "#33527f", shown.iter().map(|g| g.selection_rate).collect())],
        line: (max_sr > 0.0).then(|| (r.four_fifths.threshold * max_sr, format!("{} × max", fmt_num(r.four_fifths.threshold)))),
        highlight: &below,
    });
    let rates_chart = svg::group_bars(&GroupBars {
        groups: &names,
        series: vec![
            ("true positive rate", "#2f7d57", shown.iter().map(|g| g.true_positive_rate).collect()),
            ("false positive rate", "#c07a2c", shown.iter().map(|g| g.false_positive_rate).collect()),
        ],
        line: None,
        highlight: &[],
    });
    let _ = write!(
        s,
        "<div class=\"two\"><div><h3>Selection rate by group</h3><p class=\"legend\">Red bars are below the four-fifths line.</p>{sr_chart}</div><div><h3>True and false positive rates</h3><p class=\"legend\"><span class=\"swatch\" style=\"background:#2f7d57\"></span>TPR<span class=\"swatch\" style=\"background:#c07a2c\"></span>FPR</p>{rates_chart}</div></div>"
    );
    s.push_str("<h3>Groups</h3><table><thead><tr><th>Group</th><th class=\"num\">Rows</th><th class=\"num\">Share</th><th class=\"num\">Positives</th><th class=\"num\">Selection rate</th><th class=\"num\">Impact ratio</th><th class=\"num\">Accuracy</th><th class=\"num\">TPR</th><th class=\"num\">FPR</th></tr></thead><tbody>");
    for g in &r.groups {
        let _ = write!(
            s,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&g.group),
            g.count,
            svg::percent(g.share),
            g.actual_positives,
            fmt_num(g.selection_rate),
            opt(g.impact_ratio),
            fmt_num(g.accuracy),
            fmt_num(g.true_positive_rate),
            fmt_num(g.false_positive_rate)
        );
    }
    s.push_str("</tbody></table>");
    if !r.warnings.is_empty() {
        s.push_str("<ul class=\"warn\">");
        for w in &r.warnings {
            let _ = write!(s, "<li>{}</li>", escape(w));
        }
        s.push_str("</ul>");
    }
    s.push_str("<div class=\"note\"><strong>About the four-fifths flag.</strong> It marks a selection-rate ratio below the threshold, the US EEOC screening heuristic for adverse impact in employment decisions. It is a weak test: fairlearn's user guide warns that applying it outside that legal setting is often wrong. Read it as a prompt to look at the groups, with their sizes, not as a verdict of fair or unfair.</div></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<script>"a"&'b'</script>"#), "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1.0), "1");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_num(1.5e-7), "1.500e-7");
        assert_eq!(fmt_num(f64::NAN), "–");
        assert_eq!(fmt_num(-0.00001), "-1.000e-5");
    }
}
