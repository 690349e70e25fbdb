// The audit log: filters (subject, actor, action, time), each event's hash,
// the chain's verification, the latest signed checkpoint, and one event
// with its inclusion proof checked against that checkpoint's signature.

use crate::page::{self, enc, time, ForViewer, PageResult, Section};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use maud::{html, Markup};
use modelops_core::audit::AuditQuery;
use modelops_core::auth::Action;
use modelops_core::page::PageRequest;
use modelops_core::Error;
use modelops_audit::SignedCheckpoint;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    page: Option<String>,
    /// Verify the chain now (it reads every event).
    verify: Option<String>,
}

fn day(field: &str, text: &str, end_of_day: bool) -> modelops_core::Result<Option<DateTime<Utc>>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| Error::invalid(field, format!("`{text}` is not a date (YYYY-MM-DD)")))?;
    let at = if end_of_day { date.succ_opt().unwrap_or(date).and_hms_opt(0, 0, 0) } else { date.and_hms_opt(0, 0, 0) };
    Ok(at.map(|t| Utc.from_utc_datetime(&t)))
}

impl Filters {
    fn query(&self) -> modelops_core::Result<AuditQuery> {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let query = AuditQuery {
            subject: some(&self.subject),
            actor: some(&self.actor),
            action: some(&self.action),
            since: day("since", &self.since, false)?,
            until: day("until", &self.until, true)?,
            page: PageRequest { size: 100, token: self.page.clone().filter(|p| !p.is_empty()) },
            ..AuditQuery::default()
        };
        query.validate()?;
        Ok(query)
    }

    fn with_page(&self, token: &str) -> String {
        let pairs = [("subject", &self.subject), ("actor", &self.actor), ("action", &self.action), ("since", &self.since), ("until", &self.until)];
        let mut out: Vec<String> = pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", enc(v))).collect();
        out.push(format!("page={}", enc(token)));
        out.join("&")
    }
}

/// The chain's verification and the latest checkpoint, for those who may
/// see them.
async fn integrity(state: &WebState, viewer: &Viewer, verify: bool) -> Markup {
    let may_verify = viewer.may(Action::AuditVerify);
    let verification = if may_verify && verify { Some(state.registry.verify_audit(&viewer.principal).await) } else { None };
    let checkpoint = if viewer.may(Action::AuditRead) { state.registry.checkpoint(&viewer.principal, None).await.ok() } else { None };
    let key = state.registry.audit_public_key().map(|k| k.text().to_string());
    html! {
        section.integrity aria-labelledby="integrity-h" {
            h2 id="integrity-h" { "Integrity" }
            @match &verification {
                Some(Ok(v)) => {
                    @match &v.verdict {
                        Ok(summary) => {
                            p.verified data-testid="chain-status" { span.ok { "Chain verified" } ": " (summary.events) " events, every hash and link intact"
                                @if !v.checkpoints.is_empty() { ", reproducing " (v.checkpoints.len()) " signed checkpoint" (if v.checkpoints.len() == 1 { "" } else { "s" }) }
                                " (checked " (time(&v.verified_at)) ")." }
                        }
                        Err(b) => { p.broken data-testid="chain-status" role="alert" { span.no { "Chain broken" } " at event " (b.sequence) ": " (b.reason) } }
                    }
                }
                Some(Err(e)) => { p.broken data-testid="chain-status" { "The chain could not be verified: " (e) } }
                None if may_verify => {
                    form method="get" action="/ui/audit" {
                        input type="hidden" name="verify" value="1";
                        button type="submit" { "Verify the chain" }
                        " " span.help { "Recomputes every event's hash and link and the signed checkpoints' roots." }
                    }
                }
                None => { p.help { "Verifying the chain is for auditors and admins." } }
            }
            @if let Some(c) = &checkpoint {
                p { "Latest signed checkpoint: " strong { (c.size) " events" } ", root " span.mono { (&c.root[..16.min(c.root.len())]) "…" } ", signed " (time(&c.time)) "." }
                details { summary { "The signed note" } (page::pre(&c.note)) }
            }
            @if let Some(k) = &key {
                p.help { "Public key (verify offline with " code { "modelops audit verify --key" } "): " span.mono { (k) } }
            }
        }
    }
}

