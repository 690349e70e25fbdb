//! Deployments live: the service over a real registry and store (SQLite, and
//! PostgreSQL through `scripts/with-postgres`), real rule-set models served
//! by the runtime, real recording. Traffic is seeded; canaries hold for
//! request counts, so every step is deterministic; the controller is driven
//! by calling `judge_canaries` rather than by its timer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{TimeZone, Utc};
use modelops_artifacts::ArtifactStore;
use modelops_core::auth::{Principal, Role};
use modelops_core::clock::MockClock;
use modelops_core::deployment::{CanaryStep, DeploymentState, Hold, PredictionQuery, RecordRoute, Route, ShadowRoute};
use modelops_core::governance::{Decision, DecisionInput};
use modelops_core::model::{ModelKind, NewModel, RiskTier};
use modelops_core::name::ModelName;
use modelops_core::repo::Store;
use modelops_core::version::{ArtifactSpec, ModelCard, NewVersion};
use modelops_deploy::plan::{CanaryRequest, ChangeRequest, CreateRequest};
use modelops_deploy::recorder::{Recorder, RecorderConfig};
use modelops_deploy::{DeployConfig, Deployments};
use modelops_registry::Registry;
use modelops_serving::{PredictInput, Serving, ServingConfig, Tensor, TensorData};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

const HEALTHY: &str = r#"
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: negative, when: x < 0.0, then: {score: "0.0"}}
default: {score: "x * 0.1SHIFT"}
"#;

const FAILING: &str = r#"
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: broken, when: "int(x) / 0 > 1", then: {score: "1.0"}}
default: {score: "x"}
"#;

struct Ctx {
    registry: Registry,
    /// The same store without the push-time check (as versions pushed
    /// before artifacts were inspected).
    unchecked: Registry,
    deployments: Deployments,
    clock: Arc<MockClock>,
    _dir: tempfile::TempDir,
}

fn principal(name: &str, roles: &[Role]) -> Principal {
    Principal::new(name, roles.iter().copied()).unwrap()
}
fn admin() -> Principal {
    principal("admin", &[Role::Admin])
}
fn dana() -> Principal {
    principal("dana", &[Role::Developer])
}
fn vic() -> Principal {
    principal("vic", &[Role::Validator])
}
fn dep() -> Principal {
    principal("dep", &[Role::Deployer])
}
fn name(s: &str) -> ModelName {
    ModelName::parse(s).unwrap()
}

async fn open(store: Arc<dyn Store>, clock: Arc<MockClock>, dir: tempfile::TempDir, queue: usize) -> Ctx {
    let artifacts = ArtifactStore::local(dir.path().join("artifacts")).unwrap();
    let inspector = Arc::new(modelops_serving::RuntimeInspector::default());
    let unchecked = Registry::new(store.clone(), artifacts.clone(), clock.clone());
    let registry = Registry::new(store, artifacts, clock.clone()).with_inspector(inspector);
    registry.ensure_policy().await.unwrap();
    let serving = Serving::new(registry.clone(), ServingConfig::default());
    let recorder = Recorder::start(registry.prediction_log(), RecorderConfig { queue, ..Default::default() });
    let deployments = Deployments::new(registry.clone(), serving, recorder, DeployConfig::default());
    Ctx { registry, unchecked, deployments, clock, _dir: dir }
}

async fn sqlite(queue: usize) -> Ctx {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(MockClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()));
    let store = modelops_store::SqliteStore::open(&dir.path().join("modelops.db"), clock.clone()).await.unwrap();
    open(Arc::new(store), clock, dir, queue).await
}

