use crate::support::App;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_model_is_created_read_updated_listed_and_retired() {
    let app = App::new().await;
    let created = app.create_model("credit-risk").await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["name"], "credit-risk");
    assert_eq!(created.body["kind"], "onnx");
    assert_eq!(created.body["state"], "active");
    assert_eq!(created.body["created_by"], "ana");
    assert_eq!(created.body["tags"]["domain"], "credit");
    // RFC 3339 times.
    let created_at = created.body["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok(), "{created_at}");

    let read = app.get("/api/v1/models/credit-risk").await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body["business_purpose"], "score loan applications");

    let patched = app
        .call(Method::PATCH, "/api/v1/models/credit-risk", Some(json!({"description": "PD model", "risk_tier": "critical"})))
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{patched:?}");
    assert_eq!(patched.body["description"], "PD model");
    assert_eq!(patched.body["risk_tier"], "critical");
    assert_eq!(patched.body["owner"], "ana", "fields not named stay");

    let retired = app.call(Method::POST, "/api/v1/models/credit-risk/retire", None).await;
    assert_eq!(retired.status, StatusCode::OK, "{retired:?}");
    assert_eq!(retired.body["state"], "retired");
    // Still readable: nothing is hard-deleted.
    assert_eq!(app.get("/api/v1/models/credit-risk").await.body["state"], "retired");
    // A retired model does not change any more.
    let again = app.call(Method::PATCH, "/api/v1/models/credit-risk", Some(json!({"description": "x"}))).await;
    assert_eq!(again.error(StatusCode::CONFLICT).0, "conflict");
}

#[tokio::test]
async fn delete_answers_405_and_says_to_retire() {
    let app = App::new().await;
    app.create_model("m").await;
    let answer = app.call(Method::DELETE, "/api/v1/models/m", None).await;
    let (code, _, message) = answer.error(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code, "method_not_allowed");
    assert!(message.contains("POST /api/v1/models/m/retire"), "{message}");
    assert_eq!(app.get("/api/v1/models/m").await.status, StatusCode::OK);
}

#[tokio::test]
async fn duplicate_names_conflict() {
    let app = App::new().await;
    assert_eq!(app.create_model("dup").await.status, StatusCode::CREATED);
    let (code, _, message) = app.create_model("dup").await.error(StatusCode::CONFLICT);
    assert_eq!(code, "already_exists");
    assert!(message.contains("`dup`"), "{message}");
}

#[tokio::test]
async fn unknown_models_are_404() {
    let app = App::new().await;
    let (code, _, message) = app.get("/api/v1/models/nope").await.error(StatusCode::NOT_FOUND);
    assert_eq!(code, "not_found");
    assert!(message.contains("`nope`"), "{message}");
    let patch = app.call(Method::PATCH, "/api/v1/models/nope", Some(json!({"description": "x"}))).await;
    assert_eq!(patch.error(StatusCode::NOT_FOUND).0, "not_found");
    let retire = app.call(Method::POST, "/api/v1/models/nope/retire", None).await;
    assert_eq!(retire.error(StatusCode::NOT_FOUND).0, "not_found");
}

#[tokio::test]
async fn listing_filters_orders_and_pages() {
    let app = App::new().await;
    for (name, kind, tier, team) in [
        ("alpha", "onnx", "high", "risk"),
        ("beta", "rules", "low", "fraud"),
        ("gamma", "onnx", "low", "risk"),
        ("delta", "llm", "medium", "support"),
    ] {
        let body = json!({"name": name, "kind": kind, "risk_tier": tier, "team": team, "owner": "ana",
            "description": format!("{name} model"), "tags": {"stage": if kind == "onnx" {"prod"} else {"dev"}}});
        assert_eq!(app.call(Method::POST, "/api/v1/models", Some(body)).await.status, StatusCode::CREATED);
    }
    let names = |answer: &crate::support::Answer| -> Vec<String> {
        answer.body["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names(&app.get("/api/v1/models?kind=onnx").await), ["alpha", "gamma"]);
    assert_eq!(names(&app.get("/api/v1/models?risk_tier=low&team=risk").await), ["gamma"]);
    assert_eq!(names(&app.get("/api/v1/models?tag=stage%3Ddev").await), ["beta", "delta"]);
    assert_eq!(names(&app.get("/api/v1/models?tag=stage").await).len(), 4);
    assert_eq!(names(&app.get("/api/v1/models?name_prefix=de").await), ["delta"]);
    assert_eq!(names(&app.get("/api/v1/models?q=GAMMA").await), ["gamma"]);
    assert_eq!(names(&app.get("/api/v1/models?owner=ana&state=active").await).len(), 4);
    assert_eq!(names(&app.get("/api/v1/models?order_by=name&direction=desc").await), ["gamma", "delta", "beta", "alpha"]);

    let first = app.get("/api/v1/models?page_size=3&order_by=name").await;
    assert_eq!(names(&first), ["alpha", "beta", "delta"]);
    let token = first.body["next_page_token"].as_str().unwrap().to_string();
    let second = app.get(&format!("/api/v1/models?page_size=3&order_by=name&page_token={token}")).await;
    assert_eq!(names(&second), ["gamma"]);
    assert!(second.body["next_page_token"].is_null());
}
