//! Deployments in the governed inventory: their changes are authorised,
//! checked against the versions' lifecycle and the `production` gate, and
//! written with their audit events in one transaction.
//!
//! The deployments crate decides *what* a deployment becomes (it validates
//! the request, compiles the rollback condition, loads and warms the
//! versions, steps canaries); these use cases decide whether it may, under
//! the write lock:
//! - only a version the tier's `production` gate allows, in state
//!   `approved` or `production`, receives production traffic; a shadow may
//!   be a version still in validation (it answers nobody);
//! - a version that comes to take all of a deployment's traffic is promoted
//!   (the `champion` alias, state `production`, the review schedule) in the
//!   same transaction, so the inventory says what production runs;
//! - a change computed from an older revision than the stored one is a
//!   conflict (409): two racing changes never both apply.

use crate::governance::Promotion;
use crate::{event, lock_active_model, snapshot, version_not_found, Registry};
use modelops_core::auth::{Action, Principal};
use modelops_core::deployment::{Deployment, DeploymentState, PredictionQuery, PredictionRecord};
use modelops_core::model::Model;
use modelops_core::name::ModelName;
use modelops_core::repo::{PredictionLog, WriteTx};
use modelops_core::version::VersionState;
use modelops_core::{Error, Result};
use serde_json::json;

/// The audit subject of a deployment.
pub fn deployment_subject(name: &str) -> String {
    format!("deployment/{name}")
}

/// The store's prediction log, for the recorder (which writes outside any
/// use case: records are not audited events, and authorising happened
/// when the call was routed).
struct StoreLog(std::sync::Arc<dyn modelops_core::repo::Store>);

#[async_trait::async_trait]
impl PredictionLog for StoreLog {
    async fn append_predictions(&self, records: &[PredictionRecord]) -> Result<()> {
        self.0.append_predictions(records).await
    }
    async fn list_predictions(&self, query: &PredictionQuery) -> Result<Vec<PredictionRecord>> {
        self.0.list_predictions(query).await
    }
    async fn prune_predictions(&self, before: chrono::DateTime<chrono::Utc>, limit: u32) -> Result<u64> {
        self.0.prune_predictions(before, limit).await
    }
}

/// Records removed per statement when pruning.
const PRUNE_SLICE: u32 = 10_000;

/// A deployment change as the deployments crate computed it.
#[derive(Debug, Clone)]
pub struct DeploymentChange {
    /// `deployment.update`, `.rollback`, `.advance` or `.retire`.
    pub action: Action,
    /// The stored revision the change was computed from.
    pub based_on: u64,
    /// The deployment as it is to be (its revision and times are set here).
    pub next: Deployment,
}

impl Registry {
    /// Where recorded predictions are written.
    pub fn prediction_log(&self) -> std::sync::Arc<dyn PredictionLog> {
        std::sync::Arc::new(StoreLog(self.inner.store.clone()))
    }

    pub async fn get_deployment(&self, principal: &Principal, name: &ModelName) -> Result<Deployment> {
        self.authorize(principal, Action::Read, &deployment_subject(name.as_str())).await?;
        self.store().get_deployment(name).await?.ok_or_else(|| Error::not_found("deployment", name))
    }

    /// A deployment by name without authorisation: the inference path,
    /// which has authorised `predict` already, and the canary controller.
    pub async fn find_deployment(&self, name: &ModelName) -> Result<Option<Deployment>> {
        self.store().get_deployment(name).await
    }

    pub async fn list_deployments(&self, principal: &Principal, model: Option<&ModelName>, include_retired: bool) -> Result<Vec<Deployment>> {
        self.authorize(principal, Action::Read, "deployment").await?;
        self.store().list_deployments(model, include_retired).await
    }

    /// Every deployment, retired ones too: what the server serves, and what
    /// it must stop serving.
    pub async fn all_deployments(&self) -> Result<Vec<Deployment>> {
        self.store().list_deployments(None, true).await
    }

