//! The storage traits, one per area. `modelops-store` implements them for
//! SQLite and PostgreSQL; the use-case layer (`modelops-registry`) and the
//! binary see only these traits.
//!
//! Reads ([`ModelReads`], [`AuditLog`]) run outside any transaction. Every
//! change runs in a [`WriteTx`], begun with [`Store::begin`]: it holds the
//! registry's write lock (the audit chain head) from the start, so the rules
//! the use-case layer checks inside it — and, with governance, the gates —
//! see the state they change, and the change, its audit events (a denial
//! too) commit together or not at all. The area traits a transaction
//! combines are [`ModelWrites`] (models and versions), [`LabelWrites`]
//! (aliases and tags) and [`AuditAppend`].
//!
//! The store holds no domain rules: it does not know that a retired model
//! takes no changes or that retiring a model retires its versions. Those
//! live in core (`Model::ensure_active`, `Model::retired`…) and are applied
//! by the use cases. What the store guarantees:
//! - a transaction that is dropped without [`WriteTx::commit`] leaves nothing;
//! - the audit log is append-only: there is no method to change or remove an event;
//! - version numbers come from a per-model counter taken under the model's
//!   row lock, so concurrent creators each get their own number;
//! - nothing is hard-deleted but aliases, tags and dependency rows (whose
//!   removal the audit events record).

use crate::audit::{AuditEvent, AuditQuery, ChainBreak, ChainHead, ChainRecord, ChainVerifier, PendingEvent, StoredCheckpoint, VerifySummary};
use crate::auth::Permit;
use crate::deployment::{Deployment, PredictionQuery, PredictionRecord};
use crate::error::Result;
use crate::governance::{ApiToken, Approval, Evidence, Review, ScheduledReview, StoredPolicy, User};
use crate::model::{Model, ModelState};
use crate::name::{AliasName, ModelName, TagKey};
use crate::page::{ModelQuery, Page, VersionQuery};
use crate::version::{ModelVersion, Sha256Hex, VersionState};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// What a tag is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagTarget {
    Model(ModelName),
    Version(ModelName, u32),
}

/// Which aliases to remove at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasScope {
    /// Every alias of the model.
    Model(ModelName),
    /// Every alias pointing at this version.
    Version(ModelName, u32),
}

/// Reads of the inventory.
#[async_trait]
pub trait ModelReads: Send + Sync {
    async fn get_model(&self, name: &ModelName) -> Result<Model>;
    async fn list_models(&self, query: &ModelQuery) -> Result<Page<Model>>;
    async fn get_version(&self, model: &ModelName, number: u32) -> Result<ModelVersion>;
    async fn get_version_by_alias(&self, model: &ModelName, alias: &AliasName) -> Result<ModelVersion>;
    async fn list_versions(&self, model: &ModelName, query: &VersionQuery) -> Result<Page<ModelVersion>>;
    /// Every artifact digest some version (retired ones too) or evidence
    /// document points at.
    async fn referenced_artifacts(&self) -> Result<BTreeSet<Sha256Hex>>;
    /// The artifacts of versions stored under `file_name` (MLflow's
    /// manifests, whose files the registry must keep too).
    async fn version_artifacts_named(&self, file_name: &str) -> Result<BTreeSet<Sha256Hex>>;
    /// What MLflow's registry shows: every version of the active models
    /// (of those named, or of all), but those deleted through MLflow, by
    /// model name then number.
    async fn versions_shown_in_mlflow(&self, models: Option<&[ModelName]>) -> Result<Vec<ModelVersion>>;
    /// The highest shown version in each lifecycle state of these models
    /// (at most one per state): what MLflow's `latest_versions` is made of.
    async fn latest_shown_in_mlflow(&self, models: &[ModelName]) -> Result<Vec<ModelVersion>>;
    /// The versions deleted through MLflow's registry API (see
    /// [`ModelWrites::hide_versions`]), of one model or of every model.
    async fn hidden_versions(&self, model: Option<&ModelName>) -> Result<BTreeSet<(ModelName, u32)>>;
}

