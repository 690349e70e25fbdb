//! `GET /metrics`: the Prometheus exposition counts exactly the calls made,
//! per deployment, version and route, across the deployment's changes (its
//! canary statistics start again; these never do), with the inference and
//! prediction-record counters beside them.

use crate::support::{Answer, App};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `score = x * 0.1`, and an evaluation error (division by zero) for a
/// negative `x`: which calls fail is chosen by the caller.
const RULES: &str = r#"
kind: rules
inputs: [{name: x, type: double}]
outputs: [{name: score, type: double}]
mode: first_match
rules:
  - {name: broken, when: "x < 0.0 && int(x) / 0 > 1", then: {score: "1.0"}}
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

/// A version of `scoring` pushed by dana and submitted; approved by vic
/// when `approve`.
async fn version(app: &App, approve: bool) -> u64 {
    let up = app.upload_named("dana", "rules.yaml", RULES.as_bytes()).await;
    assert!(up.status.is_success(), "{up:?}");
    let body = json!({"artifact": {"sha256": up.body["sha256"], "filename": "rules.yaml"}, "card": {"intended_use": "metrics tests"}});
    let created = as_(app, "dana", Method::POST, "/api/v1/models/scoring/versions", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let n = created.body["version"].as_u64().unwrap();
    let submitted = as_(app, "dana", Method::POST, &format!("/api/v1/models/scoring/versions/{n}/submit"), None).await;
    assert_eq!(submitted.status, StatusCode::OK, "{submitted:?}");
    if approve {
        let approved = as_(app, "vic", Method::POST, &format!("/api/v1/models/scoring/versions/{n}/approve"), Some(json!({"comment": "ok"}))).await;
        assert_eq!(approved.status, StatusCode::OK, "{approved:?}");
    }
    n
}

/// One call; the version that answered (`None` on error).
async fn call(app: &App, x: f64) -> Option<u64> {
    let answer = as_(app, "ana", Method::POST, "/api/v1/deployments/live/predict", Some(json!({"rows": [{"x": x}]}))).await;
    if answer.status == StatusCode::OK {
        Some(answer.headers["x-modelops-version"].to_str().unwrap().parse().unwrap())
    } else {
        // The rule set's evaluation error is the model's answer to this input, not a server fault.
        assert!(answer.status.is_client_error(), "{answer:?}");
        None
    }
}

/// The exposition's samples by series (`name{labels}`), and its text.
async fn scrape(app: &App) -> (HashMap<String, f64>, String) {
    let answer = app.get("/metrics").await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = String::from_utf8(answer.bytes).unwrap();
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("{l}")),
            };
            (series.to_string(), value)
        })
        .collect();
    (samples, text)
}

fn get(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples.get(series).unwrap_or_else(|| panic!("no series {series} in {:#?}", samples.keys().filter(|k| k.contains("deployment")).collect::<Vec<_>>()))
}

#[derive(Default, Debug, Clone, Copy)]
struct Made {
    calls: u64,
    errors: u64,
}