async fn postgres(queue: usize) -> Option<Ctx> {
    let url = match std::env::var("MODELOPS_TEST_POSTGRES_URL") {
        Ok(url) => url,
        Err(_) if std::env::var("MODELOPS_TEST_SKIP_POSTGRES").as_deref() == Ok("1") => return None,
        Err(_) => panic!("MODELOPS_TEST_POSTGRES_URL is not set: run through `scripts/with-postgres`, or set MODELOPS_TEST_SKIP_POSTGRES=1"),
    };
    use sqlx::{Connection, Executor};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let schema = format!("d_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    conn.execute(format!("CREATE SCHEMA {schema}").as_str()).await.unwrap();
    conn.close().await.unwrap();
    let options = sqlx::postgres::PgConnectOptions::from_str(&url).unwrap().options([("search_path", schema.as_str())]);
    let clock = Arc::new(MockClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap()));
    let store = modelops_store::PostgresStore::connect_with(options, clock.clone()).await.unwrap();
    Some(open(Arc::new(store), clock, tempfile::tempdir().unwrap(), queue).await)
}

/// An approved rules version of `model` (created on first use).
async fn approved(ctx: &Ctx, model: &str, artifact: &str) -> u32 {
    approved_through(ctx, &ctx.registry, model, artifact).await
}

async fn approved_through(ctx: &Ctx, r: &Registry, model: &str, artifact: &str) -> u32 {
    let _ = ctx;
    if r.get_model(&name(model)).await.is_err() {
        let m = NewModel {
            name: name(model),
            kind: ModelKind::Rules,
            description: String::new(),
            owner: "dana".into(),
            team: String::new(),
            business_purpose: String::new(),
            intended_use: String::new(),
            restrictions: String::new(),
            risk_tier: RiskTier::Low,
            tags: Default::default(),
            dependencies: vec![],
            developers: vec!["dana".into()],
            validation: None,
        };
        r.create_model(&admin(), m).await.unwrap();
    }
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(artifact.to_string()))]);
    let uploaded = r.upload_artifact(&dana(), body, None).await.unwrap();
    let version = NewVersion {
        artifact: ArtifactSpec { sha256: uploaded.sha256, filename: "rules.yaml".into() },
        lineage: Default::default(),
        signature: Default::default(),
        card: ModelCard { intended_use: "tests".into(), ..Default::default() },
        description: String::new(),
        tags: Default::default(),
    };
    let number = r.create_version(&dana(), &name(model), version).await.unwrap().number;
    r.submit_version(&dana(), &name(model), number).await.unwrap();
    r.decide(&vic(), &name(model), number, Decision::Approve, DecisionInput { comment: "ok".into(), ..Default::default() }).await.unwrap();
    number
}

fn input(x: f64) -> PredictInput {
    PredictInput { inputs: vec![Tensor::new("x", vec![1], TensorData::Float64(vec![x]))], explain: false, parameters: Default::default() }
}

/// One call through the deployment; the version that answered and whether it failed.
async fn call(ctx: &Ctx, deployment: &str, x: f64, key: Option<&str>) -> (u32, bool) {
    let routed = ctx.deployments.route(&admin(), deployment, |_| key).await.unwrap();
    let version = routed.served().version.number;
    let result = ctx.deployments.predict(&routed, input(x), &format!("req-{x}")).await;
    (version, result.is_err())
}

fn canary(version: u32, steps: &[u32], requests: u64) -> CanaryRequest {
    CanaryRequest { version, steps: steps.iter().map(|&weight| CanaryStep { weight, hold: Hold { requests: Some(requests), duration_ms: None } }).collect(), condition: None }
}

async fn create(ctx: &Ctx, d: &str, model: &str, version: u32) {
    let request = CreateRequest { name: Some(name(d)), model: Some(name(model)), version: Some(version), ..Default::default() };
    ctx.deployments.create(&dep(), request).await.unwrap();
}

