//! One model's governance report: the inventory fields, every version with
//! its lineage, card, approvals, evidence and reviews, the gate decisions
//! with their reasons, and an audit excerpt with how to verify it.

use super::doc::{Block, Doc, Table, Text};
use super::{fmt_time, GateDecisionRecord, ModelReport, VersionRecord};
use modelops_core::audit::ChainHead;
use modelops_core::clock::format_time;
use modelops_core::governance::{Decision, EvidenceKind, CHAMPION};
use modelops_core::model::Model;
use modelops_core::version::ModelVersion;
use std::collections::BTreeMap;

pub(super) fn document(r: &ModelReport) -> Doc {
    let m = &r.model;
    let mut d = Doc::new("model governance report", format!("Governance report: {}", m.name));
    d.meta("Generated", Text::code(fmt_time(&r.generated_at)));
    d.meta("Policy sha256", Text::code(&r.policy_sha256));
    d.meta("Tier", Text::plain(m.risk_tier.as_str()));
    d.meta("State", Text::plain(m.state.as_str()));

    model_section(&mut d, m);
    versions_section(&mut d, &r.versions);
    gate_section(&mut d, &r.gate_decisions, &r.policy_sha256);
    audit_section(&mut d, r);
    verify_section(&mut d, r.chain_head.as_ref(), r.audit.len());
    d
}

pub(super) fn validation_target(m: &Model) -> Text {
    match &m.validation {
        Some(v) => Text::code(&v.metric).text(format!(" must reach {}", v.threshold)),
        None => Text::dash(),
    }
}

pub(super) fn production_version(m: &Model) -> Option<u32> {
    m.aliases.get(CHAMPION).copied()
}

fn model_section(d: &mut Doc, m: &Model) {
    d.h2("Model");
    d.push(Block::Facts(vec![
        ("Name".into(), Text::code(m.name.as_str())),
        ("Kind".into(), Text::plain(m.kind.as_str())),
        ("Description".into(), Text::value(&m.description)),
        ("Business purpose".into(), Text::value(&m.business_purpose)),
        ("Intended use".into(), Text::value(&m.intended_use)),
        ("Restrictions on use".into(), Text::value(&m.restrictions)),
        ("Owner".into(), Text::value(&m.owner)),
        ("Team".into(), Text::value(&m.team)),
        ("Developers".into(), people(&m.developers)),
        ("Risk tier".into(), Text::plain(m.risk_tier.as_str())),
        ("State".into(), Text::plain(m.state.as_str())),
        ("Validation target".into(), validation_target(m)),
        ("Production version".into(), production_version(m).map_or_else(Text::dash, |v| Text::plain(format!("v{v}")))),
        ("Latest version".into(), m.latest_version.map_or_else(Text::dash, |v| Text::plain(format!("v{v}")))),
        ("Aliases".into(), Text::codes(m.aliases.iter().map(|(a, v)| format!("{a} → v{v}")), ", ")),
        ("Dependencies".into(), Text::codes(m.dependencies.iter().map(|n| n.as_str().to_owned()), ", ")),
        ("Created".into(), Text::code(fmt_time(&m.created_at)).text(" by ").text(&m.created_by)),
        ("Updated".into(), Text::code(fmt_time(&m.updated_at))),
    ]));
    if !m.tags.is_empty() {
        d.h3("Tags");
        d.push(Block::Table(tag_table(&m.tags)));
    }
}

pub(super) fn people(list: &[String]) -> Text {
    if list.is_empty() {
        Text::dash()
    } else {
        Text::plain(list.join(", "))
    }
}

fn tag_table(tags: &BTreeMap<String, String>) -> Table {
    let mut t = Table::new(&["Key", "Value"]);
    for (k, v) in tags {
        t.row(vec![Text::code(k), Text::value(v)]);
    }
    t
}

