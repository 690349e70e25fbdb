//! Live monitoring over the API, on SQLite and (with
//! `MODELOPS_TEST_SERVER_BACKEND=postgres`) PostgreSQL: a reference profile
//! set once, a count-window monitor whose windows' drift equals the drift
//! of the same rows computed offline, labels joined late, an alert whose
//! webhook cannot be reached (bounded attempts, every one recorded), and the
//! bad inputs named.

use crate::support::{Answer, App};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use modelops_monitor::data::{Column, ColumnData, SourceType, Table};
use modelops_monitor::drift::{compare_profile, DriftOptions, Profile};
use serde_json::{json, Value};

const RULES: &str = r#"
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: big, when: x > 1000.0, then: {score: "100.0"}}
default: {score: "x * 0.1"}
"#;

async fn as_(app: &App, actor: &str, method: Method, uri: &str, body: Option<Value>) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri).header("x-modelops-actor", actor);
    let body = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Body::from(serde_json::to_vec(&v).unwrap())
        }
        None => Body::empty(),
    };
    app.send(builder.body(body).unwrap()).await
}

fn table(xs: &[f64]) -> Table {
    let scores = xs.iter().map(|x| x * 0.1).collect();
    Table {
        path: "reference.parquet".into(),
        rows: xs.len(),
        columns: vec![
            Column { name: "x".into(), source: SourceType::Float, data: ColumnData::Numeric(xs.to_vec()) },
            Column { name: "score".into(), source: SourceType::Float, data: ColumnData::Numeric(scores) },
        ],
    }
}

/// Deterministic values spread like a uniform sample on [lo, lo + 1).
fn spread(n: usize, lo: f64, seed: u64) -> Vec<f64> {
    (0..n).map(|i| lo + (((i as u64 + 1) * (2_654_435_761 + seed)) % 1000) as f64 / 1000.0).collect()
}