async fn a_healthy_canary_advances_and_a_broken_one_rolls_back(ctx: &Ctx) {
    let v1 = approved(ctx, "scoring", &HEALTHY.replace("SHIFT", "")).await;
    let v2 = approved(ctx, "scoring", &HEALTHY.replace("SHIFT", "")).await;
    create(ctx, "live", "scoring", v1).await;
    let status = ctx.deployments.change(&dep(), &name("live"), ChangeRequest { canary: Some(canary(v2, &[20, 60, 100], 30)), ..Default::default() }).await.unwrap();
    assert_eq!(status.deployment.routes, vec![Route { version: v1, weight: 80 }, Route { version: v2, weight: 20 }]);
    let mut weights = vec![];
    for i in 0..2000 {
        call(ctx, "live", f64::from(i % 10), None).await;
        ctx.deployments.judge_canaries().await;
        let d = ctx.deployments.get(&dep(), &name("live")).await.unwrap().deployment;
        let w = d.routes.iter().find(|r| r.version == v2).map_or(0, |r| r.weight);
        if weights.last() != Some(&w) {
            weights.push(w);
        }
        if d.state == DeploymentState::Stable {
            break;
        }
    }
    assert_eq!(weights, [20, 60, 100], "step by step");
    let d = ctx.deployments.get(&dep(), &name("live")).await.unwrap().deployment;
    assert_eq!((d.state, d.previous.clone()), (DeploymentState::Stable, vec![v1]));
    assert_eq!(ctx.registry.get_model(&name("scoring")).await.unwrap().aliases.get("champion"), Some(&v2));

    // Errors: rolled back by itself, with the reason.
    let v3 = approved(ctx, "scoring", FAILING).await;
    ctx.deployments.change(&dep(), &name("live"), ChangeRequest { canary: Some(canary(v3, &[50, 100], 1000)), ..Default::default() }).await.unwrap();
    for i in 0..400 {
        call(ctx, "live", f64::from(i % 10), None).await;
        ctx.deployments.judge_canaries().await;
    }
    let d = ctx.deployments.get(&dep(), &name("live")).await.unwrap().deployment;
    assert_eq!(d.state, DeploymentState::RolledBack, "{d:?}");
    assert_eq!(d.routes, vec![Route { version: v2, weight: 100 }]);
    assert!(d.reason.as_deref().unwrap().contains("error_rate"), "{:?}", d.reason);

    // Shifted predictions: rolled back likewise.
    let v4 = approved(ctx, "scoring", &HEALTHY.replace("SHIFT", " + 0.5")).await;
    ctx.deployments.change(&dep(), &name("live"), ChangeRequest { canary: Some(canary(v4, &[50, 100], 1000)), ..Default::default() }).await.unwrap();
    for i in 0..400 {
        call(ctx, "live", f64::from(i % 10), None).await;
        ctx.deployments.judge_canaries().await;
    }
    let d = ctx.deployments.get(&dep(), &name("live")).await.unwrap().deployment;
    assert_eq!(d.state, DeploymentState::RolledBack);
    assert!(d.reason.as_deref().unwrap().contains("prediction"), "{:?}", d.reason);
    let events = ctx.registry.list_events(&modelops_core::audit::AuditQuery { subject: Some("deployment/live".into()), ..Default::default() }).await.unwrap();
    let actions: Vec<(&str, &str)> = events.items.iter().map(|e| (e.action.as_str(), e.actor.as_str())).collect();
    assert_eq!(actions.iter().filter(|(a, who)| *a == "deployment.rollback" && *who == "system").count(), 2, "{actions:?}");
    assert_eq!(actions.iter().filter(|(a, _)| *a == "deployment.advance").count(), 3, "{actions:?}");

    // One command back to the version before.
    let back = ctx.deployments.rollback(&dep(), &name("live"), None).await.unwrap().deployment;
    assert_eq!(back.routes, vec![Route { version: v1, weight: 100 }]);
    assert_eq!(call(ctx, "live", 1.0, None).await, (v1, false));
}

