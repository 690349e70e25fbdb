//! The test harness: a router over a fresh SQLite file and artifact folder.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use modelops_artifacts::ArtifactStore;
use modelops_core::clock::SystemClock;
use modelops_core::repo::Store;
use modelops_registry::Registry;
use modelops_server::identity::Authenticator;
use modelops_server::{router, AppState, ServerConfig};
use modelops_store::{PostgresStore, SqliteStore};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

pub const MAX_ARTIFACT: u64 = 4 * 1024 * 1024;
pub const JSON_LIMIT: usize = 256 * 1024;

pub struct App {
    pub router: Router,
    #[allow(dead_code)] // for tests that set up state through the use cases
    pub registry: Registry,
    pub artifacts_dir: PathBuf,
    /// Live monitoring, not started: tests run its passes themselves.
    #[allow(dead_code)]
    pub watch: modelops_watch::Watch,
    /// The closed loop, not started: tests run its passes themselves.
    #[allow(dead_code)]
    pub retrain: modelops_retrain::Retraining,
    _dir: tempfile::TempDir,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, String::from_utf8_lossy(&self.bytes))
    }
}

impl Answer {
    /// Asserts an error answer of the one JSON shape and returns (code, field, message).
    pub fn error(&self, status: StatusCode) -> (String, Option<String>, String) {
        assert_eq!(self.status, status, "{self:?}");
        let error = &self.body["error"];
        let code = error["code"].as_str().unwrap_or_else(|| panic!("no error code in {self:?}")).to_string();
        let message = error["message"].as_str().unwrap().to_string();
        let field = error["field"].as_str().map(str::to_string);
        (code, field, message)
    }

