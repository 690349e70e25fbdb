// A model: its record, versions timeline with states and aliases, lineage
// (datasets, commits, parent versions, retraining runs, upstream models as
// a graph), the latest card rendered, deployments, reports, and pushing a
// version from the browser.

use crate::page::{self, badge, enc, time, ForViewer, PageError, PageResult, Section};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use modelops_core::auth::Action;
use modelops_core::model::Model;
use modelops_core::name::ModelName;
use modelops_core::page::{PageRequest, VersionQuery};
use modelops_core::version::{ArtifactSpec, Lineage, ModelCard, ModelVersion, NewVersion, Signature};
use modelops_core::Error;
use modelops_registry::reports::{Report, ReportFormat};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
pub struct Done {
    done: Option<String>,
}

pub fn model_name(raw: &str, viewer: &Viewer) -> PageResult<ModelName> {
    ModelName::parse_field("name", raw).for_viewer(viewer)
}

pub async fn all_versions(state: &WebState, name: &ModelName) -> modelops_core::Result<Vec<ModelVersion>> {
    let mut out = Vec::new();
    let mut query = VersionQuery { page: PageRequest { size: 200, token: None }, ..VersionQuery::default() };
    loop {
        let page = state.registry.list_versions(name, &query).await?;
        out.extend(page.items);
        match page.next_page_token {
            Some(t) => query.page.token = Some(t),
            None => break,
        }
    }
    out.sort_by_key(|v| std::cmp::Reverse(v.number));
    Ok(out)
}

