//! A small OpenAI-compatible chat-completions server for the tests: it
//! checks the bearer key, records every request, and answers from a script
//! (errors, rate limits, hangs) before falling back to a deterministic echo
//! — as JSON, or as server-sent events cut into small frames when asked to
//! stream.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How the next request is answered.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Echo the last user message: `echo: <content>`, cut to `max_tokens`
    /// words (finish reason `length`), else finish reason `stop`. Tokens
    /// are words.
    Echo,
    /// An error status with an OpenAI error body and an optional
    /// `Retry-After`.
    Error {
        status: u16,
        message: &'static str,
        retry_after: Option<&'static str>,
    },
    /// Never answer.
    Hang,
    /// Wait until `n` requests are waiting, then echo: proves `n` calls
    /// were in flight together.
    Together(usize),
    /// Stream the first word, then an error event.
    StreamThenError,
}

#[derive(Clone)]
pub struct FakeOpenAi {
    pub base_url: String,
    state: Arc<Shared>,
}

struct Shared {
    key: String,
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Value>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    waiting: tokio::sync::watch::Sender<usize>,
}

impl FakeOpenAi {
    /// Starts on a free loopback port; requests must carry `Bearer <key>`.
    pub async fn start(key: &str) -> Self {
        let state = Arc::new(Shared {
            key: key.to_string(),
            script: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            waiting: tokio::sync::watch::channel(0).0,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base_url: format!("http://{addr}/v1"),
            state,
        }
    }

    /// Answers the next requests so, in order; then [`Reply::Echo`].
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// The JSON bodies received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

fn error_body(status: u16, message: &str) -> Response {
    let kind = if status == 429 {
        "rate_limit_exceeded"
    } else if status >= 500 {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let status = StatusCode::from_u16(status).unwrap();
    (
        status,
        Json(json!({"error": {"message": message, "type": kind, "param": null, "code": kind}})),
    )
        .into_response()
}

async fn chat(
    State(state): State<Arc<Shared>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {}", state.key) {
        return error_body(401, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.");
    }
    state.requests.lock().unwrap().push(body.clone());
    let reply = state
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Echo);
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = answer(&state, reply, &body).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn answer(state: &Shared, reply: Reply, body: &Value) -> Response {
    match reply {
        Reply::Error {
            status,
            message,
            retry_after,
        } => {
            let mut response = error_body(status, message);
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", after.parse().unwrap());
            }
            response
        }
        Reply::Hang => std::future::pending().await,
        Reply::Together(n) => {
            state.waiting.send_modify(|w| *w += 1);
            let mut rx = state.waiting.subscribe();
            rx.wait_for(|w| *w >= n).await.unwrap();
            echo(body, false)
        }
        Reply::Echo => echo(body, false),
        Reply::StreamThenError => echo(body, true),
    }
}

fn echo(body: &Value, fail_midway: bool) -> Response {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let prompt_tokens: usize = messages
        .iter()
        .filter_map(|m| m["content"].as_str())
        .map(|c| c.split_whitespace().count())
        .sum();
    let mut words: Vec<String> = format!("echo: {last_user}")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut finish = "stop";
    if let Some(max) = body["max_tokens"].as_u64() {
        if words.len() > max as usize {
            words.truncate(max as usize);
            finish = "length";
        }
    }
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": words.len(), "total_tokens": prompt_tokens + words.len()});
    if body["stream"] != true {
        return Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": words.join(" "), "refusal": null}, "finish_reason": finish}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut text = String::from(": keep-alive\n\n");
    text += &chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    for (i, word) in words.iter().enumerate() {
        let piece = if i == 0 {
            word.clone()
        } else {
            format!(" {word}")
        };
        text += &chunk(json!({"content": piece}), Value::Null);
        if fail_midway {
            text += "data: {\"error\": {\"message\": \"The server is overloaded\", \"type\": \"server_error\"}}\n\n";
            break;
        }
    }
    if !fail_midway {
        text += &chunk(json!({}), json!(finish));
        if body["stream_options"]["include_usage"] == true {
            text += &format!(
                "data: {}\n\n",
                json!({"id": "chatcmpl-1", "choices": [], "usage": usage})
            );
        }
        text += "data: [DONE]\n\n";
    }
    // Frames of 7 bytes: events arrive cut at arbitrary places.
    let frames: Vec<Result<Vec<u8>, std::io::Error>> = text
        .into_bytes()
        .chunks(7)
        .map(|c| Ok(c.to_vec()))
        .collect();
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(futures::stream::iter(frames)))
        .unwrap()
}
