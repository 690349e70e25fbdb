//! modelops-registry: the use cases of the model registry — one function per
//! operation a user can perform (register a model, push a version, move an
//! alias, retire, verify the audit log, collect unreferenced artifacts …).
//!
//! Every surface calls these and nothing else decides: the native REST API,
//! the CLI through it, and later the MLflow surface and the UI. A use case
//! validates its input, authorises the principal (a refusal is an audited
//! `access.denied` event and a [`modelops_core::Error::Forbidden`] carrying
//! the failing conditions), checks what must hold across parts (the artifact
//! was uploaded and its size is the store's; the parent version exists),
//! and applies the domain rules of core (`Model::ensure_active`,
//! `Model::retired` …) inside one write transaction of the store, so the
//! rules see the state they change and the change commits with its audit
//! events. Governance's gates will run at the same place.
//!
//! Key type: [`Registry`] (cheap to clone). Results are domain values; the
//! surfaces convert them to their wire types.
//!
//! Must not depend on: HTTP (axum, hyper), SQL or a concrete store, the CLI.
//! It sees `modelops_core::repo::Store` and the [`ArtifactStore`].

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{FutureExt, Stream, StreamExt};
use modelops_artifacts::{ArtifactStore, Download, GcMode, GcReport, StoredArtifact};
use modelops_core::audit::{alias_subject, model_subject, version_subject, AuditEvent, AuditQuery, PendingEvent};
use modelops_core::auth::{authorize, Action, Permit, Principal, Role};
use modelops_core::clock::Clock;
use modelops_core::model::{Model, ModelKind, ModelPatch, NewModel, MAX_TAGS};
use modelops_core::name::{check_tag_value, quote, AliasName, ModelName, TagKey};
use modelops_core::page::{ModelQuery, Page, VersionQuery};
use modelops_core::repo::{AliasScope, Store, TagTarget, WriteTx};
use modelops_core::version::{ArtifactInspector, ModelVersion, NewVersion, Sha256Hex, VersionPatch, VersionState};
use modelops_core::{Error, Result};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub mod audit;
pub mod deployments;
pub mod governance;
pub mod mlflow;
pub mod monitoring;
pub mod multipart;
pub mod replica;
pub mod reports;
pub mod retrain;
pub mod tracking;
mod verify;
pub use governance::{DecisionOutcome, DueReview, Erasure, NewToken, TransitionOutcome, VersionGovernance};
pub use modelops_governance::policy::{GateDecision, Policy, PolicyFormat};
pub use verify::Verification;

/// How long, by default, a verification of the whole audit chain is served
/// to later callers while the chain is unchanged: re-hashing millions of
/// events for every request would let callers keep the database busy.
pub const VERIFY_REUSE: Duration = Duration::from_secs(60);

/// How long a readiness probe waits for each part before calling it down
/// (probes themselves time out after a few seconds).
pub const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The registry's use cases over one store and one artifact store.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
    /// Outside `inner` so that setting it needs no unique access.
    verify_reuse: Duration,
    /// Loads each pushed artifact as its kind is served; none: artifacts
    /// are stored unchecked (tests of the registry alone).
    inspector: Option<Arc<dyn ArtifactInspector>>,
    /// The audit log's signing key and witnesses; none: no checkpoints are
    /// signed (tests of other parts, offline tools).
    audit_signing: Option<Arc<audit::AuditSigning>>,
}

struct Inner {
    store: Arc<dyn Store>,
    artifacts: ArtifactStore,
    clock: Arc<dyn Clock>,
    verification: verify::Cache,
    /// The last policy parsed from the database, reused while its hash is
    /// the active one.
    policy: std::sync::RwLock<Option<Arc<Policy>>>,
    auth_cache: governance::AuthCache,
    /// Parsed MLflow version manifests by digest (immutable content).
    manifests: std::sync::RwLock<std::collections::HashMap<Sha256Hex, modelops_core::tracking::ModelManifest>>,
    /// Seals multipart uploads' ids and parts (`multipart`).
    upload_key: multipart::UploadKey,
    /// The last registered-model listing MLflow's searches read (`mlflow`).
    model_listing: std::sync::RwLock<Option<Arc<mlflow::ModelListing>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("artifacts", &self.inner.artifacts).finish_non_exhaustive()
    }
}

pub(crate) fn snapshot<T: serde::Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::Internal(format!("cannot snapshot for the audit log: {e}")))
}

pub(crate) fn version_not_found(model: &ModelName, number: u32) -> Error {
    Error::not_found("version", format!("{model}/{number}"))
}

/// An event for the transaction's actor.
pub(crate) fn event(tx: &dyn WriteTx, action: Action, subject: String, before: Option<Value>, after: Option<Value>) -> PendingEvent {
    PendingEvent { actor: tx.actor().to_string(), action: action.as_str().to_string(), subject, before, after }
}