async fn ab_is_sticky_and_shadows_are_recorded_not_answered(ctx: &Ctx) {
    let v1 = approved(ctx, "ab", &HEALTHY.replace("SHIFT", "")).await;
    let v2 = approved(ctx, "ab", &HEALTHY.replace("SHIFT", " + 1.0")).await;
    let request = CreateRequest {
        name: Some(name("ab")),
        model: Some(name("ab")),
        routes: Some(vec![Route { version: v1, weight: 70 }, Route { version: v2, weight: 30 }]),
        sticky_header: Some("x-customer".into()),
        ..Default::default()
    };
    ctx.deployments.create(&dep(), request).await.unwrap();
    let mut first = vec![];
    for c in 0..500 {
        let key = format!("c{c}");
        first.push(call(ctx, "ab", 1.0, Some(&key)).await.0);
    }
    for c in (0..500).step_by(5) {
        let key = format!("c{c}");
        assert_eq!(call(ctx, "ab", 2.0, Some(&key)).await.0, first[c], "customer {c} kept their version");
    }
    let share = first.iter().filter(|v| **v == v1).count() as f64 / 500.0;
    let sd = (0.7f64 * 0.3 / 500.0).sqrt();
    assert!((share - 0.7).abs() < 4.0 * sd, "{share}");

    // A shadow in validation: answered by the primary, both recorded.
    let path = HEALTHY.replace("SHIFT", " + 2.0");
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(path))]);
    let uploaded = ctx.registry.upload_artifact(&dana(), body, None).await.unwrap();
    let version = NewVersion {
        artifact: ArtifactSpec { sha256: uploaded.sha256, filename: "rules.yaml".into() },
        lineage: Default::default(),
        signature: Default::default(),
        card: ModelCard { intended_use: "tests".into(), ..Default::default() },
        description: String::new(),
        tags: Default::default(),
    };
    let v3 = ctx.registry.create_version(&dana(), &name("ab"), version).await.unwrap().number;
    ctx.registry.submit_version(&dana(), &name("ab"), v3).await.unwrap();
    let change = ChangeRequest { version: Some(v1), shadows: Some(vec![ShadowRoute { version: v3, percent: 100.0 }]), ..Default::default() };
    ctx.deployments.change(&dep(), &name("ab"), change).await.unwrap();
    for i in 0..20 {
        assert_eq!(call(ctx, "ab", f64::from(i), None).await, (v1, false));
    }
    // Shadows run on their own tasks; wait for them, then for their records.
    for _ in 0..100 {
        let live = ctx.deployments.get(&dep(), &name("ab")).await.unwrap().live.unwrap();
        if live.shadows[0].stats.requests == 20 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    ctx.deployments.recorder().flush().await;
    let query = PredictionQuery { deployment: name("ab"), since: None, until: None, after_id: None, limit: 10_000, payload_only: false };
    let records = ctx.registry.list_predictions(&dep(), &query).await.unwrap();
    let shadow: Vec<_> = records.iter().filter(|r| r.route == RecordRoute::Shadow).collect();
    assert_eq!(shadow.len(), 20);
    assert!(shadow.iter().all(|r| r.version == v3 && r.error.is_none()));
    let primary_after: Vec<_> = records.iter().filter(|r| r.route == RecordRoute::Primary && r.version == v1).collect();
    assert!(primary_after.len() >= 20);
}

async fn records_not_kept_are_counted(ctx: &Ctx) {
    let v1 = approved(ctx, "busy", &HEALTHY.replace("SHIFT", "")).await;
    create(ctx, "busy", "busy", v1).await;
    // A queue of 4 records and a burst of calls: some are dropped, all are counted.
    let calls: u32 = 2000;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..calls {
        let d = ctx.deployments.clone();
        tasks.spawn(async move {
            let routed = d.route(&admin(), "busy", |_| None).await.unwrap();
            d.predict(&routed, input(f64::from(i % 10)), "burst").await.unwrap();
        });
    }
    while tasks.join_next().await.is_some() {}
    ctx.deployments.recorder().flush().await;
    let counters = ctx.deployments.recorder().counters("busy");
    assert_eq!(counters.submitted, u64::from(calls), "{counters:?}");
    assert_eq!(counters.written + counters.dropped + counters.failed, u64::from(calls), "{counters:?}");
    assert!(counters.dropped > 0, "a queue of 4 cannot hold a burst of {calls}: {counters:?}");
    let query = PredictionQuery { deployment: name("busy"), since: None, until: None, after_id: None, limit: 10_000, payload_only: false };
    assert_eq!(ctx.registry.list_predictions(&dep(), &query).await.unwrap().len() as u64, counters.written);

    // Sampling: a tenth recorded, the rest counted as not sampled.
    ctx.deployments.change(&dep(), &name("busy"), ChangeRequest { sampling: Some(0.1), ..Default::default() }).await.unwrap();
    for i in 0..1000 {
        call(ctx, "busy", f64::from(i % 10), None).await;
    }
    let live = ctx.deployments.get(&dep(), &name("busy")).await.unwrap().live.unwrap();
    assert!((800..=980).contains(&live.sampled_out), "{}", live.sampled_out);
}