    /// Asserts a 400 naming `field` and returns the message.
    pub fn invalid(&self, field: &str) -> String {
        let (code, got, message) = self.error(StatusCode::BAD_REQUEST);
        assert_eq!(code, "invalid_input", "{self:?}");
        assert_eq!(got.as_deref(), Some(field), "{self:?}");
        message
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl App {
    pub async fn new() -> Self {
        Self::build(None).await
    }

    pub async fn with_authenticator(authenticator: Arc<dyn Authenticator>) -> Self {
        Self::build(Some(authenticator)).await
    }

    async fn build(authenticator: Option<Arc<dyn Authenticator>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let artifacts_dir = dir.path().join("artifacts");
        let artifacts = ArtifactStore::local(&artifacts_dir).unwrap().with_max_size(Some(MAX_ARTIFACT));
        let registry = Registry::new(store, artifacts, Arc::new(SystemClock));
        // Most of the suite is about the API, not about tokens: the trusted
        // header names the actor (`roles` tests run with real tokens).
        let authenticator = authenticator.unwrap_or_else(|| Arc::new(modelops_server::identity::TrustedHeader));
        let state = AppState::new(registry.clone(), ServerConfig { json_body_limit: JSON_LIMIT, ..ServerConfig::default() }).with_authenticator(authenticator);
        let watch = state.watch.clone();
        let retrain = state.retrain.clone();
        Self { router: router(state), registry, artifacts_dir, watch, retrain, _dir: dir }
    }

    /// An app with token authentication, as the binary runs it, and the
    /// bootstrap admin's token.
    pub async fn with_tokens() -> (Self, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let artifacts_dir = dir.path().join("artifacts");
        let artifacts = ArtifactStore::local(&artifacts_dir).unwrap().with_max_size(Some(MAX_ARTIFACT));
        // The audit log signs its checkpoints, as a server does.
        let (signer, _) = modelops_audit::LogSigner::generate("test.local/audit").unwrap();
        let registry = Registry::new(store, artifacts, Arc::new(SystemClock))
            .with_audit_signing(modelops_registry::audit::AuditSigning { signer, witnesses: Vec::new() });
        registry.ensure_policy().await.unwrap();
        registry.sign_checkpoint_now().await.unwrap();
        let admin = registry.bootstrap_admin().await.unwrap().unwrap().secret;
        // The default: token authentication.
        let state = AppState::new(registry.clone(), ServerConfig { json_body_limit: JSON_LIMIT, ..ServerConfig::default() });
        let watch = state.watch.clone();
        let retrain = state.retrain.clone();
        (Self { router: router(state), registry, artifacts_dir, watch, retrain, _dir: dir }, admin)
    }

    /// A request with a bearer token and an optional JSON body.
    pub async fn call_as(&self, token: &str, method: Method, uri: &str, body: Option<Value>) -> Answer {
        let mut builder = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
        let body = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    /// Uploads raw bytes with a bearer token.
    pub async fn upload_as(&self, token: &str, data: &[u8]) -> Answer {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/artifacts?filename=report.pdf")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(data.to_vec()))
            .unwrap();
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, headers, body, bytes }
    }

    pub async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Answer {
        let mut builder = Request::builder().method(method).uri(uri).header("x-modelops-actor", "ana");
        let body = match body {
            Some(v) => {
                builder = builder.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap()).await
    }

    /// Sends raw bytes as a JSON body.
    pub async fn call_raw(&self, method: Method, uri: &str, body: &str) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None).await
    }

    pub async fn create_model(&self, name: &str) -> Answer {
        let body = json!({"name": name, "kind": "onnx", "risk_tier": "high", "owner": "ana", "team": "risk",
            "business_purpose": "score loan applications", "tags": {"domain": "credit"}});
        self.call(Method::POST, "/api/v1/models", Some(body)).await
    }

    /// Uploads `data` as `filename`, acting as `actor`.
    pub async fn upload_named(&self, actor: &str, filename: &str, data: &[u8]) -> Answer {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/artifacts?filename={filename}"))
            .header("x-modelops-actor", actor)
            .header("content-type", "application/octet-stream")
            .body(Body::from(data.to_vec()))
            .unwrap();
        self.send(request).await
    }

    pub async fn upload(&self, data: &[u8]) -> Answer {
        let request = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/artifacts?filename=model.onnx")
            .header("content-type", "application/octet-stream")
            .body(Body::from(data.to_vec()))
            .unwrap();
        self.send(request).await
    }

    /// Uploads `data` and creates a version of `model` from it.
    pub async fn create_version(&self, model: &str, data: &[u8]) -> Answer {
        let up = self.upload(data).await;
        assert!(up.status.is_success(), "{up:?}");
        let body = json!({"artifact": {"sha256": up.body["sha256"], "filename": "model.onnx"}, "description": "first"});
        self.call(Method::POST, &format!("/api/v1/models/{model}/versions"), Some(body)).await
    }

    /// Regular files under the artifact folder.
    pub fn artifact_files(&self) -> Vec<PathBuf> {
        files(&self.artifacts_dir)
    }
}

/// The backend the suite runs on: SQLite in `dir`, or, with
/// `MODELOPS_TEST_SERVER_BACKEND=postgres`, a fresh schema of the server at
/// `MODELOPS_TEST_POSTGRES_URL` (`scripts/test` runs the suite both ways).
async fn store(dir: &Path) -> Arc<dyn Store> {
    match std::env::var("MODELOPS_TEST_SERVER_BACKEND").as_deref() {
        Ok("postgres") => {
            let url = std::env::var("MODELOPS_TEST_POSTGRES_URL").expect("MODELOPS_TEST_POSTGRES_URL must be set for the PostgreSQL backend");
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let schema = format!("srv_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            conn.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
            conn.close().await.unwrap();
            let options = PgConnectOptions::from_str(&url).unwrap().options([("search_path", schema.as_str())]);
            Arc::new(PostgresStore::connect_with(options, Arc::new(SystemClock)).await.unwrap())
        }
        Ok("sqlite") | Err(_) => Arc::new(SqliteStore::open(&dir.join("modelops.db"), Arc::new(SystemClock)).await.unwrap()),
        Ok(other) => panic!("MODELOPS_TEST_SERVER_BACKEND=`{other}` is not `sqlite` or `postgres`"),
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}
