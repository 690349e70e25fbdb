// A version: card, signature, metrics, evidence, approvals and reviews, the
// gate of each transition ahead with every failing reason, and the actions
// the viewer's roles allow (submit, approve or reject, promote).

use crate::model::{card, lineage_facts, model_name};
use crate::page::{self, badge, enc, opt_time, time, ForViewer, PageError, PageResult, Section};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{NaiveDate, TimeZone, Utc};
use maud::{html, Markup};
use modelops_core::auth::Action;
use futures::StreamExt;
use modelops_core::governance::{Decision, DecisionInput, GateTarget, NewEvidence};
use modelops_core::version::{Sha256Hex, Signature, VersionState};
use modelops_core::Error;
use modelops_governance::policy::GateDecision;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

/// The gates ahead of a version in `state`, the next one first.
fn gates_ahead(state: VersionState) -> &'static [GateTarget] {
    match state {
        VersionState::Draft => &[GateTarget::InValidation, GateTarget::Approved, GateTarget::Production],
        VersionState::InValidation => &[GateTarget::Approved, GateTarget::Production],
        VersionState::Approved => &[GateTarget::Production],
        _ => &[],
    }
}

fn gate_view(target: GateTarget, decision: &GateDecision, next: bool) -> Markup {
    let failing = decision.failures().count();
    html! {
        div.gate.allowed[decision.allowed] data-gate=(target.as_str()) {
            h3 {
                "To " (target.as_str().replace('_', " ")) ": "
                @if decision.allowed { span.ok { "allowed" } } @else { span.no { "blocked by " (failing) " condition" (if failing == 1 { "" } else { "s" }) } }
                @if next { " " span.next { "(next)" } }
            }
            ul.conditions {
                @for c in &decision.conditions {
                    li.pass[c.passed] .fail[!c.passed] {
                        span.mark aria-hidden="true" { (if c.passed { "✓" } else { "✗" }) }
                        span.visually-hidden { (if c.passed { "passed: " } else { "failing: " }) }
                        strong { (c.name) } " — " (c.message)
                    }
                }
            }
            p.help { "Tier " (decision.tier) ", policy " span.mono { (short(decision.policy_sha256.as_str())) } }
        }
    }
}

