//! Terminal and Markdown renderings of an [`Evaluation`].

use std::fmt::Write;

use super::html::fmt_num;
use crate::evaluation::{Evaluation, Fairness, Performance};
use crate::performance::MetricSet;

/// Rows of cells, rendered either as an aligned text table or as Markdown.
struct Grid {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Grid {
    fn new(header: &[&str]) -> Self {
        Grid { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .chain([self.header[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut l = String::from(" ");
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w - c.chars().count();
                // Numbers right-aligned, text left-aligned.
                if i > 0 && c.chars().next().is_some_and(|ch| ch.is_ascii_digit() || ch == '-' || ch == '–') {
                    let _ = write!(l, "{}{c}  ", " ".repeat(pad));
                } else {
                    let _ = write!(l, "{c}{}  ", " ".repeat(pad));
                }
            }
            l.trim_end().to_owned() + "\n"
        };
        let mut out = line(&self.header);
        out.push(' ');
        out.push_str(&widths.iter().map(|w| "─".repeat(*w)).collect::<Vec<_>>().join("  "));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    fn markdown(&self) -> String {
        let esc = |c: &str| c.replace('|', "\\|");
        let mut out = format!("| {} |\n|{}|\n", self.header.join(" | "), vec!["---"; self.header.len()].join("|"));
        for r in &self.rows {
            let _ = writeln!(out, "| {} |", r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | "));
        }
        out
    }
}

fn metrics(p: &Performance) -> &MetricSet {
    match p {
        Performance::Classification(c) => &c.metrics,
        Performance::Regression(r) => &r.metrics,
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), fmt_num)
}

struct Sections {
    heading: String,
    facts: Vec<String>,
    tables: Vec<(String, Grid)>,
    notes: Vec<String>,
}

fn sections(e: &Evaluation) -> Sections {
    let mut facts = vec![
        format!("task: {}", e.task),
        format!("rows: {} ({} dropped for missing values)", e.rows - e.rows_dropped_missing, e.rows_dropped_missing),
    ];
    let mut tables = Vec::new();
    let mut notes = Vec::new();

    let mut perf = Grid::new(&["metric", "value"]);
    for m in &metrics(&e.performance).0 {
        let v = match &m.value {
            Ok(v) => fmt_num(*v),
            Err(why) => format!("not computed: {why}"),
        };
        perf.row(vec![m.title.to_owned(), v]);
    }
    if let Performance::Classification(c) = &e.performance {
        if let (Some(cm), Some(pos)) = (&c.confusion, &c.pos_label) {
            facts.push(format!("positive label: {pos}; TP {} FP {} TN {} FN {}", cm.tp, cm.fp, cm.tn, cm.fn_));
        } else {
            let shown: Vec<&str> = c.labels.iter().take(20).map(String::as_str).collect();
            let more = c.labels.len().saturating_sub(shown.len());
            let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
            facts.push(format!("labels: {}{tail}", shown.join(", ")));
        }
    }
    tables.push(("Performance".to_owned(), perf));

    match &e.fairness {
        None => {}
        Some(Fairness::NotComputed(n)) => notes.push(format!("fairness not computed: {}", n.not_computed)),
        Some(Fairness::Regression { attribute, groups, not_computed }) => {
            let mut g = Grid::new(&["group", "rows", "MAE", "RMSE", "R²"]);
            for x in groups {
                g.row(vec![x.group.clone(), x.count.to_string(), fmt_num(x.mae), fmt_num(x.rmse), opt(x.r2)]);
            }
            tables.push((format!("Error by {attribute}"), g));
            notes.push(not_computed.clone());
        }
        Some(Fairness::Classification(r)) => {
            let mut parity = Grid::new(&["fairness metric", "difference", "ratio"]);
            parity.row(vec!["demographic parity".into(), opt(r.demographic_parity_difference), opt(r.demographic_parity_ratio)]);
            parity.row(vec!["equalized odds".into(), opt(r.equalized_odds_difference), opt(r.equalized_odds_ratio)]);
            parity.row(vec!["equal opportunity".into(), opt(r.equal_opportunity_difference), opt(r.equal_opportunity_ratio)]);
            tables.push((format!("Fairness by {}", r.attribute), parity));
            let mut g = Grid::new(&["group", "rows", "selection rate", "impact ratio", "accuracy", "TPR", "FPR"]);
            for x in &r.groups {
                g.row(vec![
                    x.group.clone(),
                    x.count.to_string(),
                    fmt_num(x.selection_rate),
                    opt(x.impact_ratio),
                    fmt_num(x.accuracy),
                    fmt_num(x.true_positive_rate),
                    fmt_num(x.false_positive_rate),
                ]);
            }
            tables.push(("Groups".to_owned(), g));
            let verdict = if r.four_fifths.flagged {
                format!(
                    "FLAGGED: demographic parity ratio {} < {} (groups below: {})",
                    opt(r.four_fifths.ratio),
                    fmt_num(r.four_fifths.threshold),
                    r.four_fifths.groups_below.join(", ")
                )
            } else {
                format!("not flagged (demographic parity ratio {})", opt(r.four_fifths.ratio))
            };
            notes.push(format!("four-fifths rule: {verdict}; a screening heuristic, not a verdict"));
            notes.extend(r.warnings.iter().cloned());
        }
    }
    Sections { heading: format!("Evaluation of {}", e.data), facts, tables, notes }
}

/// An evaluation as aligned text tables, for the terminal.
pub fn evaluation_text(e: &Evaluation) -> String {
    let s = sections(e);
    let mut out = format!("{}\n", s.heading);
    for f in &s.facts {
        let _ = writeln!(out, "  {f}");
    }
    for (title, grid) in &s.tables {
        let _ = write!(out, "\n{title}\n{}", grid.text());
    }
    if !s.notes.is_empty() {
        out.push('\n');
        for n in &s.notes {
            let _ = writeln!(out, "note: {n}");
        }
    }
    out
}

/// An evaluation as Markdown.
pub fn evaluation_markdown(e: &Evaluation) -> String {
    let s = sections(e);
    let mut out = format!("# {}\n\n", s.heading);
    for f in &s.facts {
        let _ = writeln!(out, "- {f}");
    }
    for (title, grid) in &s.tables {
        let _ = write!(out, "\n## {title}\n\n{}", grid.markdown());
    }
    if !s.notes.is_empty() {
        out.push('\n');
        for n in &s.notes {
            let _ = writeln!(out, "> {n}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample_evaluation;
    use super::*;

    #[test]
    fn text_and_markdown_show_every_section() {
        let e = sample_evaluation("a|b");
        let t = evaluation_text(&e);
        assert!(t.contains("Performance") && t.contains("Fairness by g") && t.contains("four-fifths rule"), "{t}");
        assert!(t.contains("ROC AUC"));
        let md = evaluation_markdown(&e);
        assert!(md.contains("| a\\|b |"), "{md}");
    }
}
