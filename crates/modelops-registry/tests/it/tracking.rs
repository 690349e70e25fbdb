//! Experiment tracking on both backends: the use cases and the store's
//! round trips (NaN and infinities, the latest value of a metric, params
//! that never change, nothing written by a refused batch).

use crate::harness::*;
use modelops_core::auth::Role;
use modelops_core::tracking::{LifecycleStage, Metric, MetricValue, RunBatch, RunStatus, RunUpdate, DEFAULT_EXPERIMENT_ID};
use modelops_core::ErrorKind;
use modelops_registry::tracking::NewRun;

fn metric(key: &str, value: f64, timestamp: i64, step: i64) -> Metric {
    Metric { key: key.into(), value: MetricValue { value, timestamp, step } }
}

pub async fn experiments_and_runs_round_trip(ctx: &Ctx) {
    let s = &ctx.registry;
    let dana = actor("dana");
    let default = s.experiment(&dana, DEFAULT_EXPERIMENT_ID).await.unwrap();
    assert_eq!((default.name.as_str(), default.artifact_location().as_str()), ("Default", "mlflow-artifacts:/0"));

    let id = s.create_experiment(&dana, "churn", None, vec![("team".into(), "risk".into())]).await.unwrap();
    assert!(id > 0);
    assert_kind(s.create_experiment(&dana, "churn", None, vec![]).await, ErrorKind::AlreadyExists);
    let churn = s.experiment_by_name(&dana, "churn").await.unwrap();
    assert_eq!((churn.id, churn.tags.clone()), (id, vec![("team".to_string(), "risk".to_string())]));
    assert_not_found(s.experiment_by_name(&dana, "nope").await, "experiment", "nope");

    let run = s
        .create_run(&dana, NewRun { experiment_id: id, start_time: Some(1000), run_name: None, tags: vec![("mlflow.user".into(), "root".into())] })
        .await
        .unwrap();
    assert_eq!(run.info.user_id, "dana", "the run's user is who the token says");
    assert_eq!(run.info.status, RunStatus::Running);
    assert_eq!(run.info.artifact_uri, format!("mlflow-artifacts:/{id}/{}/artifacts", run.info.run_id));
    assert!(run.tags.contains(&("mlflow.runName".to_string(), run.info.run_name.clone())), "{:?}", run.tags);
    let run_id = run.info.run_id.clone();

    let batch = RunBatch {
        metrics: vec![
            metric("loss", 0.5, 10, 1),
            metric("loss", 0.25, 11, 2),
            metric("loss", 0.9, 99, 0), // later in time, earlier step: not the latest
            metric("loss", 0.25, 11, 2), // resent: kept once
            metric("nan", f64::NAN, 10, 0),
            metric("inf", f64::NEG_INFINITY, 10, 0),
        ],
        params: vec![("alpha".into(), "0.5".into())],
        tags: vec![("stage".into(), "dev".into())],
    };
    s.log_batch(&dana, &run_id, batch).await.unwrap();
    let got = s.run(&dana, &run_id).await.unwrap();
    let latest = |key: &str| got.metrics.iter().find(|m| m.key == key).unwrap().value;
    assert_eq!(latest("loss"), MetricValue { value: 0.25, timestamp: 11, step: 2 });
    assert!(latest("nan").value.is_nan());
    assert_eq!(latest("inf").value, f64::NEG_INFINITY);
    assert_eq!(got.params, vec![("alpha".to_string(), "0.5".to_string())]);
    let history: Vec<(f64, i64)> = s.metric_history(&dana, &run_id, "loss").await.unwrap().iter().map(|v| (v.value, v.step)).collect();
    assert_eq!(history, vec![(0.9, 0), (0.5, 1), (0.25, 2)]);

    // A param never changes; the refused batch writes none of its values.
    let changed = RunBatch { metrics: vec![metric("other", 1.0, 1, 0)], params: vec![("alpha".into(), "0.7".into())], ..RunBatch::default() };
    assert_invalid(s.log_batch(&dana, &run_id, changed).await, "params.alpha");
    assert!(s.metric_history(&dana, &run_id, "other").await.unwrap().is_empty());
    // The same value again is fine.
    s.log_batch(&dana, &run_id, RunBatch { params: vec![("alpha".into(), "0.5".into())], ..RunBatch::default() }).await.unwrap();

    // The run's name and its tag are one.
    s.log_batch(&dana, &run_id, RunBatch { tags: vec![("mlflow.runName".into(), "renamed".into())], ..RunBatch::default() }).await.unwrap();
    assert_eq!(s.run(&dana, &run_id).await.unwrap().info.run_name, "renamed");
    let info = s
        .update_run(&dana, &run_id, RunUpdate { status: Some(RunStatus::Finished), end_time: Some(2000), run_name: None, lifecycle_stage: None })
        .await
        .unwrap();
    assert_eq!((info.status, info.end_time, info.run_name.as_str()), (RunStatus::Finished, Some(2000), "renamed"));

    // Deleted runs take no values and come back when restored.
    s.set_run_stage(&dana, &run_id, LifecycleStage::Deleted).await.unwrap();
    assert_invalid(s.log_batch(&dana, &run_id, RunBatch { tags: vec![("k".into(), "v".into())], ..RunBatch::default() }).await, "run_id");
    s.set_run_stage(&dana, &run_id, LifecycleStage::Active).await.unwrap();
    assert_eq!(s.runs(&dana, &[id]).await.unwrap().len(), 1);

    // A deleted experiment takes no runs; its name stays taken.
    s.set_experiment_stage(&dana, id, LifecycleStage::Deleted).await.unwrap();
    let refused = s.create_run(&dana, NewRun { experiment_id: id, ..NewRun::default() }).await;
    assert_invalid(refused, "experiment_id");
    assert_kind(s.create_experiment(&dana, "churn", None, vec![]).await, ErrorKind::AlreadyExists);
    assert_invalid(s.set_experiment_stage(&dana, DEFAULT_EXPERIMENT_ID, LifecycleStage::Deleted).await, "experiment_id");

    // Bad input names its field.
    assert_invalid(s.create_experiment(&dana, " ", None, vec![]).await, "name");
    let bad_key = RunBatch { params: vec![("../x".into(), "1".into())], ..RunBatch::default() };
    assert_invalid(s.log_batch(&dana, &run_id, bad_key).await, "params.key");
    assert_not_found(s.run(&dana, "0123456789abcdef0123456789abcdef").await, "run", "0123456789abcdef0123456789abcdef");
    assert_not_found(s.run(&dana, "not-a-run-id").await, "run", "not-a-run-id");
    // NUL and other control characters never reach the database (PostgreSQL refuses NUL in text).
    assert_kind(s.experiment_by_name(&dana, "a\0b").await, ErrorKind::NotFound);
    assert_invalid(s.metric_history(&dana, &run_id, "a\0b").await, "metric_key");
    assert_invalid(s.delete_run_tag(&dana, &run_id, "a\0b").await, "key");
    assert_invalid(s.delete_experiment_tag(&dana, DEFAULT_EXPERIMENT_ID, "a\0b").await, "key");
    assert_invalid(s.create_experiment(&dana, "a\0b", None, vec![]).await, "name");
    let nul_value = RunBatch { tags: vec![("k".into(), "a\0b".into())], ..RunBatch::default() };
    assert_invalid(s.log_batch(&dana, &run_id, nul_value).await, "tags.k");
    let nul_param = RunBatch { params: vec![("p".into(), "a\0b".into())], ..RunBatch::default() };
    assert_invalid(s.log_batch(&dana, &run_id, nul_param).await, "params.p");
    let nul_name = RunUpdate { run_name: Some("a\0b".into()), ..RunUpdate::default() };
    assert_invalid(s.update_run(&dana, &run_id, nul_name).await, "run_name");
}

