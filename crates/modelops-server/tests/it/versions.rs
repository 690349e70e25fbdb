use crate::support::{sha256_hex, App};
use axum::http::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeSet;

#[tokio::test]
async fn versions_are_numbered_and_carry_lineage_signature_and_card() {
    let app = App::new().await;
    app.create_model("m").await;
    let data = b"onnx bytes v1".to_vec();
    let up = app.upload(&data).await;
    let body = json!({
        "artifact": {"sha256": up.body["sha256"], "filename": "model.onnx"},
        "lineage": {"dataset_uri": "s3://data/train.parquet", "dataset_sha256": sha256_hex(b"data"), "dataset_rows": 1000,
                    "code_commit": "abc123", "hyperparameters": {"depth": 6, "lr": 0.1}, "training_metrics": {"auc": 0.91}},
        "signature": {"inputs": [{"name": "age", "dtype": "int64"}], "outputs": [{"name": "pd", "dtype": "float64", "shape": [1]}]},
        "card": {"markdown": "# Model", "intended_use": "retail credit", "limitations": "not for SMEs", "metrics": {"auc": 0.91}},
        "description": "baseline",
        "tags": {"candidate": "yes"}
    });
    let v1 = app.call(Method::POST, "/api/v1/models/m/versions", Some(body)).await;
    assert_eq!(v1.status, StatusCode::CREATED, "{v1:?}");
    assert_eq!(v1.body["version"], 1);
    assert_eq!(v1.body["state"], "draft");
    assert_eq!(v1.body["artifact"]["size"], data.len());
    assert_eq!(v1.body["artifact"]["sha256"], sha256_hex(&data));
    assert_eq!(v1.body["lineage"]["dataset_rows"], 1000);
    assert_eq!(v1.body["lineage"]["hyperparameters"]["depth"], 6);
    assert_eq!(v1.body["signature"]["outputs"][0]["shape"], json!([1]));
    assert_eq!(v1.body["card"]["limitations"], "not for SMEs");

    let v2 = app.create_version("m", b"onnx bytes v2").await;
    assert_eq!(v2.body["version"], 2);
    let got = app.get("/api/v1/models/m/versions/1").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["description"], "baseline");
    assert_eq!(app.get("/api/v1/models/m").await.body["latest_version"], 2);

    let list = app.get("/api/v1/models/m/versions").await;
    let numbers: Vec<u64> = list.body["versions"].as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [2, 1], "newest first");
    let asc = app.get("/api/v1/models/m/versions?direction=asc&page_size=1").await;
    assert_eq!(asc.body["versions"][0]["version"], 1);
    let token = asc.body["next_page_token"].as_str().unwrap();
    let next = app.get(&format!("/api/v1/models/m/versions?direction=asc&page_size=1&page_token={token}")).await;
    assert_eq!(next.body["versions"][0]["version"], 2);
    let tagged = app.get("/api/v1/models/m/versions?tag=candidate%3Dyes").await;
    assert_eq!(tagged.body["versions"].as_array().unwrap().len(), 1);
    let drafts = app.get("/api/v1/models/m/versions?state=draft").await;
    assert_eq!(drafts.body["versions"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn description_and_card_change_but_artifact_and_lineage_do_not() {
    let app = App::new().await;
    app.create_model("m").await;
    app.create_version("m", b"v1").await;
    let patched = app
        .call(Method::PATCH, "/api/v1/models/m/versions/1", Some(json!({"description": "better", "card": {"markdown": "# New"}})))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    assert_eq!(patched.body["description"], "better");
    assert_eq!(patched.body["card"]["markdown"], "# New");

    for field in ["artifact", "lineage", "signature"] {
        let answer = app.call(Method::PATCH, "/api/v1/models/m/versions/1", Some(json!({field: {}}))).await;
        let message = answer.invalid(field);
        assert!(message.contains("cannot be changed"), "{message}");
    }
    let events = app.get("/api/v1/audit?action=version.update").await;
    assert_eq!(events.body["events"].as_array().unwrap().len(), 1, "the update is audited");
}

#[tokio::test]
async fn a_version_needs_an_uploaded_artifact_and_a_known_model() {
    let app = App::new().await;
    app.create_model("m").await;
    let missing = json!({"artifact": {"sha256": sha256_hex(b"never uploaded"), "filename": "x.onnx"}});
    let answer = app.call(Method::POST, "/api/v1/models/m/versions", Some(missing)).await;
    let message = answer.invalid("artifact.sha256");
    assert!(message.contains("has not been uploaded"), "{message}");

    let bad_sha = json!({"artifact": {"sha256": "XYZ", "filename": "x.onnx"}});
    app.call(Method::POST, "/api/v1/models/m/versions", Some(bad_sha)).await.invalid("artifact.sha256");

    let up = app.upload(b"content").await;
    let unknown = json!({"artifact": {"sha256": up.body["sha256"], "filename": "x.onnx"}});
    let answer = app.call(Method::POST, "/api/v1/models/ghost/versions", Some(unknown)).await;
    assert_eq!(answer.error(StatusCode::NOT_FOUND).0, "not_found");

    let bad_name = json!({"artifact": {"sha256": up.body["sha256"], "filename": "../../etc/passwd"}});
    app.call(Method::POST, "/api/v1/models/m/versions", Some(bad_name)).await.invalid("artifact.filename");
}

#[tokio::test]
async fn unknown_versions_and_bad_version_numbers() {
    let app = App::new().await;
    app.create_model("m").await;
    assert_eq!(app.get("/api/v1/models/m/versions/7").await.error(StatusCode::NOT_FOUND).0, "not_found");
    assert_eq!(app.get("/api/v1/models/nope/versions/1").await.error(StatusCode::NOT_FOUND).0, "not_found");
    for bad in ["abc", "0", "-1", "1.5", "99999999999"] {
        let message = app.get(&format!("/api/v1/models/m/versions/{bad}")).await.invalid("version");
        assert!(message.contains(&format!("`{bad}`")), "{message}");
    }
}

#[tokio::test]
async fn retiring_a_version_keeps_it_and_delete_says_to_retire() {
    let app = App::new().await;
    app.create_model("m").await;
    app.create_version("m", b"v1").await;
    let deleted = app.call(Method::DELETE, "/api/v1/models/m/versions/1", None).await;
    assert!(deleted.error(StatusCode::METHOD_NOT_ALLOWED).2.contains("retire"));
    let retired = app.call(Method::POST, "/api/v1/models/m/versions/1/retire", None).await;
    assert_eq!(retired.status, StatusCode::OK, "{retired:?}");
    assert_eq!(retired.body["state"], "retired");
    assert_eq!(app.get("/api/v1/models/m/versions/1").await.body["state"], "retired");
}

#[tokio::test]
async fn racing_creators_get_distinct_numbers() {
    let app = App::new().await;
    app.create_model("race").await;
    let up = app.upload(b"shared artifact").await;
    let sha = up.body["sha256"].clone();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let router = app.router.clone();
        let body = json!({"artifact": {"sha256": sha, "filename": "m.onnx"}, "description": format!("client {i}")});
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/api/v1/models/race/versions")
                .header("content-type", "application/json")
                .header("x-modelops-actor", format!("client-{i}"))
                .body(axum::body::Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::CREATED);
            let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["version"].as_u64().unwrap()
        }));
    }
    let mut numbers = BTreeSet::new();
    for task in tasks {
        numbers.insert(task.await.unwrap());
    }
    assert_eq!(numbers, (1..=8).collect::<BTreeSet<u64>>());
}

