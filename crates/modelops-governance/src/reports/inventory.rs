//! The model inventory: SR 11-7 §VI's fields, one row per model, with counts
//! per tier and per status.

use super::doc::{Block, Doc, Table, Text};
use super::{fmt_time, InventoryReport};
use modelops_core::model::RiskTier;
use std::collections::BTreeMap;

pub(super) fn document(r: &InventoryReport) -> Doc {
    let mut d = Doc::new("model inventory", "Model inventory");
    d.meta("Generated", Text::code(fmt_time(&r.generated_at)));
    d.meta("Policy sha256", Text::code(&r.policy_sha256));
    d.meta("Models", Text::plain(r.rows.len().to_string()));

    let with_exceptions = r.rows.iter().filter(|row| !row.open_exceptions.is_empty()).count();
    d.h2("Summary");
    d.para(Text::plain(format!(
        "{} {} in the inventory; {} with open exceptions to policy.",
        r.rows.len(),
        if r.rows.len() == 1 { "model" } else { "models" },
        with_exceptions
    )));

    d.h3("By risk tier");
    let mut tiers = Table::new(&["Tier", "Models"]);
    // Most material first, every tier shown so a zero is visible.
    for tier in RiskTier::ALL.iter().rev() {
        let n = r.rows.iter().filter(|row| row.tier == *tier).count();
        tiers.row(vec![Text::plain(tier.as_str()), Text::plain(n.to_string())]);
    }
    d.push(Block::Table(tiers));

    d.h3("By status");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for row in &r.rows {
        *counts.entry(status_category(&row.status)).or_default() += 1;
    }
    let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut statuses = Table::new(&["Status", "Models"]);
    for (status, n) in counts {
        statuses.row(vec![Text::value(&status), Text::plain(n.to_string())]);
    }
    d.table_or(statuses, "No models.");

    d.h2("Models");
    let mut models = Table::new(&[
        "Model",
        "Kind",
        "Tier",
        "State",
        "Status",
        "Purpose",
        "Intended use",
        "Restrictions",
        "Owner",
        "Team",
        "Developers",
        "Validators",
        "Last validation",
        "Next validation",
        "Open exceptions",
    ]);
    for row in &r.rows {
        models.row(vec![
            Text::code(row.name.as_str()),
            Text::plain(row.kind.as_str()),
            Text::plain(row.tier.as_str()),
            Text::plain(row.state.as_str()),
            Text::value(&row.status),
            Text::value(&row.purpose),
            Text::value(&row.intended_use),
            Text::value(&row.restrictions),
            Text::value(&row.owner),
            Text::value(&row.team),
            Text::lines(row.developers.iter().cloned()),
            Text::lines(row.validators.iter().cloned()),
            time_or_dash(row.last_validation.as_ref()),
            time_or_dash(row.next_validation.as_ref()),
            Text::lines(row.open_exceptions.iter().cloned()),
        ]);
    }
    d.table_or(models, "No models in the inventory.");

    d.h2("Open exceptions");
    let exceptions: Vec<Text> = r
        .rows
        .iter()
        .flat_map(|row| row.open_exceptions.iter().map(move |e| Text::code(row.name.as_str()).text(": ").text(e)))
        .collect();
    if exceptions.is_empty() {
        d.para(Text::plain("No open exceptions to policy."));
    } else {
        d.push(Block::List(exceptions));
    }
    d
}

fn time_or_dash(t: Option<&chrono::DateTime<chrono::Utc>>) -> Text {
    t.map_or_else(Text::dash, |t| Text::code(fmt_time(t)))
}

/// A status without its version numbers, so `in production (v3)` and
/// `in production (v5)` count together.
pub(super) fn status_category(status: &str) -> String {
    let mut out = String::with_capacity(status.len());
    let mut rest = status;
    while let Some(at) = rest.find(" (v") {
        let after = &rest[at + 3..];
        let digits = after.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..at + 3]);
            rest = after;
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}
