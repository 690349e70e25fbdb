//! The LLM runtime against the fake OpenAI-compatible server.

use crate::fake_openai::{FakeOpenAi, Reply};
use futures::StreamExt;
use modelops_runtime::llm::{LlmConfig, LlmModel, LlmUpstream, Price, StreamEvent};
use modelops_runtime::upstream::Secret;
use modelops_runtime::{LoadedModel, PredictRequest, RuntimeError, Tensor, TensorData};
use serde_json::json;

const KEY: &str = "sk-test-4f1c9a";

const ARTIFACT: &str = r#"
upstream: fake
model: gpt-4o-mini
messages:
  - role: system
    content: You summarise.
  - role: user
    content: "Summarise in {{ lang }}: {{text}}"
parameters:
  - name: text
  - name: lang
    required: false
    default: English
temperature: 0.2
max_tokens: 50
"#;

fn config(server: &FakeOpenAi, key: &str) -> LlmConfig {
    let mut upstream = LlmUpstream::new(server.base_url.clone());
    upstream.api_key = Some(Secret::new(key));
    upstream.retry_backoff_ms = 1;
    upstream.timeout_ms = 2_000;
    upstream.total_timeout_ms = 5_000;
    let mut config = LlmConfig::default();
    config.upstreams.insert("fake".into(), upstream);
    config.prices.insert(
        "gpt-4o-mini".into(),
        Price {
            prompt_per_million: 1_000.0,
            completion_per_million: 2_000.0,
        },
    );
    config
}

async fn model_with(config: &LlmConfig) -> LlmModel {
    LlmModel::load(ARTIFACT.as_bytes(), config).unwrap()
}

fn request(texts: &[&str], langs: &[&str]) -> PredictRequest {
    let column = |name: &str, values: &[&str]| {
        Tensor::new(
            name,
            vec![values.len()],
            TensorData::String(values.iter().map(|s| (*s).to_string()).collect()),
        )
    };
    PredictRequest {
        inputs: vec![column("text", texts), column("lang", langs)],
        rows: texts.len(),
        explain: false,
        parameters: serde_json::Map::new(),
    }
}

fn strings(t: &Tensor) -> Vec<String> {
    match &t.data {
        TensorData::String(v) => v.clone(),
        other => panic!("not strings: {other:?}"),
    }
}

#[tokio::test]
async fn each_row_is_one_call_and_the_batch_is_metered() {
    let server = FakeOpenAi::start(KEY).await;
    let model = model_with(&config(&server, KEY)).await;
    let names: Vec<_> = model
        .signature()
        .inputs
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(names, ["text", "lang"]);
    assert!(!model.is_compute());

    let prediction = model
        .predict(request(&["the memo", "a report"], &["French", ""]))
        .await
        .unwrap();
    assert_eq!(prediction.outputs[0].name, "text");
    assert_eq!(
        strings(&prediction.outputs[0]),
        [
            "echo: Summarise in French: the memo",
            "echo: Summarise in English: a report"
        ]
    );
    assert_eq!(strings(&prediction.outputs[1]), ["stop", "stop"]);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let first = requests
        .iter()
        .find(|r| r["messages"][1]["content"] == "Summarise in French: the memo")
        .unwrap();
    assert_eq!(first["model"], "gpt-4o-mini");
    assert_eq!(
        first["messages"][0],
        json!({"role": "system", "content": "You summarise."})
    );
    assert_eq!(first["temperature"], 0.2);
    assert_eq!(first["max_tokens"], 50);
    assert_eq!(first["stream"], false);

    // Tokens are words in the fake: prompt 2 + 5 per row, completion 6.
    let usage = prediction.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (14, 12));
    assert!(
        (usage.cost - (14.0 * 1_000.0 + 12.0 * 2_000.0) / 1e6).abs() < 1e-12,
        "{}",
        usage.cost
    );
    assert!(usage.upstream_latency_ms > 0.0);
}

