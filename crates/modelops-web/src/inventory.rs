// The inventory: every model with filters and search, what needs
// attention, registering a model, and the inventory report.

use crate::page::{self, badge, enc, ForViewer, PageResult, Section};
use crate::session::Viewer;
use crate::WebState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use modelops_core::auth::Action;
use modelops_core::governance::CHAMPION;
use modelops_core::model::{ModelKind, ModelState, NewModel, RiskTier, ValidationTarget};
use modelops_core::name::ModelName;
use modelops_core::page::{ModelQuery, PageRequest};
use modelops_core::Error;
use modelops_registry::reports::{Report, ReportFormat};
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    tag: String,
    page: Option<String>,
    done: Option<String>,
}

fn nonempty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl Filters {
    fn query(&self) -> modelops_core::Result<ModelQuery> {
        let tag = nonempty(&self.tag).map(|t| match t.split_once('=') {
            Some((k, v)) => (k.trim().to_string(), Some(v.trim().to_string())),
            None => (t, None),
        });
        let query = ModelQuery {
            kind: nonempty(&self.kind).map(|k| ModelKind::parse_field("kind", &k)).transpose()?,
            risk_tier: nonempty(&self.tier).map(|k| RiskTier::parse_field("tier", &k)).transpose()?,
            state: nonempty(&self.state).map(|k| ModelState::parse_field("state", &k)).transpose()?,
            owner: nonempty(&self.owner),
            team: nonempty(&self.team),
            text: nonempty(&self.q),
            tag,
            page: PageRequest { size: 50, token: self.page.clone().filter(|p| !p.is_empty()) },
            ..ModelQuery::default()
        };
        query.validate()?;
        Ok(query)
    }

    /// This page's filters as a query string, for the next page's link.
    fn with_page(&self, token: &str) -> String {
        let pairs = [("q", &self.q), ("kind", &self.kind), ("tier", &self.tier), ("owner", &self.owner), ("team", &self.team), ("state", &self.state), ("tag", &self.tag)];
        let mut out: Vec<String> = pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", enc(v))).collect();
        out.push(format!("page={}", enc(token)));
        out.join("&")
    }
}

fn select(name: &str, label: &str, current: &str, options: &[&str]) -> maud::Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                option value="" selected[current.is_empty()] { "any" }
                @for o in options {
                    option value=(o) selected[*o == current] { (o.replace('_', " ")) }
                }
            }
        }
    }
}

pub async fn page(State(state): State<WebState>, viewer: Viewer, Query(filters): Query<Filters>) -> PageResult {
    let query = filters.query().for_viewer(&viewer)?;
    let models = state.registry.list_models(&query).await.for_viewer(&viewer)?;
    let attention = state.registry.attention(&viewer.principal).await.for_viewer(&viewer)?;
    let kinds: Vec<&str> = ModelKind::ALL.iter().map(|k| k.as_str()).collect();
    let tiers: Vec<&str> = RiskTier::ALL.iter().map(|k| k.as_str()).collect();
    let states: Vec<&str> = ModelState::ALL.iter().map(|k| k.as_str()).collect();
    let body = html! {
        div.heading-row {
            h1 { "Model inventory" }
            div.actions {
                @if viewer.may(Action::ModelCreate) { a.button href="/ui/models/new" { "Register a model" } }
                a.button.secondary href="/ui/reports/inventory" { "Inventory report" }
            }
        }
        section.attention aria-label="Needs attention" {
            div.stat { span.count data-testid="awaiting-approval" { (attention.awaiting_approval.len()) } span { "versions awaiting approval" } }
            div.stat { span.count data-testid="overdue-reviews" { (attention.overdue_reviews.len()) } span { "overdue periodic reviews" } }
            div.stat { span.count data-testid="open-alerts" { (attention.firing_alerts) } span { "alerts firing" } }
        }
        @if !attention.awaiting_approval.is_empty() {
            details.awaiting {
                summary { "Awaiting approval" }
                ul { @for (m, v) in &attention.awaiting_approval { li { a href={ "/ui/models/" (enc(m.as_str())) "/versions/" (v) } { (m) " v" (v) } } } }
            }
        }
        @if !attention.overdue_reviews.is_empty() {
            details.awaiting {
                summary { "Overdue reviews" }
                ul { @for (m, v) in &attention.overdue_reviews { li { a href={ "/ui/models/" (enc(m.as_str())) "/versions/" (v) } { (m) " v" (v) } } } }
            }
        }
        form.filters method="get" action="/ui/" role="search" {
            div.field.grow {
                label for="q" { "Search" }
                input id="q" name="q" type="search" value=(filters.q) placeholder="name, description or purpose";
            }
            (select("kind", "Kind", &filters.kind, &kinds))
            (select("tier", "Risk tier", &filters.tier, &tiers))
            (select("state", "State", &filters.state, &states))
            div.field { label for="owner" { "Owner" } input id="owner" name="owner" value=(filters.owner); }
            div.field { label for="team" { "Team" } input id="team" name="team" value=(filters.team); }
            div.field { label for="tag" { "Tag" } input id="tag" name="tag" value=(filters.tag) placeholder="key or key=value"; }
            div.field.buttons { button type="submit" { "Filter" } a href="/ui/" { "Clear" } }
        }
        @if models.items.is_empty() {
            p.empty { "No model matches." @if viewer.may(Action::ModelCreate) { " " a href="/ui/models/new" { "Register one" } "." } }
        } @else {
            div.table-wrap {
                table {
                    caption.visually-hidden { "Models" }
                    thead { tr { th scope="col" { "Model" } th scope="col" { "Kind" } th scope="col" { "Risk tier" } th scope="col" { "Owner" } th scope="col" { "Team" } th scope="col" { "Latest" } th scope="col" { "Production" } th scope="col" { "State" } } }
                    tbody {
                        @for m in &models.items {
                            tr {
                                th scope="row" { a href={ "/ui/models/" (enc(m.name.as_str())) } { (m.name) } @if !m.description.is_empty() { div.sub { (m.description) } } }
                                td { (m.kind) }
                                td { (badge(m.risk_tier.as_str())) }
                                td { (m.owner) }
                                td { (m.team) }
                                td { @if let Some(v) = m.latest_version { "v" (v) } @else { "—" } }
                                td { @if let Some(v) = m.aliases.get(CHAMPION) { "v" (v) } @else { "—" } }
                                td { (badge(m.state.as_str())) }
                            }
                        }
                    }
                }
            }
            @if let Some(token) = &models.next_page_token {
                p { a href={ "/ui/?" (filters.with_page(token)) } rel="next" { "Next page" } }
            }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Inventory, "Model inventory", page::notice_for(filters.done.as_deref()), body).into_response())
}

