use crate::support::App;
use axum::http::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn aliases_point_move_and_go() {
    let app = App::new().await;
    app.create_model("m").await;
    app.create_version("m", b"v1").await;
    app.create_version("m", b"v2").await;
    let set = app.call(Method::PUT, "/api/v1/models/m/aliases/staging", Some(json!({"version": 1}))).await;
    assert_eq!(set.status, StatusCode::OK, "{set:?}");
    assert_eq!(set.body["version"], 1);
    assert_eq!(app.get("/api/v1/models/m/aliases/staging").await.body["version"], 1);
    app.call(Method::PUT, "/api/v1/models/m/aliases/staging", Some(json!({"version": 2}))).await;
    let by_alias = app.get("/api/v1/models/m/aliases/staging").await;
    assert_eq!(by_alias.body["version"], 2);
    assert_eq!(by_alias.body["aliases"], json!(["staging"]));
    assert_eq!(app.get("/api/v1/models/m").await.body["aliases"]["staging"], 2);

    let deleted = app.call(Method::DELETE, "/api/v1/models/m/aliases/staging", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/models/m/aliases/staging").await.error(StatusCode::NOT_FOUND).0, "not_found");
}

#[tokio::test]
async fn bad_aliases_and_targets_are_refused() {
    let app = App::new().await;
    app.create_model("m").await;
    app.create_version("m", b"v1").await;
    for bad in ["latest", "v3", "has%20space", "1st"] {
        let answer = app.call(Method::PUT, &format!("/api/v1/models/m/aliases/{bad}"), Some(json!({"version": 1}))).await;
        answer.invalid("alias");
    }
    let missing = app.call(Method::PUT, "/api/v1/models/m/aliases/staging", Some(json!({"version": 9}))).await;
    assert_eq!(missing.error(StatusCode::NOT_FOUND).0, "not_found");
    app.call(Method::PUT, "/api/v1/models/m/aliases/staging", Some(json!({"version": 0}))).await.invalid("version");
    app.call(Method::PUT, "/api/v1/models/m/aliases/staging", Some(json!({"version": "one"}))).await.invalid("version");
    app.call(Method::PUT, "/api/v1/models/m/aliases/staging", Some(json!({}))).await.invalid("version");
}

#[tokio::test]
async fn tags_on_models_and_versions() {
    let app = App::new().await;
    app.create_model("m").await;
    app.create_version("m", b"v1").await;
    let set = app.call(Method::PUT, "/api/v1/models/m/tags/owner-team", Some(json!({"value": "risk"}))).await;
    assert_eq!(set.status, StatusCode::OK, "{set:?}");
    assert_eq!(set.body, json!({"key": "owner-team", "value": "risk"}));
    assert_eq!(app.get("/api/v1/models/m").await.body["tags"]["owner-team"], "risk");
    let del = app.call(Method::DELETE, "/api/v1/models/m/tags/owner-team", None).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert!(app.get("/api/v1/models/m").await.body["tags"].get("owner-team").is_none());

    let vset = app.call(Method::PUT, "/api/v1/models/m/versions/1/tags/validated", Some(json!({"value": "true"}))).await;
    assert_eq!(vset.status, StatusCode::OK, "{vset:?}");
    assert_eq!(app.get("/api/v1/models/m/versions/1").await.body["tags"]["validated"], "true");
    let vdel = app.call(Method::DELETE, "/api/v1/models/m/versions/1/tags/validated", None).await;
    assert_eq!(vdel.status, StatusCode::NO_CONTENT);
    assert!(app.get("/api/v1/models/m/versions/1").await.body["tags"].get("validated").is_none());

    let on_missing = app.call(Method::PUT, "/api/v1/models/m/versions/5/tags/x", Some(json!({"value": "1"}))).await;
    assert_eq!(on_missing.error(StatusCode::NOT_FOUND).0, "not_found");
    let long = "v".repeat(modelops_core::name::MAX_TAG_VALUE_LEN + 1);
    let too_long = app.call(Method::PUT, "/api/v1/models/m/tags/k", Some(json!({"value": long}))).await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST, "{too_long:?}");
    app.call(Method::PUT, "/api/v1/models/m/tags/bad%07key", Some(json!({"value": "1"}))).await.invalid("key");
}

/// Found fuzzing: a tag key `a=b` was accepted, but `?tag=a=b` filters on key
/// `a`, so such a tag could never be found again.
#[tokio::test]
async fn tag_keys_with_the_filter_separator_are_refused() {
    let app = App::new().await;
    app.create_model("m").await;
    let message = app.call(Method::PUT, "/api/v1/models/m/tags/a%3Db", Some(json!({"value": "v"}))).await.invalid("key");
    assert!(message.contains("`a=b`"), "{message}");
    let body = json!({"name": "n", "kind": "onnx", "risk_tier": "low", "tags": {"a=b": "v"}});
    app.call(Method::POST, "/api/v1/models", Some(body)).await.invalid("tags.a=b");
    assert!(app.get("/api/v1/models/m").await.body["tags"].get("a=b").is_none());
}
