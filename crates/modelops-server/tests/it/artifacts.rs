use crate::support::{sha256_hex, App, MAX_ARTIFACT};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use serde_json::json;

#[tokio::test]
async fn upload_dedupes_and_download_streams_verified_bytes() {
    let app = App::new().await;
    let data: Vec<u8> = (0..(MAX_ARTIFACT as usize - 10)).map(|i| (i % 253) as u8).collect();
    let up = app.upload(&data).await;
    assert_eq!(up.status, StatusCode::CREATED, "{up:?}");
    assert_eq!(up.body["sha256"], sha256_hex(&data));
    assert_eq!(up.body["size"], data.len());
    assert_eq!(up.body["filename"], "model.onnx");
    let again = app.upload(&data).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["created"], false);
    assert_eq!(app.artifact_files().len(), 1);

    app.create_model("m").await;
    let body = json!({"artifact": {"sha256": up.body["sha256"], "filename": "scorecard é.onnx"}});
    assert_eq!(app.call(Method::POST, "/api/v1/models/m/versions", Some(body)).await.status, StatusCode::CREATED);
    let download = app.get("/api/v1/models/m/versions/1/artifact").await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.bytes, data);
    let h = &download.headers;
    assert_eq!(h["content-length"], data.len().to_string().as_str());
    assert_eq!(h["x-modelops-sha256"], sha256_hex(&data).as_str());
    assert_eq!(h["content-type"], "application/octet-stream");
    let disposition = h["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"scorecard _.onnx\""), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''scorecard%20%C3%A9.onnx"), "{disposition}");
}

#[tokio::test]
async fn an_expected_sha256_that_does_not_match_is_refused() {
    let app = App::new().await;
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/artifacts?sha256={}", sha256_hex(b"other")))
        .body(Body::from("content"))
        .unwrap();
    let message = app.send(request).await.invalid("sha256");
    assert!(message.contains(&sha256_hex(b"content")), "{message}");
    assert!(app.artifact_files().is_empty());
    let request = Request::builder().method(Method::POST).uri("/api/v1/artifacts?sha256=nothex").body(Body::from("x")).unwrap();
    app.send(request).await.invalid("sha256");
    let request = Request::builder().method(Method::POST).uri("/api/v1/artifacts?color=red").body(Body::from("x")).unwrap();
    app.send(request).await.invalid("color");
}

#[tokio::test]
async fn an_upload_over_the_limit_is_413_and_leaves_nothing() {
    let app = App::new().await;
    let answer = app.upload(&vec![0u8; MAX_ARTIFACT as usize + 1]).await;
    let (code, field, _) = answer.error(StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code, "payload_too_large");
    assert_eq!(field.as_deref(), Some("body"));
    assert!(app.artifact_files().is_empty());
}

#[tokio::test]
async fn an_upload_that_breaks_off_halfway_leaves_no_object_and_no_version() {
    let app = App::new().await;
    app.create_model("m").await;
    let good = futures::stream::iter((0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 512 * 1024]))));
    let broken = futures::StreamExt::chain(good, futures::stream::iter([Err(std::io::Error::other("client went away"))]));
    let request = Request::builder().method(Method::POST).uri("/api/v1/artifacts").body(Body::from_stream(broken)).unwrap();
    let answer = app.send(request).await;
    assert!(answer.status.is_client_error(), "{answer:?}");
    assert_eq!(answer.body["error"]["field"], "body");
    assert!(app.artifact_files().is_empty(), "{:?}", app.artifact_files());
    let versions = app.get("/api/v1/models/m/versions").await;
    assert_eq!(versions.body["versions"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_tampered_artifact_is_not_served_complete() {
    let app = App::new().await;
    app.create_model("m").await;
    let data = vec![9u8; 200_000];
    app.create_version("m", &data).await;
    let file = app.artifact_files().pop().unwrap();
    let mut tampered = data.clone();
    tampered[100] = 8;
    std::fs::write(&file, &tampered).unwrap();

    let request = Request::builder().uri("/api/v1/models/m/versions/1/artifact").body(Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "headers go out before the content is read");
    let collected = http_body_util::BodyExt::collect(response.into_body()).await;
    assert!(collected.is_err(), "the body must end with an error, not the wrong bytes");
}

#[tokio::test]
async fn gc_removes_only_old_unreferenced_artifacts_and_records_it() {
    let app = App::new().await;
    app.create_model("m").await;
    let kept = app.create_version("m", b"referenced by version 1").await;
    assert_eq!(kept.status, StatusCode::CREATED, "{kept:?}");
    let orphan = app.upload(b"uploaded, never used").await;
    let orphan_sha = orphan.body["sha256"].as_str().unwrap().to_string();
    let files_before = app.artifact_files();

    // The default grace period (a day) protects a fresh upload.
    let default = app.call(Method::POST, "/api/v1/artifacts/gc", Some(json!({}))).await;
    assert_eq!(default.status, StatusCode::OK, "{default:?}");
    assert_eq!((default.body["removed"].as_array().unwrap().len(), &default.body["kept_recent"]), (0, &json!(1)));

    // A dry run with no grace names the orphan and removes nothing.
    let dry = app.call(Method::POST, "/api/v1/artifacts/gc", Some(json!({"dry_run": true, "grace_seconds": 0}))).await;
    assert_eq!(dry.body["dry_run"], true, "{dry:?}");
    assert_eq!(dry.body["removed"][0]["sha256"], orphan_sha.as_str());
    assert_eq!((dry.body["removed"].as_array().unwrap().len(), &dry.body["referenced"]), (1, &json!(1)));
    assert_eq!(app.artifact_files(), files_before);

    let real = app.call(Method::POST, "/api/v1/artifacts/gc", Some(json!({"grace_seconds": 0}))).await;
    assert_eq!(real.body["removed"][0]["sha256"], orphan_sha.as_str(), "{real:?}");
    assert_eq!(app.artifact_files().len(), files_before.len() - 1);
    // The referenced artifact still downloads, verified.
    let download = app.get("/api/v1/models/m/versions/1/artifact").await;
    assert_eq!((download.status, download.bytes.as_slice()), (StatusCode::OK, b"referenced by version 1".as_slice()));
    // A version of a collected artifact is refused, naming the field.
    let late = app.call(Method::POST, "/api/v1/models/m/versions", Some(json!({"artifact": {"sha256": orphan_sha, "filename": "a.onnx"}}))).await;
    late.invalid("artifact.sha256");
    // Only the real run is on the record, naming what it removed.
    let events = app.get("/api/v1/audit?action=artifact.gc").await;
    let events = events.body["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["after"]["removed"][0]["sha256"], orphan_sha.as_str());
    // Unknown fields and grace periods past the documented maximum are refused by name.
    app.call(Method::POST, "/api/v1/artifacts/gc", Some(json!({"grace": 0}))).await.invalid("grace");
    app.call(Method::POST, "/api/v1/artifacts/gc", Some(json!({"grace_seconds": u64::MAX}))).await.invalid("grace_seconds");
}