pub async fn new_model_page(viewer: Viewer) -> PageResult {
    let body = html! {
        h1 { "Register a model" }
        form.stacked method="post" action="/ui/models" {
            (viewer.csrf_field())
            div.field { label for="name" { "Name" } input id="name" name="name" required aria-describedby="name-help"; p.help id="name-help" { "Up to 128 characters, without '/'. Only an admin's rename changes it later." } }
            div.field { label for="kind" { "Kind" } select id="kind" name="kind" { @for k in ModelKind::ALL { option value=(k.as_str()) { (k.as_str()) } } } }
            div.field { label for="risk_tier" { "Risk tier" } select id="risk_tier" name="risk_tier" { @for t in RiskTier::ALL { option value=(t.as_str()) selected[*t == RiskTier::Medium] { (t.as_str()) } } } }
            div.field { label for="owner" { "Owner" } input id="owner" name="owner" value=(viewer.principal.name()) required; }
            div.field { label for="team" { "Team" } input id="team" name="team"; }
            div.field { label for="description" { "Description" } input id="description" name="description"; }
            div.field { label for="business_purpose" { "Business purpose" } textarea id="business_purpose" name="business_purpose" rows="2" {} }
            div.field { label for="intended_use" { "Intended use" } textarea id="intended_use" name="intended_use" rows="2" {} }
            div.field { label for="restrictions" { "Restrictions" } textarea id="restrictions" name="restrictions" rows="2" {} }
            div.field { label for="developers" { "Developers" } input id="developers" name="developers" aria-describedby="dev-help"; p.help id="dev-help" { "User names, separated by commas, who may push versions besides the owner and the owner's team." } }
            div.field { label for="validation_metric" { "Validation metric" } input id="validation_metric" name="validation_metric" placeholder="e.g. auc"; }
            div.field { label for="validation_threshold" { "Validation threshold" } input id="validation_threshold" name="validation_threshold" inputmode="decimal" placeholder="e.g. 0.75"; }
            button type="submit" { "Register" }
        }
    };
    Ok(page::shell(Some(&viewer), Section::Inventory, "Register a model", None, body).into_response())
}

#[derive(Deserialize)]
pub struct NewModelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    risk_tier: String,
    #[serde(default)]
    owner: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    business_purpose: String,
    #[serde(default)]
    intended_use: String,
    #[serde(default)]
    restrictions: String,
    #[serde(default)]
    developers: String,
    #[serde(default)]
    validation_metric: String,
    #[serde(default)]
    validation_threshold: String,
}

impl NewModelForm {
    fn into_new_model(self) -> modelops_core::Result<NewModel> {
        let validation = match (nonempty(&self.validation_metric), nonempty(&self.validation_threshold)) {
            (None, None) => None,
            (Some(metric), Some(threshold)) => {
                let threshold = threshold.parse::<f64>().map_err(|_| Error::invalid("validation_threshold", format!("`{threshold}` is not a number")))?;
                Some(ValidationTarget { metric, threshold })
            }
            (Some(_), None) => return Err(Error::invalid("validation_threshold", "a validation metric needs its threshold")),
            (None, Some(_)) => return Err(Error::invalid("validation_metric", "a validation threshold needs its metric")),
        };
        Ok(NewModel {
            name: ModelName::parse_field("name", self.name.trim())?,
            kind: ModelKind::parse_field("kind", &self.kind)?,
            risk_tier: RiskTier::parse_field("risk_tier", &self.risk_tier)?,
            owner: self.owner.trim().to_string(),
            team: self.team.trim().to_string(),
            description: self.description,
            business_purpose: self.business_purpose,
            intended_use: self.intended_use,
            restrictions: self.restrictions,
            tags: Default::default(),
            dependencies: Vec::new(),
            developers: self.developers.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect(),
            validation,
        })
    }
}

pub async fn create_model(State(state): State<WebState>, viewer: Viewer, Form(form): Form<NewModelForm>) -> PageResult {
    viewer.check_csrf(&form.csrf).for_viewer(&viewer)?;
    let new = form.into_new_model().for_viewer(&viewer)?;
    let model = state.registry.create_model(&viewer.principal, new).await.for_viewer(&viewer)?;
    Ok(Redirect::to(&format!("/ui/models/{}?done=model-created", enc(model.name.as_str()))).into_response())
}

pub async fn report(State(state): State<WebState>, viewer: Viewer) -> PageResult<Response> {
    let html = state.registry.report(&viewer.principal, Report::Inventory, ReportFormat::Html).await.for_viewer(&viewer)?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}