async fn setup(app: &App) -> Profile {
    let model = json!({"name": "scoring", "kind": "rules", "risk_tier": "low", "owner": "dana", "developers": ["dana"]});
    assert_eq!(as_(app, "dana", Method::POST, "/api/v1/models", Some(model)).await.status, StatusCode::CREATED);
    assert_eq!(push_approved(app, RULES).await, 1);

    let profile = Profile::fit(&table(&spread(500, 0.0, 1)), None, &[], &[]).unwrap();
    let text = profile.to_json().unwrap();
    let set = as_(app, "dana", Method::PUT, "/api/v1/models/scoring/versions/1/reference", Some(json!({"profile": text, "source": "train.parquet"}))).await;
    assert_eq!(set.status, StatusCode::CREATED, "{set:?}");
    assert_eq!(set.body["rows"], 500);
    // Immutable: a second one is a conflict (who may set one: the roles test).
    let again = as_(app, "dana", Method::PUT, "/api/v1/models/scoring/versions/1/reference", Some(json!({"profile": text}))).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");
    let broken = as_(app, "dana", Method::PUT, "/api/v1/models/scoring/versions/1/reference", Some(json!({"profile": "{\"format\": \"other\"}"}))).await;
    assert!(broken.invalid("profile").contains("profile"));
    // A wide reference (10,000 kept values per column: megabytes of JSON)
    // passes the JSON limit; it is refused here only as the second one.
    let wide: Vec<Column> = (0..8).map(|i| Column { name: format!("c{i}"), source: SourceType::Float, data: ColumnData::Numeric((0..10_000).map(|k| f64::from(i) + (f64::from(k) * std::f64::consts::FRAC_1_SQRT_2).fract()).collect()) }).collect();
    let wide = Profile::fit(&Table { path: "wide.parquet".into(), rows: 10_000, columns: wide }, None, &[], &[]).unwrap().to_json().unwrap();
    assert!(wide.len() > 1024 * 1024, "{}", wide.len());
    let big = as_(app, "dana", Method::PUT, "/api/v1/models/scoring/versions/1/reference", Some(json!({"profile": wide}))).await;
    assert_eq!(big.status, StatusCode::CONFLICT, "{big:?}");
    let shown = as_(app, "viv", Method::GET, "/api/v1/models/scoring/versions/1/reference", None).await;
    assert_eq!(shown.body["source"], "train.parquet");
    assert_eq!(shown.body["profile"]["rows"], 500);

    let created = as_(app, "dep", Method::POST, "/api/v1/deployments", Some(json!({"name": "live", "model": "scoring", "version": 1}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    profile
}

async fn send(app: &App, deployment: &str, xs: &[f64], prefix: &str) {
    for (i, x) in xs.iter().enumerate() {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/deployments/{deployment}/predict"))
            .header("x-modelops-actor", "ana")
            .header("x-request-id", format!("{prefix}-{i}"))
            .header("content-type", "application/json")
            .body(Body::from(json!({"rows": [{"x": x}]}).to_string()))
            .unwrap();
        let answer = app.send(request).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    }
    // Listing the records flushes the recorder: every call is in the log.
    assert_eq!(as_(app, "dana", Method::GET, &format!("/api/v1/deployments/{deployment}/predictions?max_results=1"), None).await.status, StatusCode::OK);
}

async fn windows(app: &App) -> Vec<Value> {
    let answer = as_(app, "viv", Method::GET, "/api/v1/deployments/live/monitors/drift/results", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.body["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn windows_equal_offline_drift_labels_join_late_and_alerts_record_every_attempt() {
    let app = App::new().await;
    let profile = setup(&app).await;
    let monitor = json!({
        "name": "drift", "window": {"rows": 200}, "min_rows": 20, "performance": {"prediction": "score"},
        "alerts": [{"name": "moved", "condition": "drift.detected['x']", "actions": [{"kind": "webhook", "url": "http://127.0.0.1:9/nobody"}, {"kind": "degrade"}]}],
    });
    let created = as_(&app, "dep", Method::POST, "/api/v1/deployments/live/monitors", Some(monitor)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");

    // Window 1: like the reference. Window 2: shifted by 0.4.
    let calm = spread(200, 0.0, 2);
    let shifted = spread(200, 0.4, 3);
    send(&app, "live", &calm, "calm").await;
    send(&app, "live", &shifted, "shifted").await;
    app.watch.run_once().await;
    let results = windows(&app).await;
    assert_eq!(results.len(), 2, "{results:#?}");
    assert!(results.iter().all(|w| w["closed"] == true && w["rows"] == 200));

    // Each window's drift is the offline comparison of its rows.
    for (w, xs) in results.iter().zip([&calm, &shifted]) {
        let offline = compare_profile(&profile, "p", &table(xs), &DriftOptions::default()).unwrap();
        let online = &w["result"]["drift"];
        for c in &offline.columns {
            let mine = online["columns"].as_array().unwrap().iter().find(|m| m["column"] == c.column.as_str()).unwrap();
            assert_eq!(mine["score"].as_f64(), c.score, "{}", c.column);
            assert_eq!(mine["drift_detected"].as_bool(), Some(c.drift_detected));
        }
        assert_eq!(online["dataset_drift"].as_bool(), Some(offline.dataset_drift));
    }
    assert_eq!(results[0]["result"]["drift"]["dataset_drift"], false);
    assert_eq!(results[1]["result"]["drift"]["dataset_drift"], true);
    assert!(results[0]["result"]["performance"]["not_computed"].as_str().unwrap().contains("no labels"));

    // The alert fired for window 2; its webhook cannot be reached: bounded
    // attempts, each recorded; the deployment is degraded.
    app.watch.settle().await;
    let alerts = as_(&app, "viv", Method::GET, "/api/v1/alerts?deployment=live", None).await;
    let alerts = alerts.body["alerts"].as_array().unwrap().clone();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["state"], "firing");
    let deliveries = alerts[0]["detail"]["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 4, "{deliveries:#?}");
    assert!(deliveries.iter().all(|d| d["error"].is_string()));
    assert_eq!(app.watch.degraded("live"), vec!["drift/moved@1".to_string()]);

    // Labels: window 1's calls, days late; one unknown id; window 2 unchanged.
    let mut labels: Vec<Value> = calm.iter().enumerate().map(|(i, x)| json!({"request_id": format!("calm-{i}"), "label": x * 0.1 + 0.5})).collect();
    labels.push(json!({"request_id": "nobody", "label": 1.0}));
    let answer = as_(&app, "dep", Method::POST, "/api/v1/deployments/live/labels", Some(json!({"labels": labels}))).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["joined"], 200);
    assert_eq!(answer.body["unknown"], 1);
    assert_eq!(answer.body["unknown_request_ids"], json!(["nobody"]));
    app.watch.run_once().await;
    let results = windows(&app).await;
    assert_eq!(results[0]["result"]["labeled_rows"], 200);
    let mae = results[0]["result"]["performance"]["metrics"]["mae"].as_f64().unwrap();
    assert!((mae - 0.5).abs() < 1e-9, "{mae}");
    assert!(results[1]["result"]["performance"]["not_computed"].is_string());
    // The firing and its actions are in the audit chain.
    let audit = as_(&app, "viv", Method::GET, "/api/v1/audit?action=alert.fire", None).await;
    assert_eq!(audit.body["events"].as_array().unwrap().len(), 1, "{audit:?}");
}

#[tokio::test]
async fn bad_monitors_and_labels_are_refused_naming_the_field() {
    let app = App::new().await;
    setup(&app).await;
    let post = |body: Value| {
        let app = &app;
        async move { as_(app, "dep", Method::POST, "/api/v1/deployments/live/monitors", Some(body)).await }
    };
    post(json!({"name": "m", "window": {"rows": 10}, "features": ["x", "age"]})).await.invalid("features[1]");
    post(json!({"name": "m", "window": {"every": "1h", "rows": 10}})).await.invalid("window");
    post(json!({"name": "m", "window": {"every": "soon"}})).await.invalid("window.every");
    post(json!({"name": "m", "window": {"rows": 10}, "alerts": [{"name": "a", "condition": "drift.nope"}]})).await.invalid("alerts[0].condition");
    post(json!({"name": "m", "window": {"rows": 10}, "alerts": [{"name": "a", "condition": "true", "actions": [{"kind": "page"}]}]})).await.invalid("alerts[0].actions[0].kind");
    post(json!({"name": "m", "window": {"rows": 10}, "performance": {"prediction": "x"}})).await.invalid("performance.prediction");
    post(json!({"name": "m", "window": {"rows": 10}, "surprise": 1})).await.invalid("surprise");
    assert_eq!(as_(&app, "dep", Method::POST, "/api/v1/deployments/nowhere/monitors", Some(json!({"name": "m", "window": {"rows": 10}}))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(as_(&app, "viv", Method::GET, "/api/v1/deployments/live/monitors/none", None).await.status, StatusCode::NOT_FOUND);
    as_(&app, "viv", Method::GET, "/api/v1/deployments/live/monitors/B%00D", None).await.invalid("monitor");
    let labels = |body: Value| {
        let app = &app;
        async move { as_(app, "dep", Method::POST, "/api/v1/deployments/live/labels", Some(body)).await }
    };
    labels(json!({"labels": [{"request_id": "a", "label": {"nested": 1}}]})).await.invalid("labels[0].label");
    labels(json!({"labels": [{"request_id": "a", "label": 1}, {"request_id": "b", "label": "one"}]})).await.invalid("labels[1].label");
    labels(json!({"labels": [{"request_id": "", "label": 1}]})).await.invalid("labels[0].request_id");
    assert_eq!(labels(json!({"labels": [{"request_id": "a", "label": 1}]})).await.body["unknown"], 1);
}

/// A reference fitted on an export (`reference set --from-deployment`)
/// watches the call's own columns too: the engine then reads the log whole,
/// and a window's `latency_us` drift is computed over the calls' real
/// latencies, not the zeros of the tensors-only read.
#[tokio::test]
async fn a_profile_of_the_calls_own_columns_is_computed_over_their_values() {
    let app = App::new().await;
    setup(&app).await;
    // Version 2, its reference holding `latency_us` beside the tensors.
    assert_eq!(push_approved(&app, &RULES.replace("x * 0.1", "x * 0.2")).await, 2);
    let created = as_(&app, "dep", Method::POST, "/api/v1/deployments", Some(json!({"name": "timed", "model": "scoring", "version": 2}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let monitor = json!({"name": "calls", "window": {"rows": 40}, "min_rows": 10});
    assert_eq!(as_(&app, "dep", Method::POST, "/api/v1/deployments/timed/monitors", Some(monitor)).await.status, StatusCode::CREATED);

    let xs = spread(40, 0.0, 5);
    send(&app, "timed", &xs, "timed").await;
    let listed = as_(&app, "dana", Method::GET, "/api/v1/deployments/timed/predictions?max_results=100", None).await;
    let records = listed.body["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 40, "{listed:?}");
    // The reference's latencies: the recorded ones, so that the window,
    // read whole, does not drift on them (read without them, it would: 0 µs).
    let latencies: Vec<f64> = records.iter().map(|r| r["latency_us"].as_f64().unwrap()).collect();
    assert!(latencies.iter().all(|l| *l > 0.0), "{latencies:?}");
    let mut reference = table(&spread(300, 0.0, 4));
    reference.columns.push(Column { name: "latency_us".into(), source: SourceType::Int { has_missing: false }, data: ColumnData::Numeric((0..300).map(|i| latencies[i % latencies.len()]).collect()) });
    let profile = Profile::fit(&reference, None, &[], &[]).unwrap();
    let set = as_(&app, "dana", Method::PUT, "/api/v1/models/scoring/versions/2/reference", Some(json!({"profile": profile.to_json().unwrap()}))).await;
    assert_eq!(set.status, StatusCode::CREATED, "{set:?}");
    app.watch.run_once().await;
    let answer = as_(&app, "viv", Method::GET, "/api/v1/deployments/timed/monitors/calls/results", None).await;
    let results = answer.body["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1, "{answer:?}");

    // Offline: the same calls' x, score and latency against the reference.
    let mut current = table(&xs);
    current.columns[1].data = ColumnData::Numeric(xs.iter().map(|x| x * 0.2).collect());
    current.columns.push(Column { name: "latency_us".into(), source: SourceType::Int { has_missing: false }, data: ColumnData::Numeric(latencies) });
    let offline = compare_profile(&profile, "p", &current, &DriftOptions::default()).unwrap();
    let online = &results[0]["result"]["drift"]["columns"];
    for c in &offline.columns {
        let mine = online.as_array().unwrap().iter().find(|m| m["column"] == c.column.as_str()).unwrap_or_else(|| panic!("{} missing: {online}", c.column));
        assert_eq!(mine["score"].as_f64(), c.score, "{}", c.column);
    }
    let latency = online.as_array().unwrap().iter().find(|m| m["column"] == "latency_us").unwrap();
    assert_eq!(latency["drift_detected"], false, "{latency}");
}

/// Uploads `bytes` as an artifact named `filename`; its sha256.
async fn upload(app: &App, filename: &str, bytes: Vec<u8>) -> String {
    let up = app.upload_named("dana", filename, &bytes).await;
    assert_eq!(up.status, StatusCode::CREATED, "{up:?}");
    up.body["sha256"].as_str().unwrap().to_string()
}

/// Pushes `rules` as the next version of `scoring`, submitted and approved;
/// its number.
async fn push_approved(app: &App, rules: &str) -> u64 {
    let sha = upload(app, "rules.yaml", rules.as_bytes().to_vec()).await;
    let body = json!({"artifact": {"sha256": sha, "filename": "rules.yaml"}, "card": {"intended_use": "monitoring tests"}});
    let created = as_(app, "dana", Method::POST, "/api/v1/models/scoring/versions", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let n = created.body["version"].as_u64().unwrap();
    assert_eq!(as_(app, "dana", Method::POST, &format!("/api/v1/models/scoring/versions/{n}/submit"), None).await.status, StatusCode::OK);
    assert_eq!(as_(app, "vic", Method::POST, &format!("/api/v1/models/scoring/versions/{n}/approve"), Some(json!({"comment": "ok"}))).await.status, StatusCode::OK);
    n
}

/// Evidently mode: the reference data kept with the version (an uploaded
/// CSV), a closed window's drift equal to the Evidently port's over the
/// same calls; and what is refused, naming the field.
#[tokio::test]
async fn evidently_mode_compares_a_closed_window_with_the_kept_reference_data() {
    let app = App::new().await;
    setup(&app).await;
    assert_eq!(push_approved(&app, &RULES.replace("x * 0.1", "x * 0.1 + 0.0")).await, 2);

    let xs = spread(600, 0.0, 7);
    let csv: String = std::iter::once("x,score\n".to_string()).chain(xs.iter().map(|x| format!("{x},{}\n", x * 0.1))).collect();
    let data = upload(&app, "train.csv", csv.clone().into_bytes()).await;
    let profile = Profile::fit(&table(&xs), None, &[], &[]).unwrap().to_json().unwrap();
    let put = |body: Value| {
        let app = &app;
        async move { as_(app, "dana", Method::PUT, "/api/v1/models/scoring/versions/2/reference", Some(body)).await }
    };
    put(json!({"profile": profile, "data": {"sha256": "ab".repeat(32), "filename": "train.csv"}})).await.invalid("data.sha256");
    put(json!({"profile": profile, "data": {"sha256": "nope", "filename": "train.csv"}})).await.invalid("data.sha256");
    put(json!({"profile": profile, "data": {"sha256": data, "filename": "train.txt"}})).await.invalid("data.filename");
    // A NUL, a directory, a name past the limit: named, nothing stored (PostgreSQL refuses NUL in text).
    for name in ["tr\u{0}ain.csv".to_string(), "../train.csv".to_string(), format!("{}.csv", "a".repeat(300))] {
        put(json!({"profile": profile, "data": {"sha256": data, "filename": name}})).await.invalid("data.filename");
    }
    let other = upload(&app, "other.csv", b"a,b\n1,2\n".to_vec()).await;
    assert!(put(json!({"profile": profile, "data": {"sha256": other, "filename": "other.csv"}})).await.invalid("data").contains("`x`"));
    let set = put(json!({"profile": profile, "data": {"sha256": data, "filename": "train.csv"}})).await;
    assert_eq!(set.status, StatusCode::CREATED, "{set:?}");
    assert_eq!(set.body["data"]["filename"], "train.csv");
    // Garbage collection keeps the kept data.
    let gc = as_(&app, "admin", Method::POST, "/api/v1/artifacts/gc", Some(json!({"dry_run": true, "grace_seconds": 0}))).await;
    assert_eq!(gc.status, StatusCode::OK, "{gc:?}");
    assert!(!gc.body.to_string().contains(&data), "{gc:?}");

    // Version 1 kept only its profile: evidently mode is refused on its deployment.
    let monitor = json!({"name": "ev", "window": {"rows": 50}, "min_rows": 10, "drift": {"mode": "evidently"}});
    assert!(as_(&app, "dep", Method::POST, "/api/v1/deployments/live/monitors", Some(monitor.clone())).await.invalid("drift.mode").contains("--store-data"));
    let bad = json!({"name": "ev", "window": {"rows": 50}, "drift": {"mode": "exact"}});
    as_(&app, "dep", Method::POST, "/api/v1/deployments/live/monitors", Some(bad)).await.invalid("drift.mode");

    let created = as_(&app, "dep", Method::POST, "/api/v1/deployments", Some(json!({"name": "ev", "model": "scoring", "version": 2}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(as_(&app, "dep", Method::POST, "/api/v1/deployments/ev/monitors", Some(monitor)).await.status, StatusCode::CREATED);
    let current = spread(50, 0.3, 8);
    send(&app, "ev", &current, "ev").await;
    app.watch.run_once().await;
    let answer = as_(&app, "viv", Method::GET, "/api/v1/deployments/ev/monitors/ev/results", None).await;
    let results = answer.body["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 1, "{answer:?}");
    let online = &results[0]["result"]["drift"];
    assert_eq!(online["mode"], "evidently", "{online}");

    // Offline: the Evidently port over the same calls and the same file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train.csv"), csv).unwrap();
    let reference = modelops_monitor::data::read_table(&dir.path().join("train.csv"), None).unwrap();
    let options = DriftOptions { mode: modelops_monitor::drift::Mode::Evidently, columns: Some(vec!["x".into(), "score".into()]), ..DriftOptions::default() };
    let offline = modelops_monitor::drift::compare_tables(reference, table(&current), &options).unwrap();
    assert_eq!(offline.columns.len(), 2);
    for c in &offline.columns {
        let mine = online["columns"].as_array().unwrap().iter().find(|m| m["column"] == c.column.as_str()).unwrap();
        assert_eq!(mine["score"].as_f64(), c.score, "{}", c.column);
        assert_eq!(mine["method"], json!(c.method), "{}", c.column);
        assert_eq!(mine["drift_detected"].as_bool(), Some(c.drift_detected));
    }
    assert_eq!(online["dataset_drift"].as_bool(), Some(offline.dataset_drift));
}