/// Locks an active model, refusing an unknown or retired one.
pub(crate) async fn lock_active_model(tx: &mut dyn WriteTx, name: &ModelName) -> Result<Model> {
    let model = tx.lock_model(name).await?.ok_or_else(|| Error::not_found("model", name))?;
    model.ensure_active()?;
    Ok(model)
}

/// Locks an active model when nothing of it but its state is needed.
async fn lock_active(tx: &mut dyn WriteTx, name: &ModelName) -> Result<()> {
    tx.lock_model_state(name).await?.ok_or_else(|| Error::not_found("model", name))?.ensure_active(name)
}

/// A version of a model locked in `tx`, refusing an unknown or retired one.
async fn active_version(tx: &mut dyn WriteTx, model: &ModelName, number: u32) -> Result<ModelVersion> {
    let version = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
    version.ensure_active()?;
    Ok(version)
}

/// Refuses to retire what a live deployment runs (the whole model, or one
/// version): its traffic would fail. Retire the deployment, or move it
/// off the version, first.
async fn ensure_not_deployed(tx: &mut dyn WriteTx, model: &ModelName, number: Option<u32>) -> Result<()> {
    for deployment in tx.live_deployments_of(model).await? {
        match number {
            None => return Err(Error::Conflict(format!("model `{model}` is served by deployment `{}`; retire the deployment first", deployment.name))),
            Some(n) if deployment.versions().contains(&n) => {
                return Err(Error::Conflict(format!(
                    "version {n} of model `{model}` is served by deployment `{}`; move the deployment to another version (or retire it) first",
                    deployment.name
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Refuses the first dependency that is not a registered model.
async fn check_dependencies(tx: &mut dyn WriteTx, deps: &[ModelName]) -> Result<()> {
    let existing = tx.existing_models(deps).await?;
    match deps.iter().find(|d| !existing.contains(*d)) {
        Some(missing) => Err(Error::invalid("dependencies", format!("`{missing}` is not a registered model"))),
        None => Ok(()),
    }
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, artifacts: ArtifactStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                artifacts,
                clock,
                verification: verify::Cache::default(),
                policy: std::sync::RwLock::new(None),
                auth_cache: Default::default(),
                manifests: Default::default(),
                upload_key: Default::default(),
                model_listing: Default::default(),
            }),
            verify_reuse: VERIFY_REUSE,
            inspector: None,
            audit_signing: None,
        }
    }

    /// Checks every pushed artifact with `inspector` (the runtimes): a
    /// version whose artifact cannot be served as its model's kind is
    /// refused, and a push without a signature stores the artifact's.
    /// Call before the registry is shared.
    pub fn with_inspector(self, inspector: Arc<dyn ArtifactInspector>) -> Self {
        Self { inspector: Some(inspector), ..self }
    }

    /// Serves an unchanged chain's last verification for `reuse` instead of
    /// [`VERIFY_REUSE`]; zero hashes the chain on every request (concurrent
    /// requests still share one pass).
    pub fn with_verify_reuse(self, reuse: Duration) -> Self {
        Self { verify_reuse: reuse, ..self }
    }

    /// Only the use cases reach the store: a transaction begun elsewhere
    /// would write without their checks.
    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// Whether this server can serve (for readiness probes): the database
    /// and the artifact store both answer, each within [`READY_WITHIN`].
    /// The error names the part that does not.
    pub async fn ready(&self) -> Result<()> {
        let database = tokio::time::timeout(READY_WITHIN, self.store().head());
        let artifacts = tokio::time::timeout(READY_WITHIN, self.inner.artifacts.ready());
        let (database, artifacts) = tokio::join!(database, artifacts);
        let mut down = Vec::new();
        match database {
            Ok(Ok(_)) => {}
            // Every connection busy under load is not a database that is
            // down: marking every replica unready at once would be an outage.
            Ok(Err(Error::Unavailable(m))) if m.starts_with("timed out waiting for a database connection") => {}
            Ok(Err(e)) => down.push(format!("the database is not reachable ({e})")),
            Err(_) => down.push(format!("the database did not answer within {} s", READY_WITHIN.as_secs())),
        }
        match artifacts {
            Ok(Ok(())) => {}
            Ok(Err(e)) => down.push(format!("the artifact store is not reachable ({e})")),
            Err(_) => down.push(format!("the artifact store did not answer within {} s", READY_WITHIN.as_secs())),
        }
        if down.is_empty() {
            Ok(())
        } else {
            Err(Error::Unavailable(down.join("; ")))
        }
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.inner.artifacts
    }

    /// Authorises `principal` for `action` on `subject`. A refusal is
    /// recorded as an `access.denied` event (in its own transaction: nothing
    /// else happens) and returned with its reasons.
    pub(crate) async fn authorize(&self, principal: &Principal, action: Action, subject: &str) -> Result<Permit> {
        let scoped = match principal.scope() {
            Some(scope) => self.check_run_scope(scope, action, subject).await,
            None => Ok(()),
        };
        match scoped.and_then(|()| principal.check_scope(action, subject)).and_then(|()| authorize(principal, action)) {
            Ok(permit) => Ok(permit),
            // The refusal stands whether or not it could be recorded.
            Err(Error::Forbidden(denial)) => Err(self.record_denial(principal, action, subject, denial, None).await),
            Err(other) => Err(other),
        }
    }

    /// A retraining run's token changes only the version its run
    /// registered (its tags, evidence, reference, description, submission);
    /// creating that version is the one change it makes on the model.
    async fn check_run_scope(&self, scope: &modelops_core::retrain::TokenScope, action: Action, subject: &str) -> Result<()> {
        use Action::*;
        if !matches!(action, VersionUpdate | VersionSubmit | EvidenceAdd | ReferenceSet | TagSet | TagDelete) {
            return Ok(());
        }
        let own = match self.run_version(scope.run).await? {
            Some(v) => version_subject(scope.model.as_str(), v),
            None => return Err(Error::forbidden("scope", format!("the token of retraining run {} changes only the version it registers, and it has registered none", scope.run))),
        };
        if subject == own || subject.starts_with(&format!("{own}/")) {
            return Ok(());
        }
        Err(Error::forbidden("scope", format!("the token of retraining run {} changes only the version it registered (`{own}`), not `{subject}`", scope.run)))
    }

    /// Authorises an operation that changes nothing and is served outside
    /// the registry (a prediction): a refusal is recorded like any other.
    pub async fn check_access(&self, principal: &Principal, action: Action, subject: &str) -> Result<()> {
        self.authorize(principal, action, subject).await.map(drop)
    }

    /// Refuses (and records) a change by someone who is not among the
    /// model's developers (see `Model::ensure_developer`), unless they hold
    /// one of the roles in `any_model` (which act on every model: deployers
    /// retire and move aliases, risk officers keep the inventory). On
    /// refusal the transaction is rolled back first: the denial is written
    /// in one of its own, which could not begin while this one holds the
    /// write lock.
    pub(crate) async fn ensure_developer(
        &self,
        tx: Box<dyn WriteTx>,
        principal: &Principal,
        model: &Model,
        any_model: &[Role],
        action: Action,
        subject: &str,
    ) -> Result<Box<dyn WriteTx>> {
        if any_model.iter().any(|r| principal.has_role(*r)) {
            return Ok(tx);
        }
        match model.ensure_developer(principal) {
            Ok(()) => Ok(tx),
            Err(Error::Forbidden(denial)) => {
                drop(tx);
                Err(self.record_denial(principal, action, subject, denial, None).await)
            }
            Err(other) => Err(other),
        }
    }

    /// Like [`Registry::ensure_developer`] when only the model's name is at
    /// hand: admins and `any_model` roles pass without reading the model.
    async fn ensure_developer_of(
        &self,
        mut tx: Box<dyn WriteTx>,
        principal: &Principal,
        name: &ModelName,
        any_model: &[Role],
        action: Action,
        subject: &str,
    ) -> Result<Box<dyn WriteTx>> {
        if principal.has_role(Role::Admin) || any_model.iter().any(|r| principal.has_role(*r)) {
            return Ok(tx);
        }
        let model = lock_active_model(tx.as_mut(), name).await?;
        self.ensure_developer(tx, principal, &model, any_model, action, subject).await
    }

    // ------------------------------------------------------------ models

    pub async fn create_model(&self, principal: &Principal, new: NewModel) -> Result<Model> {
        let new = new.normalized()?;
        new.validate()?;
        let permit = self.authorize(principal, Action::ModelCreate, &model_subject(new.name.as_str())).await?;
        let mut tx = self.store().begin(&permit).await?;
        check_dependencies(tx.as_mut(), &new.dependencies).await?;
        let model = new.into_model(tx.now(), tx.actor());
        tx.insert_model(&model).await?;
        let pending = event(tx.as_ref(), Action::ModelCreate, model_subject(model.name.as_str()), None, Some(snapshot(&model)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(model)
    }

    pub async fn get_model(&self, name: &ModelName) -> Result<Model> {
        self.store().get_model(name).await
    }

    pub async fn list_models(&self, query: &ModelQuery) -> Result<Page<Model>> {
        query.validate()?;
        self.store().list_models(query).await
    }

    /// An empty patch changes nothing and records nothing.
    pub async fn update_model(&self, principal: &Principal, name: &ModelName, patch: ModelPatch) -> Result<Model> {
        let patch = patch.normalized();
        patch.validate(name)?;
        let subject = model_subject(name.as_str());
        let permit = self.authorize(principal, Action::ModelUpdate, &subject).await?;
        if let Some(fields) = patch.governance_fields() {
            // What the gates and separation of duties read is not the
            // developers' to change: the risk officer's or an admin's.
            if !(principal.has_role(Role::Admin) || principal.has_role(Role::Approver)) {
                let message = format!("{} may not change {fields}: risk officers (`approver`) and admins do", quote(principal.name()));
                let denial = modelops_core::error::Denial::single("governance_fields", message);
                return Err(self.record_denial(principal, Action::ModelUpdate, &subject, denial, None).await);
            }
        }
        let mut tx = self.store().begin(&permit).await?;
        let before = lock_active_model(tx.as_mut(), name).await?;
        let mut tx = self.ensure_developer(tx, principal, &before, &[Role::Approver], Action::ModelUpdate, &subject).await?;
        if patch.is_empty() {
            return Ok(before);
        }
        if let Some(deps) = &patch.dependencies {
            check_dependencies(tx.as_mut(), deps).await?;
        }
        let mut after = patch.apply(&before);
        after.updated_at = tx.now();
        tx.update_model(&after).await?;
        if let Some(deps) = &patch.dependencies {
            tx.replace_dependencies(name, deps).await?;
        }
        if after.risk_tier != before.risk_tier {
            self.reschedule_review(tx.as_mut(), &after).await?;
        }
        let pending = event(tx.as_ref(), Action::ModelUpdate, model_subject(name.as_str()), Some(snapshot(&before)?), Some(snapshot(&after)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Retires the model, every version not yet retired, and its aliases:
    /// one `version.retire` event per version (its snapshot shows the
    /// aliases it lost), then one `model.retire` event.
    pub async fn retire_model(&self, principal: &Principal, name: &ModelName) -> Result<Model> {
        self.retire_model_as(principal, name, false).await
    }

    /// [`Registry::retire_model`]; `deleted_in_mlflow`: and hide the model's
    /// versions from MLflow, in the same transaction (MLflow's delete).
    pub(crate) async fn retire_model_as(&self, principal: &Principal, name: &ModelName, deleted_in_mlflow: bool) -> Result<Model> {
        let subject = model_subject(name.as_str());
        let permit = self.authorize(principal, Action::ModelRetire, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let before = lock_active_model(tx.as_mut(), name).await?;
        let mut tx = self.ensure_developer(tx, principal, &before, &[Role::Deployer], Action::ModelRetire, &subject).await?;
        ensure_not_deployed(tx.as_mut(), name, None).await?;
        let now = tx.now();
        let versions = tx.versions_not_in(name, VersionState::Retired).await?;
        tx.remove_aliases(&AliasScope::Model(name.clone())).await?;
        let numbers: Vec<u32> = versions.iter().map(|v| v.number).collect();
        tx.set_versions_state(name, &numbers, VersionState::Retired, now).await?;
        for version in versions.iter().filter(|v| matches!(v.state, VersionState::Production | VersionState::Approved)) {
            tx.set_next_review(name, version.number, None).await?;
        }
        let after = before.retired(now);
        tx.update_model(&after).await?;
        if deleted_in_mlflow {
            let every: Vec<u32> = (1..=before.latest_version.unwrap_or(0)).collect();
            tx.hide_versions(name, &every).await?;
        }
        for version in &versions {
            let subject = version_subject(name.as_str(), version.number);
            let pending = event(tx.as_ref(), Action::VersionRetire, subject, Some(snapshot(version)?), Some(snapshot(&version.retired(now))?));
            tx.record(pending).await?;
        }
        let pending = event(tx.as_ref(), Action::ModelRetire, model_subject(name.as_str()), Some(snapshot(&before)?), Some(snapshot(&after)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(after)
    }

    // ------------------------------------------------------------ artifacts and versions

    /// Streams an artifact into the store (the first half of creating a
    /// version, and authorised as such). `expected`: refuse other content.
    pub async fn upload_artifact<S, E>(&self, principal: &Principal, body: S, expected: Option<&Sha256Hex>) -> Result<StoredArtifact>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.authorize(principal, Action::ArtifactUpload, "artifacts").await?;
        Ok(self.artifacts().put_stream(body, expected).await?)
    }

    /// Creates the next version (1, 2, 3…) of a model from an uploaded
    /// artifact. The artifact must have been uploaded; its size is the
    /// artifact store's. A parent version must be one of this model's.
    pub async fn create_version(&self, principal: &Principal, model: &ModelName, new: NewVersion) -> Result<ModelVersion> {
        let mut new = new.normalized()?;
        new.validate()?;
        let subject = model_subject(model.as_str());
        let permit = self.authorize(principal, Action::VersionCreate, &subject).await?;
        // The artifact is looked up before the write lock: on an object
        // store that is a network round trip, which would otherwise hold
        // every writer. Garbage collection, the only thing that deletes
        // artifacts, does so under the lock and leaves an `artifact.gc`
        // event: one committed after the log's head seen here sends the
        // check again under the lock.
        let seen = self.store().head().await?.map_or(0, |h| h.sequence);
        let sha256 = new.artifact.sha256.clone();
        let Some(mut size) = self.artifacts().head(&sha256).await? else {
            return Err(not_uploaded(&sha256));
        };
        if let Some(inspector) = &self.inspector {
            // Loading a model takes long (milliseconds to seconds): done
            // before the write lock. The kind never changes and the artifact
            // is content-addressed, so nothing checked here can change
            // before the transaction re-checks that the artifact exists.
            let kind = self.store().get_model(model).await?.kind;
            // An MLflow manifest (a logged model's files, or a prompt's
            // version of an `llm` model) is stored as given: its flavour,
            // not its kind, says how it runs (and a model of kind `mlflow`
            // is always one: nothing to load before the lock).
            if kind != ModelKind::Mlflow {
                let bytes = self.read_artifact(&new.artifact.sha256).await?;
                let prompt = kind == ModelKind::Llm && modelops_core::tracking::ModelManifest::parse(&bytes).is_some();
                if !prompt {
                    new.signature = inspector.inspect(kind, &bytes, &new.signature)?;
                }
            }
            // The artifact's own names obey the same rules as pushed ones
            // (no control characters, no duplicates, bounded length).
            new.validate()?;
        }
        let mut tx = self.store().begin(&permit).await?;
        lock_active(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer_of(tx, principal, model, &[], Action::VersionCreate, &subject).await?;
        // Under the write lock, which garbage collection holds while it
        // deletes: no collection since the look-up above, or the artifact is
        // looked up again here; either way it cannot vanish before commit.
        if tx.appended_since(Action::ArtifactGc.as_str(), seen).await? {
            size = self.artifacts().head(&sha256).await?.ok_or_else(|| not_uploaded(&sha256))?;
        }
        if let Some(parent) = new.lineage.parent_version {
            if tx.version(model, parent).await?.is_none() {
                return Err(Error::invalid("lineage.parent_version", format!("version `{parent}` of model `{model}` does not exist")));
            }
        }
        let number = tx.next_version_number(model).await?;
        // Only a retraining run's token says a version was retrained, and
        // then the run's own record says from what.
        new.lineage.retrain = None;
        let mut run = None;
        if let Some(scope) = principal.scope() {
            let (lineage, registered) = retrain::lineage_for_run(tx.as_mut(), scope, number).await?;
            if new.lineage.parent_version.is_none() {
                new.lineage.parent_version = registered.parent_version;
            }
            new.lineage.retrain = Some(lineage);
            run = Some(registered);
        }
        let version = new.into_version(model.clone(), number, size, tx.now(), tx.actor());
        tx.insert_version(&version).await?;
        let pending = event(tx.as_ref(), Action::VersionCreate, version_subject(model.as_str(), number), None, Some(snapshot(&version)?));
        tx.record(pending).await?;
        if let Some(run) = run {
            tx.update_job_run(&run).await?;
        }
        tx.commit().await?;
        Ok(version)
    }

    /// A whole artifact in memory, verified against its digest (for
    /// loading a model). An artifact not uploaded is the pusher's mistake.
    pub async fn read_artifact(&self, sha256: &Sha256Hex) -> Result<Vec<u8>> {
        let download = match self.artifacts().get(sha256).await {
            Ok(download) => download,
            Err(modelops_artifacts::ArtifactError::NotFound { .. }) => {
                return Err(Error::invalid(
                    "artifact.sha256",
                    format!("artifact `{sha256}` has not been uploaded; upload it with `POST /api/v1/artifacts` first"),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::with_capacity(usize::try_from(download.size).unwrap_or(0));
        let mut stream = download.stream;
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(bytes)
    }

    pub async fn get_version(&self, model: &ModelName, number: u32) -> Result<ModelVersion> {
        self.store().get_version(model, number).await
    }

    pub async fn get_version_by_alias(&self, model: &ModelName, alias: &AliasName) -> Result<ModelVersion> {
        self.store().get_version_by_alias(model, alias).await
    }

    pub async fn list_versions(&self, model: &ModelName, query: &VersionQuery) -> Result<Page<ModelVersion>> {
        query.validate()?;
        self.store().list_versions(model, query).await
    }

    /// A version and its artifact as a verified stream.
    pub async fn download_artifact(&self, model: &ModelName, number: u32) -> Result<(ModelVersion, Download)> {
        let version = self.get_version(model, number).await?;
        let download = self.artifacts().get(&version.artifact.sha256).await?;
        if download.size != version.artifact.size {
            return Err(Error::Internal(format!(
                "stored artifact `{}` has {} bytes, the version records {}",
                version.artifact.sha256, download.size, version.artifact.size
            )));
        }
        Ok((version, download))
    }

    /// Changes a version's description or card; an empty patch records
    /// nothing. The card of an approved or production version is frozen:
    /// its approvals were given for that card.
    pub async fn update_version(&self, principal: &Principal, model: &ModelName, number: u32, patch: VersionPatch) -> Result<ModelVersion> {
        patch.validate()?;
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(principal, Action::VersionUpdate, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        lock_active(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer_of(tx, principal, model, &[], Action::VersionUpdate, &subject).await?;
        let before = active_version(tx.as_mut(), model, number).await?;
        if patch.is_empty() {
            return Ok(before);
        }
        if patch.card.is_some() {
            before.ensure_card_editable()?;
        }
        let mut after = patch.apply(&before);
        after.updated_at = tx.now();
        tx.update_version(&after).await?;
        let pending = event(tx.as_ref(), Action::VersionUpdate, subject, Some(snapshot(&before)?), Some(snapshot(&after)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Retires a version and removes the aliases pointing at it: one
    /// `version.retire` event whose snapshots show the aliases removed.
    pub async fn retire_version(&self, principal: &Principal, model: &ModelName, number: u32) -> Result<ModelVersion> {
        self.retire_version_as(principal, model, number, false).await
    }

    /// [`Registry::retire_version`]; `deleted_in_mlflow`: and hide it from
    /// MLflow in the same transaction (MLflow's delete; a version already
    /// retired is then only hidden).
    pub(crate) async fn retire_version_as(&self, principal: &Principal, model: &ModelName, number: u32, deleted_in_mlflow: bool) -> Result<ModelVersion> {
        let subject = version_subject(model.as_str(), number);
        let permit = self.authorize(principal, Action::VersionRetire, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        lock_active(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer_of(tx, principal, model, &[Role::Deployer], Action::VersionRetire, &subject).await?;
        if deleted_in_mlflow {
            tx.hide_versions(model, &[number]).await?;
            let current = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
            if current.state == VersionState::Retired {
                // Retired before (archived); the deletion is on the record too.
                let shown = |deleted: bool| json!({ "state": "retired", "deleted_in_mlflow": deleted });
                let pending = event(tx.as_ref(), Action::VersionRetire, subject, Some(shown(false)), Some(shown(true)));
                tx.record(pending).await?;
                tx.commit().await?;
                return Ok(current);
            }
        }
        let before = active_version(tx.as_mut(), model, number).await?;
        ensure_not_deployed(tx.as_mut(), model, Some(number)).await?;
        tx.remove_aliases(&AliasScope::Version(model.clone(), number)).await?;
        let after = before.retired(tx.now());
        tx.update_version(&after).await?;
        // Retired: no more periodic reviews (a version out of production
        // keeps its date only for when it returns).
        tx.set_next_review(model, number, None).await?;
        let pending = event(tx.as_ref(), Action::VersionRetire, subject, Some(snapshot(&before)?), Some(snapshot(&after)?));
        tx.record(pending).await?;
        tx.commit().await?;
        Ok(after)
    }

    // ------------------------------------------------------------ aliases and tags

    /// Points `alias` at a version. Setting it to the version it already
    /// points at changes nothing and records nothing.
    ///
    /// `champion` marks the production version: setting it is promotion
    /// ([`Registry::promote_version`]), with its role and gates, from every
    /// surface.
    pub async fn set_alias(&self, principal: &Principal, model: &ModelName, alias: &AliasName, number: u32) -> Result<ModelVersion> {
        if number == 0 {
            return Err(Error::invalid("version", "`0` is not a version number (1, 2, 3…)"));
        }
        if alias.as_str() == modelops_core::governance::CHAMPION {
            return Ok(self.promote_version(principal, model, number).await?.version);
        }
        let subject = alias_subject(model.as_str(), alias.as_str());
        let permit = self.authorize(principal, Action::AliasSet, &subject).await?;
        let mut tx = self.store().begin(&permit).await?;
        let locked = lock_active_model(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer(tx, principal, &locked, &[Role::Deployer], Action::AliasSet, &subject).await?;
        active_version(tx.as_mut(), model, number).await?;
        let current = locked.aliases.get(alias.as_str()).copied();
        if current != Some(number) {
            tx.set_alias(model, alias, number).await?;
            let pointer = |n: u32| json!({ "alias": alias.as_str(), "version": n });
            let pending = event(tx.as_ref(), Action::AliasSet, subject, current.map(pointer), Some(pointer(number)));
            tx.record(pending).await?;
        }
        let version = tx.version(model, number).await?.ok_or_else(|| version_not_found(model, number))?;
        tx.commit().await?;
        Ok(version)
    }

    /// `champion` cannot be removed: production changes by promoting
    /// another version or retiring this one.
    pub async fn delete_alias(&self, principal: &Principal, model: &ModelName, alias: &AliasName) -> Result<()> {
        let subject = alias_subject(model.as_str(), alias.as_str());
        let permit = self.authorize(principal, Action::AliasDelete, &subject).await?;
        if alias.as_str() == modelops_core::governance::CHAMPION {
            return Err(Error::Conflict(format!(
                "`{model}@champion` marks the production version; promote another version or retire this one instead of removing it"
            )));
        }
        let mut tx = self.store().begin(&permit).await?;
        let locked = lock_active_model(tx.as_mut(), model).await?;
        let mut tx = self.ensure_developer(tx, principal, &locked, &[Role::Deployer], Action::AliasDelete, &subject).await?;
        let current = locked.aliases.get(alias.as_str()).copied().ok_or_else(|| Error::not_found("alias", format!("{model}@{alias}")))?;
        tx.remove_alias(model, alias).await?;
        let pending = event(tx.as_ref(), Action::AliasDelete, subject, Some(json!({ "alias": alias.as_str(), "version": current })), None);
        tx.record(pending).await?;
        tx.commit().await
    }

    /// The tags of what `target` names, locking its model; refuses unknown
    /// and retired models and versions.
    async fn lock_tag_target(tx: &mut dyn WriteTx, target: &TagTarget) -> Result<(std::collections::BTreeMap<String, String>, String)> {
        Ok(match target {
            TagTarget::Model(name) => (lock_active_model(tx, name).await?.tags, model_subject(name.as_str())),
            TagTarget::Version(name, number) => {
                lock_active(tx, name).await?;
                (active_version(tx, name, *number).await?.tags, version_subject(name.as_str(), *number))
            }
        })
    }

    /// Sets a tag. Setting it to the value it already has changes nothing
    /// and records nothing. A model or version holds at most
    /// [`MAX_TAGS`] tags.
    pub async fn set_tag(&self, principal: &Principal, target: &TagTarget, key: &TagKey, value: &str) -> Result<()> {
        check_tag_value("value", value)?;
        let permit = self.authorize(principal, Action::TagSet, &tag_subject(target)).await?;
        let mut tx = self.store().begin(&permit).await?;
        let (tags, subject) = Self::lock_tag_target(tx.as_mut(), target).await?;
        let mut tx = self.ensure_developer_of(tx, principal, tag_target_model(target), &[], Action::TagSet, &subject).await?;
        let current = tags.get(key.as_str());
        if current.map(String::as_str) == Some(value) {
            return Ok(());
        }
        if current.is_none() && tags.len() >= MAX_TAGS {
            return Err(Error::invalid("key", format!("{} would be tag number {}; at most {MAX_TAGS} are allowed", quote(key.as_str()), tags.len() + 1)));
        }
        let tag = |v: &str| json!({ "key": key.as_str(), "value": v });
        let before = current.map(|v| tag(v));
        tx.set_tag(target, key, value, tx.now()).await?;
        let pending = event(tx.as_ref(), Action::TagSet, subject, before, Some(tag(value)));
        tx.record(pending).await?;
        tx.commit().await
    }

    pub async fn delete_tag(&self, principal: &Principal, target: &TagTarget, key: &TagKey) -> Result<()> {
        let permit = self.authorize(principal, Action::TagDelete, &tag_subject(target)).await?;
        let mut tx = self.store().begin(&permit).await?;
        let (tags, subject) = Self::lock_tag_target(tx.as_mut(), target).await?;
        let mut tx = self.ensure_developer_of(tx, principal, tag_target_model(target), &[], Action::TagDelete, &subject).await?;
        let current = tags.get(key.as_str()).cloned().ok_or_else(|| Error::not_found("tag", format!("{subject}:{key}")))?;
        tx.remove_tag(target, key, tx.now()).await?;
        let pending = event(tx.as_ref(), Action::TagDelete, subject, Some(json!({ "key": key.as_str(), "value": current })), None);
        tx.record(pending).await?;
        tx.commit().await
    }

    /// Removes uploaded artifacts that no version references and that are
    /// older than `grace` (so one about to become a version is left alone),
    /// or only lists them with [`GcMode::DryRun`]. For admins; a real run is
    /// one `artifact.gc` event naming what it removed.
    ///
    /// The whole collection runs under the registry's write lock: a version
    /// is created only while holding it and checks its artifact under it, so
    /// no version can come to point at an artifact being removed. The event
    /// commits after the deletions; should that commit fail, the deletions
    /// (of artifacts nothing referenced) stand without their event, and the
    /// error is returned.
    pub async fn collect_garbage(&self, principal: &Principal, grace: Duration, mode: GcMode) -> Result<GcReport> {
        let permit = self.authorize(principal, Action::ArtifactGc, "artifacts").await?;
        let mut tx = self.store().begin(&permit).await?;
        let referenced = self.referenced_artifacts().await?;
        let report = self.artifacts().collect_garbage(|d| referenced.contains(d), grace, mode).await?;
        if matches!(mode, GcMode::Delete) && !report.removed.is_empty() {
            let removed: Vec<Value> = report.removed.iter().map(|a| json!({ "sha256": a.sha256.as_str(), "size": a.size })).collect();
            let after = json!({ "removed": removed, "removed_bytes": report.removed_bytes, "grace_seconds": grace.as_secs() });
            let pending = event(tx.as_ref(), Action::ArtifactGc, "artifacts".to_string(), None, Some(after));
            tx.record(pending).await?;
            tx.commit().await?;
        }
        Ok(report)
    }

    /// Every blob something points at: versions (retired ones too),
    /// evidence, MLflow's artifact paths, and the files of every MLflow
    /// version's manifest (which outlive the paths they were written at).
    pub async fn referenced_artifacts(&self) -> Result<std::collections::BTreeSet<Sha256Hex>> {
        let mut referenced = self.store().referenced_artifacts().await?;
        for digest in self.store().version_artifacts_named(modelops_core::tracking::MANIFEST_FILENAME).await? {
            if let Some(manifest) = self.manifest(&digest).await? {
                referenced.extend(manifest.files.into_iter().map(|f| f.sha256));
            }
        }
        Ok(referenced)
    }

    // ------------------------------------------------------------ audit

    /// Events as people read them: personal values opened with their
    /// people's keys (an erased person's read as their pseudonym).
    pub async fn list_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        query.validate()?;
        let page = self.store().list_events(query).await?;
        Ok(Page { items: self.unseal(page.items).await?, next_page_token: page.next_page_token })
    }

    /// Events as hashed: personal values as commitments, nothing personal
    /// readable. What an export bundle carries.
    pub async fn list_sealed_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>> {
        query.validate()?;
        let mut page = self.store().list_events(query).await?;
        for event in &mut page.items {
            event.personal.clear();
        }
        Ok(page)
    }

    pub(crate) async fn unseal(&self, events: Vec<AuditEvent>) -> Result<Vec<AuditEvent>> {
        let ids: Vec<String> = events.iter().flat_map(|e| e.personal.iter().map(|p| p.person.clone())).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        if ids.is_empty() {
            return Ok(events);
        }
        let keys = self.store().person_keys(&ids).await?;
        events
            .iter()
            .map(|e| modelops_audit::personal::unseal(e, &keys).map_err(|err| Error::Internal(format!("audit event `{}`: {err}", e.sequence))))
            .collect()
    }

    /// Verifies the whole audit chain, for auditors and admins. While the
    /// chain has not moved, a verification younger than the reuse period
    /// ([`VERIFY_REUSE`] unless set with [`Registry::with_verify_reuse`]) is
    /// served again (with the time it was made) instead of hashing every
    /// event once more; callers arriving while one runs wait for it rather
    /// than starting their own.
    pub async fn verify_audit(&self, principal: &Principal) -> Result<Verification> {
        self.authorize(principal, Action::AuditVerify, "audit").await?;
        let head = self.store().head().await?;
        let registry = self.clone();
        let start = move || {
            async move {
                let verdict = audit::verify_log(registry.store(), registry.audit_public_key()).await?;
                let head = registry.store().head().await?;
                Ok((verdict, head))
            }
            .boxed()
        };
        self.inner.verification.get_or_run(self.inner.clock.as_ref(), self.verify_reuse, head, start).await
    }

    /// The current time of the registry's clock (for reports).
    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }
}

fn tag_target_model(target: &TagTarget) -> &ModelName {
    match target {
        TagTarget::Model(name) | TagTarget::Version(name, _) => name,
    }
}

fn tag_subject(target: &TagTarget) -> String {
    match target {
        TagTarget::Model(name) => model_subject(name.as_str()),
        TagTarget::Version(name, number) => version_subject(name.as_str(), *number),
    }
}

/// The answer to a version whose artifact is not in the store.
fn not_uploaded(sha256: &Sha256Hex) -> Error {
    Error::invalid("artifact.sha256", format!("artifact `{sha256}` has not been uploaded; upload it with `POST /api/v1/artifacts` first"))
}