async fn a_step_holds_for_its_duration_on_the_clock(ctx: &Ctx) {
    let v1 = approved(ctx, "timed", &HEALTHY.replace("SHIFT", "")).await;
    let v2 = approved(ctx, "timed", &HEALTHY.replace("SHIFT", "")).await;
    create(ctx, "timed", "timed", v1).await;
    let hold = Hold { requests: Some(5), duration_ms: Some(60_000) };
    let plan = CanaryRequest { version: v2, steps: vec![CanaryStep { weight: 50, hold }, CanaryStep { weight: 100, hold }], condition: None };
    ctx.deployments.change(&dep(), &name("timed"), ChangeRequest { canary: Some(plan), ..Default::default() }).await.unwrap();
    let weight = |ctx: &Ctx| {
        let ctx = ctx.deployments.clone();
        async move { ctx.get(&dep(), &name("timed")).await.unwrap().deployment.routes.iter().find(|r| r.version == v2).map_or(0, |r| r.weight) }
    };
    for i in 0..60 {
        call(ctx, "timed", f64::from(i % 10), None).await;
    }
    ctx.deployments.judge_canaries().await;
    assert_eq!(weight(ctx).await, 50, "enough calls, but the minute has not passed");
    ctx.clock.advance(chrono::Duration::seconds(59));
    ctx.deployments.judge_canaries().await;
    assert_eq!(weight(ctx).await, 50);
    ctx.clock.advance(chrono::Duration::seconds(2));
    ctx.deployments.judge_canaries().await;
    assert_eq!(weight(ctx).await, 100, "held for its minute and its calls: next step");
    // The new step starts its own count and its own minute.
    ctx.clock.advance(chrono::Duration::seconds(61));
    ctx.deployments.judge_canaries().await;
    assert_eq!(ctx.deployments.get(&dep(), &name("timed")).await.unwrap().deployment.state, DeploymentState::Progressing, "no calls in this step yet");
    for i in 0..10 {
        call(ctx, "timed", f64::from(i), None).await;
    }
    ctx.deployments.judge_canaries().await;
    assert_eq!(ctx.deployments.get(&dep(), &name("timed")).await.unwrap().deployment.state, DeploymentState::Stable);
}

async fn a_version_that_does_not_load_refuses_the_change(ctx: &Ctx) {
    let v1 = approved(ctx, "legacy", &HEALTHY.replace("SHIFT", "")).await;
    let broken = approved_through(ctx, &ctx.unchecked, "legacy", "kind: rules\ninputs: [{name: x, type: double}]\nrules: [oops").await;
    create(ctx, "legacy", "legacy", v1).await;
    let before = ctx.deployments.get(&dep(), &name("legacy")).await.unwrap().deployment;
    for change in [
        ChangeRequest { version: Some(broken), ..Default::default() },
        ChangeRequest { canary: Some(canary(broken, &[10, 100], 10)), ..Default::default() },
        ChangeRequest { shadows: Some(vec![ShadowRoute { version: broken, percent: 100.0 }]), ..Default::default() },
    ] {
        let err = ctx.deployments.change(&dep(), &name("legacy"), change).await.unwrap_err();
        assert!(matches!(&err, modelops_core::Error::Conflict(m) if m.contains("keeps serving") && m.contains(&format!("version {broken}"))), "{err}");
    }
    let after = ctx.deployments.get(&dep(), &name("legacy")).await.unwrap().deployment;
    assert_eq!(after, before, "nothing stored");
    assert_eq!(call(ctx, "legacy", 1.0, None).await, (v1, false), "the previous routes keep serving");
}