#[tokio::test]
async fn the_exposition_counts_every_call_per_version_and_route() {
    let app = App::new().await;
    let model = json!({"name": "scoring", "kind": "rules", "risk_tier": "low", "owner": "dana", "developers": ["dana"]});
    assert_eq!(as_(&app, "dana", Method::POST, "/api/v1/models", Some(model)).await.status, StatusCode::CREATED);
    let v1 = version(&app, true).await;
    let v2 = version(&app, true).await;
    let v3 = version(&app, false).await; // in validation: a shadow only

    // Before any deployment: the families exist, without series.
    let (_, text) = scrape(&app).await;
    for family in [
        "# TYPE modelops_build_info gauge",
        "# TYPE modelops_deployment_requests_total counter",
        "# TYPE modelops_deployment_errors_total counter",
        "# TYPE modelops_deployment_request_duration_seconds histogram",
        "# TYPE modelops_prediction_records_total counter",
        "# TYPE modelops_prediction_record_queue_depth gauge",
        "# TYPE modelops_inference_calls_total counter",
        "# TYPE modelops_inference_rows_total counter",
        "# TYPE modelops_inference_errors_total counter",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }
    assert!(text.contains(&format!("modelops_build_info{{version=\"{}\"}} 1\n", env!("CARGO_PKG_VERSION"))), "{text}");

    let mut made: HashMap<u64, Made> = HashMap::new();
    // 1. All traffic to v1: 12 calls, 3 of which fail.
    let created = as_(&app, "dep", Method::POST, "/api/v1/deployments", Some(json!({"name": "live", "model": "scoring", "version": v1}))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    for i in 0..12 {
        let x = if i % 4 == 0 { -1.0 } else { f64::from(i) };
        let answered = call(&app, x).await;
        let m = made.entry(v1).or_default();
        m.calls += 1;
        if answered.is_none() {
            m.errors += 1;
        } else {
            assert_eq!(answered, Some(v1));
        }
    }
    assert_eq!(made[&v1].errors, 3);
    // 2. All traffic to v2, mirrored to v3: 10 calls, 2 of which fail (on both).
    let changed = as_(&app, "dep", Method::PATCH, "/api/v1/deployments/live", Some(json!({"version": v2, "shadows": [{"version": v3, "percent": 100.0}]}))).await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    for i in 0..10 {
        let x = if i % 5 == 0 { -2.0 } else { f64::from(i) };
        let answered = call(&app, x).await;
        let m = made.entry(v2).or_default();
        m.calls += 1;
        if answered.is_none() {
            m.errors += 1;
        } else {
            assert_eq!(answered, Some(v2));
        }
    }
    let shadow = made[&v2];
    // 3. A/B between v1 and v2, no shadow: 40 calls, none fail; the
    // answers name the version.
    let changed = as_(&app, "dep", Method::PATCH, "/api/v1/deployments/live", Some(json!({"routes": [{"version": v1, "weight": 50}, {"version": v2, "weight": 50}], "shadows": []}))).await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    for i in 0..40 {
        let version = call(&app, f64::from(i)).await.expect("no call fails here");
        made.entry(version).or_default().calls += 1;
    }
    assert!(made[&v1].calls > 12 && made[&v2].calls > 10, "both versions took a share: {made:?}");
    let total_calls: u64 = made.values().map(|m| m.calls).sum();
    assert_eq!(total_calls, 62);

    // Shadow calls and the recorder's writes finish off the request path.
    let records = total_calls + shadow.calls;
    let deadline = Instant::now() + Duration::from_secs(20);
    let samples = loop {
        let (samples, text) = scrape(&app).await;
        let shadows = samples.get(&format!("modelops_deployment_requests_total{{deployment=\"live\",version=\"{v3}\",route=\"shadow\"}}")).copied();
        let written = samples.get("modelops_prediction_records_total{deployment=\"live\",outcome=\"written\"}").copied();
        if shadows == Some(shadow.calls as f64) && written == Some(records as f64) {
            break samples;
        }
        assert!(Instant::now() < deadline, "shadows {shadows:?} of {}, records {written:?} of {records}:\n{text}", shadow.calls);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let mut routes: Vec<(u64, &str, Made)> = made.iter().map(|(v, m)| (*v, "primary", *m)).collect();
    routes.push((v3, "shadow", shadow));
    for (version, route, m) in routes {
        let labels = format!("deployment=\"live\",version=\"{version}\",route=\"{route}\"");
        let what = format!("v{version} {route}");
        assert_eq!(get(&samples, &format!("modelops_deployment_requests_total{{{labels}}}")), m.calls as f64, "{what}");
        assert_eq!(get(&samples, &format!("modelops_deployment_errors_total{{{labels}}}")), m.errors as f64, "{what}");
        // The histogram counts the same calls: cumulative buckets up to +Inf = count.
        let count = get(&samples, &format!("modelops_deployment_request_duration_seconds_count{{{labels}}}"));
        assert_eq!(count, m.calls as f64, "{what}");
        let mut previous = 0.0;
        for le in ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"] {
            let bucket = get(&samples, &format!("modelops_deployment_request_duration_seconds_bucket{{{labels},le=\"{le}\"}}"));
            assert!(bucket >= previous, "{what}: buckets are cumulative");
            previous = bucket;
        }
        assert_eq!(previous, count, "{what}: +Inf is the count");
        let sum = get(&samples, &format!("modelops_deployment_request_duration_seconds_sum{{{labels}}}"));
        assert!(sum > 0.0 && sum < 60.0, "{what}: {sum}");
        // The serving layer counts every prediction of the version, through
        // any route.
        let model = format!("model=\"scoring\",version=\"{version}\"");
        assert_eq!(get(&samples, &format!("modelops_inference_calls_total{{{model}}}")), m.calls as f64, "{what}");
        assert_eq!(get(&samples, &format!("modelops_inference_errors_total{{{model}}}")), m.errors as f64, "{what}");
        assert_eq!(get(&samples, &format!("modelops_inference_rows_total{{{model}}}")), (m.calls - m.errors) as f64, "{what}");
    }
    // A version never routed to has no series.
    assert!(!samples.keys().any(|k| k.contains(&format!("version=\"{v3}\",route=\"primary\""))));
    assert_eq!(get(&samples, "modelops_prediction_records_total{deployment=\"live\",outcome=\"dropped\"}"), 0.0);
    assert_eq!(get(&samples, "modelops_prediction_records_total{deployment=\"live\",outcome=\"failed\"}"), 0.0);
    assert_eq!(get(&samples, "modelops_prediction_record_queue_depth{deployment=\"live\"}"), 0.0);
    // Rule sets report no LLM usage: no token or cost series.
    assert!(!samples.keys().any(|k| k.starts_with("modelops_inference_tokens_total{") || k.starts_with("modelops_inference_cost_total{")));
}

#[tokio::test]
async fn the_exposition_needs_a_token() {
    let (app, admin) = App::with_tokens().await;
    let anonymous = app.send(Request::builder().uri("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(anonymous.error(StatusCode::UNAUTHORIZED).0, "unauthenticated");
    let scraped = app.call_as(&admin, Method::GET, "/metrics", None).await;
    assert_eq!(scraped.status, StatusCode::OK, "{scraped:?}");
    assert_eq!(scraped.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    // A wrong method is the API's 405, not a server error.
    let post = app.call_as(&admin, Method::POST, "/metrics", None).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED, "{post:?}");
}