fn signature(sig: &Signature) -> Markup {
    html! {
        @if sig.inputs.is_empty() && sig.outputs.is_empty() {
            p.empty { "No signature." }
        } @else {
            table.compact {
                caption { "Signature" }
                thead { tr { th scope="col" { "Side" } th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Shape" } } }
                tbody {
                    @for (side, fields) in [("input", &sig.inputs), ("output", &sig.outputs)] {
                        @for f in fields {
                            tr { td { (side) } th scope="row" { (f.name) } td { (f.dtype) } td { (format!("{:?}", f.shape)) } }
                        }
                    }
                }
            }
        }
    }
}

pub async fn page(State(state): State<WebState>, viewer: Viewer, Path((name, number)): Path<(String, String)>, Query(done): Query<Done>) -> PageResult {
    let name = model_name(&name, &viewer)?;
    let number: u32 = page::path_number("version", &number).for_viewer(&viewer)?;
    let model = state.registry.get_model(&name).await.for_viewer(&viewer)?;
    let gov = state.registry.version_governance(&viewer.principal, &name, number).await.for_viewer(&viewer)?;
    let v = &gov.version;
    let mut gates = Vec::new();
    for target in gates_ahead(v.state) {
        let decision = state.registry.check_gate(&viewer.principal, &name, number, *target).await.for_viewer(&viewer)?;
        gates.push((*target, decision));
    }
    let base = format!("/ui/models/{}/versions/{number}", enc(name.as_str()));
    let may_submit = v.state == VersionState::Draft && viewer.may(Action::VersionSubmit);
    let may_decide = v.state == VersionState::InValidation && viewer.may(Action::VersionApprove);
    let may_promote = v.state == VersionState::Approved && viewer.may(Action::VersionPromote);
    let may_add_evidence = v.state != VersionState::Retired && viewer.may(Action::EvidenceAdd);
    let title = format!("{} v{number}", name);
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Inventory" } " / " a href={ "/ui/models/" (enc(name.as_str())) } { (name) } " / " span aria-current="page" { "v" (number) } }
        h1 { (name) " v" (number) " " (badge(v.state.as_str())) @for a in &v.aliases { " " span.alias { (a) } } }
        @if !v.description.is_empty() { p.lead { (v.description) } }
        dl.facts {
            dt { "Model" } dd { (model.kind) ", tier " (model.risk_tier) }
            dt { "Pushed" } dd { (time(&v.created_at)) " by " (v.created_by) }
            dt { "Artifact" } dd { (v.artifact.filename) " · " (v.artifact.size) " bytes · " span.mono { (v.artifact.sha256) } }
            dt { "Next periodic review" } dd { (opt_time(gov.next_review_at.as_ref())) }
        }
        @if may_submit || may_decide || may_promote {
            section.actions-panel aria-labelledby="act-h" {
                h2 id="act-h" { "Act on this version" }
                @if may_submit {
                    form method="post" action={ (base) "/submit" } {
                        (viewer.csrf_field())
                        button type="submit" { "Submit for validation" }
                    }
                }
                @if may_decide {
                    form.stacked method="post" action={ (base) "/decide" } {
                        (viewer.csrf_field())
                        div.field { label for="comment" { "Comment" } textarea id="comment" name="comment" rows="3" required {} }
                        div.field { label for="conditions" { "Conditions (optional)" } input id="conditions" name="conditions" placeholder="e.g. re-validate after Q1"; }
                        div.field { label for="expires_on" { "Approval expires on (optional)" } input id="expires_on" name="expires_on" type="date"; }
                        div.buttons {
                            button type="submit" name="decision" value="approve" { "Approve" }
                            button.danger type="submit" name="decision" value="reject" { "Reject" }
                        }
                    }
                }
                @if may_promote {
                    form method="post" action={ (base) "/promote" } {
                        (viewer.csrf_field())
                        button type="submit" { "Promote to production" }
                    }
                }
            }
        }
        @if !gates.is_empty() {
            section aria-labelledby="gates-h" {
                h2 id="gates-h" { "Gates ahead" }
                @for (i, (target, decision)) in gates.iter().enumerate() { (gate_view(*target, decision, i == 0)) }
            }
        }
        section aria-labelledby="appr-h" {
            h2 id="appr-h" { "Approvals" }
            @if gov.approvals.is_empty() { p.empty { "No decision yet." } } @else {
                table {
                    caption.visually-hidden { "Approvals and rejections" }
                    thead { tr { th scope="col" { "Who" } th scope="col" { "Decision" } th scope="col" { "Comment" } th scope="col" { "Conditions" } th scope="col" { "Expires" } th scope="col" { "When" } } }
                    tbody {
                        @for a in &gov.approvals {
                            tr { th scope="row" { (a.approver) } td { (badge(a.decision.as_str())) } td { (a.comment) } td { (a.conditions) } td { (opt_time(a.expires_at.as_ref())) } td { (time(&a.created_at)) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="card-h" { h2 id="card-h" { "Model card" } (card(&v.card)) }
        section aria-labelledby="sig-h" { h2 id="sig-h" { "Signature" } (signature(&v.signature)) }
        section aria-labelledby="lin-h" {
            h2 id="lin-h" { "Lineage and training metrics" }
            (lineage_facts(&v.lineage))
            @if !v.lineage.training_metrics.is_empty() {
                table.compact { caption { "Training metrics" } tbody { @for (k, m) in &v.lineage.training_metrics { tr { th scope="row" { (k) } td { (page::number(*m)) } } } } }
            }
        }
        section aria-labelledby="ev-h" {
            h2 id="ev-h" { "Evidence and documents" }
            @if gov.evidence.is_empty() { p.empty { "No evidence attached." } } @else {
                table {
                    caption.visually-hidden { "Evidence" }
                    thead { tr { th scope="col" { "Kind" } th scope="col" { "Name" } th scope="col" { "Value or document" } th scope="col" { "Dataset" } th scope="col" { "By" } th scope="col" { "When" } } }
                    tbody {
                        @for e in &gov.evidence {
                            tr {
                                td { (e.kind) } th scope="row" { (e.name) }
                                td { @if let Some(x) = e.value { (page::number(x)) } @if let Some(d) = &e.document { a href={ (base) "/documents/" (d.sha256.as_str()) } { (d.filename) } " (" (d.size) " bytes, " span.mono { (short(d.sha256.as_str())) } ")" } }
                                td { (e.dataset) } td { (e.created_by) } td { (time(&e.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        @if may_add_evidence {
            section.actions-panel aria-labelledby="add-ev-h" {
                h2 id="add-ev-h" { "Attach evidence" }
                form.stacked method="post" action={ (base) "/evidence" } {
                    (viewer.csrf_field())
                    div.field { label for="metric_name" { "Metric" } input id="metric_name" name="name" required placeholder="e.g. auc"; }
                    div.field { label for="metric_value" { "Value" } input id="metric_value" name="value" inputmode="decimal" required; }
                    div.field { label for="metric_dataset" { "Computed on (dataset)" } input id="metric_dataset" name="dataset"; }
                    button type="submit" { "Attach metric" }
                }
                form.stacked method="post" action={ (base) "/documents" } enctype="multipart/form-data" {
                    (viewer.csrf_field())
                    div.field { label for="document_name" { "Document kind" } input id="document_name" name="name" required value="validation_report"; }
                    div.field { label for="document_file" { "Document file" } input id="document_file" name="document" type="file" required; }
                    button type="submit" { "Attach document" }
                }
            }
        }
        @if !gov.reviews.is_empty() {
            section aria-labelledby="rev-h" {
                h2 id="rev-h" { "Periodic reviews" }
                ul { @for r in &gov.reviews { li { (time(&r.reviewed_at)) " · " (r.reviewer) " · " (r.outcome) " · " (r.comment) } } }
            }
        }
        @if !v.tags.is_empty() {
            section aria-labelledby="tags-h" { h2 id="tags-h" { "Tags" } p { @for (k, t) in &v.tags { span.tag { (k) "=" (t) } " " } } }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Inventory, &title, page::notice_for(done.done.as_deref()), body).into_response())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn submit(State(state): State<WebState>, viewer: Viewer, Path((name, number)): Path<(String, String)>, Form(form): Form<CsrfForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let name = model_name(&name, &viewer)?;
    let number: u32 = page::path_number("version", &number).for_viewer(&viewer)?;
    state.registry.submit_version(&viewer.principal, &name, number).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/models/{}/versions/{number}?done=submitted", enc(name.as_str()))).into_response())
}

pub async fn promote(State(state): State<WebState>, viewer: Viewer, Path((name, number)): Path<(String, String)>, Form(form): Form<CsrfForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let name = model_name(&name, &viewer)?;
    let number: u32 = page::path_number("version", &number).for_viewer(&viewer)?;
    state.registry.promote_version(&viewer.principal, &name, number).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/models/{}/versions/{number}?done=promoted", enc(name.as_str()))).into_response())
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    conditions: String,
    #[serde(default)]
    expires_on: String,
}

pub async fn decide(State(state): State<WebState>, viewer: Viewer, Path((name, number)): Path<(String, String)>, Form(form): Form<DecideForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let name = model_name(&name, &viewer)?;
    let number: u32 = page::path_number("version", &number).for_viewer(&viewer)?;
    let decision = Decision::parse_field("decision", &form.decision).for_viewer(&viewer)?;
    let expires_at = match form.expires_on.trim() {
        "" => None,
        day => {
            let date = NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| Error::invalid("expires_on", format!("`{day}` is not a date (YYYY-MM-DD)"))).for_viewer(&viewer)?;
            let end = date.and_hms_opt(23, 59, 59).map(|t| Utc.from_utc_datetime(&t));
            Some(end.ok_or_else(|| Error::invalid("expires_on", format!("`{day}` is not a date"))).for_viewer(&viewer)?)
        }
    };
    let input = DecisionInput { comment: form.comment, conditions: form.conditions, expires_at };
    state.registry.decide(&viewer.principal, &name, number, decision, input).await.for_viewer(&viewer)?;
    let done = if decision == Decision::Approve { "approved" } else { "rejected" };
    Ok(Redirect::to(&format!("/ui/models/{}/versions/{number}?done={done}", enc(name.as_str()))).into_response())
}

/// The first characters of a hex digest, for reading (the whole one is a
/// click or a hover away).
fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

#[derive(Deserialize)]
pub struct MetricForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    dataset: String,
}

pub async fn add_metric(State(state): State<WebState>, viewer: Viewer, Path((name, number)): Path<(String, String)>, Form(form): Form<MetricForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let name = model_name(&name, &viewer)?;
    let number: u32 = page::path_number("version", &number).for_viewer(&viewer)?;
    let value = form.value.trim().parse::<f64>().map_err(|_| Error::invalid("value", format!("`{}` is not a number", form.value.trim()))).for_viewer(&viewer)?;
    let new = NewEvidence::Metric { name: form.name.trim().to_string(), value, dataset: form.dataset.trim().to_string() };
    state.registry.add_evidence(&viewer.principal, &name, number, new).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/models/{}/versions/{number}?done=evidence-added", enc(name.as_str()))).into_response())
}

/// A document attached as evidence: the file stored (`upload::read`),
/// then attached.
pub async fn add_document(State(state): State<WebState>, viewer: Viewer, Path((name, number)): Path<(String, String)>, multipart: Multipart) -> PageResult {
    let name = model_name(&name, &viewer)?;
    let number: u32 = page::path_number("version", &number).for_viewer(&viewer)?;
    let upload = crate::upload::read(&state, &viewer, multipart, "document").await?;
    let kind = upload.fields.get("name").map(|n| n.trim().to_string()).unwrap_or_default();
    let (stored, filename) = upload.file.ok_or_else(|| PageError::new(Error::invalid("document", "choose the document file"), &viewer))?;
    let new = NewEvidence::Document { name: kind, sha256: stored.sha256, filename };
    state.registry.add_evidence(&viewer.principal, &name, number, new).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/models/{}/versions/{number}?done=evidence-added", enc(name.as_str()))).into_response())
}

/// An evidence document, verified as it streams (the REST API's download).
pub async fn document(State(state): State<WebState>, viewer: Viewer, Path((name, number, sha256)): Path<(String, String, String)>) -> PageResult<Response> {
    let name = model_name(&name, &viewer)?;
    let number: u32 = page::path_number("version", &number).for_viewer(&viewer)?;
    let sha256 = Sha256Hex::parse_field("sha256", &sha256).for_viewer(&viewer)?;
    let (document, download) = state.registry.download_evidence(&viewer.principal, &name, number, &sha256).await.for_viewer(&viewer)?;
    let safe: String = document.filename.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    let body = axum::body::Body::from_stream(download.stream.map(|chunk| chunk.map_err(std::io::Error::other)));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{safe}\"")),
            (header::CONTENT_LENGTH, download.size.to_string()),
        ],
        body,
    )
        .into_response())
}
