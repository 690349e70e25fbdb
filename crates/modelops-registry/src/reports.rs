//! Gathering the governance reports from the registry's own data; the
//! rendering (Markdown, HTML, JSON) is `modelops-governance`'s.

use crate::governance::approvals_in_force;
use crate::Registry;
use chrono::{DateTime, Utc};
use modelops_core::audit::{AuditEvent, AuditQuery};
use modelops_core::auth::{Action, Principal};
use modelops_core::governance::{Approval, CHAMPION};
use modelops_core::model::{Model, ModelState};
use modelops_core::name::ModelName;
use modelops_core::page::{ModelQuery, PageRequest, VersionQuery, MAX_PAGE_SIZE};
use modelops_core::version::{ModelVersion, VersionState};
use modelops_core::Result;
pub use modelops_governance::reports::ReportFormat;
use modelops_governance::reports::{
    annex_iv_missing, render_annex_iv, render_inventory, render_model, AnnexIvReport, GateDecisionRecord, InventoryReport, InventoryRow, ModelReport,
    VersionRecord,
};

/// See [`Registry::attention`].
#[derive(Debug, Clone, Default)]
pub struct Attention {
    pub awaiting_approval: Vec<(ModelName, u32)>,
    pub overdue_reviews: Vec<(ModelName, u32)>,
    pub firing_alerts: usize,
}

/// Which report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Every model with the SR 11-7 inventory fields.
    Inventory,
    /// One model's governance record.
    Model(ModelName),
    /// One model's EU AI Act Annex IV draft.
    AnnexIv(ModelName),
}

fn full_page() -> PageRequest {
    PageRequest { size: MAX_PAGE_SIZE, token: None }
}

impl Registry {
    /// Renders a report from the registry's data as it is now.
    pub async fn report(&self, principal: &Principal, report: Report, format: ReportFormat) -> Result<String> {
        self.authorize(principal, Action::Read, "reports").await?;
        Ok(match report {
            Report::Inventory => render_inventory(&self.inventory_report().await?, format),
            Report::Model(name) => render_model(&self.model_report(&name).await?, format),
            Report::AnnexIv(name) => render_annex_iv(&self.annex_iv_report(&name).await?, format),
        })
    }

    /// Items of a model's Annex IV draft the registry cannot fill.
    pub async fn annex_iv_missing(&self, name: &ModelName) -> Result<Vec<String>> {
        Ok(annex_iv_missing(&self.annex_iv_report(name).await?))
    }

    /// What needs someone's attention across the inventory: versions
    /// waiting in validation, production versions whose periodic review is
    /// overdue, and alerts firing. The web UI's inventory shows it.
    pub async fn attention(&self, principal: &Principal) -> Result<Attention> {
        self.authorize(principal, Action::Read, "models").await?;
        let mut awaiting_approval = Vec::new();
        for model in self.all_models().await? {
            if model.state != ModelState::Active {
                continue;
            }
            let query = VersionQuery { state: Some(VersionState::InValidation), page: full_page(), ..VersionQuery::default() };
            let page = self.store().list_versions(&model.name, &query).await?;
            awaiting_approval.extend(page.items.into_iter().map(|v| (v.model, v.number)));
        }
        let overdue_reviews = self.reviews_due(principal, chrono::Duration::zero()).await?.into_iter().filter(|d| d.overdue).map(|d| (d.model, d.version)).collect();
        let firing_alerts = self.store().alerts(None, true, 10_000).await?.len();
        Ok(Attention { awaiting_approval, overdue_reviews, firing_alerts })
    }

