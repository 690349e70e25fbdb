//! Live monitoring in the governed inventory: what is set by people —
//! a version's reference profile (once), a deployment's monitors, labels —
//! and what the server decides — an alert firing or resolving, a retraining
//! request — authorised and, for the governed changes, written with their
//! audit events in one transaction.
//!
//! The statistics, windows and conditions are `modelops-watch`'s; it
//! validates a profile and a monitor (features against the signature, CEL)
//! before calling these, and keeps its own bookkeeping (window results,
//! state, delivery attempts) through [`Registry::monitor_store`].

use crate::deployments::deployment_subject;
use crate::{event, version_not_found, Registry};
use chrono::{DateTime, Utc};
use modelops_core::auth::{Action, Principal};
use modelops_core::monitoring::{Alert, LabelOutcome, Monitor, ReferenceProfile, RetrainRequest, WindowResult, MAX_MONITORS};
use modelops_core::name::ModelName;
use modelops_core::{Error, Result};
use serde_json::json;

/// The most labels one call records.
pub const MAX_LABELS: usize = 100_000;
/// Unknown request ids named in a label answer (the count is exact).
const UNKNOWN_IDS_SHOWN: usize = 100;

fn monitor_subject(deployment: &ModelName, name: &str) -> String {
    format!("deployment/{deployment}/monitor/{name}")
}

impl Registry {
    /// The store's monitoring bookkeeping, for the engine.
    pub fn monitor_store(&self) -> std::sync::Arc<dyn modelops_core::repo::Store> {
        self.inner.store.clone()
    }