/// Read access to the audit log. Appending happens only inside a
/// [`WriteTx`], never on its own.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn list_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>>;
    /// Stored rows with `sequence > after` (every row, whatever its
    /// sequence, when `after` is `None`), oldest first, at most `limit`: the
    /// raw chain as stored, for verification. A row that cannot be read is
    /// returned as [`ChainRecord::Unreadable`], not as an error, so the
    /// verifier names it as the broken link.
    async fn read_chain(&self, after: Option<i64>, limit: u32) -> Result<Vec<ChainRecord>>;
    /// The head recorded beside the events.
    async fn head(&self) -> Result<Option<ChainHead>>;
    /// Hashes of the Merkle tree by stored-hash index (`modelops-audit::tree`),
    /// in the order asked. A missing one is an error: the tree is written
    /// with its events, so a gap means the database was edited.
    async fn tree_hashes(&self, indexes: &[u64]) -> Result<Vec<[u8; 32]>>;
    /// The Merkle leaf of event `sequence` as this store hashed it when it
    /// appended the event and committed it, while it remembers it (not for
    /// events another writer appended, nor after a restart).
    fn appended_leaf(&self, _sequence: i64) -> Option<[u8; 32]> {
        None
    }
    /// Stored checkpoints with `size > after`, smallest first, at most `limit`.
    async fn checkpoints(&self, after: Option<u64>, limit: u32) -> Result<Vec<StoredCheckpoint>>;
    /// The checkpoint of `size`, or the largest one when `size` is `None`.
    async fn checkpoint(&self, size: Option<u64>) -> Result<Option<StoredCheckpoint>>;
    /// Keeps a newly signed checkpoint; `false` when one of its size is kept
    /// already. Outside the write lock: it changes no chain state.
    async fn add_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<bool>;
    /// The keys of the people `ids` that still have one (an erased person's
    /// id is absent), to read sealed events.
    async fn person_keys(&self, ids: &[String]) -> Result<std::collections::HashMap<String, [u8; 32]>>;
    /// Events hashed before personal values were sealed whose actor is `name`.
    async fn count_plain_actor_events(&self, name: &str) -> Result<u64>;
    /// Makes deleted rows unreadable in the database's files (after an
    /// erasure): SQLite truncates its write-ahead log (deleted content is
    /// zeroed, `secure_delete`); PostgreSQL vacuums the tables erasure
    /// touches.
    async fn scrub(&self) -> Result<()>;
}

/// Changes to models and versions inside a transaction. A model must be
/// locked ([`ModelWrites::lock_model`]) or inserted in the transaction before
/// anything of it (versions, aliases, tags) is changed.
#[async_trait]
pub trait ModelWrites: Send {
    /// Reads the model and locks it until the transaction ends; `None` when
    /// there is no such model.
    async fn lock_model(&mut self, name: &ModelName) -> Result<Option<Model>>;
    /// Like [`ModelWrites::lock_model`], reading only the model's state: for
    /// changes that need nothing else of it (a new version, a tag on one).
    async fn lock_model_state(&mut self, name: &ModelName) -> Result<Option<ModelState>>;
    /// Which of `names` are registered models (retired ones included).
    async fn existing_models(&mut self, names: &[ModelName]) -> Result<BTreeSet<ModelName>>;
    /// Inserts a model with its tags and dependencies (which must exist).
    /// `AlreadyExists` when the name is taken.
    async fn insert_model(&mut self, model: &Model) -> Result<()>;
    /// Writes a model's descriptive fields, state and `updated_at`.
    async fn update_model(&mut self, model: &Model) -> Result<()>;
    /// Gives the locked model `from` the name `to.name` (and `to`'s
    /// `updated_at`); its versions, aliases, tags and records follow it.
    /// `AlreadyExists` when the name is taken.
    async fn rename_model(&mut self, from: &ModelName, to: &Model) -> Result<()>;
    async fn replace_dependencies(&mut self, model: &ModelName, dependencies: &[ModelName]) -> Result<()>;
    /// Takes the model's next version number (1, 2, 3…).
    async fn next_version_number(&mut self, model: &ModelName) -> Result<u32>;
    /// Inserts a version with its tags.
    async fn insert_version(&mut self, version: &ModelVersion) -> Result<()>;
    async fn version(&mut self, model: &ModelName, number: u32) -> Result<Option<ModelVersion>>;
    /// The model's versions not in `state`, by number.
    async fn versions_not_in(&mut self, model: &ModelName, state: VersionState) -> Result<Vec<ModelVersion>>;
    /// Writes a version's mutable parts: description, card, state, `updated_at`.
    async fn update_version(&mut self, version: &ModelVersion) -> Result<()>;
    /// Sets the state of many versions of one model in one statement.
    async fn set_versions_state(&mut self, model: &ModelName, numbers: &[u32], state: VersionState, at: DateTime<Utc>) -> Result<()>;
    /// Marks versions as deleted through MLflow's registry API: they are
    /// retired like any other (the use case does that) and the MLflow
    /// surface no longer shows them, as MLflow would not.
    async fn hide_versions(&mut self, model: &ModelName, numbers: &[u32]) -> Result<()>;
}