    async fn all_models(&self) -> Result<Vec<Model>> {
        let mut out = Vec::new();
        let mut query = ModelQuery { page: full_page(), ..ModelQuery::default() };
        loop {
            let page = self.store().list_models(&query).await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(token) => query.page.token = Some(token),
                None => return Ok(out),
            }
        }
    }

    async fn all_versions(&self, model: &ModelName) -> Result<Vec<ModelVersion>> {
        let mut out = Vec::new();
        let mut query = VersionQuery { page: full_page(), ..VersionQuery::default() };
        loop {
            let page = self.store().list_versions(model, &query).await?;
            out.extend(page.items);
            match page.next_page_token {
                Some(token) => query.page.token = Some(token),
                None => break,
            }
        }
        out.sort_by_key(|v| v.number);
        Ok(out)
    }

    async fn events_of(&self, model: &ModelName) -> Result<Vec<AuditEvent>> {
        let mut out = Vec::new();
        for subject in [format!("model/{model}"), format!("model/{model}/*")] {
            let mut query = AuditQuery { subject: Some(subject), page: full_page(), ..AuditQuery::default() };
            loop {
                let page = self.store().list_events(&query).await?;
                out.extend(self.unseal(page.items).await?);
                match page.next_page_token {
                    Some(token) => query.page.token = Some(token),
                    None => break,
                }
            }
        }
        out.sort_by_key(|e| e.sequence);
        Ok(out)
    }

    async fn version_record(&self, model: &ModelName, version: ModelVersion, next_reviews: &[(ModelName, u32, DateTime<Utc>)]) -> Result<VersionRecord> {
        let number = version.number;
        let approvals = self.store().approvals(model, number).await?;
        let evidence = self.store().evidence(model, number).await?;
        let reviews = self.store().reviews(model).await?.into_iter().filter(|r| r.version == number).collect();
        let next_review_at = next_reviews.iter().find(|(m, v, _)| m == model && *v == number).map(|(_, _, at)| *at);
        Ok(VersionRecord { version, approvals, evidence, reviews, next_review_at })
    }

    async fn next_reviews(&self) -> Result<Vec<(ModelName, u32, DateTime<Utc>)>> {
        Ok(self.store().review_schedule().await?.into_iter().map(|s| (s.model, s.version, s.next_review_at)).collect())
    }

    async fn policy_sha256(&self) -> Result<String> {
        Ok(self.active_policy().await?.0.sha256().to_string())
    }

    pub(crate) async fn inventory_report(&self) -> Result<InventoryReport> {
        let now = self.now();
        let next_reviews = self.next_reviews().await?;
        let mut rows = Vec::new();
        for model in self.all_models().await? {
            let versions = self.all_versions(&model.name).await?;
            let production = model.aliases.get(CHAMPION).copied();
            // The version validation speaks for: production, else the newest approved.
            let validated = production.or_else(|| versions.iter().rev().find(|v| v.state == VersionState::Approved).map(|v| v.number));
            let approvals: Vec<Approval> = match validated {
                Some(n) => self.store().approvals(&model.name, n).await?,
                None => Vec::new(),
            };
            let in_force = approvals_in_force(&approvals, now);
            let mut validators: Vec<String> = approvals.iter().filter(|a| a.decision == modelops_core::governance::Decision::Approve).map(|a| a.approver.clone()).collect();
            validators.sort();
            validators.dedup();
            let last_validation = approvals.iter().map(|a| a.created_at).max();
            let next_validation = production.and_then(|p| next_reviews.iter().find(|(m, v, _)| *m == model.name && *v == p).map(|(_, _, at)| *at));
            let mut open_exceptions = Vec::new();
            if let Some(due) = next_validation.filter(|due| *due < now) {
                open_exceptions.push(format!("periodic review overdue since {}", modelops_core::clock::format_time(&due)));
            }
            if production.is_some() && in_force.is_empty() && !approvals.is_empty() {
                open_exceptions.push("the production version's approvals have all expired".to_string());
            }
            if let Some(p) = production {
                if let Some(v) = versions.iter().find(|v| v.number == p).filter(|v| v.state != VersionState::Production) {
                    open_exceptions.push(format!(
                        "`champion` points at v{p}, which is `{}` (set before governance): promote it through the gate or retire it",
                        v.state
                    ));
                }
                let reviews = self.store().reviews(&model.name).await?;
                if let Some(last) = reviews.iter().filter(|r| r.version == p).max_by_key(|r| r.reviewed_at) {
                    if last.outcome != modelops_core::governance::ReviewOutcome::Satisfactory {
                        let comment = if last.comment.trim().is_empty() { String::new() } else { format!(": {}", last.comment.trim()) };
                        open_exceptions.push(format!("last periodic review of v{p} by {}: {}{comment}", last.reviewer, last.outcome));
                    }
                }
            }
            for a in in_force.iter().filter(|a| !a.conditions.trim().is_empty()) {
                open_exceptions.push(format!("approval conditions ({}): {}", a.approver, a.conditions.trim()));
            }
            let status = status_line(&model, &versions, production);
            rows.push(InventoryRow {
                name: model.name.clone(),
                kind: model.kind,
                purpose: model.business_purpose.clone(),
                intended_use: model.intended_use.clone(),
                restrictions: model.restrictions.clone(),
                owner: model.owner.clone(),
                team: model.team.clone(),
                developers: model.developers.clone(),
                validators,
                tier: model.risk_tier,
                state: model.state,
                status,
                production_version: production,
                last_validation,
                next_validation,
                open_exceptions,
            });
        }
        Ok(InventoryReport { generated_at: now, policy_sha256: self.policy_sha256().await?, rows })
    }

    pub(crate) async fn model_report(&self, name: &ModelName) -> Result<ModelReport> {
        let model = self.store().get_model(name).await?;
        let next_reviews = self.next_reviews().await?;
        let mut versions = Vec::new();
        for v in self.all_versions(name).await? {
            versions.push(self.version_record(name, v, &next_reviews).await?);
        }
        let audit = self.events_of(name).await?;
        let gate_decisions = audit.iter().filter_map(gate_decision_of).collect();
        Ok(ModelReport {
            generated_at: self.now(),
            policy_sha256: self.policy_sha256().await?,
            model,
            versions,
            gate_decisions,
            audit,
            chain_head: self.store().head().await?,
        })
    }

    pub(crate) async fn annex_iv_report(&self, name: &ModelName) -> Result<AnnexIvReport> {
        let model = self.store().get_model(name).await?;
        let versions = self.all_versions(name).await?;
        let chosen = match model.aliases.get(CHAMPION) {
            Some(p) => versions.iter().find(|v| v.number == *p).cloned(),
            None => versions.iter().rev().find(|v| v.state != VersionState::Retired).or(versions.last()).cloned(),
        };
        let next_reviews = self.next_reviews().await?;
        let version = match chosen {
            Some(v) => Some(self.version_record(name, v, &next_reviews).await?),
            None => None,
        };
        let dependencies = model.dependencies.iter().map(|d| d.to_string()).collect();
        Ok(AnnexIvReport { generated_at: self.now(), policy_sha256: self.policy_sha256().await?, model, version, dependencies })
    }
}

