//! Backends for the suite, fixtures and small helpers.

use chrono::{TimeZone, Utc};
use modelops_artifacts::ArtifactStore;
use modelops_core::audit::{AuditEvent, ChainRecord};
use modelops_core::auth::{Principal, Role};
use modelops_core::clock::MockClock;
use modelops_core::model::{ModelKind, NewModel, RiskTier};
use modelops_core::name::ModelName;
use modelops_core::repo::{AuditLog, Store};
use modelops_core::version::{ArtifactSpec, Lineage, ModelCard, NewVersion, Sha256Hex, Signature};
use modelops_registry::Registry;
use modelops_core::{Error, ErrorKind};
use modelops_store::{PostgresStore, SqliteStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Where the raw database behind a store is, for tests that go around it.
pub enum Raw {
    Sqlite(PathBuf),
    Postgres(Box<PgConnectOptions>),
}

pub struct Ctx {
    pub registry: Registry,
    pub store: Arc<dyn Store>,
    pub clock: Arc<MockClock>,
    pub raw: Raw,
    /// The artifact folder and, for SQLite, the database.
    _dir: tempfile::TempDir,
}

/// The bytes of the artifact every [`new_version`] points at, uploaded by
/// [`Ctx`]'s constructors.
pub const ARTIFACT: &[u8] = b"an onnx graph, or close enough";

pub fn artifact_sha256() -> Sha256Hex {
    use sha2::Digest;
    Sha256Hex::from_digest(&sha2::Sha256::digest(ARTIFACT).into())
}

/// A registry over `store` with artifacts under `dir`, [`ARTIFACT`] uploaded.
pub async fn registry_for(store: Arc<dyn Store>, clock: Arc<MockClock>, dir: &std::path::Path) -> Registry {
    let artifacts = ArtifactStore::local(dir.join("artifacts")).unwrap();
    let registry = Registry::new(store, artifacts, clock);
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(ARTIFACT))]);
    registry.upload_artifact(&actor("setup"), body, None).await.unwrap();
    registry
}

async fn with_registry(store: Arc<dyn Store>, clock: Arc<MockClock>, raw: Raw, dir: tempfile::TempDir) -> Ctx {
    let registry = registry_for(store.clone(), clock.clone(), dir.path()).await;
    Ctx { registry, store, clock, raw, _dir: dir }
}

/// A second store on the same database, as the next start of the server
/// opens it (migrations and the audit tree's backfill run again).
pub async fn reopen(ctx: &Ctx) -> Arc<dyn Store> {
    match &ctx.raw {
        Raw::Sqlite(path) => Arc::new(SqliteStore::open(path, ctx.clock.clone()).await.unwrap()),
        Raw::Postgres(options) => Arc::new(PostgresStore::connect_with((**options).clone(), ctx.clock.clone()).await.unwrap()),
    }
}

/// The stored chain after `after` (all of it for `None`), as events people
/// read: personal values opened with their keys (see [`sealed_chain`] for
/// the events as hashed).
pub async fn chain(store: &dyn AuditLog, after: impl Into<Option<i64>>, limit: u32) -> Vec<AuditEvent> {
    let sealed = sealed_chain(store, after, limit).await;
    let ids: Vec<String> = sealed.iter().flat_map(|e| e.personal.iter().map(|p| p.person.clone())).collect();
    let keys = store.person_keys(&ids).await.unwrap();
    sealed.iter().map(|e| modelops_audit::personal::unseal(e, &keys).unwrap()).collect()
}

/// The stored chain after `after`, as hashed.
pub async fn sealed_chain(store: &dyn AuditLog, after: impl Into<Option<i64>>, limit: u32) -> Vec<AuditEvent> {
    let after = after.into().filter(|a| *a > 0);
    store
        .read_chain(after, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|r| match r {
            ChainRecord::Event(e) => e,
            other => panic!("unreadable row {other:?}"),
        })
        .collect()
}

pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + chrono::Duration::microseconds(123_456)
}