pub async fn page(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>, Query(done): Query<Done>) -> PageResult {
    let name = model_name(&name, &viewer)?;
    let model = state.registry.get_model(&name).await.for_viewer(&viewer)?;
    let versions = all_versions(&state, &name).await.for_viewer(&viewer)?;
    let deployments = state.registry.list_deployments(&viewer.principal, Some(&name), false).await.for_viewer(&viewer)?;
    let job = state.registry.retrain_job(&viewer.principal, &name).await.ok();
    let latest = versions.first();
    let may_push = viewer.may(Action::VersionCreate) && model.state == modelops_core::model::ModelState::Active;
    let base = format!("/ui/models/{}", enc(name.as_str()));
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/" { "Inventory" } " / " span aria-current="page" { (model.name) } }
        div.heading-row {
            h1 { (model.name) " " (badge(model.risk_tier.as_str())) " " (badge(model.state.as_str())) }
            div.actions {
                a.button.secondary href={ (base) "/reports/governance" } { "Governance report" }
                a.button.secondary href={ (base) "/reports/annex-iv" } { "Annex IV draft" }
                a.button.secondary href="/ui/reports/inventory" { "Inventory entry" }
            }
        }
        @if !model.description.is_empty() { p.lead { (model.description) } }
        dl.facts {
            dt { "Kind" } dd { (model.kind) }
            dt { "Owner" } dd { (model.owner) }
            dt { "Team" } dd { (if model.team.is_empty() { "—" } else { &model.team }) }
            dt { "Developers" } dd { (if model.developers.is_empty() { "—".to_string() } else { model.developers.join(", ") }) }
            dt { "Business purpose" } dd { (or_dash(&model.business_purpose)) }
            dt { "Intended use" } dd { (or_dash(&model.intended_use)) }
            dt { "Restrictions" } dd { (or_dash(&model.restrictions)) }
            dt { "Validation target" } dd { @if let Some(v) = &model.validation { (v.metric) " ≥ " (page::number(v.threshold)) } @else { "—" } }
            dt { "Aliases" } dd { @if model.aliases.is_empty() { "—" } @else { @for (alias, v) in &model.aliases { span.alias { (alias) " → v" (v) } " " } } }
            dt { "Tags" } dd { @if model.tags.is_empty() { "—" } @else { @for (k, v) in &model.tags { span.tag { (k) "=" (v) } " " } } }
            dt { "Registered" } dd { (time(&model.created_at)) " by " (model.created_by) }
        }
        section aria-labelledby="versions-h" {
            h2 id="versions-h" { "Versions" }
            @if versions.is_empty() {
                p.empty { "No version yet." }
            } @else {
                ol.timeline {
                    @for v in &versions {
                        li {
                            a href={ (base) "/versions/" (v.number) } { "v" (v.number) }
                            " " (badge(v.state.as_str()))
                            @for a in &v.aliases { " " span.alias { (a) } }
                            " · " (time(&v.created_at)) " by " (v.created_by)
                            @if let Some(p) = v.lineage.parent_version { " · from v" (p) }
                            @if let Some(r) = &v.lineage.retrain { " · " a href={ "/ui/jobs/runs/" (r.job_run) } { "retraining run " (r.job_run) } }
                            @if !v.description.is_empty() { div.sub { (v.description) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="lineage-h" {
            h2 id="lineage-h" { "Lineage" }
            (lineage_graph(&model, &versions))
            @if let Some(v) = latest {
                (lineage_facts(&v.lineage))
            }
        }
        @if let Some(v) = latest {
            section aria-labelledby="card-h" {
                h2 id="card-h" { "Model card (v" (v.number) ")" }
                (card(&v.card))
            }
        }
        section aria-labelledby="deploy-h" {
            h2 id="deploy-h" { "Deployments" }
            @if deployments.is_empty() { p.empty { "Not deployed." } }
            ul { @for d in &deployments { li { a href={ "/ui/deployments/" (enc(d.name.as_str())) } { (d.name) } " · " (d.strategy) " · " (badge(d.state.as_str())) } } }
            @if let Some(job) = &job {
                p { "Retraining job: " (job_summary(job)) " · " a href={ "/ui/jobs?model=" (enc(name.as_str())) } { "runs" } }
            }
        }
        @if may_push {
            section aria-labelledby="push-h" {
                h2 id="push-h" { "Push a version" }
                form.stacked method="post" action={ (base) "/versions" } enctype="multipart/form-data" {
                    (viewer.csrf_field())
                    div.field { label for="artifact" { "Artifact file" } input id="artifact" name="artifact" type="file" required; }
                    div.field { label for="description" { "Description" } input id="description" name="description"; }
                    div.field { label for="parent_version" { "Parent version" } input id="parent_version" name="parent_version" inputmode="numeric" value=[model.latest_version]; }
                    div.field { label for="code_commit" { "Code commit" } input id="code_commit" name="code_commit"; }
                    div.field { label for="dataset_uri" { "Training data URI" } input id="dataset_uri" name="dataset_uri"; }
                    div.field { label for="metrics" { "Metrics" } textarea id="metrics" name="metrics" rows="3" aria-describedby="metrics-help" {} p.help id="metrics-help" { "One per line: " code { "auc=0.81" } ". They go on the model card, where the gates read them." } }
                    div.field { label for="card_markdown" { "Model card (Markdown)" } textarea id="card_markdown" name="card_markdown" rows="6" {} }
                    div.field { label for="card_intended_use" { "Card: intended use" } textarea id="card_intended_use" name="card_intended_use" rows="2" {} }
                    div.field { label for="card_limitations" { "Card: limitations" } textarea id="card_limitations" name="card_limitations" rows="2" {} }
                    div.field { label for="card_evaluation_data" { "Card: evaluation data" } textarea id="card_evaluation_data" name="card_evaluation_data" rows="2" {} }
                    button type="submit" { "Push version" }
                }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Inventory, model.name.as_str(), page::notice_for(done.done.as_deref()), body).into_response())
}

fn or_dash(text: &str) -> &str {
    if text.trim().is_empty() {
        "—"
    } else {
        text
    }
}

fn job_summary(job: &modelops_core::retrain::RetrainJob) -> String {
    let runner = match &job.spec.runner {
        modelops_core::retrain::JobRunner::Command { argv, .. } => format!("command `{}`", argv.join(" ")),
        modelops_core::retrain::JobRunner::Webhook { url, .. } => format!("webhook {url}"),
    };
    let mut triggers = Vec::new();
    if job.spec.on_alert {
        triggers.push("on alert".to_string());
    }
    if let Some(s) = &job.spec.schedule {
        triggers.push(format!("schedule `{s}`"));
    }
    triggers.push("by hand".into());
    format!("{runner}; {}", triggers.join(", "))
}

pub fn card(card: &ModelCard) -> Markup {
    html! {
        @if card.markdown.trim().is_empty() && card.intended_use.is_empty() && card.limitations.is_empty() && card.metrics.is_empty() {
            p.empty { "The card is empty." }
        } @else {
            div.card-md { (crate::markdown::render(&card.markdown)) }
            dl.facts {
                @if !card.intended_use.is_empty() { dt { "Intended use" } dd { (card.intended_use) } }
                @if !card.limitations.is_empty() { dt { "Limitations" } dd { (card.limitations) } }
                @if !card.ethical_considerations.is_empty() { dt { "Ethical considerations" } dd { (card.ethical_considerations) } }
                @if !card.evaluation_data.is_empty() { dt { "Evaluation data" } dd { (card.evaluation_data) } }
            }
            @if !card.metrics.is_empty() {
                table.compact {
                    caption { "Metrics on the card" }
                    thead { tr { th scope="col" { "Metric" } th scope="col" { "Value" } } }
                    tbody { @for (k, v) in &card.metrics { tr { th scope="row" { (k) } td { (page::number(*v)) } } } }
                }
            }
        }
    }
}

pub fn lineage_facts(lineage: &Lineage) -> Markup {
    html! {
        dl.facts {
            dt { "Training data" } dd { (lineage.dataset_uri.as_deref().unwrap_or("—")) @if let Some(rows) = lineage.dataset_rows { " (" (rows) " rows)" } }
            @if let Some(sha) = &lineage.dataset_sha256 { dt { "Data sha256" } dd.mono { (sha) } }
            dt { "Code commit" } dd.mono { (lineage.code_commit.as_deref().unwrap_or("—")) }
            dt { "Parent version" } dd { @if let Some(p) = lineage.parent_version { "v" (p) } @else { "—" } }
            @if let Some(run) = &lineage.mlflow_run_id { dt { "MLflow run" } dd.mono { (run) } }
            @if let Some(r) = &lineage.retrain {
                dt { "Retraining run" } dd { a href={ "/ui/jobs/runs/" (r.job_run) } { "run " (r.job_run) } " (" (r.trigger) ")"
                    @if let Some(a) = r.alert { ", alert " (a) }
                    @if let Some(w) = &r.window { ", window " (time(&w.start)) " – " (time(&w.end)) " of " (w.deployment) }
                }
            }
        }
    }
}

/// Upstream models → this model, and the chain of parent versions, drawn
/// as boxes and arrows (and listed for screen readers).
fn lineage_graph(model: &Model, versions: &[ModelVersion]) -> Markup {
    let upstream = &model.dependencies;
    let box_w = 180.0;
    let box_h = 34.0;
    let gap = 14.0;
    let rows = upstream.len().max(1) as f64;
    let height = (rows * (box_h + gap)).max(box_h + 2.0 * gap) + gap;
    let width = 640.0;
    let center_y = height / 2.0 - box_h / 2.0;
    let mut chain: Vec<(u32, Option<u32>)> = versions.iter().map(|v| (v.number, v.lineage.parent_version)).collect();
    chain.sort();
    html! {
        figure.lineage {
            svg viewBox={ "0 0 " (width) " " (height) } role="img" aria-label={ "Lineage of " (model.name) ": " (upstream.len()) " upstream models" } {
                defs { marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse" { path d="M 0 0 L 10 5 L 0 10 z" {} } }
                @for (i, up) in upstream.iter().enumerate() {
                    @let y = gap + i as f64 * (box_h + gap);
                    a href={ "/ui/models/" (enc(up.as_str())) } tabindex="-1" {
                        rect.node x="10" y=(y) width=(box_w) height=(box_h) rx="4" {}
                        text x=(10.0 + box_w / 2.0) y=(y + box_h / 2.0 + 4.0) text-anchor="middle" { (up) }
                    }
                    line.edge x1=(10.0 + box_w) y1=(y + box_h / 2.0) x2=(width / 2.0 - box_w / 2.0) y2=(center_y + box_h / 2.0) marker-end="url(#arrow)" {}
                }
                rect.node.self x=(width / 2.0 - box_w / 2.0) y=(center_y) width=(box_w) height=(box_h) rx="4" {}
                text x=(width / 2.0) y=(center_y + box_h / 2.0 + 4.0) text-anchor="middle" { (model.name) }
                @if upstream.is_empty() {
                    text.tick x="10" y=(center_y + box_h / 2.0 + 4.0) { "no upstream model" }
                }
            }
            figcaption {
                @if upstream.is_empty() { "Consumes no other model's output." } @else {
                    "Consumes the output of: "
                    @for (i, up) in upstream.iter().enumerate() { @if i > 0 { ", " } a href={ "/ui/models/" (enc(up.as_str())) } { (up) } }
                    "."
                }
                @if chain.iter().any(|(_, p)| p.is_some()) {
                    " Versions derived: "
                    @for (i, (n, p)) in chain.iter().filter(|(_, p)| p.is_some()).enumerate() { @if i > 0 { ", " } "v" (p.unwrap_or_default()) " → v" (n) }
                    "."
                }
            }
        }
    }
}

pub async fn report(State(state): State<WebState>, viewer: Viewer, Path((name, report)): Path<(String, String)>) -> PageResult<Response> {
    let name = model_name(&name, &viewer)?;
    let report = match report.as_str() {
        "governance" => Report::Model(name),
        "annex-iv" => Report::AnnexIv(name),
        other => return Err(PageError::new(Error::not_found("report", other), &viewer)),
    };
    let html = state.registry.report(&viewer.principal, report, ReportFormat::Html).await.for_viewer(&viewer)?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

fn parse_metrics(text: &str) -> modelops_core::Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').or_else(|| line.split_once(':')).ok_or_else(|| {
            Error::invalid("metrics", format!("line {}: `{line}` is not `name=value`", i + 1))
        })?;
        let value: f64 = v.trim().parse().map_err(|_| Error::invalid("metrics", format!("line {}: `{}` is not a number", i + 1, v.trim())))?;
        out.insert(k.trim().to_string(), value);
    }
    Ok(out)
}

/// A version from the push form: the artifact stored (`upload::read`),
/// then the version created — the two halves of the REST API's push, the
/// same use cases.
pub async fn push_version(State(state): State<WebState>, viewer: Viewer, Path(name): Path<String>, multipart: Multipart) -> PageResult {
    let name = model_name(&name, &viewer)?;
    let crate::upload::Upload { fields, file } = crate::upload::read(&state, &viewer, multipart, "artifact").await?;
    let (stored, filename) = file.ok_or_else(|| PageError::new(Error::invalid("artifact", "choose the artifact file to push"), &viewer))?;
    if stored.size == 0 {
        return Err(PageError::new(Error::invalid("artifact", format!("`{filename}` is empty")), &viewer));
    }
    let get = |k: &str| fields.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let parent_version = get("parent_version")
        .map(|p| p.parse::<u32>().map_err(|_| Error::invalid("parent_version", format!("`{p}` is not a version number"))))
        .transpose()
        .for_viewer(&viewer)?;
    let metrics = parse_metrics(fields.get("metrics").map(String::as_str).unwrap_or_default()).for_viewer(&viewer)?;
    let new = NewVersion {
        artifact: ArtifactSpec { sha256: stored.sha256, filename },
        lineage: Lineage { dataset_uri: get("dataset_uri"), code_commit: get("code_commit"), parent_version, ..Lineage::default() },
        signature: Signature::default(),
        card: ModelCard {
            markdown: fields.get("card_markdown").cloned().unwrap_or_default(),
            intended_use: get("card_intended_use").unwrap_or_default(),
            limitations: get("card_limitations").unwrap_or_default(),
            evaluation_data: get("card_evaluation_data").unwrap_or_default(),
            metrics,
            ..ModelCard::default()
        },
        description: get("description").unwrap_or_default(),
        tags: BTreeMap::new(),
    };
    let version = state.registry.create_version(&viewer.principal, &name, new).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/models/{}/versions/{}?done=version-pushed", enc(name.as_str()), version.number)).into_response())
}
