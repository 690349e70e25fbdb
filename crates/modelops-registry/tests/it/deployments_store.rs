//! The deployment storage (migration 0006, `sql/deployments.rs`) on both
//! backends, through the store's traits directly: deployments round-trip
//! whole, list by name in byte order, retired ones only when asked, a taken
//! name is `AlreadyExists` and leaves the transaction usable, a dropped
//! transaction leaves nothing; prediction records append in batches, page by
//! id, filter by time, read back exactly, and prune by age in slices.

use crate::harness::*;
use chrono::{DateTime, Duration, Utc};
use modelops_core::auth::{authorize, Action};
use modelops_core::deployment::{
    CanaryPlan, CanaryProgress, CanaryStep, Deployment, DeploymentState, Hold, PredictionQuery, PredictionRecord, RecordRoute, Route,
    ShadowRoute, Strategy,
};
use modelops_core::repo::{PredictionLog, WriteTx};
use modelops_core::Error;

/// A write transaction for a deployer.
async fn begin(ctx: &Ctx) -> Box<dyn WriteTx> {
    ctx.store.begin(&authorize(&actor("root"), Action::DeploymentCreate).unwrap()).await.unwrap()
}

/// A time with every microsecond digit in use, `ms` milliseconds after the start.
fn at(ms: i64) -> DateTime<Utc> {
    start_time() + Duration::milliseconds(ms) + Duration::microseconds(654_321 - 123_456 + ms % 997)
}

fn direct(n: &str, model: &str, version: u32, created: i64) -> Deployment {
    Deployment {
        name: name(n),
        model: name(model),
        description: format!("{n} serves {model} — «production»"),
        strategy: Strategy::Direct,
        routes: vec![Route { version, weight: 100 }],
        shadows: vec![],
        sticky_header: None,
        canary: None,
        sampling: 0.25,
        state: DeploymentState::Stable,
        reason: None,
        previous: vec![],
        revision: 1,
        created_at: at(created),
        created_by: "dee".into(),
        updated_at: at(created),
        updated_by: "dee".into(),
    }
}

/// A deployment using every optional part: a canary under way, a shadow, a
/// sticky header, earlier versions.
fn canary(n: &str, model: &str, created: i64) -> Deployment {
    let plan = CanaryPlan {
        version: 3,
        steps: vec![
            CanaryStep { weight: 5, hold: Hold { requests: Some(500), duration_ms: None } },
            CanaryStep { weight: 50, hold: Hold { requests: Some(1000), duration_ms: Some(600_000) } },
        ],
        condition: "error_rate > 0.05 || p99_ms > 250.0".into(),
    };
    let progress = CanaryProgress { plan, stable: 2, step: 0, step_started_at: at(created + 1) };
    Deployment {
        strategy: Strategy::Canary,
        routes: progress.routes(),
        canary: Some(progress),
        shadows: vec![ShadowRoute { version: 4, percent: 12.5 }],
        sticky_header: Some("x-customer-id".into()),
        state: DeploymentState::Progressing,
        previous: vec![1],
        revision: 7,
        sampling: 1.0,
        ..direct(n, model, 2, created)
    }
}

fn names(list: &[Deployment]) -> Vec<&str> {
    list.iter().map(|d| d.name.as_str()).collect()
}

