//! Retraining over the API with real tokens, on SQLite and (with
//! `MODELOPS_TEST_SERVER_BACKEND=postgres`) PostgreSQL: a job's definition
//! checked field by field and by who may define it; a run by hand whose job
//! fails — recorded with its exit code and output, alerted, its token
//! revoked, not started twice; and what a run's token may do — register one
//! version of its model, whose lineage names the run, and nothing else.

use crate::support::{Answer, App};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

struct People {
    admin: String,
    dana: String,
    eve: String,
    vera: String,
}

async fn user(app: &App, admin: &str, name: &str, role: &str) -> String {
    let created = app.call_as(admin, Method::POST, "/api/v1/users", Some(json!({"name": name, "roles": [role]}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let token = app.call_as(admin, Method::POST, "/api/v1/tokens", Some(json!({"name": "t", "user": name}))).await;
    assert_eq!(token.status, StatusCode::CREATED, "{token:?}");
    token.body["token"].as_str().unwrap().to_string()
}

/// dana develops `fraud`; eve is a developer of nothing here; vera views.
async fn setup() -> (App, People) {
    let (app, admin) = App::with_tokens().await;
    let dana = user(&app, &admin, "dana", "developer").await;
    let eve = user(&app, &admin, "eve", "developer").await;
    let vera = user(&app, &admin, "vera", "viewer").await;
    for (name, developers) in [("fraud", json!(["dana"])), ("other", json!(["eve"]))] {
        let body = json!({"name": name, "kind": "rules", "risk_tier": "low", "owner": "admin", "developers": developers});
        let created = app.call_as(&admin, Method::POST, "/api/v1/models", Some(body)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    }
    (app, People { admin, dana, eve, vera })
}

async fn define(app: &App, token: &str, body: Value) -> Answer {
    app.call_as(token, Method::PUT, "/api/v1/models/fraud/retrain-job", Some(body)).await
}

async fn run_until_over(app: &App, token: &str, id: i64) -> Value {
    for _ in 0..200 {
        let run = app.call_as(token, Method::GET, &format!("/api/v1/retrain-runs/{id}"), None).await;
        assert_eq!(run.status, StatusCode::OK, "{run:?}");
        if run.body["ended_at"].is_string() {
            return run.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("run {id} did not end");
}

#[tokio::test]
async fn a_job_is_checked_field_by_field_and_defined_by_the_models_developers() {
    let (app, p) = setup().await;
    let command = |argv: Value| json!({"runner": {"kind": "command", "argv": argv}});
    define(&app, &p.dana, json!({"runner": {"kind": "cron"}})).await.invalid("runner.kind");
    define(&app, &p.dana, command(json!([]))).await.invalid("runner.argv");
    define(&app, &p.dana, json!({"runner": {"kind": "command"}})).await.invalid("runner.argv");
    define(&app, &p.dana, json!({"runner": {"kind": "webhook", "url": "ftp://x"}})).await.invalid("runner.url");
    define(&app, &p.dana, json!({"runner": {"kind": "command", "argv": ["x"], "env": {"MODELOPS_TOKEN": "mine"}}})).await.invalid("runner.env.MODELOPS_TOKEN");
    let message = define(&app, &p.dana, json!({"runner": {"kind": "command", "argv": ["x"]}, "schedule": "61 * * * *"})).await.invalid("schedule");
    assert!(message.contains("61 * * * *"), "{message}");
    define(&app, &p.dana, json!({"runner": {"kind": "command", "argv": ["x"]}, "timeout_seconds": 0})).await.invalid("timeout_seconds");
    let rollout = |deployment: &str, steps: Value, condition: Option<&str>| {
        json!({"runner": {"kind": "webhook", "url": "https://ci.example/hook"}, "rollout": {"deployment": deployment, "steps": steps, "condition": condition}})
    };
    define(&app, &p.admin, rollout("fraud-live", json!([10, 100]), None)).await.invalid("rollout.deployment");
    define(&app, &p.admin, rollout("fraud-live", json!([50, 10]), None)).await.invalid("rollout.steps");
    define(&app, &p.admin, rollout("fraud-live", json!([10, 100]), Some("canary.nonsense > 1"))).await.invalid("rollout.condition");
    define(&app, &p.dana, json!({"runner": {"kind": "command", "argv": ["x"]}, "extra": 1})).await.invalid("extra");

    // Roles and developers: a viewer may not, nor a developer of another model.
    let hook = json!({"runner": {"kind": "webhook", "url": "https://ci.example/hooks/retrain"}});
    let condition = |answer: &Answer| answer.body["error"]["reasons"][0]["condition"].as_str().unwrap_or_default().to_string();
    let refused = define(&app, &p.vera, hook.clone()).await;
    assert_eq!((refused.status, condition(&refused)), (StatusCode::FORBIDDEN, "role".to_string()), "{refused:?}");
    let refused = define(&app, &p.eve, hook.clone()).await;
    assert_eq!((refused.status, condition(&refused)), (StatusCode::FORBIDDEN, "developers".to_string()), "{refused:?}");
    // A command runs on the server's host: admins only; a rollout moves
    // traffic: deployers and admins; running as someone else: admins.
    let refused = define(&app, &p.dana, command(json!(["python", "train.py"]))).await;
    assert_eq!((refused.status, condition(&refused)), (StatusCode::FORBIDDEN, "runner".to_string()), "{refused:?}");
    let mut with_rollout = hook.clone();
    with_rollout["rollout"] = json!({"deployment": "fraud-live", "steps": [10, 100]});
    let refused = define(&app, &p.dana, with_rollout).await;
    assert_eq!((refused.status, condition(&refused)), (StatusCode::FORBIDDEN, "rollout".to_string()), "{refused:?}");
    let mut as_eve = hook.clone();
    as_eve["run_as"] = json!("eve");
    let refused = define(&app, &p.dana, as_eve).await;
    assert_eq!((refused.status, condition(&refused)), (StatusCode::FORBIDDEN, "run_as".to_string()), "{refused:?}");
    let mut as_nobody = hook.clone();
    as_nobody["run_as"] = json!("nobody");
    define(&app, &p.admin, as_nobody).await.invalid("run_as");
    define(&app, &p.dana, json!({"runner": {"kind": "webhook", "url": "https://user:pw@ci.example/hook"}})).await.invalid("runner.url");
    // NUL, control characters, look-alikes and very long values are named,
    // never a server error (PostgreSQL refuses NUL in text).
    for bad in ["da\u{0}na", "dana\u{200B}", "d\u{0430}na"] {
        let mut body = hook.clone();
        body["run_as"] = json!(bad);
        let answer = define(&app, &p.admin, body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad:?}: {answer:?}");
        assert_eq!(answer.body["error"]["field"], "run_as", "{answer:?}");
    }
    define(&app, &p.dana, json!({"runner": {"kind": "webhook", "url": "https://ci.example/ho\u{0}ok"}})).await.invalid("runner.url");
    define(&app, &p.dana, json!({"runner": {"kind": "webhook", "url": format!("https://ci.example/{}", "a".repeat(5000))}})).await.invalid("runner.url");
    define(&app, &p.admin, json!({"runner": {"kind": "command", "argv": ["x"], "env": {"K": "v\u{0}"}}})).await.invalid("runner.env.K");
    define(&app, &p.admin, json!({"runner": {"kind": "command", "argv": ["x"], "env": {"K": "v".repeat(5000)}}})).await.invalid("runner.env.K");
    define(&app, &p.admin, json!({"runner": {"kind": "command", "argv": ["x\u{0}"]}})).await.invalid("runner.argv[0]");
    define(&app, &p.dana, json!({"runner": {"kind": "webhook", "url": "https://ci.example/hook"}, "schedule": "0 3 * * \u{0}"})).await.invalid("schedule");
    define(&app, &p.dana, json!({"runner": {"kind": "webhook", "url": "https://ci.example/hook"}, "schedule": "* ".repeat(3000)})).await.invalid("schedule");
    let mut shadow = rollout("fraud-live", json!([10, 100]), None);
    shadow["rollout"]["shadow"] = json!({"calls": 100, "min_agreement": 0.9, "output": "deci\u{0}sion"});
    define(&app, &p.admin, shadow).await.invalid("rollout.shadow.output");
    assert_eq!(app.call_as(&p.dana, Method::GET, "/api/v1/models/fraud/retrain-job", None).await.status, StatusCode::NOT_FOUND);

    // Defined: defaults filled in, runs act as dana; the change is audited.
    let mut scheduled = hook.clone();
    scheduled["schedule"] = json!("0 3 * * 1");
    let job = define(&app, &p.dana, scheduled).await;
    assert_eq!(job.status, StatusCode::OK, "{job:?}");
    assert_eq!(job.body["run_as"], "dana");
    assert_eq!(job.body["spec"]["timeout_seconds"], 3600);
    assert_eq!(job.body["spec"]["cooldown_seconds"], 3600);
    assert_eq!(job.body["spec"]["on_alert"], true);
    let listed = app.call_as(&p.vera, Method::GET, "/api/v1/retrain-jobs", None).await;
    assert_eq!(listed.body["jobs"].as_array().unwrap().len(), 1, "{listed:?}");
    let events = app.call_as(&p.admin, Method::GET, "/api/v1/audit?subject=model/fraud/retrain-job", None).await;
    let actions: Vec<&str> = events.body["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    // The five refusals are on record too.
    assert_eq!(actions, ["access.denied", "access.denied", "access.denied", "access.denied", "access.denied", "retrain.define"], "{events:?}");
    assert_eq!(app.call_as(&p.dana, Method::DELETE, "/api/v1/models/fraud/retrain-job", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/retrain", None).await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_failing_job_is_recorded_with_its_output_alerted_and_its_token_revoked() {
    let (app, p) = setup().await;
    let job = json!({"runner": {"kind": "command", "argv": ["sh", "-c", "echo training on $MODELOPS_MODEL run $MODELOPS_RUN; sleep 1; echo cannot read the feature store >&2; exit 3"]}, "run_as": "dana"});
    assert_eq!(define(&app, &p.admin, job).await.status, StatusCode::OK);
    // A viewer may not start one.
    assert_eq!(app.call_as(&p.vera, Method::POST, "/api/v1/models/fraud/retrain", None).await.status, StatusCode::FORBIDDEN);
    let started = app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/retrain", None).await;
    assert_eq!(started.status, StatusCode::CREATED, "{started:?}");
    assert_eq!(started.body["state"], "running");
    assert_eq!(started.body["trigger"], "manual");
    let id = started.body["id"].as_i64().unwrap();
    // One run per model at a time.
    let again = app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/retrain", None).await;
    let (_, _, message) = again.error(StatusCode::CONFLICT);
    assert!(message.contains(&format!("run {id}")) && message.contains("one run per model"), "{message}");

    let run = run_until_over(&app, &p.vera, id).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert_eq!(run["exit_code"], 3, "{run}");
    assert!(run["reason"].as_str().unwrap().contains("status 3"), "{run}");
    assert!(run["job_seconds"].as_f64().unwrap() >= 1.0, "{run}");
    assert!(run.get("version").is_none(), "{run}");
    // Its output, stdout and stderr; not for viewers.
    let log = app.call_as(&p.dana, Method::GET, &format!("/api/v1/retrain-runs/{id}/log"), None).await;
    let text = log.body["log"].as_str().unwrap();
    assert!(text.contains(&format!("training on fraud run {id}")) && text.contains("cannot read the feature store"), "{text}");
    assert_eq!(app.call_as(&p.vera, Method::GET, &format!("/api/v1/retrain-runs/{id}/log"), None).await.status, StatusCode::FORBIDDEN);
    // Alerted.
    let alerts = app.call_as(&p.vera, Method::GET, "/api/v1/alerts", None).await;
    let alert = &alerts.body["alerts"][0];
    assert_eq!((alert["monitor"].as_str(), alert["rule"].as_str()), (Some("retraining"), Some("run_failed")), "{alerts:?}");
    assert_eq!(alert["detail"]["run"], id);
    // The run's token died with the job.
    let tokens = app.call_as(&p.admin, Method::GET, "/api/v1/tokens?user=dana", None).await;
    let run_token = tokens.body["tokens"].as_array().unwrap().iter().find(|t| t["name"] == format!("retraining run {id}")).cloned().unwrap();
    assert!(run_token["revoked_at"].is_string(), "{run_token}");
    // In the audit chain, in order.
    let events = app.call_as(&p.admin, Method::GET, &format!("/api/v1/audit?subject=model/fraud/retrain/{id}"), None).await;
    let steps: Vec<(String, String)> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_string(), e["after"]["state"].as_str().or(e["after"]["run"]["state"].as_str()).unwrap_or("").to_string()))
        .collect();
    assert_eq!(steps, [("retrain.start".to_string(), "running".to_string()), ("retrain.progress".to_string(), "failed".to_string())], "{events:?}");
    // Erasing dana leaves her name nowhere in the run's record or its
    // events (`run_as`, `requested_by` are sealed like every person's
    // name), and the chain still verifies.
    let erased = app.call_as(&p.admin, Method::POST, "/api/v1/users/dana/erase", None).await;
    assert_eq!(erased.status, StatusCode::OK, "{erased:?}");
    for uri in ["/api/v1/audit?subject=model/fraud/retrain*&page_size=1000".to_string(), format!("/api/v1/retrain-runs/{id}"), "/api/v1/models/fraud/retrain-job".to_string()] {
        let answer = app.call_as(&p.admin, Method::GET, &uri, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {answer:?}");
        assert!(!String::from_utf8_lossy(&answer.bytes).contains("\"dana\""), "{uri} still names dana: {answer:?}");
    }
    let verified = app.call_as(&p.admin, Method::GET, "/api/v1/audit/verify", None).await;
    assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
    assert_eq!(verified.body["ok"], true, "{verified:?}");

    // Unknown and malformed runs are named.
    assert_eq!(app.call_as(&p.vera, Method::GET, "/api/v1/retrain-runs/999", None).await.status, StatusCode::NOT_FOUND);
    app.call_as(&p.vera, Method::GET, "/api/v1/retrain-runs/abc", None).await.invalid("run");
    app.call_as(&p.vera, Method::GET, "/api/v1/retrain-runs?limit=0", None).await.invalid("limit");
}

#[tokio::test]
async fn a_runs_token_registers_one_version_of_its_model_and_nothing_else() {
    let (app, p) = setup().await;
    // Version 1, dana's own, exists before the run.
    let rules = b"kind: rules\ninputs: [{name: x, type: double}]\noutputs: [{name: y, type: double}]\nrules: []\ndefault: {y: \"x\"}\n";
    let sha = app.upload_as(&p.dana, rules).await.body["sha256"].as_str().unwrap().to_string();
    let first = app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/versions", Some(json!({"artifact": {"sha256": sha, "filename": "rules.yaml"}}))).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let dir = tempfile::tempdir().unwrap();
    // The job hands its token to the test, then waits to be stopped.
    let job = json!({"runner": {"kind": "command", "argv": ["sh", "-c", "printf %s \"$MODELOPS_TOKEN\" > token.tmp && mv token.tmp token && sleep 60"], "dir": dir.path().display().to_string()}, "run_as": "dana"});
    assert_eq!(define(&app, &p.admin, job).await.status, StatusCode::OK);
    let started = app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/retrain", None).await;
    let id = started.body["id"].as_i64().unwrap();
    let path = dir.path().join("token");
    let mut token = String::new();
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(&path) {
            token = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!token.is_empty(), "the job did not start");

    // Not a way into anything else.
    let refused = app.call_as(&token, Method::POST, "/api/v1/models", Some(json!({"name": "sneaky", "kind": "rules", "risk_tier": "low"}))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{refused:?}");
    assert_eq!(refused.body["error"]["reasons"][0]["condition"], "scope", "{refused:?}");
    let sha = {
        let up = app.upload_as(&token, b"kind: rules\ninputs: [{name: x, type: double}]\noutputs: [{name: y, type: double}]\nrules: []\ndefault: {y: \"x\"}\n").await;
        assert!(up.status.is_success(), "{up:?}");
        up.body["sha256"].as_str().unwrap().to_string()
    };
    let version = json!({"artifact": {"sha256": sha, "filename": "rules.yaml"}});
    let other = app.call_as(&token, Method::POST, "/api/v1/models/other/versions", Some(version.clone())).await;
    assert_eq!(other.body["error"]["reasons"][0]["condition"], "scope", "{other:?}");
    let scope = |answer: &Answer| answer.status == StatusCode::FORBIDDEN && answer.body["error"]["reasons"][0]["condition"] == "scope";
    let promote = app.call_as(&token, Method::POST, "/api/v1/models/fraud/versions/1/promote", None).await;
    assert!(scope(&promote), "{promote:?}");
    // Before it registers one, it changes no version: not dana's version 1.
    let edit = app.call_as(&token, Method::PATCH, "/api/v1/models/fraud/versions/1", Some(json!({"description": "mine now"}))).await;
    assert!(scope(&edit), "{edit:?}");
    // Nor MLflow tracking, nor tokens.
    let experiment = app.call_as(&token, Method::POST, "/api/2.0/mlflow/experiments/create", Some(json!({"name": "sneaky"}))).await;
    assert_eq!(experiment.status, StatusCode::FORBIDDEN, "{experiment:?}");

    // Its own model: the version's lineage names the run; one version only.
    let created = app.call_as(&token, Method::POST, "/api/v1/models/fraud/versions", Some(version.clone())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["created_by"], "dana");
    assert_eq!(created.body["version"], 2);
    assert_eq!(created.body["lineage"]["retrain"]["job_run"], id, "{created:?}");
    // Its own version it may describe; another still not, nor the model's tags.
    let own = app.call_as(&token, Method::PATCH, "/api/v1/models/fraud/versions/2", Some(json!({"description": "retrained"}))).await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    assert!(scope(&app.call_as(&token, Method::PATCH, "/api/v1/models/fraud/versions/1", Some(json!({"description": "mine now"}))).await));
    assert!(scope(&app.call_as(&token, Method::PUT, "/api/v1/models/fraud/tags/owner", Some(json!({"value": "run"}))).await));
    assert_eq!(created.body["lineage"]["retrain"]["trigger"], "manual");
    let second = app.call_as(&token, Method::POST, "/api/v1/models/fraud/versions", Some(version.clone())).await;
    let (_, _, message) = second.error(StatusCode::CONFLICT);
    assert!(message.contains("registered version 2 already"), "{message}");
    let run = app.call_as(&p.vera, Method::GET, &format!("/api/v1/retrain-runs/{id}"), None).await;
    assert_eq!((run.body["state"].as_str(), run.body["version"].as_u64()), (Some("running"), Some(2)), "{run:?}");

    // A running job is not cancelled (it ends by itself or at its limit); a viewer may not try.
    let cancel = app.call_as(&p.dana, Method::POST, &format!("/api/v1/retrain-runs/{id}/cancel"), None).await;
    let (_, _, message) = cancel.error(StatusCode::CONFLICT);
    assert!(message.contains("ends by itself"), "{message}");
    assert_eq!(app.call_as(&p.vera, Method::POST, &format!("/api/v1/retrain-runs/{id}/cancel"), None).await.status, StatusCode::FORBIDDEN);

    // Nobody else may claim a version was retrained.
    let mut forged = version;
    forged["lineage"] = json!({"retrain": {"job_run": id, "trigger": "alert"}});
    app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/versions", Some(forged)).await.invalid("lineage.retrain");
}

#[tokio::test]
async fn a_schedule_starts_runs_until_three_fail_in_a_row() {
    let (app, p) = setup().await;
    let job = json!({"runner": {"kind": "command", "argv": ["sh", "-c", "exit 1"]}, "schedule": "* * * * * *", "cooldown_seconds": 0, "run_as": "dana"});
    assert_eq!(define(&app, &p.admin, job).await.status, StatusCode::OK);
    let runs = || async {
        let list = app.call_as(&p.vera, Method::GET, "/api/v1/retrain-runs?model=fraud", None).await;
        list.body["runs"].as_array().unwrap().clone()
    };
    // Every second, one run — each failing, recorded as started by the schedule.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while runs().await.iter().filter(|r| r["state"] == "failed").count() < 3 {
        assert!(std::time::Instant::now() < deadline, "three scheduled runs did not fail: {:?}", runs().await);
        app.retrain.run_once().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Three failures in a row: the schedule starts no more.
    for _ in 0..12 {
        app.retrain.run_once().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all = runs().await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().all(|r| r["trigger"] == "schedule" && r["requested_by"] == "system" && r["exit_code"] == 1), "{all:?}");
    // A person may still start one.
    let by_hand = app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/retrain", None).await;
    assert_eq!(by_hand.status, StatusCode::CREATED, "{by_hand:?}");
    run_until_over(&app, &p.vera, by_hand.body["id"].as_i64().unwrap()).await;
}

#[tokio::test]
async fn a_run_waiting_for_approval_says_why_and_can_be_cancelled() {
    let (app, p) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    // The job hands over its token, waits until the test has registered
    // the version with it, and ends.
    let script = "printf %s \"$MODELOPS_TOKEN\" > token.tmp && mv token.tmp token && while [ ! -f done ]; do sleep 0.05; done";
    let job = json!({"runner": {"kind": "command", "argv": ["sh", "-c", script], "dir": dir.path().display().to_string()}, "run_as": "dana"});
    assert_eq!(define(&app, &p.admin, job).await.status, StatusCode::OK);
    let id = app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/retrain", None).await.body["id"].as_i64().unwrap();
    let mut token = String::new();
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(dir.path().join("token")) {
            token = text;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let rules = b"kind: rules\ninputs: [{name: x, type: double}]\noutputs: [{name: y, type: double}]\nrules: []\ndefault: {y: \"x * 2.0\"}\n";
    let sha = app.upload_as(&token, rules).await.body["sha256"].as_str().unwrap().to_string();
    // No model card: the low tier's `approved` gate asks for its intended use.
    let created = app.call_as(&token, Method::POST, "/api/v1/models/fraud/versions", Some(json!({"artifact": {"sha256": sha, "filename": "rules.yaml"}}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    std::fs::write(dir.path().join("done"), b"").unwrap();

    // Submitted by the loop; approved by policy it cannot be: the run says why.
    let mut run = Value::Null;
    for _ in 0..200 {
        run = app.call_as(&p.vera, Method::GET, &format!("/api/v1/retrain-runs/{id}"), None).await.body;
        if run["reason"].as_str().unwrap_or_default().contains("waits for approval") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(run["state"], "awaiting_approval", "{run}");
    assert!(run["reason"].as_str().unwrap().contains("the model card must state the intended use"), "{run}");
    let version = app.call_as(&p.vera, Method::GET, "/api/v1/models/fraud/versions/1", None).await;
    assert_eq!(version.body["state"], "in_validation", "{version:?}");
    // The job is over: its token no longer works.
    let stale = app.call_as(&token, Method::GET, "/api/v1/models", None).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{stale:?}");

    // dana stops it: her own audited action; a second time is 409.
    let cancelled = app.call_as(&p.dana, Method::POST, &format!("/api/v1/retrain-runs/{id}/cancel"), None).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{cancelled:?}");
    assert_eq!(cancelled.body["state"], "cancelled");
    assert!(cancelled.body["ended_at"].is_string(), "{cancelled:?}");
    assert_eq!(app.call_as(&p.dana, Method::POST, &format!("/api/v1/retrain-runs/{id}/cancel"), None).await.status, StatusCode::CONFLICT);
    let events = app.call_as(&p.admin, Method::GET, &format!("/api/v1/audit?subject=model/fraud/retrain/{id}&action=retrain.cancel"), None).await;
    let event = &events.body["events"][0];
    assert_eq!((event["actor"].as_str(), event["after"]["state"].as_str()), (Some("dana"), Some("cancelled")), "{events:?}");
    // Nothing drives it any more; the model may be retrained again.
    app.retrain.run_once().await;
    let after = app.call_as(&p.vera, Method::GET, &format!("/api/v1/retrain-runs/{id}"), None).await;
    assert_eq!(after.body["state"], "cancelled");
    let again = app.call_as(&p.dana, Method::POST, "/api/v1/models/fraud/retrain", None).await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
}