    /// Sets a version's reference profile, once (a second is a conflict:
    /// it is immutable like lineage). `reference` was validated by the
    /// caller; its author and time are set here.
    pub async fn set_reference(&self, principal: &Principal, mut reference: ReferenceProfile) -> Result<ReferenceProfile> {
        let subject = format!("model/{}/version/{}", reference.model, reference.version);
        let permit = self.authorize(principal, Action::ReferenceSet, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let version = tx.version(&reference.model, reference.version).await?.ok_or_else(|| version_not_found(&reference.model, reference.version))?;
        version.ensure_active()?;
        reference.created_at = tx.now();
        reference.created_by = principal.name().to_string();
        tx.insert_reference(&reference).await.map_err(|e| match e {
            Error::AlreadyExists { .. } => Error::Conflict(format!(
                "version {} of `{}` has a reference profile already; it is immutable like lineage — push a new version to change it",
                reference.version, reference.model
            )),
            other => other,
        })?;
        let mut after = json!({"sha256": reference.sha256, "source": reference.source, "rows": reference.rows, "estimator": reference.estimator.is_some()});
        if let Some(data) = &reference.data {
            after["data"] = json!({"sha256": data.sha256, "filename": data.filename});
        }
        tx.record(event(tx.as_ref(), Action::ReferenceSet, subject, None, Some(after))).await?;
        tx.commit().await?;
        Ok(reference)
    }

    pub async fn reference(&self, principal: &Principal, model: &ModelName, version: u32) -> Result<ReferenceProfile> {
        self.authorize(principal, Action::Read, &format!("model/{model}/version/{version}")).await?;
        self.store()
            .reference(model, version)
            .await?
            .ok_or_else(|| Error::not_found("reference profile of version", format!("{model}/{version}")))
    }

    /// Creates a monitor on a deployment that exists and is not retired.
    /// `monitor.spec` was checked by the caller (structure, features, CEL).
    pub async fn create_monitor(&self, principal: &Principal, mut monitor: Monitor) -> Result<Monitor> {
        monitor.spec.check()?;
        let subject = monitor_subject(&monitor.deployment, &monitor.spec.name);
        let permit = self.authorize(principal, Action::MonitorCreate, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let deployment = tx.lock_deployment(&monitor.deployment).await?.ok_or_else(|| Error::not_found("deployment", &monitor.deployment))?;
        if deployment.state == modelops_core::deployment::DeploymentState::Retired {
            return Err(Error::Conflict(format!("deployment `{}` is retired", deployment.name)));
        }
        let existing = self.store().monitors(Some(&monitor.deployment)).await?;
        if existing.len() >= MAX_MONITORS && !existing.iter().any(|m| m.spec.name == monitor.spec.name) {
            return Err(Error::invalid("name", format!("deployment `{}` has {MAX_MONITORS} monitors, the most it holds", monitor.deployment)));
        }
        monitor.created_at = tx.now();
        monitor.created_by = principal.name().to_string();
        tx.insert_monitor(&monitor).await?;
        let after = serde_json::to_value(&monitor.spec).map_err(|e| Error::Internal(e.to_string()))?;
        tx.record(event(tx.as_ref(), Action::MonitorCreate, subject, None, Some(after))).await?;
        tx.commit().await?;
        Ok(monitor)
    }

    /// Removes a monitor, its state and its results (alerts stay: they are
    /// in the audit chain).
    pub async fn delete_monitor(&self, principal: &Principal, deployment: &ModelName, name: &str) -> Result<Monitor> {
        let subject = monitor_subject(deployment, name);
        let permit = self.authorize(principal, Action::MonitorDelete, &subject).await?;
        let monitor = self.find_monitor(deployment, name).await?;
        let mut tx = self.store().begin(&permit).await?;
        if !tx.delete_monitor(deployment, name).await? {
            return Err(Error::not_found("monitor", format!("{deployment}/{name}")));
        }
        let before = serde_json::to_value(&monitor.spec).map_err(|e| Error::Internal(e.to_string()))?;
        tx.record(event(tx.as_ref(), Action::MonitorDelete, subject, Some(before), None)).await?;
        tx.commit().await?;
        Ok(monitor)
    }

    pub async fn monitors(&self, principal: &Principal, deployment: Option<&ModelName>) -> Result<Vec<Monitor>> {
        self.authorize(principal, Action::Read, "monitor").await?;
        if let Some(d) = deployment {
            if self.store().get_deployment(d).await?.is_none() {
                return Err(Error::not_found("deployment", d));
            }
        }
        self.store().monitors(deployment).await
    }

    pub async fn monitor(&self, principal: &Principal, deployment: &ModelName, name: &str) -> Result<Monitor> {
        self.authorize(principal, Action::Read, &monitor_subject(deployment, name)).await?;
        self.find_monitor(deployment, name).await
    }

    /// A monitor without authorisation (the engine).
    pub async fn find_monitor(&self, deployment: &ModelName, name: &str) -> Result<Monitor> {
        if self.store().get_deployment(deployment).await?.is_none() {
            return Err(Error::not_found("deployment", deployment));
        }
        self.store()
            .monitors(Some(deployment))
            .await?
            .into_iter()
            .find(|m| m.spec.name == name)
            .ok_or_else(|| Error::not_found("monitor", format!("{deployment}/{name}")))
    }

    /// Window results of a monitor, oldest first.
    pub async fn monitor_results(&self, principal: &Principal, deployment: &ModelName, name: &str, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<WindowResult>> {
        self.authorize(principal, Action::Read, &monitor_subject(deployment, name)).await?;
        self.find_monitor(deployment, name).await?;
        self.store().results(deployment, name, since, limit).await
    }

    /// Records labels (request id → label JSON) for a deployment's calls.
    /// A request id no recorded call has is counted and named, not an
    /// error: the label is kept and joins the call if it is recorded later.
    /// Returns the outcome and the times of the joined calls (the windows
    /// whose performance changes).
    pub async fn record_labels(&self, principal: &Principal, deployment: &ModelName, labels: &[(String, String)]) -> Result<(LabelOutcome, Vec<DateTime<Utc>>)> {
        self.authorize(principal, Action::LabelsRecord, &deployment_subject(deployment.as_str())).await?;
        if labels.len() > MAX_LABELS {
            return Err(Error::TooLarge(format!("{} labels in one call; at most {MAX_LABELS}", labels.len())));
        }
        if self.store().get_deployment(deployment).await?.is_none() {
            return Err(Error::not_found("deployment", deployment));
        }
        let found = self.store().put_labels(deployment, labels, self.now()).await?;
        let mut outcome = LabelOutcome::default();
        let mut times = Vec::new();
        for ((id, _), at) in labels.iter().zip(found) {
            match at {
                Some(at) => {
                    outcome.joined += 1;
                    times.push(at);
                }
                None => {
                    outcome.unknown += 1;
                    if outcome.unknown_ids.len() < UNKNOWN_IDS_SHOWN {
                        outcome.unknown_ids.push(id.clone());
                    }
                }
            }
        }
        // Whichever replica runs the engine recomputes the closed windows.
        if !times.is_empty() {
            self.store().queue_relabels(deployment, &times).await?;
        }
        Ok((outcome, times))
    }

    /// An alert fires (the server acts): stored, with its retraining
    /// request when the rule asks for one, and audited in one transaction.
    /// Returns the alert with its id, and the request's id.
    pub async fn fire_alert(&self, mut alert: Alert, model: &ModelName, retrain: bool) -> Result<(Alert, Option<i64>)> {
        let principal = Principal::system();
        let subject = monitor_subject(&alert.deployment, &alert.monitor);
        let permit = self.authorize(&principal, Action::AlertFire, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        alert.fired_at = tx.now();
        alert.id = tx.insert_alert(&alert).await?;
        let mut after = json!({
            "alert": alert.id, "rule": alert.rule, "version": alert.version,
            "window_start": alert.window_start, "detail": alert.detail,
        });
        let mut request = None;
        if retrain {
            let r = RetrainRequest {
                id: 0,
                model: model.clone(),
                deployment: alert.deployment.clone(),
                alert_id: alert.id,
                reason: format!("alert `{}` of monitor `{}` fired on version {}", alert.rule, alert.monitor, alert.version),
                state: "open".to_string(),
                created_at: alert.fired_at,
            };
            let id = tx.insert_retrain_request(&r).await?;
            after["retrain_request"] = json!(id);
            request = Some(id);
        }
        tx.record(event(tx.as_ref(), Action::AlertFire, subject, None, Some(after))).await?;
        tx.commit().await?;
        Ok((alert, request))
    }

    /// An alert resolves: its condition has been false for a window.
    pub async fn resolve_alert(&self, alert: &Alert, why: &str) -> Result<()> {
        let principal = Principal::system();
        let subject = monitor_subject(&alert.deployment, &alert.monitor);
        let permit = self.authorize(&principal, Action::AlertResolve, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let now = tx.now();
        tx.resolve_alert(alert.id, now).await?;
        let after = json!({"alert": alert.id, "rule": alert.rule, "reason": why});
        tx.record(event(tx.as_ref(), Action::AlertResolve, subject, None, Some(after))).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn alerts(&self, principal: &Principal, deployment: Option<&ModelName>, firing_only: bool, limit: u32) -> Result<Vec<Alert>> {
        self.authorize(principal, Action::Read, "alert").await?;
        self.store().alerts(deployment, firing_only, limit).await
    }

    pub async fn retrain_requests(&self, principal: &Principal, model: Option<&ModelName>) -> Result<Vec<RetrainRequest>> {
        self.authorize(principal, Action::Read, "retrain").await?;
        self.store().retrain_requests(model).await
    }
}