#[tokio::test]
async fn a_model_without_a_price_costs_nothing() {
    let server = FakeOpenAi::start(KEY).await;
    let mut config = config(&server, KEY);
    config.prices.clear();
    let usage = model_with(&config)
        .await
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap()
        .usage
        .unwrap();
    assert!(usage.prompt_tokens > 0);
    assert_eq!(usage.cost, 0.0);
}

#[tokio::test]
async fn request_parameters_override_within_limits() {
    let server = FakeOpenAi::start(KEY).await;
    let model = model_with(&config(&server, KEY)).await;
    let mut req = request(&["one two three"], &["Welsh"]);
    req.parameters.insert("temperature".into(), json!(0.9));
    req.parameters.insert("max_tokens".into(), json!(3));
    req.parameters.insert("stop".into(), json!("END"));
    let prediction = model.predict(req).await.unwrap();
    assert_eq!(strings(&prediction.outputs[0]), ["echo: Summarise in"]);
    assert_eq!(strings(&prediction.outputs[1]), ["length"]);
    let sent = &server.requests()[0];
    assert_eq!(
        (
            sent["temperature"].clone(),
            sent["max_tokens"].clone(),
            sent["stop"].clone()
        ),
        (json!(0.9), json!(3), json!(["END"]))
    );

    for (key, value, expected) in [
        (
            "max_tokens",
            json!(51),
            "parameters.max_tokens: `51` must be a whole number from 1 to 50",
        ),
        (
            "temperature",
            json!(2.5),
            "parameters.temperature: `2.5` must be a number in [0, 2]",
        ),
        (
            "stop",
            json!(["a", "b", "c", "d", "e"]),
            "parameters.stop: must be a non-empty string or up to 4 of them",
        ),
    ] {
        let mut req = request(&["x"], &["y"]);
        req.parameters.insert(key.into(), value);
        assert_eq!(model.predict(req).await.unwrap_err().to_string(), expected);
    }
    assert_eq!(
        server.requests().len(),
        1,
        "a refused request reaches no upstream"
    );
}

