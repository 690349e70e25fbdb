// Deployments: routes and traffic split, a canary's progress through its
// steps with the live metrics its rollback condition reads, shadows, the
// history from the audit log, starting a canary, and rollback behind a
// confirmation.

use crate::model::model_name;
use crate::page::{self, badge, enc, time, ForViewer, PageResult, Section};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::Form;
use maud::{html, Markup};
use modelops_core::audit::AuditQuery;
use modelops_core::auth::Action;
use modelops_core::deployment::{CanaryStep, Hold};
use modelops_core::page::PageRequest;
use modelops_core::Error;
use modelops_core::name::ModelName;
use modelops_deploy::plan::{rollback_target, CanaryRequest, ChangeRequest, CreateRequest};
use modelops_deploy::service::{DeploymentStatus, RouteStatus};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

pub async fn list(State(state): State<WebState>, viewer: Viewer, Query(done): Query<Done>) -> PageResult {
    let all = state.deployments.list(&viewer.principal, None, true).await.for_viewer(&viewer)?;
    let body = html! {
        h1 { "Deployments" }
        @if viewer.may(Action::DeploymentCreate) {
            details.create {
                summary { "Create a deployment" }
                form.stacked method="post" action="/ui/deployments" {
                    (viewer.csrf_field())
                    div.field { label for="dep-name" { "Deployment name" } input id="dep-name" name="name" required; }
                    div.field { label for="dep-model" { "Model" } input id="dep-model" name="model" required; }
                    div.field { label for="dep-version" { "Version" } input id="dep-version" name="version" inputmode="numeric" required aria-describedby="dep-help"; p.help id="dep-help" { "It takes all traffic; only a version the production gate allows." } }
                    div.field { label for="dep-description" { "Description" } input id="dep-description" name="description"; }
                    button type="submit" { "Create deployment" }
                }
            }
        }
        @if all.is_empty() {
            p.empty { "Nothing is deployed yet (" code { "modelops deploy create" } " or the REST API)." }
        } @else {
            div.table-wrap {
                table {
                    caption.visually-hidden { "Deployments" }
                    thead { tr { th scope="col" { "Deployment" } th scope="col" { "Model" } th scope="col" { "Strategy" } th scope="col" { "Traffic" } th scope="col" { "State" } th scope="col" { "Changed" } } }
                    tbody {
                        @for s in &all {
                            @let d = &s.deployment;
                            tr {
                                th scope="row" { a href={ "/ui/deployments/" (enc(d.name.as_str())) } { (d.name) } }
                                td { a href={ "/ui/models/" (enc(d.model.as_str())) } { (d.model) } }
                                td { (d.strategy) }
                                td { @for (i, r) in d.routes.iter().enumerate() { @if i > 0 { ", " } "v" (r.version) " " (r.weight) "%" } }
                                td { (badge(d.state.as_str())) }
                                td { (time(&d.updated_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Deployments, "Deployments", page::notice_for(done.done.as_deref()), body).into_response())
}

fn route_row(kind: &str, r: &RouteStatus) -> Markup {
    let s = &r.stats;
    html! {
        tr {
            td { (kind) } th scope="row" { "v" (r.version) } td { (page::number(r.weight)) "%" }
            td { (s.requests) } td { (s.errors) " (" (format!("{:.2}%", s.error_rate * 100.0)) ")" }
            td { (page::number(s.p50_ms)) } td { (page::number(s.p99_ms)) }
            td { (s.predictions) } td { (page::number(s.prediction_mean)) }
        }
    }
}

fn split_bar(status: &DeploymentStatus) -> Markup {
    let routes = &status.deployment.routes;
    html! {
        div.split role="img" aria-label={ "Traffic split: " @for (i, r) in routes.iter().enumerate() { @if i > 0 { ", " } "version " (r.version) " " (r.weight) " percent" } } {
            @for (i, r) in routes.iter().enumerate() {
                div class={ "part s" (i % 8) } style={ "width:" (r.weight) "%" } { "v" (r.version) " · " (r.weight) "%" }
            }
        }
    }
}

pub async fn page(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>, Query(done): Query<Done>) -> PageResult {
    let name = model_name(&name, &viewer)?;
    let status = state.deployments.get(&viewer.principal, &name).await.for_viewer(&viewer)?;
    let d = &status.deployment;
    let history = history(&state, d.name.as_str()).await.for_viewer(&viewer)?;
    let base = format!("/ui/deployments/{}", enc(d.name.as_str()));
    let may_change = viewer.may(Action::DeploymentUpdate) && d.state.as_str() != "retired";
    let may_rollback = viewer.may(Action::DeploymentRollback) && rollback_target(d).is_some() && d.state.as_str() != "retired";
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/deployments" { "Deployments" } " / " span aria-current="page" { (d.name) } }
        div.heading-row {
            h1 { (d.name) " " (badge(d.state.as_str())) }
            div.actions {
                a.button.secondary href={ (base) "/monitoring" } { "Monitoring" }
                @if may_rollback { a.button.danger href={ (base) "/rollback" } { "Roll back" } }
            }
        }
        dl.facts {
            dt { "Model" } dd { a href={ "/ui/models/" (enc(d.model.as_str())) } { (d.model) } }
            dt { "Strategy" } dd { (d.strategy) @if let Some(h) = &d.sticky_header { " (sticky by header " code { (h) } ")" } }
            dt { "Recorded" } dd { (format!("{:.0}%", d.sampling * 100.0)) " of calls" }
            @if let Some(reason) = &d.reason { dt { "Why" } dd { (reason) } }
            dt { "Rolls back to" } dd { @if let Some(p) = rollback_target(d) { "v" (p) } @else { "— (no earlier version)" } }
            dt { "Changed" } dd { (time(&d.updated_at)) " by " (d.updated_by) ", revision " (d.revision) }
        }
        section aria-labelledby="routes-h" {
            h2 id="routes-h" { "Traffic" }
            (split_bar(&status))
            @if let Some(live) = &status.live {
                div.table-wrap {
                    table {
                        caption { "Live metrics since the current step (" (live.calls) " calls, " (live.errors) " errors)" }
                        thead { tr { th scope="col" { "Route" } th scope="col" { "Version" } th scope="col" { "Weight" } th scope="col" { "Requests" } th scope="col" { "Errors" } th scope="col" { "p50 ms" } th scope="col" { "p99 ms" } th scope="col" { "Predictions" } th scope="col" { "Mean prediction" } } }
                        tbody {
                            @for r in &live.routes { (route_row("serving", r)) }
                            @for r in &live.shadows { (route_row("shadow", r)) }
                        }
                    }
                }
            }
        }
        @if let Some(canary) = &d.canary {
            section aria-labelledby="canary-h" {
                h2 id="canary-h" { "Canary: v" (canary.plan.version) " replacing v" (canary.stable) }
                ol.steps {
                    @for (i, step) in canary.plan.steps.iter().enumerate() {
                        li.done[i < canary.step] .current[i == canary.step] aria-current=[(i == canary.step).then_some("step")] {
                            span.weight { (step.weight) "%" }
                            span.hold { (hold_text(&step.hold)) }
                            @if i == canary.step { span.visually-hidden { " (current step)" } }
                        }
                    }
                }
                p { "Step " (canary.step + 1) " of " (canary.plan.steps.len()) ", started " (time(&canary.step_started_at)) "." }
                p { "Rolls back when: " code { (canary.plan.condition) } }
                @if let Some(c) = status.live.as_ref().and_then(|l| l.canary.as_ref()) {
                    p { "Judged now: " @if let Some(t) = &c.tripped { span.no { "tripped — " (t) } } @else { span.ok { "holding (the condition is false)" } } }
                }
            }
        }
        @if !d.shadows.is_empty() {
            section aria-labelledby="shadow-h" {
                h2 id="shadow-h" { "Shadows" }
                ul { @for s in &d.shadows { li { "v" (s.version) " sees " (page::number(s.percent)) "% of calls; its answers are recorded and discarded" } } }
                @if let Some(live) = &status.live { p { (live.shadow_calls) " shadow calls, " (live.shadow_skipped) " skipped." } }
            }
        }
        @if may_change {
            section aria-labelledby="start-h" {
                h2 id="start-h" { "Start a canary" }
                form.stacked method="post" action={ (base) "/canary" } {
                    (viewer.csrf_field())
                    input type="hidden" name="revision" value=(d.revision);
                    div.field { label for="version" { "Version" } input id="version" name="version" inputmode="numeric" required; }
                    div.field { label for="steps" { "Steps (percent)" } input id="steps" name="steps" value="5,25,50,100" aria-describedby="steps-help"; p.help id="steps-help" { "Increasing weights, separated by commas." } }
                    div.field { label for="hold_requests" { "Hold each step for (requests)" } input id="hold_requests" name="hold_requests" inputmode="numeric" value="100"; }
                    div.field { label for="condition" { "Rollback condition (CEL, optional)" } textarea id="condition" name="condition" rows="2" aria-describedby="cond-help" {} p.help id="cond-help" { "Empty: the shipped default (error rate and p99 latency against the stable version)." } }
                    button type="submit" { "Start canary" }
                }
            }
        }
        section aria-labelledby="hist-h" {
            h2 id="hist-h" { "History" }
            @if history.is_empty() { p.empty { "No change recorded." } } @else {
                ol.history reversed {
                    @for e in history.iter().rev() {
                        li { (time(&e.time)) " · " strong { (e.action) } " by " (e.actor) " · " a href={ "/ui/audit/events/" (e.sequence) } { "event " (e.sequence) }
                            @if let Some(reason) = e.after.as_ref().and_then(|a| a.get("reason")).and_then(|r| r.as_str()) { div.sub { (reason) } }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Deployments, d.name.as_str(), page::notice_for(done.done.as_deref()), body).into_response())
}

/// The newest changes of a deployment (the log reads oldest first; a
/// deployment's history is short enough to page through).
async fn history(state: &WebState, name: &str) -> modelops_core::Result<Vec<modelops_core::audit::AuditEvent>> {
    const SHOWN: usize = 50;
    let mut query = AuditQuery { subject: Some(format!("deployment/{name}")), page: PageRequest { size: 500, token: None }, ..AuditQuery::default() };
    let mut out = std::collections::VecDeque::with_capacity(SHOWN);
    loop {
        let page = state.registry.list_events(&query).await?;
        for e in page.items {
            // A name ending in `*` would read as a prefix: keep this one's.
            if e.subject != query.subject.as_deref().unwrap_or_default() {
                continue;
            }
            if out.len() == SHOWN {
                out.pop_front();
            }
            out.push_back(e);
        }
        match page.next_page_token {
            Some(t) => query.page.token = Some(t),
            None => return Ok(out.into_iter().collect()),
        }
    }
}

fn hold_text(hold: &Hold) -> String {
    let mut parts = Vec::new();
    if let Some(r) = hold.requests {
        parts.push(format!("{r} requests"));
    }
    if let Some(ms) = hold.duration_ms {
        parts.push(format!("{} s", ms / 1000));
    }
    parts.join(" and ")
}

#[derive(Deserialize)]
pub struct CanaryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    steps: String,
    #[serde(default)]
    hold_requests: String,
    #[serde(default)]
    condition: String,
    #[serde(default)]
    revision: String,
}

impl CanaryForm {
    fn request(&self) -> modelops_core::Result<CanaryRequest> {
        let version = self.version.trim().parse::<u32>().map_err(|_| Error::invalid("version", format!("`{}` is not a version number", self.version.trim())))?;
        let requests = match self.hold_requests.trim() {
            "" => None,
            r => Some(r.parse::<u64>().map_err(|_| Error::invalid("hold_requests", format!("`{r}` is not a number of requests")))?),
        };
        let steps = self
            .steps
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let weight = s.trim_end_matches('%').parse::<u32>().map_err(|_| Error::invalid("steps", format!("`{s}` is not a percentage")))?;
                Ok(CanaryStep { weight, hold: Hold { requests, duration_ms: None } })
            })
            .collect::<modelops_core::Result<Vec<_>>>()?;
        let condition = Some(self.condition.trim().to_string()).filter(|c| !c.is_empty());
        Ok(CanaryRequest { version, steps, condition })
    }
}

pub async fn start_canary(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>, Form(form): Form<CanaryForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let name = model_name(&name, &viewer)?;
    let canary = form.request().for_viewer(&viewer)?;
    let change = ChangeRequest {
        revision: revision(&form.revision).for_viewer(&viewer)?,
        canary: Some(canary),
        strategy: Some(modelops_core::deployment::Strategy::Canary),
        ..ChangeRequest::default()
    };
    state.deployments.change(&viewer.principal, &name, change).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/deployments/{}?done=canary-started", enc(name.as_str()))).into_response())
}

pub async fn confirm_rollback(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>) -> PageResult {
    let name = model_name(&name, &viewer)?;
    let status = state.deployments.get(&viewer.principal, &name).await.for_viewer(&viewer)?;
    let d = &status.deployment;
    let to = rollback_target(d);
    let now: Vec<String> = d.routes.iter().map(|r| format!("v{} ({}%)", r.version, r.weight)).collect();
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/deployments" { "Deployments" } " / " a href={ "/ui/deployments/" (enc(d.name.as_str())) } { (d.name) } " / " span aria-current="page" { "Roll back" } }
        h1 { "Roll back " (d.name) "?" }
        p { "It serves " (now.join(", ")) " now. "
            @if let Some(v) = to { "Rolling back sends all its traffic to " strong { "v" (v) } ", stops any canary, and is recorded in the audit log under your name." }
            @else { "There is no earlier version to roll back to." } }
        @if to.is_some() {
            form method="post" action={ "/ui/deployments/" (enc(d.name.as_str())) "/rollback" } {
                (viewer.csrf_field())
                input type="hidden" name="revision" value=(d.revision);
                div.buttons {
                    button.danger type="submit" { "Yes, roll back" }
                    a.button.secondary href={ "/ui/deployments/" (enc(d.name.as_str())) } { "Cancel" }
                }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Deployments, &format!("Roll back {}", d.name), None, body).into_response())
}

#[derive(Deserialize)]
pub struct RollbackForm {
    #[serde(default)]
    csrf: String,
    /// The revision the confirmation page showed.
    #[serde(default)]
    revision: String,
}

fn revision(raw: &str) -> modelops_core::Result<Option<u64>> {
    match raw.trim() {
        "" => Ok(None),
        r => r.parse::<u64>().map(Some).map_err(|_| Error::invalid("revision", format!("`{r}` is not a revision number"))),
    }
}

pub async fn rollback(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>, Form(form): Form<RollbackForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let name = model_name(&name, &viewer)?;
    // Against the revision the confirmation page showed: if the deployment
    // changed since (a canary tripped by itself, another rollback), the
    // person looks again.
    let seen = revision(&form.revision).for_viewer(&viewer)?;
    state.deployments.rollback(&viewer.principal, &name, seen).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/deployments/{}?done=rolled-back", enc(name.as_str()))).into_response())
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    description: String,
}

pub async fn create(State(state): State<WebState>, viewer: Viewer, Form(form): Form<CreateForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let request = (|| {
        Ok::<_, Error>(CreateRequest {
            name: Some(ModelName::parse_field("name", form.name.trim())?),
            model: Some(ModelName::parse_field("model", form.model.trim())?),
            version: Some(form.version.trim().parse::<u32>().map_err(|_| Error::invalid("version", format!("`{}` is not a version number", form.version.trim())))?),
            description: form.description.clone(),
            ..CreateRequest::default()
        })
    })()
    .for_viewer(&viewer)?;
    let created = state.deployments.create(&viewer.principal, request).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/deployments/{}?done=deployment-created", enc(created.deployment.name.as_str()))).into_response())
}
