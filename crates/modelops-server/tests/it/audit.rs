use crate::support::App;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn every_mutation_is_audited_and_filterable() {
    let app = App::new().await;
    app.create_model("a").await;
    app.create_model("b").await;
    app.create_version("a", b"v1").await;
    app.call(Method::PATCH, "/api/v1/models/b", Some(json!({"team": "x"}))).await;

    let all = app.get("/api/v1/audit").await;
    assert_eq!(all.status, StatusCode::OK);
    let events = all.body["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["action"], "model.create");
    assert_eq!(events[0]["actor"], "ana");
    assert_eq!(events[0]["sequence"], 1);

    let subject = app.get("/api/v1/audit?subject=model%2Fa*").await;
    assert_eq!(subject.body["events"].as_array().unwrap().len(), 2);
    let action = app.get("/api/v1/audit?action=model.update").await;
    assert_eq!(action.body["events"][0]["subject"], "model/b");
    assert_eq!(app.get("/api/v1/audit?actor=nobody").await.body["events"].as_array().unwrap().len(), 0);
    let since = app.get("/api/v1/audit?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z&page_size=3").await;
    assert_eq!(since.body["events"].as_array().unwrap().len(), 3);
    assert!(since.body["next_page_token"].is_string());
    app.get("/api/v1/audit?since=yesterday").await.invalid("since");
    app.get("/api/v1/audit?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z").await.invalid("until");
    app.get("/api/v1/audit?page_token=garbage").await.invalid("page_token");
}

#[tokio::test]
async fn verify_reports_an_intact_chain() {
    let app = App::new().await;
    let empty = app.get("/api/v1/audit/verify").await;
    assert!(empty.body["verified_at"].is_string(), "{empty:?}");
    assert_eq!((&empty.body["ok"], &empty.body["events"], &empty.body["head"]), (&json!(true), &json!(0), &json!(null)));
    app.create_model("a").await;
    app.create_version("a", b"v1").await;
    let verified = app.get("/api/v1/audit/verify").await;
    assert_eq!(verified.status, StatusCode::OK);
    assert_eq!(verified.body["ok"], true, "{verified:?}");
    assert_eq!(verified.body["events"], 2);
    assert_eq!(verified.body["head"]["sequence"], 2);
}

#[tokio::test]
async fn the_actor_header_names_who_acted() {
    let app = App::new().await;
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/models")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(r#"{"name": "anon", "kind": "rules", "risk_tier": "low"}"#))
        .unwrap();
    let answer = app.send(request).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    assert_eq!(answer.body["created_by"], "anonymous");
    let request = axum::http::Request::builder()
        .uri("/api/v1/models")
        .header("x-modelops-actor", " padded")
        .body(axum::body::Body::empty())
        .unwrap();
    app.send(request).await.invalid("x-modelops-actor");
}

#[tokio::test]
async fn bad_checkpoint_sizes_and_sequence_numbers_are_named_in_json() {
    let (app, admin) = crate::support::App::with_tokens().await;
    for (uri, field) in [
        ("/api/v1/audit/checkpoints/abc", "size"),
        ("/api/v1/audit/checkpoints/-1", "size"),
        ("/api/v1/audit/events/x/proof", "seq"),
        ("/api/v1/audit/events/99999999999999999999/proof", "seq"),
    ] {
        let answer = app.call_as(&admin, axum::http::Method::GET, uri, None).await;
        let message = answer.invalid(field);
        assert!(message.contains('`'), "{uri}: {message}");
    }
}
