//! A small Open Inference Protocol (V2 REST) server for the tests. Its
//! model sums each row of `x` and answers `sum` (FP64, shape [rows, 1]),
//! `label` (BYTES) and an output nobody asked for; it can be scripted to
//! fail, hang or answer without an output, and it records every request.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub enum Reply {
    Sum,
    /// An error status with an OIP `{"error": …}` body.
    Error(u16, &'static str),
    Hang,
    /// A well-formed answer without the `label` output.
    WithoutLabel,
    /// 307 to another address.
    Redirect(&'static str),
}

#[derive(Clone)]
pub struct FakeOip {
    pub url: String,
    state: Arc<Shared>,
}

struct Shared {
    /// The `authorization` header every request must carry, if any.
    token: Option<String>,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<(String, Value)>>,
}

impl FakeOip {
    pub async fn start(token: Option<&str>) -> Self {
        let state = Arc::new(Shared {
            token: token.map(str::to_string),
            script: Mutex::default(),
            requests: Mutex::default(),
        });
        let app = Router::new()
            .route("/v2/models/{model}/infer", post(unversioned))
            .route(
                "/v2/models/{model}/versions/{version}/infer",
                post(versioned),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}"),
            state,
        }
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// `(path, body)` of each request, in order.
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.state.requests.lock().unwrap().clone()
    }
}

async fn unversioned(
    State(s): State<Arc<Shared>>,
    Path(model): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    infer(
        s,
        format!("/v2/models/{model}/infer"),
        model,
        None,
        headers,
        body,
    )
    .await
}

async fn versioned(
    State(s): State<Arc<Shared>>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    infer(
        s,
        format!("/v2/models/{model}/versions/{version}/infer"),
        model,
        Some(version),
        headers,
        body,
    )
    .await
}

fn error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        Json(json!({"error": message})),
    )
        .into_response()
}

async fn infer(
    s: Arc<Shared>,
    path: String,
    model: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Value,
) -> Response {
    if let Some(token) = &s.token {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(token.as_str()) {
            return error(401, "unauthorized");
        }
    }
    s.requests.lock().unwrap().push((path, body.clone()));
    let reply = s.script.lock().unwrap().pop_front().unwrap_or(Reply::Sum);
    let x = body["inputs"]
        .as_array()
        .and_then(|inputs| inputs.iter().find(|i| i["name"] == "x"))
        .cloned()
        .unwrap_or_default();
    let (rows, width) = (
        x["shape"][0].as_u64().unwrap_or(0) as usize,
        x["shape"][1].as_u64().unwrap_or(1) as usize,
    );
    let data: Vec<f64> = x["data"]
        .as_array()
        .map(|d| d.iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_default();
    if data.len() != rows * width {
        return error(400, "x: shape and data disagree");
    }
    let sums: Vec<f64> = data.chunks(width.max(1)).map(|r| r.iter().sum()).collect();
    let labels: Vec<&str> = sums
        .iter()
        .map(|s| if *s > 10.0 { "big" } else { "small" })
        .collect();
    let mut outputs = vec![
        json!({"name": "unasked", "shape": [1], "datatype": "INT64", "data": [1]}),
        json!({"name": "sum", "shape": [rows, 1], "datatype": "FP64", "data": sums}),
    ];
    match reply {
        Reply::Error(status, message) => return error(status, message),
        Reply::Hang => return std::future::pending().await,
        Reply::Redirect(to) => {
            return (StatusCode::TEMPORARY_REDIRECT, [("location", to)]).into_response()
        }
        Reply::WithoutLabel => {}
        Reply::Sum => outputs
            .push(json!({"name": "label", "shape": [rows], "datatype": "BYTES", "data": labels})),
    }
    let mut answer = json!({"model_name": model, "id": "1", "outputs": outputs});
    if let Some(v) = version {
        answer["model_version"] = json!(v);
    }
    Json(answer).into_response()
}