fn status_line(model: &Model, versions: &[ModelVersion], production: Option<u32>) -> String {
    if model.state == ModelState::Retired {
        return "retired".into();
    }
    if let Some(p) = production {
        return format!("in production (v{p})");
    }
    let latest_in = |state: VersionState| versions.iter().rev().find(|v| v.state == state).map(|v| v.number);
    if let Some(n) = latest_in(VersionState::Approved) {
        return format!("approved (v{n}), not in production");
    }
    if let Some(n) = latest_in(VersionState::InValidation) {
        return format!("in validation (v{n})");
    }
    match versions.iter().rev().find(|v| v.state != VersionState::Retired) {
        Some(v) => format!("{} (v{})", v.state, v.number),
        None if versions.is_empty() => "no versions".into(),
        None => "all versions retired".into(),
    }
}

/// A gate decision recorded in an event: a transition that went through
/// (its `after.gate`) or a refusal (`access.denied` with a gate).
fn gate_decision_of(event: &AuditEvent) -> Option<GateDecisionRecord> {
    let after = event.after.as_ref()?;
    let gate = after.get("gate")?;
    let version = event.subject.rsplit_once("/version/").and_then(|(_, n)| n.parse().ok())?;
    let transition = match event.action.as_str() {
        "access.denied" => after.get("action").and_then(|a| a.as_str()).unwrap_or("").to_string(),
        other => other.to_string(),
    };
    let failed = gate
        .get("conditions")
        .and_then(|c| c.as_array())
        .map(|cs| {
            cs.iter()
                .filter(|c| c.get("passed").and_then(|p| p.as_bool()) == Some(false))
                .map(|c| {
                    let text = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    (text("name"), text("message"))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(GateDecisionRecord {
        at: event.time,
        actor: event.actor.clone(),
        version,
        transition: transition.trim_start_matches("version.").to_string(),
        allowed: gate.get("allowed").and_then(|a| a.as_bool()).unwrap_or(false),
        policy_sha256: gate.get("policy_sha256").and_then(|p| p.as_str()).unwrap_or("").to_string(),
        failed,
        audit_sequence: event.sequence,
    })
}
