// Retraining: every model's job, the runs (what triggered them, where they
// stand and why, the version they registered), and one run's log.

use crate::page::{self, badge, enc, opt_time, time, ForViewer, PageResult, Section};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use maud::html;
use modelops_core::name::ModelName;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Filter {
    model: Option<String>,
}

fn duration(run: &modelops_core::retrain::JobRun) -> String {
    let end = run.ended_at.or(run.job_ended_at).unwrap_or(run.updated_at);
    let secs = (end - run.started_at).num_milliseconds() as f64 / 1000.0;
    format!("{secs:.1} s")
}

pub async fn list(State(state): State<WebState>, viewer: Viewer, Query(filter): Query<Filter>) -> PageResult {
    let model = filter.model.as_deref().filter(|m| !m.is_empty()).map(|m| ModelName::parse_field("model", m)).transpose().for_viewer(&viewer)?;
    let jobs = state.registry.retrain_jobs(&viewer.principal).await.for_viewer(&viewer)?;
    let runs = state.registry.job_runs(&viewer.principal, model.as_ref(), 100).await.for_viewer(&viewer)?;
    let body = html! {
        h1 { "Retraining" @if let Some(m) = &model { " of " (m) } }
        section aria-labelledby="jobs-h" {
            h2 id="jobs-h" { "Jobs" }
            @if jobs.is_empty() { p.empty { "No model has a retraining job (" code { "modelops jobs define" } ")." } } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Retraining jobs" }
                        thead { tr { th scope="col" { "Model" } th scope="col" { "Runs" } th scope="col" { "Triggers" } th scope="col" { "Rollout" } th scope="col" { "Acts as" } } }
                        tbody {
                            @for j in &jobs {
                                tr {
                                    th scope="row" { a href={ "/ui/models/" (enc(j.model.as_str())) } { (j.model) } }
                                    td { @match &j.spec.runner { modelops_core::retrain::JobRunner::Command { argv, .. } => { "command " code { (argv.join(" ")) } } modelops_core::retrain::JobRunner::Webhook { url, .. } => { "webhook " (url) } } }
                                    td { @if j.spec.on_alert { "alerts; " } @if let Some(s) = &j.spec.schedule { "schedule " code { (s) } "; " } "by hand" }
                                    td { @if let Some(r) = &j.spec.rollout { "deployment " (r.deployment) @if r.shadow.is_some() { ", shadow first" } ", canary " (r.steps.iter().map(|s| s.weight.to_string()).collect::<Vec<_>>().join("/")) "%" } @else { "—" } }
                                    td { (j.run_as) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="runs-h" {
            h2 id="runs-h" { "Runs" }
            @if runs.is_empty() { p.empty { "No run yet." } } @else {
                div.table-wrap {
                    table {
                        caption.visually-hidden { "Retraining runs" }
                        thead { tr { th scope="col" { "Run" } th scope="col" { "Model" } th scope="col" { "Trigger" } th scope="col" { "State" } th scope="col" { "Version" } th scope="col" { "Started" } th scope="col" { "Took" } th scope="col" { "Why" } } }
                        tbody {
                            @for r in &runs {
                                tr {
                                    th scope="row" { a href={ "/ui/jobs/runs/" (r.id) } { (r.id) } }
                                    td { a href={ "/ui/models/" (enc(r.model.as_str())) } { (r.model) } }
                                    td { (r.trigger) @if let Some(a) = r.alert { " (alert " (a) ")" } }
                                    td { (badge(r.state.as_str())) }
                                    td { @if let Some(v) = r.version { a href={ "/ui/models/" (enc(r.model.as_str())) "/versions/" (v) } { "v" (v) } } @else { "—" } }
                                    td { (time(&r.started_at)) }
                                    td { (duration(r)) }
                                    td { (r.reason) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Jobs, "Retraining", None, body).into_response())
}

pub async fn run(State(state): State<WebState>, viewer: Viewer, Path(id): Path<String>) -> PageResult {
    let id = page::path_number::<i64>("run", &id).for_viewer(&viewer)?;
    let run = state.registry.job_run(&viewer.principal, id).await.for_viewer(&viewer)?;
    // The output may hold data from the window: for the roles that read predictions.
    let log = if viewer.may(modelops_core::auth::Action::PredictionsRead) { Some(state.registry.job_run_log(&viewer.principal, id).await.for_viewer(&viewer)?) } else { None };
    let title = format!("Retraining run {id}");
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/ui/jobs" { "Retraining" } " / " span aria-current="page" { "run " (id) } }
        h1 { (title) " " (badge(run.state.as_str())) }
        p.lead { (run.reason) }
        dl.facts {
            dt { "Model" } dd { a href={ "/ui/models/" (enc(run.model.as_str())) } { (run.model) } }
            dt { "Trigger" } dd { (run.trigger) " · asked by " (run.requested_by) @if let Some(a) = run.alert { " · alert " (a) } }
            @if let Some(w) = &run.window { dt { "Window" } dd { (w.deployment) " / " (w.monitor) ", " (time(&w.start)) " – " (time(&w.end)) ", v" (w.version) } }
            dt { "Parent version" } dd { @if let Some(p) = run.parent_version { "v" (p) } @else { "—" } }
            dt { "Registered" } dd { @if let Some(v) = run.version { a href={ "/ui/models/" (enc(run.model.as_str())) "/versions/" (v) } { "v" (v) } } @else { "—" } }
            dt { "Exit code" } dd { @if let Some(c) = run.exit_code { (c) } @else { "—" } }
            dt { "Started" } dd { (time(&run.started_at)) }
            dt { "Job ended" } dd { (opt_time(run.job_ended_at.as_ref())) }
            dt { "Ended" } dd { (opt_time(run.ended_at.as_ref())) }
            dt { "Took" } dd { (duration(&run)) }
        }
        section aria-labelledby="log-h" {
            h2 id="log-h" { "Output" }
            @match &log {
                None => { p.help { "A job's output is shown to the roles that read predictions (developers, validators, approvers, deployers, auditors, admins)." } }
                Some(l) if l.is_empty() => { p.empty { "No output kept." } }
                Some(l) => { (page::pre(l)) }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Jobs, &title, None, body).into_response())
}