pub async fn only_trackers_record_and_refusals_are_audited(ctx: &Ctx) {
    let s = &ctx.registry;
    let viewer = with_roles("vera", &[Role::Viewer]);
    let before = ctx.store.head().await.unwrap();
    assert_kind(s.create_experiment(&viewer, "x", None, vec![]).await, ErrorKind::Forbidden);
    let event = chain(&*ctx.store, before.map_or(0, |h| h.sequence), 10).await.pop().unwrap();
    assert_eq!((event.actor.as_str(), event.action.as_str()), ("vera", "access.denied"));
    // Viewers read; validators record.
    assert_eq!(s.experiments(&viewer).await.unwrap().len(), 1);
    let validator = with_roles("val", &[Role::Validator]);
    s.create_experiment(&validator, "evaluation", None, vec![]).await.unwrap();
    // Recording writes no audit event.
    let head = ctx.store.head().await.unwrap();
    let run = s.create_run(&validator, NewRun::default()).await.unwrap();
    assert_eq!(run.info.experiment_id, DEFAULT_EXPERIMENT_ID);
    s.log_batch(&validator, &run.info.run_id, RunBatch { metrics: vec![metric("m", 1.0, 1, 0)], ..RunBatch::default() }).await.unwrap();
    assert_eq!(ctx.store.head().await.unwrap(), head);
}