    /// Recorded predictions of a deployment (retired ones too), oldest first.
    pub async fn list_predictions(&self, principal: &Principal, query: &PredictionQuery) -> Result<Vec<PredictionRecord>> {
        self.authorize(principal, Action::PredictionsRead, &deployment_subject(query.deployment.as_str())).await?;
        if self.store().get_deployment(&query.deployment).await?.is_none() {
            return Err(Error::not_found("deployment", &query.deployment));
        }
        self.store().list_predictions(query).await
    }

    /// Removes recorded predictions older than `before` (retention), in
    /// slices; returns how many went.
    pub async fn prune_predictions(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        let mut total = 0;
        loop {
            let removed = self.store().prune_predictions(before, PRUNE_SLICE).await?;
            total += removed;
            if removed < u64::from(PRUNE_SLICE) {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Creates a deployment. Its versions pass the checks above; a single
    /// route's version is promoted.
    pub async fn create_deployment(&self, principal: &Principal, mut deployment: Deployment) -> Result<Deployment> {
        deployment.check()?;
        let subject = deployment_subject(deployment.name.as_str());
        let permit = self.authorize(principal, Action::DeploymentCreate, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        if tx.lock_deployment(&deployment.name).await?.is_some() {
            return Err(Error::already_exists("deployment", &deployment.name));
        }
        let m = lock_active_model(tx.as_mut(), &deployment.model).await?;
        // `/v2/models/{name}/infer` serves the deployment of that name: it
        // must not take over another model's endpoint.
        if deployment.name != deployment.model && !tx.existing_models(std::slice::from_ref(&deployment.name)).await?.is_empty() {
            return Err(Error::Conflict(format!(
                "`{}` is the name of another model, whose clients call `/v2/models/{}/infer`; name the deployment otherwise (or after its own model, `{}`)",
                deployment.name, deployment.name, deployment.model
            )));
        }
        let now = tx.now();
        deployment.revision = 1;
        deployment.created_at = now;
        deployment.updated_at = now;
        deployment.created_by = principal.name().to_string();
        deployment.updated_by = principal.name().to_string();
        if let Err(refusal) = self.check_versions(tx.as_mut(), &m, None, &deployment, principal).await? {
            drop(tx);
            return Err(self.refuse(principal, Action::DeploymentCreate, &subject, refusal).await);
        }
        tx.insert_deployment(&deployment).await?;
        let pending = event(tx.as_ref(), Action::DeploymentCreate, subject, None, Some(snapshot(&deployment)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(deployment)
    }

    /// Applies a change computed from revision `change.based_on`.
    pub async fn change_deployment(&self, principal: &Principal, change: DeploymentChange) -> Result<Deployment> {
        let DeploymentChange { action, based_on, mut next } = change;
        next.check()?;
        let subject = deployment_subject(next.name.as_str());
        let permit = self.authorize(principal, action, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let before = tx.lock_deployment(&next.name).await?.ok_or_else(|| Error::not_found("deployment", &next.name))?;
        if before.state == DeploymentState::Retired {
            return Err(Error::Conflict(format!("deployment `{}` is retired", before.name)));
        }
        if before.revision != based_on {
            return Err(Error::Conflict(format!(
                "deployment `{}` changed meanwhile (revision {} is stored, this change was made against {based_on}); read it again and retry",
                before.name, before.revision
            )));
        }
        if before.model != next.model {
            return Err(Error::invalid("model", format!("a deployment serves one model: `{}` cannot become `{}`", before.model, next.model)));
        }
        let m = lock_active_model(tx.as_mut(), &next.model).await?;
        next.revision = before.revision + 1;
        next.created_at = before.created_at;
        next.created_by = before.created_by.clone();
        next.updated_at = tx.now();
        next.updated_by = principal.name().to_string();
        if next.state != DeploymentState::Retired {
            if let Err(refusal) = self.check_versions(tx.as_mut(), &m, Some(&before), &next, principal).await? {
                drop(tx);
                return Err(self.refuse(principal, action, &subject, refusal).await);
            }
        }
        tx.update_deployment(&next).await?;
        let mut after = snapshot(&next)?;
        if let Some(reason) = &next.reason {
            after["reason"] = json!(reason);
        }
        let pending = event(tx.as_ref(), action, subject, Some(snapshot(&before)?), Some(after));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(next)
    }

    /// Checks every version `next` runs that `before` did not run the same
    /// way, and promotes the version that comes to take all traffic.
    async fn check_versions(
        &self,
        tx: &mut dyn WriteTx,
        m: &Model,
        before: Option<&Deployment>,
        next: &Deployment,
        principal: &Principal,
    ) -> Result<std::result::Result<(), Refusal>> {
        // A version that answered before, or the stable version a canary
        // returns to, is not new production traffic: a rollback never
        // waits on a gate.
        let restoring = |v: u32| before.and_then(|b| b.canary.as_ref()).is_some_and(|c| c.stable == v);
        let answered_before = |v: u32| restoring(v) || before.is_some_and(|b| answers(b).contains(&v));
        for version in answers(next) {
            let found = tx.version(&m.name, version).await?.ok_or_else(|| version_not_found(&m.name, version))?;
            if found.state == VersionState::Retired {
                return Err(Error::Conflict(format!("version {version} of model `{}` is retired and is not served", m.name)));
            }
            if answered_before(version) {
                continue;
            }
            if !matches!(found.state, VersionState::Approved | VersionState::Production) {
                return Err(Error::Conflict(format!(
                    "version {version} of model `{}` is `{}`: only an approved version that passes the `production` gate receives production traffic (a shadow may be one in validation)",
                    m.name, found.state
                )));
            }
        }
        for shadow in &next.shadows {
            let found = tx.version(&m.name, shadow.version).await?.ok_or_else(|| version_not_found(&m.name, shadow.version))?;
            if !matches!(found.state, VersionState::InValidation | VersionState::Approved | VersionState::Production) {
                return Err(Error::Conflict(format!(
                    "version {} of model `{}` is `{}`: a shadow is a version in validation, approved or in production",
                    shadow.version, m.name, found.state
                )));
            }
        }
        // The version that comes to take all traffic — a new deployment's,
        // a `set` to one version, a canary completing, a rollback to an
        // earlier version — is promoted (through the gate). Not on a change
        // that leaves it where it was (sampling, shadows, a description),
        // nor when a canary returns to its stable version.
        let single = |d: &Deployment| match (&d.canary, d.routes.as_slice()) {
            (None, [only]) => Some(only.version),
            _ => None,
        };
        let stable = single(next).filter(|v| before.and_then(single) != Some(*v) && !restoring(*v));
        if let Some(stable) = stable.filter(|v| m.aliases.get(modelops_core::governance::CHAMPION) != Some(v)) {
            match self.promote_in(tx, m, stable, principal).await? {
                Promotion::Done(_) => {}
                Promotion::Denied(denial, gate) => return Ok(Err(Refusal { denial, gate: Some(gate) })),
            }
        }
        // A version newly given a share of traffic passes the same gate.
        for version in answers(next).into_iter().filter(|v| !answered_before(*v) && Some(*v) != stable) {
            let found = tx.version(&m.name, version).await?.ok_or_else(|| version_not_found(&m.name, version))?;
            let gate = self.production_gate(tx, m, &found, principal).await?;
            if let Some(denial) = gate.denial() {
                return Ok(Err(Refusal { denial, gate: Some(gate) }));
            }
        }
        Ok(Ok(()))
    }

    async fn refuse(&self, principal: &Principal, action: Action, subject: &str, refusal: Refusal) -> Error {
        self.record_denial(principal, action, subject, refusal.denial, refusal.gate.as_ref()).await
    }
}

/// A gate's refusal, recorded after the change's transaction is rolled back.
struct Refusal {
    denial: modelops_core::error::Denial,
    gate: Option<crate::GateDecision>,
}

/// The versions that answer a deployment's calls: its routes with a share
/// and its canary.
fn answers(deployment: &Deployment) -> Vec<u32> {
    let mut all: Vec<u32> = deployment.routes.iter().filter(|r| r.weight > 0).map(|r| r.version).collect();
    all.extend(deployment.canary.as_ref().map(|c| c.plan.version));
    all.sort_unstable();
    all.dedup();
    all
}