#[tokio::test]
async fn a_blank_required_value_is_refused_before_any_call() {
    let server = FakeOpenAi::start(KEY).await;
    let model = model_with(&config(&server, KEY)).await;
    let err = model
        .predict(request(&["fine", "  "], &["", ""]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RuntimeError::input(
            "inputs.text",
            "row 1 is blank and the parameter is required"
        )
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn too_many_rows_are_refused() {
    let server = FakeOpenAi::start(KEY).await;
    let mut config = config(&server, KEY);
    config.max_rows = 2;
    let err = model_with(&config)
        .await
        .predict(request(&["a", "b", "c"], &["", "", ""]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "inputs: 3 rows is more than the 2 an LLM model takes in one request"
    );
}

#[tokio::test]
async fn a_batch_runs_at_most_max_concurrency_calls_at_once() {
    let server = FakeOpenAi::start(KEY).await;
    let mut config = config(&server, KEY);
    config.upstreams.get_mut("fake").unwrap().max_concurrency = 2;
    // Each call waits for a partner: with fewer than 2 in flight the batch
    // would time out, with more the fake would see them.
    server.script([
        Reply::Together(2),
        Reply::Together(2),
        Reply::Together(4),
        Reply::Together(4),
    ]);
    let prediction = model_with(&config)
        .await
        .predict(request(&["a", "b", "c", "d"], &["", "", "", ""]))
        .await
        .unwrap();
    assert_eq!(strings(&prediction.outputs[0]).len(), 4);
    assert_eq!(server.max_in_flight(), 2);
    // Answers come back in row order whatever order they finish in.
    assert_eq!(
        strings(&prediction.outputs[0])[3],
        "echo: Summarise in English: d"
    );
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = FakeOpenAi::start(KEY).await;
    server.script([
        Reply::Error {
            status: 500,
            message: "The server had an error",
            retry_after: None,
        },
        Reply::Error {
            status: 429,
            message: "Rate limit reached",
            retry_after: Some("0"),
        },
    ]);
    let prediction = model_with(&config(&server, KEY))
        .await
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap();
    assert_eq!(strings(&prediction.outputs[0]), ["echo: Summarise in y: x"]);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn retries_are_bounded() {
    let server = FakeOpenAi::start(KEY).await;
    let error = Reply::Error {
        status: 503,
        message: "The engine is currently overloaded",
        retry_after: None,
    };
    server.script(vec![error; 5]);
    let err = model_with(&config(&server, KEY))
        .await
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "upstream `fake` failed: answered 503 Service Unavailable: The engine is currently overloaded (type `server_error`, code `server_error`) (3 attempts)"
    );
    assert_eq!(
        server.requests().len(),
        3,
        "the first attempt and max_retries = 2"
    );
}

#[tokio::test]
async fn a_retry_after_above_the_cap_ends_the_retries() {
    let server = FakeOpenAi::start(KEY).await;
    server.script([Reply::Error {
        status: 429,
        message: "Rate limit reached",
        retry_after: Some("3600"),
    }]);
    let err = model_with(&config(&server, KEY))
        .await
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap_err();
    let RuntimeError::Upstream { upstream, reason } = err else {
        panic!("{err:?}")
    };
    assert_eq!(upstream, "fake");
    assert!(
        reason.contains("asked to retry after 3600000 ms, more than the 10000 ms allowed"),
        "{reason}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_carries_the_upstreams_message() {
    let server = FakeOpenAi::start(KEY).await;
    server.script([Reply::Error {
        status: 400,
        message: "This model's maximum context length is 128000 tokens",
        retry_after: None,
    }]);
    let err = model_with(&config(&server, KEY))
        .await
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RuntimeError::Upstream {
            upstream: "fake".into(),
            reason: "answered 400 Bad Request: This model's maximum context length is 128000 tokens (type `invalid_request_error`, code `invalid_request_error`)".into()
        }
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_wrong_key_is_reported_without_the_key() {
    let server = FakeOpenAi::start(KEY).await;
    let wrong = "sk-wrong-77aa";
    let config = config(&server, wrong);
    assert!(!format!("{config:?}").contains(wrong));
    let err = model_with(&config)
        .await
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        text.contains("401 Unauthorized: Incorrect API key provided"),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(KEY), "{text}");
}

#[tokio::test]
async fn a_slow_upstream_times_out_naming_it() {
    let server = FakeOpenAi::start(KEY).await;
    server.script([Reply::Hang]);
    let mut config = config(&server, KEY);
    config.upstreams.get_mut("fake").unwrap().timeout_ms = 200;
    let err = model_with(&config)
        .await
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        RuntimeError::UpstreamTimeout {
            upstream: "fake".into(),
            timeout_ms: 200
        }
    );
    assert_eq!(
        err.to_string(),
        "upstream `fake` did not answer within 200 ms"
    );
    assert_eq!(server.requests().len(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn an_unreachable_upstream_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut upstream = LlmUpstream::new(format!("http://{addr}/v1"));
    upstream.retry_backoff_ms = 1;
    let mut config = LlmConfig::default();
    config.upstreams.insert("fake".into(), upstream);
    let err = LlmModel::load(ARTIFACT.as_bytes(), &config)
        .unwrap()
        .predict(request(&["x"], &["y"]))
        .await
        .unwrap_err();
    let RuntimeError::Upstream { reason, .. } = err else {
        panic!("{err:?}")
    };
    assert!(
        reason.starts_with("cannot connect") && reason.ends_with("(3 attempts)"),
        "{reason}"
    );
}

#[tokio::test]
async fn streaming_yields_text_then_done_with_usage() {
    let server = FakeOpenAi::start(KEY).await;
    let model = model_with(&config(&server, KEY)).await;
    let stream = model
        .stream(request(&["the memo"], &["Dutch"]))
        .await
        .unwrap();
    let events: Vec<StreamEvent> = stream.map(Result::unwrap).collect().await;
    let text: String = events
        .iter()
        .filter_map(|e| {
            if let StreamEvent::Text(t) = e {
                Some(t.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(text, "echo: Summarise in Dutch: the memo");
    assert!(events.len() > 2, "the answer came in pieces");
    let Some(StreamEvent::Done {
        finish_reason,
        usage,
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    assert_eq!(finish_reason, "stop");
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (7, 6));
    assert!((usage.cost - (7.0 * 1_000.0 + 6.0 * 2_000.0) / 1e6).abs() < 1e-12);
    let sent = &server.requests()[0];
    assert_eq!(
        (sent["stream"].clone(), sent["stream_options"].clone()),
        (json!(true), json!({"include_usage": true}))
    );
}

#[tokio::test]
async fn streaming_reports_an_error_event_and_ends() {
    let server = FakeOpenAi::start(KEY).await;
    server.script([Reply::StreamThenError]);
    let model = model_with(&config(&server, KEY)).await;
    let mut stream = model.stream(request(&["x"], &["y"])).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::Text("echo:".into())
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "upstream `fake` failed: The server is overloaded (type `server_error`)"
    );
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn streaming_errors_before_the_answer_are_returned_at_once() {
    let server = FakeOpenAi::start(KEY).await;
    server.script([Reply::Error {
        status: 400,
        message: "Invalid value for 'temperature'",
        retry_after: None,
    }]);
    let model = model_with(&config(&server, KEY)).await;
    let err = model.stream(request(&["x"], &["y"])).await.err().unwrap();
    assert!(
        err.to_string()
            .contains("answered 400 Bad Request: Invalid value for 'temperature'"),
        "{err}"
    );
    let err = model
        .stream(request(&["x", "y"], &["", ""]))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "inputs: a streamed completion takes exactly 1 row, not 2"
    );
}

#[test]
fn loading_names_what_is_wrong() {
    let mut config = LlmConfig::default();
    config.upstreams.insert(
        "openai".into(),
        LlmUpstream::new("https://api.openai.com/v1"),
    );
    config.upstreams.insert(
        "local".into(),
        LlmUpstream::new("http://127.0.0.1:11434/v1"),
    );
    let err = |artifact: &str| {
        LlmModel::load(artifact.as_bytes(), &config)
            .err()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        err(ARTIFACT),
        "the artifact cannot be loaded: `upstream` `fake` is not configured on this server (configured: `local`, `openai`)"
    );
    let artifact = ARTIFACT.replace("upstream: fake", "upstream: openai");
    assert!(LlmModel::load(artifact.as_bytes(), &config).is_ok());
    assert!(err(&artifact.replace("{{text}}", "{{txt}}")).contains("uses the placeholder `{{txt}}` but no parameter `txt` is declared (declared: `text`, `lang`)"));
    assert!(err(&artifact.replace("{{text}}", ""))
        .contains("`parameters[0]` `text` is declared but no message uses `{{text}}`"));
    assert!(err(&artifact.replace("role: system", "role: robot"))
        .contains("messages[0].role: unknown variant `robot`"));
    let json = r#"{"upstream": "openai", "model": "m", "messages": [{"role": "user", "content": "{{q}}"}], "parameters": [{"name": "q"}]}"#;
    let model = LlmModel::load(json.as_bytes(), &config).unwrap();
    assert_eq!(
        model
            .signature()
            .outputs
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["text", "finish_reason"]
    );
    assert_eq!(model.platform(), "modelops_llm");
}

#[test]
fn the_configuration_reads_as_toml_like_the_binary_will() {
    let config: LlmConfig = serde_norway::from_str(
        "upstreams:\n  openai:\n    base_url: https://api.openai.com/v1\n    api_key_env: MY_OPENAI_KEY\n    timeout_ms: 30000\nprices:\n  gpt-4o-mini: {prompt_per_million: 0.15, completion_per_million: 0.6}\n",
    )
    .unwrap();
    let config = config
        .resolve(|name| (name == "MY_OPENAI_KEY").then(|| "sk-from-env".to_string()))
        .unwrap();
    assert_eq!(config.upstreams["openai"].timeout_ms, 30_000);
    assert_eq!(config.upstreams["openai"].max_retries, 2);
    assert!(!format!("{config:?}").contains("sk-from-env"));
}
