//! Throughput of the registry's use cases on the SQLite backend, without HTTP:
//!
//!     cargo run --release -p modelops-registry --example registry_bench [VERSIONS] [READS]
//!
//! Targets (issue 2): ≥ 2,000 version creations/s, ≥ 20,000 reads/s
//! (get-by-alias, get-version, search). Bounded in count; no network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use modelops_core::auth::{Principal, Role};
use modelops_core::clock::SystemClock;
use modelops_core::model::{ModelKind, NewModel, RiskTier};
use modelops_core::name::{AliasName, ModelName};
use modelops_core::page::{ModelQuery, PageRequest};
use modelops_core::repo::Store;
use modelops_core::version::{ArtifactSpec, Lineage, ModelCard, NewVersion, Signature};
use modelops_registry::Registry;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().unwrap()).collect();
    let versions = args.first().copied().unwrap_or(5_000);
    let reads = args.get(1).copied().unwrap_or(60_000);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("bench.db").display());
    let store: Arc<dyn Store> = modelops_store::connect(&url, Arc::new(SystemClock)).await.unwrap();
    let artifacts = modelops_artifacts::ArtifactStore::local(dir.path().join("artifacts")).unwrap();
    let registry = Registry::new(store.clone(), artifacts, Arc::new(SystemClock));
    let admin = Principal::new("bench", [Role::Admin]).unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(vec![7u8; 1 << 20]))]);
    let artifact = registry.upload_artifact(&admin, body, None).await.unwrap();

    let models: Vec<ModelName> = (0..50).map(|i| ModelName::parse(format!("model-{i:03}")).unwrap()).collect();
    for (i, name) in models.iter().enumerate() {
        let new = NewModel {
            name: name.clone(),
            kind: ModelKind::Onnx,
            description: format!("benchmark model {i}"),
            owner: format!("owner-{}", i % 5),
            team: "bench".into(),
            business_purpose: "throughput".into(),
            intended_use: String::new(),
            restrictions: String::new(),
            risk_tier: RiskTier::Low,
            tags: [("env".to_string(), "bench".to_string())].into(),
            dependencies: vec![],
            developers: vec![],
            validation: None,
        };
        registry.create_model(&admin, new).await.unwrap();
    }
    let new_version = NewVersion {
        artifact: ArtifactSpec { sha256: artifact.sha256, filename: "model.onnx".into() },
        lineage: Lineage { dataset_uri: Some("s3://bucket/train.parquet".into()), training_metrics: [("auc".to_string(), 0.9)].into(), ..Default::default() },
        signature: Signature::default(),
        card: ModelCard::default(),
        description: "bench".into(),
        tags: [("stage".to_string(), "bench".to_string())].into(),
    };

    // Version creations from 8 concurrent clients across the models.
    let clients: usize = std::env::var("CLIENTS").ok().and_then(|c| c.parse().ok()).unwrap_or(8);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..clients {
        let (registry, models, new_version, admin) = (registry.clone(), models.clone(), new_version.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t..versions).step_by(clients) {
                registry.create_version(&admin, &models[i % models.len()], new_version.clone()).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("create_version: {versions} in {secs:.2}s = {:.0}/s", versions as f64 / secs);

    let staging = AliasName::parse("staging").unwrap();
    for name in &models {
        registry.set_alias(&admin, name, &staging, 1).await.unwrap();
    }

    for kind in ["get_version_by_alias", "get_version", "search"] {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (store, models, staging) = (registry.clone(), models.clone(), staging.clone());
            tasks.push(tokio::spawn(async move {
                for i in (t..reads).step_by(8) {
                    let model = &models[i % models.len()];
                    match kind {
                        "get_version_by_alias" => drop(store.get_version_by_alias(model, &staging).await.unwrap()),
                        "get_version" => drop(store.get_version(model, 1 + (i % 50) as u32).await.unwrap()),
                        _ => {
                            let q = ModelQuery { owner: Some(format!("owner-{}", i % 5)), page: PageRequest::new(Some(5), None).unwrap(), ..Default::default() };
                            drop(store.list_models(&q).await.unwrap());
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        println!("{kind}: {reads} in {secs:.2}s = {:.0}/s", reads as f64 / secs);
    }
    let summary = modelops_store::verify_chain(&*store).await.unwrap().unwrap();
    println!("audit chain verified: {} events", summary.events);
}