pub async fn page(State(state): State<WebState>, viewer: Viewer, Query(filters): Query<Filters>) -> PageResult {
    let query = filters.query().for_viewer(&viewer)?;
    let events = state.registry.list_events(&query).await.for_viewer(&viewer)?;
    let body = html! {
        h1 { "Audit log" }
        (integrity(&state, &viewer, filters.verify.is_some()).await)
        form.filters method="get" action="/ui/audit" role="search" {
            div.field { label for="subject" { "Subject" } input id="subject" name="subject" value=(filters.subject) placeholder="model/credit* (prefix with *)"; }
            div.field { label for="actor" { "Actor" } input id="actor" name="actor" value=(filters.actor); }
            div.field { label for="action" { "Action" } input id="action" name="action" value=(filters.action) placeholder="version.approve"; }
            div.field { label for="since" { "From" } input id="since" name="since" type="date" value=(filters.since); }
            div.field { label for="until" { "To" } input id="until" name="until" type="date" value=(filters.until); }
            div.field.buttons { button type="submit" { "Filter" } a href="/ui/audit" { "Clear" } }
        }
        @if events.items.is_empty() { p.empty { "No event matches." } } @else {
            div.table-wrap {
                table.audit {
                    caption.visually-hidden { "Audit events, oldest first" }
                    thead { tr { th scope="col" { "#" } th scope="col" { "Time" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Subject" } th scope="col" { "Hash" } } }
                    tbody {
                        @for e in &events.items {
                            tr {
                                th scope="row" { a href={ "/ui/audit/events/" (e.sequence) } { (e.sequence) } }
                                td { (time(&e.time)) } td { (e.actor) } td { (e.action) } td { (e.subject) }
                                td.mono title=(e.hash) { (&e.hash[..12.min(e.hash.len())]) "…" }
                            }
                        }
                    }
                }
            }
            @if let Some(token) = &events.next_page_token {
                p { a href={ "/ui/audit?" (filters.with_page(token)) } rel="next" { "Next page" } }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Audit, "Audit log", None, body).into_response())
}

pub async fn event(State(state): State<WebState>, viewer: Viewer, Path(seq): Path<String>) -> PageResult {
    let seq: i64 = page::path_number("audit event", &seq).for_viewer(&viewer)?;
    let after = seq.checked_sub(1).filter(|a| *a >= 0).ok_or_else(|| Error::not_found("audit event", seq)).for_viewer(&viewer)?;
    let found = state.registry.list_events(&AuditQuery { after_sequence: Some(after), page: PageRequest { size: 1, token: None }, ..AuditQuery::default() }).await.for_viewer(&viewer)?;
    let e = found.items.into_iter().find(|e| e.sequence == seq).ok_or_else(|| Error::not_found("audit event", seq)).for_viewer(&viewer)?;
    let proof = if viewer.may(Action::AuditRead) { Some(state.registry.inclusion_proof(&viewer.principal, seq, None).await) } else { None };
    let key = state.registry.audit_public_key().cloned();
    let checked = match (&proof, &key) {
        (Some(Ok(p)), Some(k)) => Some(SignedCheckpoint::open(&p.checkpoint.note, k).and_then(|cp| p.proof.verify(&cp)).map_err(|e| e.to_string())),
        _ => None,
    };
    let title = format!("Audit event {seq}");
    let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| serde_json::to_string_pretty(v).unwrap_or_default());
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/audit" { "Audit log" } " / " span aria-current="page" { "event " (seq) } }
        h1 { (title) }
        dl.facts {
            dt { "Time" } dd { (time(&e.time)) }
            dt { "Actor" } dd { (e.actor) }
            dt { "Action" } dd { (e.action) }
            dt { "Subject" } dd { (e.subject) }
            dt { "Hash" } dd.mono { (e.hash) }
            dt { "Previous hash" } dd.mono { (e.prev_hash) }
        }
        @if let Some(b) = json(&e.before) { h2 { "Before" } (page::pre(&b)) }
        @if let Some(a) = json(&e.after) { h2 { "After" } (page::pre(&a)) }
        section aria-labelledby="proof-h" {
            h2 id="proof-h" { "Inclusion proof" }
            @match &proof {
                None => { p.help { "Proofs are for auditors and admins." } }
                Some(Err(err)) => { p.empty { "No proof yet: " (err) } }
                Some(Ok(p)) => {
                    @match &checked {
                        Some(Ok(())) => { p.verified data-testid="proof-status" { span.ok { "Proof verified" } ": event " (seq) " is in the log of " (p.checkpoint.size) " events the server signed at " (time(&p.checkpoint.time)) " (signature and " (p.proof.hashes.len()) "-hash audit path checked)." } }
                        Some(Err(why)) => { p.broken data-testid="proof-status" role="alert" { span.no { "Proof does not verify" } ": " (why) } }
                        None => { p { "Checkpoint of " (p.checkpoint.size) " events." } }
                    }
                    p { "Leaf hash " span.mono { (p.proof.leaf_hash) } }
                    ol.mono.path { @for h in &p.proof.hashes { li { (h) } } }
                    p.help { "Check it offline: " code { "modelops audit prove " (seq) } " then " code { "modelops audit verify --checkpoint FILE --key PUBKEY" } "." }
                }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Audit, &title, None, body).into_response())
}