/// A client that goes away mid-request drops the write at any point, from
/// before BEGIN to after COMMIT: later writes (tracking and the registry's
/// own) still work, on both backends.
pub async fn requests_dropped_mid_write_leave_writes_working(ctx: &Ctx) {
    let s = &ctx.registry;
    let dana = actor("dana");
    let run = s.create_run(&dana, NewRun { experiment_id: DEFAULT_EXPERIMENT_ID, ..NewRun::default() }).await.unwrap();
    let run_id = run.info.run_id;
    for i in 0..1000_i64 {
        let batch = RunBatch { metrics: vec![metric("m", 1.0, i, i)], ..RunBatch::default() };
        let cut = std::time::Duration::from_micros(u64::try_from(i % 40).unwrap() * 25);
        let _ = tokio::time::timeout(cut, s.log_batch(&dana, &run_id, batch)).await;
        if i % 4 == 0 {
            let _ = tokio::time::timeout(cut, s.create_model(&dana, new_model(&format!("m{i}")))).await;
        }
    }
    s.log_batch(&dana, &run_id, RunBatch { metrics: vec![metric("m", 2.0, 1000, 1000)], ..RunBatch::default() }).await.unwrap();
    s.create_model(&dana, new_model("after")).await.unwrap();
}

/// What a run read: datasets in the order logged, once per run (name and
/// digest), their tags and long texts exact; logged models once each; a
/// refused call writes nothing.
pub async fn dataset_inputs_round_trip_once_per_run(ctx: &Ctx) {
    use modelops_core::tracking::DatasetInput;
    use modelops_registry::tracking::NewLoggedModel;
    let s = &ctx.registry;
    let dana = actor("dana");
    let run = s.create_run(&dana, NewRun { experiment_id: DEFAULT_EXPERIMENT_ID, ..NewRun::default() }).await.unwrap();
    let id = run.info.run_id.clone();
    let dataset = |name: &str, digest: &str, context: &str| DatasetInput {
        name: name.into(),
        digest: digest.into(),
        source_type: "s3".into(),
        source: r#"{"uri": "s3://bank/loans.parquet"}"#.into(),
        schema: Some("é".repeat(40_000)),
        profile: None,
        tags: vec![("mlflow.data.context".into(), context.into()), ("a-owner".into(), "risk".into())],
    };
    let model = s.create_logged_model(&dana, NewLoggedModel { experiment_id: DEFAULT_EXPERIMENT_ID, ..Default::default() }).await.unwrap();
    s.log_run_inputs(&dana, &id, &[dataset("loans", "a1b2", "training"), dataset("holdout", "c3d4", "evaluation")], std::slice::from_ref(&model.model_id)).await.unwrap();
    s.log_run_inputs(&dana, &id, &[dataset("loans", "a1b2", "evaluation")], std::slice::from_ref(&model.model_id)).await.unwrap();
    s.log_run_inputs(&dana, &id, &[dataset("loans", "ffff", "training")], &[]).await.unwrap();
    let got = s.run(&dana, &id).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = got.dataset_inputs.iter().map(|d| (d.name.as_str(), d.digest.as_str(), d.tags[0].1.as_str())).collect();
    assert_eq!(seen, vec![("loans", "a1b2", "training"), ("holdout", "c3d4", "evaluation"), ("loans", "ffff", "training")]);
    assert_eq!(got.dataset_inputs[1], dataset("holdout", "c3d4", "evaluation"), "every field as logged, tags in their order");
    assert_eq!(got.model_inputs, vec![model.model_id.clone()]);
    // Several runs read at once get each their own.
    let other = s.create_run(&dana, NewRun { experiment_id: DEFAULT_EXPERIMENT_ID, ..NewRun::default() }).await.unwrap();
    s.log_run_inputs(&dana, &other.info.run_id, &[dataset("other", "0001", "training")], &[]).await.unwrap();
    let runs = s.runs(&dana, &[DEFAULT_EXPERIMENT_ID]).await.unwrap();
    let inputs_of = |run_id: &str| runs.iter().find(|r| r.info.run_id == run_id).map(|r| r.dataset_inputs.len());
    assert_eq!((inputs_of(&id), inputs_of(&other.info.run_id)), (Some(3), Some(1)));

    let mut bad = dataset("late", "9999", "training");
    bad.digest = "d".repeat(37);
    let refused = s.log_run_inputs(&dana, &id, &[dataset("fine", "0000", "training"), bad], &[]).await.unwrap_err();
    assert!(refused.to_string().contains("datasets[1].dataset.digest"), "{refused}");
    let mut nul = dataset("nul", "9999", "training");
    nul.source = "s3://a\0b".into();
    let refused = s.log_run_inputs(&dana, &id, &[nul], &[]).await.unwrap_err();
    assert!(refused.to_string().contains("datasets[0].dataset.source") && refused.to_string().contains("NUL"), "{refused}");
    assert_kind(s.log_run_inputs(&dana, &id, &[], &["m-missing".into()]).await, ErrorKind::NotFound);
    assert_kind(s.log_run_inputs(&dana, &id, &[], &["m-\0".into()]).await, ErrorKind::InvalidInput);
    assert_eq!(s.run(&dana, &id).await.unwrap().dataset_inputs.len(), 3, "nothing of a refused call");
    assert_kind(s.log_run_inputs(&dana, "0".repeat(32).as_str(), &[dataset("x", "1", "training")], &[]).await, ErrorKind::NotFound);
}