fn versions_section(d: &mut Doc, versions: &[VersionRecord]) {
    d.h2("Versions");
    let mut summary = Table::new(&["Version", "State", "Author", "Created", "Artifact sha256", "Decisions", "Next review"]);
    for v in versions {
        let approve = v.approvals.iter().filter(|a| a.decision == Decision::Approve).count();
        let reject = v.approvals.len() - approve;
        summary.row(vec![
            Text::plain(format!("v{}", v.version.number)),
            Text::plain(v.version.state.as_str()),
            Text::value(&v.version.created_by),
            Text::code(fmt_time(&v.version.created_at)),
            Text::code(v.version.artifact.sha256.as_str()),
            Text::plain(format!("{approve} approve, {reject} reject")),
            v.next_review_at.as_ref().map_or_else(Text::dash, |t| Text::code(fmt_time(t))),
        ]);
    }
    d.table_or(summary, "No versions registered.");
    for v in versions {
        version_detail(d, v);
    }
}

fn version_detail(d: &mut Doc, rec: &VersionRecord) {
    let v = &rec.version;
    d.h3(format!("Version {}", v.number));
    d.push(Block::Facts(vec![
        ("State".into(), Text::plain(v.state.as_str())),
        ("Author".into(), Text::value(&v.created_by)),
        ("Created".into(), Text::code(fmt_time(&v.created_at))),
        ("Updated".into(), Text::code(fmt_time(&v.updated_at))),
        ("Description".into(), Text::value(&v.description)),
        ("Aliases".into(), Text::codes(v.aliases.iter().cloned(), ", ")),
        ("Artifact".into(), artifact(v)),
        ("Next review".into(), rec.next_review_at.as_ref().map_or_else(Text::dash, |t| Text::code(fmt_time(t)))),
    ]));
    if !v.tags.is_empty() {
        d.h4("Tags");
        d.push(Block::Table(tag_table(&v.tags)));
    }

    d.h4("Lineage");
    d.push(Block::Facts(lineage_facts(v)));
    if !v.lineage.hyperparameters.is_empty() {
        d.push(Block::Table(hyperparameter_table(v)));
    }
    if !v.lineage.training_metrics.is_empty() {
        d.push(Block::Table(metric_table("Training metric", &v.lineage.training_metrics)));
    }

    d.h4("Signature");
    d.table_or(signature_table(v), "No signature recorded.");

    d.h4("Model card");
    d.push(Block::Facts(card_facts(v)));
    if !v.card.metrics.is_empty() {
        d.push(Block::Table(metric_table("Card metric", &v.card.metrics)));
    }
    if !v.card.markdown.trim().is_empty() {
        d.push(Block::Verbatim(v.card.markdown.clone()));
    }

    d.h4("Approvals");
    let mut approvals = Table::new(&["Approver", "Roles", "Decision", "At", "Comment", "Conditions", "Expires"]);
    for a in &rec.approvals {
        approvals.row(vec![
            Text::value(&a.approver),
            Text::plain(a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")),
            match a.decision {
                Decision::Approve => Text::plain("approve"),
                Decision::Reject => Text::strong("reject"),
            },
            Text::code(fmt_time(&a.created_at)),
            Text::value(&a.comment),
            Text::value(&a.conditions),
            a.expires_at.as_ref().map_or_else(|| Text::plain("never"), |t| Text::code(fmt_time(t))),
        ]);
    }
    d.table_or(approvals, "No approvals or rejections recorded.");

    d.h4("Evidence");
    let mut metrics = Table::new(&["Metric", "Value", "Dataset", "By", "At"]);
    let mut documents = Table::new(&["Document", "File", "Size (bytes)", "sha256", "By", "At"]);
    for e in &rec.evidence {
        match e.kind {
            EvidenceKind::Metric => metrics.row(vec![
                Text::code(&e.name),
                e.value.map_or_else(Text::dash, |x| Text::plain(x.to_string())),
                Text::value(&e.dataset),
                Text::value(&e.created_by),
                Text::code(fmt_time(&e.created_at)),
            ]),
            EvidenceKind::Document => documents.row(vec![
                Text::code(&e.name),
                e.document.as_ref().map_or_else(Text::dash, |doc| Text::value(&doc.filename)),
                e.document.as_ref().map_or_else(Text::dash, |doc| Text::plain(doc.size.to_string())),
                e.document.as_ref().map_or_else(Text::dash, |doc| Text::code(doc.sha256.as_str())),
                Text::value(&e.created_by),
                Text::code(fmt_time(&e.created_at)),
            ]),
        }
    }
    d.table_or(metrics, "No metrics attached.");
    d.table_or(documents, "No documents attached.");

    d.h4("Reviews");
    let mut reviews = Table::new(&["Reviewer", "Outcome", "Reviewed", "Comment", "Next review"]);
    for rv in &rec.reviews {
        reviews.row(vec![
            Text::value(&rv.reviewer),
            Text::plain(rv.outcome.as_str()),
            Text::code(fmt_time(&rv.reviewed_at)),
            Text::value(&rv.comment),
            Text::code(fmt_time(&rv.next_review_at)),
        ]);
    }
    d.table_or(reviews, "No periodic reviews recorded.");
}

pub(super) fn artifact(v: &ModelVersion) -> Text {
    Text::value(&v.artifact.filename)
        .text(format!(" ({} bytes), sha256 ", v.artifact.size))
        .and_code(v.artifact.sha256.as_str())
}

pub(super) fn lineage_facts(v: &ModelVersion) -> Vec<(String, Text)> {
    let l = &v.lineage;
    let mut facts = vec![
        ("Dataset".into(), l.dataset_uri.as_deref().map_or_else(Text::dash, Text::code_value)),
        ("Dataset sha256".into(), l.dataset_sha256.as_ref().map_or_else(Text::dash, |h| Text::code(h.as_str()))),
        ("Dataset rows".into(), l.dataset_rows.map_or_else(Text::dash, |n| Text::plain(n.to_string()))),
        ("Code commit".into(), l.code_commit.as_deref().map_or_else(Text::dash, Text::code_value)),
        ("Parent version".into(), l.parent_version.map_or_else(Text::dash, |p| Text::plain(format!("v{p}")))),
        ("MLflow run".into(), l.mlflow_run_id.as_deref().map_or_else(Text::dash, Text::code_value)),
    ];
    // A retrained version says what triggered it (set by the server).
    if let Some(r) = &l.retrain {
        let mut head = format!("run {} (trigger: {})", r.job_run, r.trigger);
        if let Some(alert) = r.alert {
            head.push_str(&format!(", alert {alert}"));
        }
        let text = match &r.window {
            Some(w) => {
                let time = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                Text::plain(format!("{head}, window of "))
                    .and_code(w.deployment.as_str())
                    .text(format!(" ({}, version {}) {} → {}", w.monitor, w.version, time(&w.start), time(&w.end)))
            }
            None => Text::plain(head),
        };
        facts.push(("Retrained by".into(), text));
    }
    facts
}

pub(super) fn hyperparameter_table(v: &ModelVersion) -> Table {
    let mut t = Table::new(&["Hyperparameter", "Value"]);
    for (k, value) in &v.lineage.hyperparameters {
        t.row(vec![Text::code(k), Text::code(value.to_string())]);
    }
    t
}

pub(super) fn metric_table(label: &str, metrics: &BTreeMap<String, f64>) -> Table {
    let mut t = Table::new(&[label, "Value"]);
    for (k, x) in metrics {
        t.row(vec![Text::code(k), Text::plain(x.to_string())]);
    }
    t
}

pub(super) fn signature_table(v: &ModelVersion) -> Table {
    let mut t = Table::new(&["Direction", "Name", "Type", "Shape"]);
    for (dir, fields) in [("input", &v.signature.inputs), ("output", &v.signature.outputs)] {
        for f in fields {
            t.row(vec![Text::plain(dir), Text::code(&f.name), Text::plain(f.dtype.as_str()), Text::code(shape_text(&f.shape))]);
        }
    }
    t
}

/// A field's shape beyond the batch axis: `scalar`, or `[?, 3]` (`?` variable).
pub(super) fn shape_text(shape: &[i64]) -> String {
    if shape.is_empty() {
        return "scalar".to_owned();
    }
    format!("[{}]", shape.iter().map(|x| if *x < 0 { "?".to_owned() } else { x.to_string() }).collect::<Vec<_>>().join(", "))
}

fn card_facts(v: &ModelVersion) -> Vec<(String, Text)> {
    let c = &v.card;
    vec![
        ("Intended use".into(), Text::value(&c.intended_use)),
        ("Limitations".into(), Text::value(&c.limitations)),
        ("Ethical considerations".into(), Text::value(&c.ethical_considerations)),
        ("Evaluation data".into(), Text::value(&c.evaluation_data)),
    ]
}

fn gate_section(d: &mut Doc, decisions: &[GateDecisionRecord], current_policy: &str) {
    d.h2("Gate decisions");
    let denied = decisions.iter().filter(|g| !g.allowed).count();
    if !decisions.is_empty() {
        d.para(Text::plain(format!(
            "{} decisions, {} denied. Each names the policy it was evaluated under by its sha256; the current policy is ",
            decisions.len(),
            denied
        ))
        .and_code(current_policy)
        .text("."));
    }
    let mut t = Table::new(&["At", "Actor", "Version", "Transition", "Decision", "Failed conditions", "Policy sha256", "Audit event"]);
    for g in decisions {
        let mut failed = Text::new();
        for (i, (condition, message)) in g.failed.iter().enumerate() {
            if i > 0 {
                failed = failed.br();
            }
            failed = failed.and_code(condition).text(": ").text(message);
        }
        if failed.is_empty() {
            failed = Text::dash();
        }
        t.row(vec![
            Text::code(fmt_time(&g.at)),
            Text::value(&g.actor),
            Text::plain(format!("v{}", g.version)),
            Text::code_value(&g.transition),
            if g.allowed { Text::plain("allowed") } else { Text::strong("denied") },
            failed,
            Text::code(&g.policy_sha256),
            Text::plain(g.audit_sequence.to_string()),
        ]);
    }
    d.table_or(t, "No gate decisions recorded.");
}

fn audit_section(d: &mut Doc, r: &ModelReport) {
    d.h2("Audit trail");
    if !r.audit.is_empty() {
        d.para(Text::plain(format!(
            "The model's {} audit events, oldest first. Times are as hashed (microseconds).",
            r.audit.len()
        )));
    }
    let mut t = Table::new(&["Sequence", "Time", "Actor", "Action", "Subject", "Hash", "Previous hash"]);
    for e in &r.audit {
        t.row(vec![
            Text::plain(e.sequence.to_string()),
            Text::code(format_time(&e.time)),
            Text::value(&e.actor),
            Text::code_value(&e.action),
            Text::code_value(&e.subject),
            Text::code(&e.hash),
            Text::code(&e.prev_hash),
        ]);
    }
    d.table_or(t, "No audit events for this model.");
}

fn verify_section(d: &mut Doc, head: Option<&ChainHead>, events: usize) {
    d.h2("How to verify");
    let chain = match head {
        Some(h) => Text::plain(if events == 0 { "The audit chain's head was " } else { "The hashes of this excerpt chain into the head " })
            .and_code(format!("{}/{}", h.sequence, h.hash))
            .text(" (sequence/hash) as of this report's generation."),
        None => Text::plain("The chain head was not recorded with this report; verification recomputes it."),
    };
    d.push(Block::List(vec![
        chain,
        Text::plain("Each event's hash is ")
            .and_code("sha256(prev_hash ‖ canonical JSON of the event)")
            .text(": the event's fields but the two hashes, in RFC 8785 form for encoding 2. Each ")
            .and_code("prev_hash")
            .text(" is the hash of the event before it in the whole chain, so events of other models sit between the ones shown here."),
        Text::plain("To recompute the whole chain, run ")
            .and_code("modelops audit verify")
            .text(" (online; auditors and admins) or ")
            .and_code("modelops audit verify --database-url <url>")
            .text(" (offline, against the database or a copy of it)."),
        Text::plain("A hash that does not match, a missing event or a head that does not match shows that the record was altered."),
    ]));
}
