//! Every response carries a request id, and an error is logged once, by the
//! middleware, with the request it answered and the detail the client was
//! not told.

use crate::support::App;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_internal_error_is_logged_once_with_its_request() {
    let app = App::new().await;
    app.create_model("m").await;
    assert_eq!(app.create_version("m", b"twelve bytes").await.status, StatusCode::CREATED);
    // Someone shortens the stored artifact behind the server's back.
    let blob = app.artifact_files().into_iter().find(|p| p.to_string_lossy().contains("sha256")).unwrap();
    std::fs::write(&blob, b"short").unwrap();

    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).with_max_level(tracing::Level::DEBUG).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let request = Request::builder()
        .method(Method::GET)
        .uri("/api/v1/models/m/versions/1/artifact")
        .header("x-request-id", "req-42")
        .body(Body::empty())
        .unwrap();
    let answer = app.send(request).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.headers["x-request-id"], "req-42", "the client's request id comes back");
    assert!(!String::from_utf8_lossy(&answer.bytes).contains("bytes"), "the detail stays out of the answer: {answer:?}");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let failures: Vec<&str> = text.lines().filter(|l| l.contains("request failed")).collect();
    assert_eq!(failures.len(), 1, "logged exactly once:\n{text}");
    let line = failures[0];
    for part in ["ERROR", "method=GET", "path=/api/v1/models/m/versions/1/artifact", "request_id=req-42", "status=500", "has 5 bytes, the version records 12"] {
        assert!(line.contains(part), "`{part}` missing in: {line}");
    }

    // A request without an id gets one, on errors too.
    let missing = app.get("/api/v1/models/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.headers["x-request-id"].len(), 36, "a UUID");
}
