//! Every kind of bad input answers 4xx in the one JSON shape, naming the field.

use crate::support::{App, JSON_LIMIT};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_400() {
    let app = App::new().await;
    for body in ["{", "{\"name\": }", "not json", "", "{\"name\":\"a\",\"kind\":\"onnx\",\"risk_tier\":\"low\"} trailing"] {
        let message = app.call_raw(Method::POST, "/api/v1/models", body).await.invalid("body");
        assert!(message.contains("malformed JSON"), "{body}: {message}");
    }
}

#[tokio::test]
async fn unknown_fields_are_named() {
    let app = App::new().await;
    let answer = app.call(Method::POST, "/api/v1/models", Some(json!({"name": "a", "kind": "onnx", "risk_tier": "low", "colour": "red"}))).await;
    let message = answer.invalid("colour");
    assert!(message.contains("`colour`"), "{message}");
    app.create_model("m").await;
    let up = app.upload(b"x").await;
    let nested = json!({"artifact": {"sha256": up.body["sha256"], "filename": "a", "extra": 1}});
    app.call(Method::POST, "/api/v1/models/m/versions", Some(nested)).await.invalid("artifact.extra");
    let patch = app.call(Method::PATCH, "/api/v1/models/m", Some(json!({"name": "renamed"}))).await;
    assert!(patch.invalid("name").contains("cannot be changed"));
    app.get("/api/v1/models?colour=red").await.invalid("colour");
}

#[tokio::test]
async fn wrong_types_and_values_name_the_json_path() {
    let app = App::new().await;
    let cases = [
        (json!({"name": 5, "kind": "onnx", "risk_tier": "low"}), "name"),
        (json!({"name": "a", "kind": "pytorch", "risk_tier": "low"}), "kind"),
        (json!({"name": "a", "kind": "onnx", "risk_tier": "extreme"}), "risk_tier"),
        (json!({"name": "a", "kind": "onnx"}), "risk_tier"),
        (json!({"name": "a", "kind": "onnx", "risk_tier": "low", "tags": {"k": 1}}), "tags.k"),
        (json!({"name": "a", "kind": "onnx", "risk_tier": "low", "dependencies": ["ok", "b/c"]}), "dependencies[1]"),
        (json!({"name": "a", "kind": "onnx", "risk_tier": "low", "dependencies": ["a"]}), "dependencies"),
        (json!("just a string"), "body"),
    ];
    for (body, field) in cases {
        let answer = app.call(Method::POST, "/api/v1/models", Some(body.clone())).await;
        answer.invalid(field);
    }
    let message = app.call(Method::POST, "/api/v1/models", Some(json!({"name": "a", "kind": "pytorch", "risk_tier": "low"}))).await.invalid("kind");
    assert!(message.contains("pytorch") && message.contains("onnx"), "{message}");

    app.create_model("m").await;
    let up = app.upload(b"x").await;
    let bad_rows = json!({"artifact": {"sha256": up.body["sha256"], "filename": "a"}, "lineage": {"dataset_rows": -3}});
    app.call(Method::POST, "/api/v1/models/m/versions", Some(bad_rows)).await.invalid("lineage.dataset_rows");
    let bad_dtype = json!({"artifact": {"sha256": up.body["sha256"], "filename": "a"},
        "signature": {"inputs": [{"name": "x", "dtype": "float"}]}});
    app.call(Method::POST, "/api/v1/models/m/versions", Some(bad_dtype)).await.invalid("signature.inputs[0].dtype");
    let bad_sha = json!({"artifact": {"sha256": up.body["sha256"], "filename": "a"}, "lineage": {"dataset_sha256": "abc"}});
    app.call(Method::POST, "/api/v1/models/m/versions", Some(bad_sha)).await.invalid("lineage.dataset_sha256");
    let empty_patch = app.call(Method::PATCH, "/api/v1/models/m", Some(json!({}))).await;
    empty_patch.invalid("body");
    app.get("/api/v1/models?page_size=abc").await.invalid("page_size");
    app.get("/api/v1/models?page_size=0").await.invalid("page_size");
    app.get("/api/v1/models?kind=pytorch").await.invalid("kind");
    app.get("/api/v1/models?tag=%3Dv").await.invalid("tag");
}