/// Two replicas over one store: "b" serves the canary's calls, the leader
/// (this context's, which serves none) judges it on b's published tallies.
async fn the_leader_counts_the_calls_other_replicas_serve(ctx: &Ctx) {
    let v1 = approved(ctx, "scoring", &HEALTHY.replace("SHIFT", "")).await;
    let v2 = approved(ctx, "scoring", &HEALTHY.replace("SHIFT", "")).await;
    create(ctx, "spread", "scoring", v1).await;
    ctx.deployments.change(&dep(), &name("spread"), ChangeRequest { canary: Some(canary(v2, &[50, 100], 40)), ..Default::default() }).await.unwrap();
    let serving = Serving::new(ctx.registry.clone(), ServingConfig::default());
    let recorder = Recorder::start(ctx.registry.prediction_log(), RecorderConfig::default());
    let config = DeployConfig { replica: "b".into(), leadership: modelops_core::replica::Leadership::new(false), ..DeployConfig::default() };
    let b = Deployments::new(ctx.registry.clone(), serving, recorder, config);
    b.refresh().await.unwrap();
    let mut to_canary = 0;
    for i in 0..200 {
        let routed = b.route(&admin(), "spread", |_| None).await.unwrap();
        to_canary += u32::from(routed.served().version.number == v2);
        b.predict(&routed, input(f64::from(i % 10)), &format!("b-{i}")).await.unwrap();
    }
    assert!(to_canary >= 40, "{to_canary}");
    // Not yet published: the leader has seen no call and holds the step.
    ctx.deployments.judge_canaries().await;
    let d = ctx.deployments.get(&dep(), &name("spread")).await.unwrap().deployment;
    assert_eq!(d.canary.as_ref().unwrap().step, 0);
    b.publish_tallies().await;
    // The leader reads the others' tallies at most once a publication interval.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let status = ctx.deployments.get(&dep(), &name("spread")).await.unwrap();
    ctx.deployments.judge_canaries().await;
    let d = ctx.deployments.get(&dep(), &name("spread")).await.unwrap().deployment;
    assert_eq!(d.canary.as_ref().map(|c| c.step), Some(1), "advanced on b's {to_canary} calls: {status:?}");
    let advance = ctx.registry.list_events(&modelops_core::audit::AuditQuery { subject: Some("deployment/spread".into()), action: Some("deployment.advance".into()), ..Default::default() }).await.unwrap();
    let reason = advance.items[0].after.as_ref().unwrap().to_string();
    assert!(reason.contains(&format!("{to_canary} requests")), "{reason}");
    // A new step starts from nothing: b's tallies were of the last revision.
    b.refresh().await.unwrap();
    ctx.deployments.judge_canaries().await;
    let d = ctx.deployments.get(&dep(), &name("spread")).await.unwrap().deployment;
    assert_eq!(d.canary.as_ref().map(|c| c.step), Some(1), "{d:?}");
}

macro_rules! both_backends {
    ($($case:ident($queue:expr)),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let ctx = crate::sqlite($queue).await;
                    crate::$case(&ctx).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(ctx) = crate::postgres($queue).await else { return };
                    crate::$case(&ctx).await;
                }
            )*
        }
    };
}

both_backends!(
    a_healthy_canary_advances_and_a_broken_one_rolls_back(65_536),
    ab_is_sticky_and_shadows_are_recorded_not_answered(65_536),
    records_not_kept_are_counted(4),
    a_step_holds_for_its_duration_on_the_clock(65_536),
    a_version_that_does_not_load_refuses_the_change(65_536),
    the_leader_counts_the_calls_other_replicas_serve(65_536),
);
