//! The storage traits. `modelops-store` implements them for SQLite and
//! PostgreSQL; the server and the binary see only these traits.
//!
//! Contract every implementation keeps:
//! - each mutation and its audit event commit in one transaction, or neither does;
//! - the audit log is append-only: there is no method to change or remove an event;
//! - version numbers are 1, 2, 3… per model, assigned inside the transaction;
//!   concurrent creators each get their own number;
//! - retired models and versions keep their record; nothing is hard-deleted;
//! - a mutation of a retired model or version answers `Conflict`.

use crate::audit::{AuditEvent, AuditQuery, ChainBreak, ChainHead, ChainVerifier, VerifySummary};
use crate::auth::Permit;
use crate::error::Result;
use crate::model::{Model, ModelPatch, NewModel};
use crate::name::{AliasName, ModelName, TagKey};
use crate::page::{ModelQuery, Page, VersionQuery};
use crate::version::{ModelVersion, NewVersion, VersionPatch};
use async_trait::async_trait;

/// What a tag is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagTarget {
    Model(ModelName),
    Version(ModelName, u32),
}

#[async_trait]
pub trait ModelRepo: Send + Sync {
    async fn create_model(&self, permit: &Permit, new: NewModel) -> Result<Model>;
    async fn get_model(&self, name: &ModelName) -> Result<Model>;
    async fn update_model(&self, permit: &Permit, name: &ModelName, patch: ModelPatch) -> Result<Model>;
    /// Marks the model and all its versions retired and removes its aliases.
    async fn retire_model(&self, permit: &Permit, name: &ModelName) -> Result<Model>;
    async fn list_models(&self, query: &ModelQuery) -> Result<Page<Model>>;

    /// Creates the next version. The caller has checked that the artifact exists.
    async fn create_version(&self, permit: &Permit, model: &ModelName, new: NewVersion) -> Result<ModelVersion>;
    async fn get_version(&self, model: &ModelName, number: u32) -> Result<ModelVersion>;
    async fn get_version_by_alias(&self, model: &ModelName, alias: &AliasName) -> Result<ModelVersion>;
    async fn list_versions(&self, model: &ModelName, query: &VersionQuery) -> Result<Page<ModelVersion>>;
    async fn update_version(&self, permit: &Permit, model: &ModelName, number: u32, patch: VersionPatch) -> Result<ModelVersion>;
    /// Marks the version retired and removes aliases pointing at it.
    async fn retire_version(&self, permit: &Permit, model: &ModelName, number: u32) -> Result<ModelVersion>;

    /// Points `alias` at a version, moving it if it pointed elsewhere.
    async fn set_alias(&self, permit: &Permit, model: &ModelName, alias: &AliasName, number: u32) -> Result<ModelVersion>;
    async fn delete_alias(&self, permit: &Permit, model: &ModelName, alias: &AliasName) -> Result<()>;

    async fn set_tag(&self, permit: &Permit, target: &TagTarget, key: &TagKey, value: &str) -> Result<()>;
    async fn delete_tag(&self, permit: &Permit, target: &TagTarget, key: &TagKey) -> Result<()>;
}

/// Read access to the audit log. Appending happens inside [`ModelRepo`]'s
/// mutations, never on its own.
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn list_events(&self, query: &AuditQuery) -> Result<Page<AuditEvent>>;
    /// Events with `sequence > after`, oldest first, at most `limit`: the
    /// raw chain as stored, for verification.
    async fn read_chain(&self, after: i64, limit: u32) -> Result<Vec<AuditEvent>>;
    /// The head recorded beside the events.
    async fn head(&self) -> Result<Option<ChainHead>>;
}

/// A backend that is both.
pub trait Store: ModelRepo + AuditLog {}
impl<T: ModelRepo + AuditLog> Store for T {}

/// Events read per batch by [`verify_chain`].
pub const VERIFY_BATCH: u32 = 1000;

/// Re-computes the whole audit chain of `log` in batches, with constant memory.
///
/// The outer `Result` is a failure to read; the inner one is the verdict,
/// naming the first broken link. Events appended while this runs are either
/// verified too or ignored, never reported as a break: the head is re-read
/// when the stored events run out.
pub async fn verify_chain(log: &dyn AuditLog) -> Result<Result<VerifySummary, ChainBreak>> {
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let mut batch = log.read_chain(after, VERIFY_BATCH).await?;
        if batch.is_empty() {
            let head = log.head().await?;
            if head.as_ref().is_some_and(|h| h.sequence > after) {
                // The chain may have grown since the last batch; only events
                // still absent now are missing.
                batch = log.read_chain(after, VERIFY_BATCH).await?;
            }
            if batch.is_empty() {
                return Ok(verifier.finish(head.as_ref()));
            }
        }
        for event in &batch {
            if let Err(broken) = verifier.push(event) {
                return Ok(Err(broken));
            }
            after = event.sequence;
        }
    }
}
