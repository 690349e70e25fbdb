//! Authentication is pluggable: handlers only see the principal.

use crate::support::App;
use axum::http::{HeaderMap, Method, StatusCode};
use modelops_core::auth::{Principal, Role};
use modelops_server::identity::Authenticator;
use serde_json::json;
use std::sync::Arc;

/// A stand-in for token authentication: `Bearer viewer` is a read-only user.
struct Tokens;

#[async_trait::async_trait]
impl Authenticator for Tokens {
    async fn authenticate(&self, headers: &HeaderMap) -> modelops_core::Result<Principal> {
        match headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("Bearer viewer") => Principal::new("vera", [Role::Viewer]),
            Some("Bearer dev") => Principal::new("dana", [Role::Developer]),
            _ => Err(modelops_core::Error::forbidden("token", "a valid token is required")),
        }
    }
}

#[tokio::test]
async fn a_plugged_in_authenticator_decides_who_may_do_what() {
    let app = App::with_authenticator(Arc::new(Tokens)).await;
    let send = |token: &'static str, method: Method, uri: &'static str, body: Option<serde_json::Value>| {
        let router = app.router.clone();
        async move {
            let mut builder = axum::http::Request::builder().method(method).uri(uri).header("authorization", token);
            let body = match body {
                Some(v) => {
                    builder = builder.header("content-type", "application/json");
                    axum::body::Body::from(serde_json::to_vec(&v).unwrap())
                }
                None => axum::body::Body::empty(),
            };
            tower::ServiceExt::oneshot(router, builder.body(body).unwrap()).await.unwrap()
        }
    };
    let model = json!({"name": "m", "kind": "rules", "risk_tier": "low"});
    let denied = send("Bearer viewer", Method::POST, "/api/v1/models", Some(model.clone())).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let bytes = http_body_util::BodyExt::collect(denied.into_body()).await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(body["error"]["reasons"][0]["condition"], "role", "{body}");
    let created = send("Bearer dev", Method::POST, "/api/v1/models", Some(model)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(send("Bearer viewer", Method::GET, "/api/v1/models/m", None).await.status(), StatusCode::OK);
    assert_eq!(send("Bearer nobody", Method::GET, "/api/v1/models/m", None).await.status(), StatusCode::FORBIDDEN);
    let audit = send("Bearer viewer", Method::GET, "/api/v1/audit", None).await;
    let bytes = http_body_util::BodyExt::collect(audit.into_body()).await.unwrap().to_bytes();
    let events: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    // The refusal is on the record first, then the creation.
    assert_eq!((&events["events"][0]["actor"], &events["events"][0]["action"]), (&json!("vera"), &json!("access.denied")));
    assert_eq!(events["events"][0]["after"]["reasons"][0]["condition"], "role");
    assert_eq!((&events["events"][1]["actor"], &events["events"][1]["action"]), (&json!("dana"), &json!("model.create")));
    // A viewer may not have the whole chain re-hashed.
    assert_eq!(send("Bearer viewer", Method::GET, "/api/v1/audit/verify", None).await.status(), StatusCode::FORBIDDEN);
}