/// Changes to aliases and tags inside a transaction.
#[async_trait]
pub trait LabelWrites: Send {
    /// Points `alias` at version `number`, moving it if it pointed elsewhere.
    async fn set_alias(&mut self, model: &ModelName, alias: &AliasName, number: u32) -> Result<()>;
    async fn remove_alias(&mut self, model: &ModelName, alias: &AliasName) -> Result<()>;
    async fn remove_aliases(&mut self, scope: &AliasScope) -> Result<()>;
    /// Sets a tag and moves the target's `updated_at` to `at`.
    async fn set_tag(&mut self, target: &TagTarget, key: &TagKey, value: &str, at: DateTime<Utc>) -> Result<()>;
    /// Removes a tag and moves the target's `updated_at` to `at`.
    async fn remove_tag(&mut self, target: &TagTarget, key: &TagKey, at: DateTime<Utc>) -> Result<()>;
}

/// Appending to the audit chain inside a transaction.
#[async_trait]
pub trait AuditAppend: Send {
    /// The time of this transaction's change, read under the write lock, so
    /// event times follow sequence order.
    fn now(&self) -> DateTime<Utc>;
    /// Who makes the change: the permit's actor.
    fn actor(&self) -> &str;
    /// Seals `event` onto the chain head and appends it.
    async fn record(&mut self, event: PendingEvent) -> Result<AuditEvent>;
    /// Whether an event of `action` was appended after event `sequence`
    /// (read in this transaction, under the write lock).
    async fn appended_since(&mut self, action: &str, sequence: i64) -> Result<bool>;
}

/// Reads of users, tokens and the governance records (approvals, evidence,
/// reviews, policies). Lists are oldest first.
#[async_trait]
pub trait GovernanceReads: Send + Sync {
    async fn get_user(&self, name: &str) -> Result<Option<User>>;
    /// Every user, by name.
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn count_users(&self) -> Result<u64>;
    /// A token by its public id, with the stored hash of its secret and its
    /// user: what authentication needs in one read.
    async fn token_for_auth(&self, id: &str) -> Result<Option<(ApiToken, String, User)>>;
    /// Tokens of one user, or of everyone, by creation time.
    async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<ApiToken>>;
    async fn approvals(&self, model: &ModelName, version: u32) -> Result<Vec<Approval>>;
    async fn evidence(&self, model: &ModelName, version: u32) -> Result<Vec<Evidence>>;
    /// Every review recorded for the model's versions.
    async fn reviews(&self, model: &ModelName) -> Result<Vec<Review>>;
    /// Every version with a next review date (the production versions), by
    /// that date.
    async fn review_schedule(&self) -> Result<Vec<ScheduledReview>>;
    /// The policy loaded last, if any was.
    async fn active_policy(&self) -> Result<Option<StoredPolicy>>;
}