pub async fn sqlite() -> Ctx {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("modelops.db");
    let clock = Arc::new(MockClock::new(start_time()));
    let store = SqliteStore::open(&path, clock.clone()).await.unwrap();
    with_registry(Arc::new(store), clock, Raw::Sqlite(path), dir).await
}

/// A store in a fresh schema of the test server, or `None` when PostgreSQL
/// is explicitly skipped. Without a server URL the test fails: a suite that
/// silently skips half its backends proves nothing.
pub async fn postgres() -> Option<Ctx> {
    let url = match std::env::var("MODELOPS_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("MODELOPS_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => {
            eprintln!("MODELOPS_TEST_SKIP_POSTGRES=1: skipping the PostgreSQL backend");
            return None;
        }
        Err(_) => panic!(
            "MODELOPS_TEST_POSTGRES_URL is not set: run the tests through `scripts/with-postgres cargo test -p modelops-store`, \
             or set MODELOPS_TEST_SKIP_POSTGRES=1 to skip PostgreSQL on purpose"
        ),
    };
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let schema = format!("t_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    conn.close().await.unwrap();
    let options = PgConnectOptions::from_str(&url).unwrap().options([("search_path", schema.as_str())]);
    let clock = Arc::new(MockClock::new(start_time()));
    let store = PostgresStore::connect_with(options.clone(), clock.clone()).await.unwrap();
    Some(with_registry(Arc::new(store), clock, Raw::Postgres(Box::new(options)), tempfile::tempdir().unwrap()).await)
}

/// An actor holding every role.
pub fn actor(name: &str) -> Principal {
    Principal::new(name, Role::ALL.iter().copied()).unwrap()
}

/// An actor holding exactly `roles`.
pub fn with_roles(name: &str, roles: &[Role]) -> Principal {
    Principal::new(name, roles.iter().copied()).unwrap()
}

pub fn name(s: &str) -> ModelName {
    ModelName::parse(s).unwrap()
}

pub fn new_model(n: &str) -> NewModel {
    NewModel {
        name: name(n),
        kind: ModelKind::Onnx,
        description: format!("{n} scores applicants"),
        owner: "ana".into(),
        team: "risk".into(),
        business_purpose: "credit decisions".into(),
        intended_use: "retail loans".into(),
        restrictions: "not for employment".into(),
        risk_tier: RiskTier::High,
        tags: Default::default(),
        dependencies: vec![],
        developers: vec![],
        validation: None,
    }
}

pub fn new_version() -> NewVersion {
    NewVersion {
        artifact: ArtifactSpec { sha256: artifact_sha256(), filename: "model.onnx".into() },
        lineage: Lineage {
            dataset_uri: Some("s3://data/train.parquet".into()),
            dataset_sha256: Some(Sha256Hex::from_digest(&[9; 32])),
            dataset_rows: Some(10_000),
            code_commit: Some("abc123".into()),
            hyperparameters: [("max_depth".to_string(), serde_json::json!(6)), ("eta".to_string(), serde_json::json!(0.3))].into(),
            training_metrics: [("auc".to_string(), 0.8125), ("log_loss".to_string(), 0.1)].into(),
            parent_version: None,
            mlflow_run_id: None,
            retrain: None,
        },
        signature: Signature::default(),
        card: ModelCard { markdown: "# card".into(), intended_use: "loans".into(), ..Default::default() },
        description: "first cut".into(),
        tags: Default::default(),
    }
}

/// Asserts the error kind and, for NotFound/InvalidInput, what it names.
#[track_caller]
pub fn assert_kind<T: std::fmt::Debug>(result: Result<T, Error>, kind: ErrorKind) -> Error {
    match result {
        Ok(v) => panic!("expected {kind:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{e}");
            e
        }
    }
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>, what: &str, key: &str) {
    match assert_kind(result, ErrorKind::NotFound) {
        Error::NotFound { what: w, key: k } => assert_eq!((w, k.as_str()), (what, key)),
        other => panic!("{other}"),
    }
}

#[track_caller]
pub fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, field: &str) {
    let e = assert_kind(result, ErrorKind::InvalidInput);
    assert_eq!(e.field(), Some(field), "{e}");
}