pub async fn deployments_store_round_trip(ctx: &Ctx) {
    let s = &*ctx.store;
    assert_eq!(s.get_deployment(&name("churn-prod")).await.unwrap(), None);
    assert_eq!(s.list_deployments(None, true).await.unwrap(), vec![]);

    let prod = direct("churn-prod", "churn", 2, 1);
    let eu = direct("Churn-eu", "churn", 1, 2);
    let can = canary("churn-canary", "churn", 3);
    let fraud = direct("fraud-prod", "fraud", 5, 4);
    let taken = |result: modelops_core::Result<()>| match result {
        Err(Error::AlreadyExists { what, key }) => assert_eq!((what, key.as_str()), ("deployment", "churn-prod")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    };

    let mut tx = begin(ctx).await;
    tx.insert_deployment(&prod).await.unwrap();
    // A taken name within the same transaction, which stays usable (also on
    // PostgreSQL, where a failed statement would abort it).
    taken(tx.insert_deployment(&direct("churn-prod", "fraud", 9, 9)).await);
    tx.insert_deployment(&eu).await.unwrap();
    tx.insert_deployment(&can).await.unwrap();
    tx.insert_deployment(&fraud).await.unwrap();
    assert_eq!(tx.lock_deployment(&name("churn-prod")).await.unwrap().as_ref(), Some(&prod));
    assert_eq!(tx.lock_deployment(&name("nope")).await.unwrap(), None);
    assert_eq!(names(&tx.live_deployments_of(&name("churn")).await.unwrap()), ["Churn-eu", "churn-canary", "churn-prod"]);
    tx.commit().await.unwrap();

    // Read back whole, every field equal (the canary's plan, shadows, times
    // to the microsecond); listed by name in byte order (upper case first).
    assert_eq!(s.get_deployment(&name("churn-canary")).await.unwrap().as_ref(), Some(&can));
    assert_eq!(s.get_deployment(&name("churn-prod")).await.unwrap().as_ref(), Some(&prod));
    assert_eq!(s.get_deployment(&name("churn-PROD")).await.unwrap(), None);
    assert_eq!(s.list_deployments(None, false).await.unwrap(), vec![eu.clone(), can.clone(), prod.clone(), fraud.clone()]);
    assert_eq!(s.list_deployments(Some(&name("churn")), false).await.unwrap(), vec![eu.clone(), can.clone(), prod.clone()]);
    assert_eq!(s.list_deployments(Some(&name("fraud")), false).await.unwrap(), vec![fraud.clone()]);
    assert_eq!(s.list_deployments(Some(&name("other")), true).await.unwrap(), vec![]);
    taken({
        let mut tx = begin(ctx).await;
        tx.insert_deployment(&prod).await
    });

    // Lock, change, update: the whole value is replaced; retiring takes it
    // out of the live ones and out of listings unless asked for.
    let mut tx = begin(ctx).await;
    let mut retired = tx.lock_deployment(&name("churn-prod")).await.unwrap().unwrap();
    retired.state = DeploymentState::Retired;
    retired.reason = Some("replaced by churn-canary".into());
    retired.remember(2);
    retired.revision += 1;
    retired.updated_at = at(50);
    retired.updated_by = "eve".into();
    tx.update_deployment(&retired).await.unwrap();
    let mut promoted = tx.lock_deployment(&name("churn-canary")).await.unwrap().unwrap();
    promoted.canary = None;
    promoted.strategy = Strategy::Direct;
    promoted.routes = vec![Route { version: 3, weight: 100 }];
    promoted.state = DeploymentState::Stable;
    promoted.revision += 1;
    promoted.updated_at = at(51);
    tx.update_deployment(&promoted).await.unwrap();
    assert_eq!(tx.lock_deployment(&name("churn-prod")).await.unwrap().as_ref(), Some(&retired));
    assert_eq!(tx.live_deployments_of(&name("churn")).await.unwrap(), vec![eu.clone(), promoted.clone()]);
    assert_eq!(tx.live_deployments_of(&name("nobody")).await.unwrap(), vec![]);
    assert_not_found(tx.update_deployment(&direct("ghost", "churn", 1, 1)).await, "deployment", "ghost");
    tx.commit().await.unwrap();

    assert_eq!(s.get_deployment(&name("churn-prod")).await.unwrap().as_ref(), Some(&retired));
    assert_eq!(s.get_deployment(&name("churn-canary")).await.unwrap().as_ref(), Some(&promoted));
    assert_eq!(names(&s.list_deployments(None, false).await.unwrap()), ["Churn-eu", "churn-canary", "fraud-prod"]);
    assert_eq!(
        s.list_deployments(Some(&name("churn")), true).await.unwrap(),
        vec![eu.clone(), promoted.clone(), retired.clone()]
    );
    assert_eq!(names(&s.list_deployments(None, true).await.unwrap()), ["Churn-eu", "churn-canary", "churn-prod", "fraud-prod"]);

    // A dropped transaction leaves nothing: neither an insert nor an update.
    let mut tx = begin(ctx).await;
    tx.insert_deployment(&direct("churn-us", "churn", 1, 60)).await.unwrap();
    let mut changed = tx.lock_deployment(&name("fraud-prod")).await.unwrap().unwrap();
    changed.state = DeploymentState::Retired;
    changed.revision += 1;
    tx.update_deployment(&changed).await.unwrap();
    drop(tx);
    assert_eq!(s.get_deployment(&name("churn-us")).await.unwrap(), None);
    assert_eq!(s.get_deployment(&name("fraud-prod")).await.unwrap().as_ref(), Some(&fraud));
    assert_eq!(names(&s.list_deployments(None, false).await.unwrap()), ["Churn-eu", "churn-canary", "fraud-prod"]);

    // And the next transaction starts from there.
    let mut tx = begin(ctx).await;
    tx.insert_deployment(&direct("churn-us", "churn", 1, 61)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(names(&s.list_deployments(Some(&name("churn")), false).await.unwrap()), ["Churn-eu", "churn-canary", "churn-us"]);
}

/// Record `i`, written at `at(i)`: two of every three to `churn-prod`, every
/// seventh failed, routes and versions varying, ~200 bytes of inputs and
/// outputs.
fn record(i: i64) -> PredictionRecord {
    let (deployment, model) = if i % 3 == 0 { ("fraud-prod", "fraud") } else { ("churn-prod", "churn") };
    let failed = i % 7 == 0;
    let inputs = format!(
        r#"[{{"name":"features","shape":[1,8],"datatype":"FP32","data":[{i}.5,0.25,1.0,3.75,-2.125,0.0,17.0,{}]}},{{"name":"customer","shape":[1],"datatype":"BYTES","data":["c-{i:06}"]}}]"#,
        i % 13
    );
    let outputs = if failed {
        "[]".to_string()
    } else {
        format!(r#"[{{"name":"label","shape":[1],"datatype":"INT64","data":[{}]}},{{"name":"probabilities","shape":[1,2],"datatype":"FP32","data":[0.{i:04},0.{:04}]}}]"#, i % 2, 9999 - i)
    };
    PredictionRecord {
        id: 0,
        request_id: format!("req-{i:05}"),
        at: at(i),
        deployment: name(deployment),
        model: name(model),
        version: 1 + (i % 2) as u32,
        route: if i % 5 == 0 { RecordRoute::Shadow } else { RecordRoute::Primary },
        inputs,
        outputs,
        error: failed.then(|| format!("upstream timed out after {i} ms: «é»")),
        latency_us: if i == 1 { i64::MAX as u64 } else { 1000 + i as u64 * 37 },
    }
}

fn query(deployment: &str, after_id: Option<i64>, limit: u32) -> PredictionQuery {
    PredictionQuery { deployment: name(deployment), since: None, until: None, after_id, limit, payload_only: false }
}

/// Every record of `deployment` after `after_id`, read in pages of `limit`.
async fn read_all(log: &dyn PredictionLog, deployment: &str, after_id: Option<i64>, limit: u32) -> Vec<PredictionRecord> {
    let mut all = Vec::new();
    let mut after = after_id;
    loop {
        let page = log.list_predictions(&query(deployment, after, limit)).await.unwrap();
        assert!(page.len() <= limit as usize);
        let Some(last) = page.last() else { return all };
        after = Some(last.id);
        let full = page.len() == limit as usize;
        all.extend(page);
        if !full {
            return all;
        }
    }
}

/// `got` is `expected` with ids assigned, increasing.
#[track_caller]
fn assert_records(got: &[PredictionRecord], expected: &[PredictionRecord]) {
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(g, &PredictionRecord { id: g.id, ..e.clone() });
    }
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
}

pub async fn prediction_records_append_page_and_prune(ctx: &Ctx) {
    let log: &dyn PredictionLog = &*ctx.store;
    let churn = |all: &[PredictionRecord]| all.iter().filter(|r| r.deployment.as_str() == "churn-prod").cloned().collect::<Vec<_>>();
    let fraud = |all: &[PredictionRecord]| all.iter().filter(|r| r.deployment.as_str() == "fraud-prod").cloned().collect::<Vec<_>>();

    log.append_predictions(&[]).await.unwrap();
    assert_eq!(log.list_predictions(&query("churn-prod", None, 100)).await.unwrap(), vec![]);

    // 2,500 records in batches of several sizes, across statement chunks.
    let expected: Vec<PredictionRecord> = (0..2500).map(record).collect();
    let mut start = 0;
    for size in [1, 1001, 999, 499] {
        log.append_predictions(&expected[start..start + size]).await.unwrap();
        start += size;
    }
    assert_eq!(start, expected.len());

    // Read back exactly, one deployment at a time, in pages of several sizes;
    // the ids of both together follow the order of appending.
    let churn_all = read_all(log, "churn-prod", None, 300).await;
    assert_records(&churn_all, &churn(&expected));
    assert_eq!(churn_all.len(), 1666);
    assert_eq!(read_all(log, "churn-prod", None, 1).await.len(), 1666);
    assert_eq!(read_all(log, "churn-prod", None, 5000).await, churn_all);
    let fraud_all = read_all(log, "fraud-prod", None, 250).await;
    assert_records(&fraud_all, &fraud(&expected));
    let mut both: Vec<PredictionRecord> = churn_all.iter().chain(&fraud_all).cloned().collect();
    both.sort_by_key(|r| r.id);
    assert_records(&both, &expected);
    assert!(churn_all.iter().any(|r| r.error.is_some()) && churn_all.iter().any(|r| r.error.is_none()));
    assert_eq!(churn_all[0].latency_us, i64::MAX as u64);
    assert_eq!(log.list_predictions(&query("nobody", None, 100)).await.unwrap(), vec![]);
    assert_eq!(log.list_predictions(&query("churn-prod", None, 0)).await.unwrap(), vec![]);

    // After an id: the next page starts right after it, whatever the other
    // deployment wrote in between.
    let page = log.list_predictions(&query("churn-prod", Some(churn_all[99].id), 10)).await.unwrap();
    assert_eq!(page, churn_all[100..110]);
    let last = churn_all.last().unwrap().id;
    assert_eq!(log.list_predictions(&query("churn-prod", Some(last), 10)).await.unwrap(), vec![]);

    // Time windows: since inclusive, until exclusive, to the microsecond.
    let window = |since: Option<i64>, until: Option<i64>, after_id: Option<i64>, limit: u32| PredictionQuery {
        deployment: name("churn-prod"),
        since: since.map(at),
        until: until.map(at),
        after_id,
        limit,
        payload_only: false,
    };
    let in_window = |lo: i64, hi: i64| churn_all.iter().filter(|r| r.at >= at(lo) && r.at < at(hi)).cloned().collect::<Vec<_>>();
    let got = log.list_predictions(&window(Some(100), Some(200), None, 1000)).await.unwrap();
    assert_eq!(got, in_window(100, 200));
    // Live monitoring's narrower read: the same calls, tensors and times,
    // the fields it does not read left empty.
    let payloads = log.list_predictions(&PredictionQuery { payload_only: true, ..window(Some(100), Some(200), None, 1000) }).await.unwrap();
    assert_eq!(payloads.len(), got.len());
    for (p, r) in payloads.iter().zip(&got) {
        assert_eq!((p.id, p.at, p.version, &p.inputs, &p.outputs, &p.error), (r.id, r.at, r.version, &r.inputs, &r.outputs, &r.error));
        assert_eq!((p.request_id.as_str(), p.model.as_str(), p.latency_us), ("", "", 0));
    }
    assert_eq!((got.first().unwrap().request_id.as_str(), got.last().unwrap().request_id.as_str()), ("req-00100", "req-00199"));
    let got = log.list_predictions(&window(Some(2400), None, None, 1000)).await.unwrap();
    assert_eq!(got, in_window(2400, 2500));
    let got = log.list_predictions(&window(None, Some(10), None, 1000)).await.unwrap();
    assert_eq!(got, in_window(0, 10));
    assert_eq!(got.len(), 6, "1, 2, 4, 5, 7, 8");
    let got = log.list_predictions(&window(Some(100), Some(200), Some(in_window(100, 200)[9].id), 5)).await.unwrap();
    assert_eq!(got, in_window(100, 200)[10..15]);
    assert_eq!(log.list_predictions(&window(Some(300), Some(300), None, 1000)).await.unwrap(), vec![]);

    // Pruning by age, in slices: at most `limit` each, the newer ones stay.
    assert_eq!(log.prune_predictions(at(1000), 0).await.unwrap(), 0);
    assert_eq!(log.prune_predictions(at(1000), 600).await.unwrap(), 600);
    assert_eq!(log.prune_predictions(at(1000), 600).await.unwrap(), 400);
    assert_eq!(log.prune_predictions(at(1000), 600).await.unwrap(), 0);
    let churn_left = read_all(log, "churn-prod", None, 700).await;
    assert_eq!(churn_left, churn_all.iter().filter(|r| r.at >= at(1000)).cloned().collect::<Vec<_>>());
    assert_eq!(churn_left[0].request_id, "req-01000");
    let fraud_left = read_all(log, "fraud-prod", None, 700).await;
    assert_eq!(fraud_left, fraud_all.iter().filter(|r| r.at >= at(1000)).cloned().collect::<Vec<_>>());
    assert_eq!(churn_left.len() + fraud_left.len(), 1500);

    // Emptied, the log still never hands out an id again: a reader's
    // `after_id` stays a position.
    assert_eq!(log.prune_predictions(at(1_000_000), 10_000).await.unwrap(), 1500);
    assert_eq!(read_all(log, "churn-prod", None, 100).await, vec![]);
    let max_id = both.last().unwrap().id;
    log.append_predictions(&[record(3001)]).await.unwrap();
    let again = log.list_predictions(&query("churn-prod", Some(max_id), 10)).await.unwrap();
    assert_records(&again, &[record(3001)]);
    assert!(again[0].id > max_id);
}