/// Changes to users, tokens and governance records inside a transaction.
/// Versions named here belong to a model locked in the transaction.
#[async_trait]
pub trait GovernanceWrites: Send {
    /// `AlreadyExists` (`user`) when the name is taken.
    async fn insert_user(&mut self, user: &User) -> Result<()>;
    async fn lock_user(&mut self, name: &str) -> Result<Option<User>>;
    /// Writes roles, team, disabled and `updated_at`.
    async fn update_user(&mut self, user: &User) -> Result<()>;
    /// Stores a token with the hash of its secret (never the secret).
    async fn insert_token(&mut self, token: &ApiToken, secret_hash: &str) -> Result<()>;
    async fn lock_token(&mut self, id: &str) -> Result<Option<ApiToken>>;
    /// Writes `revoked_at`.
    async fn update_token(&mut self, token: &ApiToken) -> Result<()>;
    async fn version_approvals(&mut self, model: &ModelName, version: u32) -> Result<Vec<Approval>>;
    async fn version_evidence(&mut self, model: &ModelName, version: u32) -> Result<Vec<Evidence>>;
    async fn insert_approval(&mut self, approval: &Approval) -> Result<()>;
    async fn insert_evidence(&mut self, evidence: &Evidence) -> Result<()>;
    async fn insert_review(&mut self, review: &Review) -> Result<()>;
    /// When the version is next reviewed; `None` clears it (no longer in production).
    async fn set_next_review(&mut self, model: &ModelName, version: u32, at: Option<DateTime<Utc>>) -> Result<()>;
    async fn next_review(&mut self, model: &ModelName, version: u32) -> Result<Option<DateTime<Utc>>>;
    /// Stores a policy and makes it the active one (loading an earlier
    /// policy's text again makes that one active again).
    async fn insert_policy(&mut self, policy: &StoredPolicy) -> Result<()>;
    async fn locked_policy(&mut self) -> Result<Option<StoredPolicy>>;
}

/// Reads of deployments, outside any transaction.
#[async_trait]
pub trait DeploymentReads: Send + Sync {
    async fn get_deployment(&self, name: &ModelName) -> Result<Option<Deployment>>;
    /// Every deployment (of `model` when given), by name; retired ones only
    /// when asked for.
    async fn list_deployments(&self, model: Option<&ModelName>, include_retired: bool) -> Result<Vec<Deployment>>;
}

/// Deployment changes, inside a [`WriteTx`].
#[async_trait]
pub trait DeploymentWrites: Send {
    /// Reads a deployment for change (its row locked on PostgreSQL; the
    /// write lock already serialises SQLite).
    async fn lock_deployment(&mut self, name: &ModelName) -> Result<Option<Deployment>>;
    async fn insert_deployment(&mut self, deployment: &Deployment) -> Result<()>;
    /// Replaces the stored deployment of the same name.
    async fn update_deployment(&mut self, deployment: &Deployment) -> Result<()>;
    /// The deployments of `model` that are not retired (a version they run
    /// is not retired under them).
    async fn live_deployments_of(&mut self, model: &ModelName) -> Result<Vec<Deployment>>;
}