#[tokio::test]
async fn bad_names_are_refused() {
    let app = App::new().await;
    let long = "x".repeat(129);
    for name in ["", long.as_str(), "a/b", "bell\u{7}", " padded"] {
        let answer = app.call(Method::POST, "/api/v1/models", Some(json!({"name": name, "kind": "onnx", "risk_tier": "low"}))).await;
        answer.invalid("name");
    }
    // In the path: `%2F` decodes to `/`, `%07` to a control character.
    for path in ["/api/v1/models/a%2Fb", "/api/v1/models/bell%07", &format!("/api/v1/models/{long}")] {
        app.get(path).await.invalid("name");
    }
    // An empty segment is an empty name.
    app.get("/api/v1/models//versions").await.invalid("name");
    // Found fuzzing: `%FF` is not UTF-8; the error named `path`, not the segment.
    app.get("/api/v1/models/%FF").await.invalid("name");
    app.get("/api/v1/models/m/aliases/%FF").await.invalid("alias");
    let message = app.call(Method::PUT, "/api/v1/models/m/tags/%FF", Some(json!({"value": "v"}))).await.invalid("key");
    assert!(message.contains("`key`") && message.contains("UTF-8"), "{message}");
}

#[tokio::test]
async fn oversized_and_untyped_bodies() {
    let app = App::new().await;
    let big = json!({"name": "a", "kind": "onnx", "risk_tier": "low", "description": "x".repeat(JSON_LIMIT)});
    let (code, field, _) = app.call(Method::POST, "/api/v1/models", Some(big)).await.error(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!((code.as_str(), field.as_deref()), ("payload_too_large", Some("body")));

    let request = Request::builder().method(Method::POST).uri("/api/v1/models").body(Body::from(r#"{"name":"a"}"#)).unwrap();
    let (code, _, _) = app.send(request).await.error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(code, "unsupported_media_type");
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/models")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"name":"a"}"#))
        .unwrap();
    app.send(request).await.error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = App::new().await;
    assert_eq!(app.get("/api/v1/nothing").await.error(StatusCode::NOT_FOUND).0, "not_found");
    let answer = app.call(Method::PUT, "/api/v1/models", None).await;
    assert_eq!(answer.error(StatusCode::METHOD_NOT_ALLOWED).0, "method_not_allowed");
}

/// Found fuzzing: query errors said "invalid digit found in string" without
/// the value the client sent.
#[tokio::test]
async fn bad_query_values_are_quoted() {
    let app = App::new().await;
    for (uri, field, value) in [
        ("/api/v1/models?page_size=-1", "page_size", "`-1`"),
        ("/api/v1/models?page_size=4294967296", "page_size", "`4294967296`"),
        ("/api/v1/audit?since=yesterday", "since", "`yesterday`"),
        ("/api/v1/audit?until=2026-13-01T00:00:00Z", "until", "`2026-13-01T00:00:00Z`"),
        ("/api/v1/audit?since=%00", "since", "`\\0`"),
    ] {
        let message = app.get(uri).await.invalid(field);
        assert!(message.contains(value), "{uri}: {message}");
    }
}

/// Found fuzzing: `1e999` in a metric answered "malformed JSON" for the
/// whole body instead of naming the metric.
#[tokio::test]
async fn out_of_range_numbers_name_their_field() {
    let app = App::new().await;
    app.create_model("m").await;
    let sha = app.upload(b"x").await.body["sha256"].as_str().unwrap().to_string();
    for (number, field) in [("1e999", "lineage.training_metrics.auc"), ("-1e400", "lineage.training_metrics.auc")] {
        let body = format!(r#"{{"artifact":{{"sha256":"{sha}","filename":"a"}},"lineage":{{"training_metrics":{{"auc":{number}}}}}}}"#);
        let message = app.call_raw(Method::POST, "/api/v1/models/m/versions", &body).await.invalid(field);
        assert!(message.contains("out of range"), "{message}");
    }
    // NaN and Infinity are not JSON at all.
    for number in ["NaN", "Infinity"] {
        let body = format!(r#"{{"artifact":{{"sha256":"{sha}","filename":"a"}},"lineage":{{"training_metrics":{{"auc":{number}}}}}}}"#);
        app.call_raw(Method::POST, "/api/v1/models/m/versions", &body).await.invalid("body");
    }
    assert!(app.get("/api/v1/models/m").await.body["latest_version"].is_null());
}

/// A body cut short answers 400 in a lowercase message, never 5xx.
#[tokio::test]
async fn truncated_bodies_are_400() {
    let app = App::new().await;
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"na")), Err(std::io::Error::other("client went away"))]);
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/models")
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap();
    let message = app.send(request).await.invalid("body");
    assert!(message.starts_with("cannot read the body: failed"), "{message}");
}

/// Found by schemathesis: `page_token=` (sent by clients that always pass
/// the parameter) answered 400; it means the first page.
#[tokio::test]
async fn an_empty_page_token_is_the_first_page() {
    let app = App::new().await;
    app.create_model("m").await;
    for uri in ["/api/v1/models?page_token=", "/api/v1/models/m/versions?page_token=", "/api/v1/audit?page_token="] {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {answer:?}");
    }
    assert_eq!(app.get("/api/v1/models?page_token=").await.body["models"][0]["name"], "m");
    let message = app.get("/api/v1/models?page_token=%00").await.invalid("page_token");
    assert!(message.contains("`\\0`"), "{message}");
}

/// On PostgreSQL these reached the database and answered 500 (text cannot
/// hold NUL; a btree entry cannot hold a 10 kB tag value).
#[tokio::test]
async fn nul_filters_and_long_tag_values_are_handled_on_every_backend() {
    let app = App::new().await;
    app.create_model("m").await;
    for (query, field) in [("owner", "owner"), ("team", "team"), ("q", "q"), ("name_prefix", "name_prefix"), ("tag", "tag")] {
        app.get(&format!("/api/v1/models?{query}=a%00b")).await.invalid(field);
    }
    app.get("/api/v1/models?tag=k%3Da%00b").await.invalid("tag");
    app.get("/api/v1/models/m/versions?tag=k%3D%00").await.invalid("tag");
    for field in ["subject", "actor", "action"] {
        app.get(&format!("/api/v1/audit?{field}=%00")).await.invalid(field);
    }
    let put = app.call(Method::PUT, "/api/v1/models/m/tags/k", Some(json!({"value": "a\u{0}b"}))).await;
    put.invalid("value");
    let long = "é".repeat(5000);
    let put = app.call(Method::PUT, "/api/v1/models/m/tags/notes", Some(json!({ "value": long }))).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    let found = app.get(&format!("/api/v1/models?tag=notes%3D{}", "%C3%A9".repeat(5000))).await;
    assert_eq!(found.body["models"][0]["tags"]["notes"], long.as_str(), "{found:?}");
}

#[tokio::test]
async fn page_token_errors_quote_only_a_bounded_prefix() {
    let app = App::new().await;
    let token = "A".repeat(20_000);
    for uri in ["/api/v1/models", "/api/v1/audit"] {
        let message = app.get(&format!("{uri}?page_token={token}")).await.invalid("page_token");
        assert!(message.len() < 300, "{} bytes", message.len());
    }
}

/// Found by schemathesis: serde reads a JSON array as a struct's fields in
/// order, so `[]` was a collection with every default and `[1]` set an alias.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused() {
    let app = App::new().await;
    app.create_model("m").await;
    app.create_version("m", b"v1").await;
    for (method, uri, body) in [
        (Method::POST, "/api/v1/artifacts/gc", "[]"),
        (Method::PUT, "/api/v1/models/m/aliases/staging", "[1]"),
        (Method::POST, "/api/v1/models", "\"m\""),
        (Method::PATCH, "/api/v1/models/m", "  [\"x\"]"),
    ] {
        let mut answer = app.call_raw(method.clone(), uri, body).await;
        if answer.status == StatusCode::OK {
            answer.status = StatusCode::IM_A_TEAPOT;
        }
        let message = answer.invalid("body");
        assert!(message.contains("JSON object"), "{method} {uri}: {message}");
    }
    assert!(app.get("/api/v1/models/m").await.body["aliases"].as_object().unwrap().is_empty(), "no alias was set");
    assert!(app.get("/api/v1/audit?action=artifact.gc").await.body["events"].as_array().unwrap().is_empty());
}