/// Found fuzzing: hyperparameters nested 124 levels were stored, and then
/// `GET …/versions` and `GET /api/v1/audit` answered documents nested past
/// serde_json's 128-level limit, which the CLI could no longer read.
#[tokio::test]
async fn deeply_nested_hyperparameters_are_refused_and_nothing_is_written() {
    let app = App::new().await;
    app.create_model("m").await;
    let sha = app.upload(b"deep").await.body["sha256"].as_str().unwrap().to_string();
    let events_before = app.get("/api/v1/audit").await.body["events"].as_array().unwrap().len();
    for levels in [33, 124, 10_000] {
        let value = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
        let body = format!(r#"{{"artifact":{{"sha256":"{sha}","filename":"a"}},"lineage":{{"hyperparameters":{{"layers":{value}}}}}}}"#);
        let answer = app.call_raw(Method::POST, "/api/v1/models/m/versions", &body).await;
        let field = if levels < 125 { "lineage.hyperparameters.layers" } else { "body" };
        answer.invalid(field);
    }
    assert!(app.get("/api/v1/models/m").await.body["latest_version"].is_null());
    assert_eq!(app.get("/api/v1/audit").await.body["events"].as_array().unwrap().len(), events_before);

    // At the limit the version is stored, and listings of it stay readable
    // by a client with serde_json's default recursion limit.
    let value = format!("{}{}", "[".repeat(32), "]".repeat(32));
    let body = format!(r#"{{"artifact":{{"sha256":"{sha}","filename":"a"}},"lineage":{{"hyperparameters":{{"layers":{value}}}}}}}"#);
    assert_eq!(app.call_raw(Method::POST, "/api/v1/models/m/versions", &body).await.status, StatusCode::CREATED);
    for uri in ["/api/v1/models/m/versions", "/api/v1/audit"] {
        let answer = app.get(uri).await;
        serde_json::from_slice::<serde_json::Value>(&answer.bytes).unwrap_or_else(|e| panic!("{uri}: {e}"));
    }
}