/// The prediction records: appended in batches off the request path, read
/// in pages, pruned by age. Not part of the audit chain and outside the
/// write lock: each call is its own statement or transaction.
#[async_trait]
pub trait PredictionLog: Send + Sync {
    /// Appends `records` in one transaction (their `id` is assigned).
    async fn append_predictions(&self, records: &[PredictionRecord]) -> Result<()>;
    /// Records of one deployment in its window, after `after_id`, oldest
    /// first, at most `limit`.
    async fn list_predictions(&self, query: &PredictionQuery) -> Result<Vec<PredictionRecord>>;
    /// Removes the records older than `before`, at most `limit` of them
    /// (pruning runs in slices so it never holds the database long);
    /// returns how many went.
    async fn prune_predictions(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;
}

/// Live monitoring's governed changes, inside a transaction with their
/// audit events: reference profiles (set once), monitors, alerts firing
/// and resolving, retraining requests.
#[async_trait]
pub trait MonitorWrites: Send {
    /// `AlreadyExists` when the version has one: a reference is immutable.
    async fn insert_reference(&mut self, reference: &crate::monitoring::ReferenceProfile) -> Result<()>;
    /// `AlreadyExists` when the deployment has a monitor of that name.
    async fn insert_monitor(&mut self, monitor: &crate::monitoring::Monitor) -> Result<()>;
    /// Removes a monitor with its state and results; false when absent.
    async fn delete_monitor(&mut self, deployment: &ModelName, name: &str) -> Result<bool>;
    /// Returns the alert's id.
    async fn insert_alert(&mut self, alert: &crate::monitoring::Alert) -> Result<i64>;
    async fn resolve_alert(&mut self, id: i64, at: DateTime<Utc>) -> Result<()>;
    /// Returns the request's id.
    async fn insert_retrain_request(&mut self, request: &crate::monitoring::RetrainRequest) -> Result<i64>;
}

/// Live monitoring's reads and bookkeeping. Like the prediction log, each
/// method is its own statement or transaction, outside the write lock and
/// without an audit event: window results, engine state, labels and
/// webhook delivery attempts are recomputable or recorded elsewhere.
#[async_trait]
pub trait MonitorStore: Send + Sync {
    async fn reference(&self, model: &ModelName, version: u32) -> Result<Option<crate::monitoring::ReferenceProfile>>;
    /// Monitors of one deployment, or of all, by deployment and name.
    async fn monitors(&self, deployment: Option<&ModelName>) -> Result<Vec<crate::monitoring::Monitor>>;
    /// The engine's state of a monitor (JSON), if it saved one.
    async fn monitor_state(&self, deployment: &ModelName, name: &str) -> Result<Option<String>>;
    async fn put_monitor_state(&self, deployment: &ModelName, name: &str, state: &str) -> Result<()>;
    /// Inserts or replaces the result of (monitor, window start, version).
    async fn put_result(&self, result: &crate::monitoring::WindowResult) -> Result<()>;
    /// Results of a monitor whose window starts at or after `since`, oldest
    /// first, at most `limit`.
    async fn results(&self, deployment: &ModelName, monitor: &str, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<crate::monitoring::WindowResult>>;
    /// Stores labels (request id → JSON label; a later label replaces an
    /// earlier one) and returns, for each request id of `labels`, the time
    /// of its recorded call if the deployment has one.
    async fn put_labels(&self, deployment: &ModelName, labels: &[(String, String)], at: DateTime<Utc>) -> Result<Vec<Option<DateTime<Utc>>>>;
    /// Notes that calls of `deployment` made at `times` got labels, for the
    /// engine (on whichever replica runs it) to recompute their closed
    /// windows.
    async fn queue_relabels(&self, deployment: &ModelName, times: &[DateTime<Utc>]) -> Result<()>;
    /// Takes every note (removing them): deployment and time of a labelled call.
    async fn take_relabels(&self) -> Result<Vec<(String, DateTime<Utc>)>>;
    /// Recorded calls of a deployment in `[since, until)` that have a label,
    /// with the label's JSON, in id order after `after_id`, at most `limit`.
    async fn labeled_predictions(
        &self,
        deployment: &ModelName,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<(crate::deployment::PredictionRecord, String)>>;
    /// Alerts, newest first: of one deployment or all, firing only or all.
    async fn alerts(&self, deployment: Option<&ModelName>, firing_only: bool, limit: u32) -> Result<Vec<crate::monitoring::Alert>>;
    /// Replaces an alert's detail (delivery attempts as they happen).
    async fn update_alert_detail(&self, id: i64, detail: &serde_json::Value) -> Result<()>;
    async fn retrain_requests(&self, model: Option<&ModelName>) -> Result<Vec<crate::monitoring::RetrainRequest>>;
}

/// Retraining's governed changes, inside a transaction with their audit
/// events: jobs defined, runs started and moved on, requests answered.
/// The reads here see the transaction's own writes, under the write lock:
/// "at most one run per model" and the cool-down are decided on them.
#[async_trait]
pub trait RetrainWrites: Send {
    /// Inserts or replaces the model's job.
    async fn put_retrain_job(&mut self, job: &crate::retrain::RetrainJob) -> Result<()>;
    /// False when the model had none.
    async fn delete_retrain_job(&mut self, model: &ModelName) -> Result<bool>;
    async fn retrain_job_in(&mut self, model: &ModelName) -> Result<Option<crate::retrain::RetrainJob>>;
    /// Returns the run's id.
    async fn insert_job_run(&mut self, run: &crate::retrain::JobRun) -> Result<i64>;
    async fn update_job_run(&mut self, run: &crate::retrain::JobRun) -> Result<()>;
    async fn job_run_in(&mut self, id: i64) -> Result<Option<crate::retrain::JobRun>>;
    /// The model's run that has not reached a final state, if any.
    async fn active_job_run_in(&mut self, model: &ModelName) -> Result<Option<crate::retrain::JobRun>>;
    /// When the model's latest run started by an alert or a schedule began.
    async fn last_triggered_run_in(&mut self, model: &ModelName) -> Result<Option<DateTime<Utc>>>;
    /// Marks a retraining request answered (`started run 4`, `skipped: …`).
    async fn set_retrain_request_state(&mut self, id: i64, state: &str) -> Result<()>;
}

/// Retraining's reads and the runs' output, outside the write lock.
#[async_trait]
pub trait RetrainStore: Send + Sync {
    async fn retrain_job(&self, model: &ModelName) -> Result<Option<crate::retrain::RetrainJob>>;
    async fn retrain_jobs(&self) -> Result<Vec<crate::retrain::RetrainJob>>;
    async fn job_run(&self, id: i64) -> Result<Option<crate::retrain::JobRun>>;
    /// Runs newest first: of one model or all, at most `limit`.
    async fn job_runs(&self, model: Option<&ModelName>, limit: u32) -> Result<Vec<crate::retrain::JobRun>>;
    /// Runs that have not reached a final state, oldest first.
    async fn active_job_runs(&self) -> Result<Vec<crate::retrain::JobRun>>;
    /// Requests still `open`, oldest first.
    async fn open_retrain_requests(&self) -> Result<Vec<crate::monitoring::RetrainRequest>>;
    /// The run's output so far (the tail kept, at most `MAX_LOG_BYTES`).
    async fn job_run_log(&self, id: i64) -> Result<String>;
    /// Replaces the run's kept output, and records `at` as its heartbeat.
    async fn put_job_run_log(&self, id: i64, log: &str, at: DateTime<Utc>) -> Result<()>;
}

/// Personal data inside a transaction (erasure, DESIGN §6).
#[async_trait]
pub trait PersonalData: Send {
    /// Erases the person `name`: their key and the row naming them are
    /// deleted, so no sealed value of theirs opens again; every other record
    /// naming them (users, tokens, approvals, reviews, evidence, policies,
    /// models, versions, deployments, runs) now holds their pseudonym, their
    /// comments are cleared, their tokens revoked. Returns the pseudonym.
    async fn erase_person(&mut self, name: &str) -> Result<String>;
    /// The pseudonymous id of the person `name`, if they have one.
    async fn person_id(&mut self, name: &str) -> Result<Option<String>>;
}

/// One change in progress. Dropping it rolls back.
#[async_trait]
pub trait WriteTx: ModelWrites + LabelWrites + GovernanceWrites + DeploymentWrites + MonitorWrites + RetrainWrites + AuditAppend + PersonalData {
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// Leases: which replica holds a named duty (`crate::replica`). Outside the
/// write lock and the audit chain: a lease changes every few seconds and
/// decides who works, not what is true.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `now + ttl`:
    /// true when `holder` holds it afterwards (it was free, expired, or
    /// already `holder`'s).
    async fn try_lease(&self, name: &str, holder: &str, ttl: std::time::Duration) -> Result<bool>;
    /// Gives the lease up if `holder` holds it, so another may take it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;
    /// The holder of a lease not yet expired, and since when it holds it.
    async fn lease_holder(&self, name: &str) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>>;
}

/// Canary statistics each replica publishes for the one judging the canary
/// (`modelops-deploy`): one row per deployment revision, replica and route
/// version, the tally as JSON (opaque here), replaced at each publication.
/// Outside the write lock and the audit chain: counters, not decisions.
#[async_trait]
pub trait CanaryTallies: Send + Sync {
    /// Replaces `replica`'s tallies of `deployment` at `revision`: (version, JSON).
    async fn put_canary_tallies(&self, deployment: &str, revision: u64, replica: &str, tallies: &[(u32, String)]) -> Result<()>;
    /// Every replica's tallies of `deployment` at `revision`: (replica, version, JSON).
    async fn canary_tallies(&self, deployment: &str, revision: u64) -> Result<Vec<(String, u32, String)>>;
    /// Removes every tally but those of the (deployment, revision) pairs in
    /// `keep` (the canaries' current steps); returns how many.
    async fn prune_canary_tallies(&self, keep: &[(String, u64)]) -> Result<u64>;
}

/// A backend: every area's reads, and transactions for changes.
#[async_trait]
pub trait Store: ModelReads + AuditLog + GovernanceReads + DeploymentReads + PredictionLog + MonitorStore + RetrainStore + LeaseStore + CanaryTallies + crate::tracking::TrackingStore {
    /// Begins a change for the permit's actor, taking the write lock and
    /// reading the chain head under it.
    async fn begin(&self, permit: &Permit) -> Result<Box<dyn WriteTx>>;
    /// Closes the connection pools, waiting for connections in use.
    async fn close(&self);
}

/// Rows read per batch by [`verify_chain`].
pub const VERIFY_BATCH: u32 = 1000;

/// Hands every stored row of `log` to `check` in sequence order, in
/// batches with constant memory, until `check` fails; returns its failure,
/// or the head recorded when the rows ran out. Every stored row is handed
/// over, whatever its sequence number (a row inserted with sequence 0 or
/// below too). Events appended meanwhile are either handed over or ignored,
/// never reported missing: the head is re-read when the rows run out.
pub async fn stream_chain<E>(
    log: &dyn AuditLog,
    mut check: impl FnMut(&ChainRecord) -> Result<(), E> + Send,
) -> Result<Result<Option<ChainHead>, E>> {
    let mut after: Option<i64> = None;
    loop {
        let mut batch = log.read_chain(after, VERIFY_BATCH).await?;
        if batch.is_empty() {
            let head = log.head().await?;
            if head.as_ref().is_some_and(|h| after.is_none_or(|a| h.sequence > a)) {
                // The chain may have grown since the last batch; only events
                // still absent now are missing.
                batch = log.read_chain(after, VERIFY_BATCH).await?;
            }
            if batch.is_empty() {
                return Ok(Ok(head));
            }
        }
        for record in &batch {
            if let Err(failure) = check(record) {
                return Ok(Err(failure));
            }
            after = Some(record.sequence());
        }
    }
}

/// Re-computes the whole audit chain of `log` in batches, with constant memory.
///
/// The outer `Result` is a failure to read; the inner one is the verdict,
/// naming the first broken link (see [`stream_chain`]).
pub async fn verify_chain(log: &dyn AuditLog) -> Result<Result<VerifySummary, ChainBreak>> {
    let mut verifier = ChainVerifier::new();
    Ok(match stream_chain(log, |record| verifier.push_record(record)).await? {
        Ok(head) => verifier.finish(head.as_ref()),
        Err(broken) => Err(broken),
    })
}
