//! LLM models: a prompt template with declared parameters (the version's
//! artifact) sent to an OpenAI-compatible chat-completions upstream whose
//! address and key come from the server's configuration ([`LlmConfig`]),
//! never from the artifact, the registry, a log line or the audit log.
//!
//! # The artifact (JSON, or YAML)
//!
//! ```json
//! {
//!   "upstream": "openai",
//!   "model": "gpt-4o-mini",
//!   "messages": [
//!     {"role": "system", "content": "You are a careful summariser."},
//!     {"role": "user", "content": "Summarise in {{lang}}: {{text}}"}
//!   ],
//!   "parameters": [
//!     {"name": "text", "required": true, "description": "the document"},
//!     {"name": "lang", "required": false, "default": "English"}
//!   ],
//!   "temperature": 0.2, "top_p": 1, "max_tokens": 300, "seed": 7,
//!   "stop": ["\n\n"], "response_format": {"type": "text"}
//! }
//! ```
//!
//! - `upstream` names an upstream of the configuration; loading fails,
//!   listing the configured ones, when it is not there.
//! - `messages`: roles `system`, `developer`, `user`, `assistant`; contents
//!   with `{{name}}` placeholders (spaces inside the braces allowed; no
//!   escape: `{{` always opens one). A placeholder naming no declared
//!   parameter, and a declared parameter no message uses, fail loading.
//! - `parameters` are the signature's inputs, in order, each a string
//!   (`BYTES`, shape `[]`); every request carries all of them. A required
//!   one refuses a blank value; an optional one replaces a blank value by its
//!   `default` (empty unless given). Values go into the prompt verbatim.
//! - The outputs are `text` and `finish_reason` (strings, shape `[]`).
//! - The sampling fields are optional and sent as given. A request's OIP
//!   `parameters` may override `temperature` ([0, 2]), `top_p` ([0, 1]),
//!   `seed`, `stop` (a string or up to 4) and `max_tokens` (at most the
//!   artifact's `max_tokens`, or the configuration's `max_tokens_limit` when
//!   the artifact sets none); other keys are left to the serving layer.
//!
//! # Calls
//!
//! One chat completion per row, at most the upstream's `max_concurrency` of
//! a batch at once, at most the configuration's `max_rows` rows a request;
//! every row is rendered (and checked) before the first call. Retries and
//! timeouts follow the upstream's configuration: connection errors, 408,
//! 409, 429 and 5xx are retried with backoff (or the `Retry-After` asked,
//! up to a cap); another 4xx fails at once with the upstream's own message
//! ([`RuntimeError::Upstream`], 502); an attempt or row over its time fails
//! with [`RuntimeError::UpstreamTimeout`] (504). One failing row fails the
//! batch (the rows in flight are cancelled).
//!
//! # Metering
//!
//! [`Prediction::usage`] holds the batch's summed prompt and completion
//! tokens as the upstream reported them, their cost from the price table
//! (0 when the model has no price), and the wall time spent waiting on the
//! upstream (from the first request sent to the last answer read).
//!
//! # Streaming
//!
//! [`LlmModel::stream`] sends one row with `stream: true` and
//! `stream_options.include_usage` and yields [`StreamEvent`]s: text deltas,
//! then one [`StreamEvent::Done`] with the finish reason and the usage.

mod config;
mod spec;
mod wire;

pub use config::{LlmConfig, LlmUpstream, Price};

use crate::tensor::{Tensor, TensorData};
use crate::upstream::{self, Received, RetryPolicy, Until};
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError, Usage};
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use modelops_core::version::{DataType, Signature, SignatureField};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use spec::{Role, Segment};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use wire::{ChatMessage, ChatRequest, ChatResponse, Chunk, SseDecoder, StreamOptions, WireUsage};

/// What a streamed completion yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The next piece of the answer.
    Text(String),
    /// The last event: why the model stopped (`stop`, `length`,
    /// `content_filter`, …; empty if the upstream did not say) and the
    /// call's usage.
    Done { finish_reason: String, usage: Usage },
}

/// A loaded LLM version: the compiled template and a client for its
/// upstream.
pub struct LlmModel {
    signature: Signature,
    upstream: String,
    model: String,
    endpoint: Url,
    authorization: Option<HeaderValue>,
    client: reqwest::Client,
    policy: RetryPolicy,
    max_concurrency: usize,
    max_rows: usize,
    max_tokens_limit: u32,
    price: Option<config::Price>,
    messages: Vec<(Role, Vec<Segment>)>,
    parameters: Vec<Parameter>,
    sampling: Sampling,
    memory: usize,
}

struct Parameter {
    name: String,
    required: bool,
    default: String,
}

/// The sampling fields sent with each call.
#[derive(Debug, Clone, Default)]
struct Sampling {
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    seed: Option<i64>,
    stop: Option<Vec<String>>,
    response_format: Option<serde_json::Value>,
}

/// One row's answer.
struct Completion {
    text: String,
    finish_reason: String,
    usage: WireUsage,
}

impl LlmModel {
    /// Parses and checks the artifact and resolves its upstream in
    /// `config`. Makes no network call.
    pub fn load(artifact: &[u8], config: &LlmConfig) -> Result<Self, RuntimeError> {
        let spec = spec::parse(artifact)?;
        let Some(upstream) = config.upstreams.get(&spec.upstream) else {
            let configured: Vec<String> =
                config.upstreams.keys().map(|k| format!("`{k}`")).collect();
            return Err(RuntimeError::Load(format!(
                "`upstream` `{}` is not configured on this server (configured: {})",
                spec.upstream,
                if configured.is_empty() {
                    "none; see the `[llm.upstreams]` configuration".to_string()
                } else {
                    configured.join(", ")
                }
            )));
        };
        let names: Vec<&str> = spec.parameters.iter().map(|p| p.name.as_str()).collect();
        let mut used = vec![false; names.len()];
        let mut messages = Vec::with_capacity(spec.messages.len());
        for (i, message) in spec.messages.iter().enumerate() {
            let segments =
                spec::compile(&format!("messages[{i}].content"), &message.content, &names)?;
            for s in &segments {
                if let Segment::Parameter(p) = s {
                    used[*p] = true;
                }
            }
            messages.push((message.role, segments));
        }
        if let Some(unused) = used.iter().position(|u| !u) {
            return Err(RuntimeError::Load(format!(
                "`parameters[{unused}]` `{}` is declared but no message uses `{{{{{}}}}}`",
                names[unused], names[unused]
            )));
        }
        let mut endpoint = upstream::parse_base_url("base_url", &upstream.base_url)
            .map_err(|e| RuntimeError::Load(format!("upstream `{}`: {e}", spec.upstream)))?;
        endpoint
            .path_segments_mut()
            .map_err(|()| {
                RuntimeError::Load(format!(
                    "upstream `{}`: its base URL cannot take a path",
                    spec.upstream
                ))
            })?
            .pop_if_empty()
            .extend(["chat", "completions"]);
        let authorization = match &upstream.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        RuntimeError::Load(format!(
                            "upstream `{}`: its key holds characters a header cannot carry",
                            spec.upstream
                        ))
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        // Redirects are not followed: they could leave the allow-list or
        // carry the key elsewhere.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(upstream.timeout_ms.min(10_000)))
            .build()
            .map_err(|e| {
                RuntimeError::Load(format!("cannot build an HTTP client: {}", e.without_url()))
            })?;
        let signature = Signature {
            inputs: names.iter().map(|n| string_field(n)).collect(),
            outputs: vec![string_field("text"), string_field("finish_reason")],
        };
        let memory = artifact.len() * 2 + std::mem::size_of::<Self>();
        Ok(Self {
            signature,
            upstream: spec.upstream.clone(),
            price: config.price(&spec.upstream, &spec.model),
            model: spec.model,
            endpoint,
            authorization,
            client,
            policy: upstream.retry_policy(),
            max_concurrency: upstream.max_concurrency.max(1),
            max_rows: config.max_rows.max(1),
            max_tokens_limit: config.max_tokens_limit.max(1),
            messages,
            parameters: spec
                .parameters
                .into_iter()
                .map(|p| Parameter {
                    name: p.name,
                    required: p.required,
                    default: p.default,
                })
                .collect(),
            sampling: Sampling {
                temperature: spec.temperature,
                top_p: spec.top_p,
                max_tokens: spec.max_tokens,
                seed: spec.seed,
                stop: spec.stop,
                response_format: spec.response_format,
            },
            memory,
        })
    }

    /// The configured upstream's name, for metrics and messages.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Streams the completion of a one-row request. Errors before the
    /// answer starts (bad input, refusals, timeouts, exhausted retries) are
    /// returned here; errors while it streams are items of the stream, after
    /// which it ends. Between two chunks the upstream has its `timeout_ms`.
    pub async fn stream(
        &self,
        request: PredictRequest,
    ) -> Result<BoxStream<'static, Result<StreamEvent, RuntimeError>>, RuntimeError> {
        if request.rows != 1 {
            return Err(RuntimeError::input(
                "inputs",
                format!(
                    "a streamed completion takes exactly 1 row, not {}",
                    request.rows
                ),
            ));
        }
        let sampling = self.sampling_for(&request.parameters)?;
        let messages = self.render(&request.inputs, 0)?;
        let body = self.body(messages, &sampling, true)?;
        let started = Instant::now();
        let Received::Stream(response) =
            upstream::send(&self.upstream, &self.policy, Until::Headers, || {
                self.request(&body)
            })
            .await?
        else {
            return Err(RuntimeError::Internal(
                "the upstream client returned a body where a stream was asked".into(),
            ));
        };
        let state = StreamState {
            body: response.bytes_stream().boxed(),
            decoder: SseDecoder::default(),
            pending: VecDeque::new(),
            idle: self.policy.attempt_timeout,
            upstream: self.upstream.clone(),
            price: self.price,
            started,
            usage: WireUsage::default(),
            finish_reason: String::new(),
            ended: false,
        };
        Ok(futures::stream::unfold(state, StreamState::next).boxed())
    }

    fn request(&self, body: &Bytes) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        request
    }

    fn body(
        &self,
        messages: Vec<ChatMessage>,
        sampling: &Sampling,
        stream: bool,
    ) -> Result<Bytes, RuntimeError> {
        let request = ChatRequest {
            model: &self.model,
            messages,
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            max_tokens: sampling.max_tokens,
            seed: sampling.seed,
            stop: sampling.stop.as_deref(),
            response_format: sampling.response_format.as_ref(),
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        };
        serde_json::to_vec(&request)
            .map(Bytes::from)
            .map_err(|e| RuntimeError::Internal(format!("cannot encode the chat request: {e}")))
    }

    /// The messages of row `row`, refusing a blank required value.
    fn render(&self, inputs: &[Tensor], row: usize) -> Result<Vec<ChatMessage>, RuntimeError> {
        let mut values = Vec::with_capacity(self.parameters.len());
        for (parameter, tensor) in self.parameters.iter().zip(inputs) {
            let field = || format!("inputs.{}", parameter.name);
            let TensorData::String(column) = &tensor.data else {
                return Err(RuntimeError::input(field(), "must be BYTES (text)"));
            };
            let value = column
                .get(row)
                .ok_or_else(|| RuntimeError::input(field(), format!("has no row {row}")))?;
            if value.trim().is_empty() {
                if parameter.required {
                    return Err(RuntimeError::input(
                        field(),
                        format!("row {row} is blank and the parameter is required"),
                    ));
                }
                values.push(parameter.default.as_str());
            } else {
                values.push(value.as_str());
            }
        }
        if values.len() != self.parameters.len() {
            return Err(RuntimeError::input(
                "inputs",
                format!(
                    "{} inputs given where the model takes {}",
                    values.len(),
                    self.parameters.len()
                ),
            ));
        }
        Ok(self
            .messages
            .iter()
            .map(|(role, segments)| ChatMessage {
                role: *role,
                content: spec::render(segments, &values),
            })
            .collect())
    }

    /// The artifact's sampling with the request's overrides, each checked.
    fn sampling_for(
        &self,
        parameters: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Sampling, RuntimeError> {
        let mut sampling = self.sampling.clone();
        let number = |key: &str,
                      range: std::ops::RangeInclusive<f64>|
         -> Result<Option<f64>, RuntimeError> {
            let Some(value) = parameters.get(key) else {
                return Ok(None);
            };
            match value.as_f64() {
                Some(v) if range.contains(&v) => Ok(Some(v)),
                _ => Err(RuntimeError::input(
                    format!("parameters.{key}"),
                    format!(
                        "`{value}` must be a number in [{}, {}]",
                        range.start(),
                        range.end()
                    ),
                )),
            }
        };
        if let Some(t) = number("temperature", 0.0..=2.0)? {
            sampling.temperature = Some(t);
        }
        if let Some(p) = number("top_p", 0.0..=1.0)? {
            sampling.top_p = Some(p);
        }
        if let Some(value) = parameters.get("max_tokens") {
            let ceiling = self.sampling.max_tokens.unwrap_or(self.max_tokens_limit);
            match value.as_u64().and_then(|v| u32::try_from(v).ok()) {
                Some(v) if (1..=ceiling).contains(&v) => sampling.max_tokens = Some(v),
                _ => {
                    return Err(RuntimeError::input(
                        "parameters.max_tokens",
                        format!("`{value}` must be a whole number from 1 to {ceiling}"),
                    ))
                }
            }
        }
        if let Some(value) = parameters.get("seed") {
            sampling.seed = Some(value.as_i64().ok_or_else(|| {
                RuntimeError::input(
                    "parameters.seed",
                    format!("`{value}` must be a whole number"),
                )
            })?);
        }
        if let Some(value) = parameters.get("stop") {
            let refuse = || {
                RuntimeError::input(
                    "parameters.stop",
                    format!(
                        "must be a non-empty string or up to {} of them",
                        spec::MAX_STOP
                    ),
                )
            };
            let stop: Vec<String> = match value {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).ok_or_else(refuse))
                    .collect::<Result<_, _>>()?,
                _ => return Err(refuse()),
            };
            if stop.len() > spec::MAX_STOP || stop.iter().any(String::is_empty) {
                return Err(refuse());
            }
            sampling.stop = Some(stop);
        }
        Ok(sampling)
    }

    async fn complete(&self, body: Bytes) -> Result<Completion, RuntimeError> {
        let Received::Body(answer) =
            upstream::send(&self.upstream, &self.policy, Until::Body, || {
                self.request(&body)
            })
            .await?
        else {
            return Err(RuntimeError::Internal(
                "the upstream client returned a stream where a body was asked".into(),
            ));
        };
        let malformed = |why: String| RuntimeError::Upstream {
            upstream: self.upstream.clone(),
            reason: format!("its answer is not a chat completion: {why}"),
        };
        let response: ChatResponse =
            serde_json::from_slice(&answer).map_err(|e| malformed(e.to_string()))?;
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| malformed("it has no `choices`".into()))?;
        let text = choice
            .message
            .and_then(|m| m.content.or(m.refusal))
            .unwrap_or_default();
        Ok(Completion {
            text,
            finish_reason: choice.finish_reason.unwrap_or_default(),
            usage: response.usage.unwrap_or_default(),
        })
    }

    fn usage(price: Option<config::Price>, tokens: WireUsage, waited: Duration) -> Usage {
        Usage {
            prompt_tokens: tokens.prompt_tokens,
            completion_tokens: tokens.completion_tokens,
            cost: price.map_or(0.0, |p| {
                p.cost(tokens.prompt_tokens, tokens.completion_tokens)
            }),
            upstream_latency_ms: waited.as_secs_f64() * 1000.0,
        }
    }
}

fn string_field(name: &str) -> SignatureField {
    SignatureField {
        name: name.to_string(),
        dtype: DataType::String,
        shape: vec![],
        allow_nan: false,
    }
}

#[async_trait]
impl LoadedModel for LlmModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn platform(&self) -> &'static str {
        "modelops_llm"
    }
    fn memory_bytes(&self) -> usize {
        self.memory
    }
    fn is_compute(&self) -> bool {
        false
    }
    async fn predict(&self, request: PredictRequest) -> Result<Prediction, RuntimeError> {
        if request.explain {
            return Err(RuntimeError::Unsupported(
                "LLM models have no explanations".into(),
            ));
        }
        if request.rows > self.max_rows {
            return Err(RuntimeError::input(
                "inputs",
                format!(
                    "{} rows is more than the {} an LLM model takes in one request",
                    request.rows, self.max_rows
                ),
            ));
        }
        let sampling = self.sampling_for(&request.parameters)?;
        let bodies = (0..request.rows)
            .map(|row| self.body(self.render(&request.inputs, row)?, &sampling, false))
            .collect::<Result<Vec<_>, _>>()?;
        let started = Instant::now();
        let completions: Vec<Completion> = futures::stream::iter(bodies)
            .map(|body| self.complete(body))
            .buffered(self.max_concurrency)
            .try_collect()
            .await?;
        let waited = started.elapsed();
        let mut tokens = WireUsage::default();
        let (mut texts, mut reasons) = (
            Vec::with_capacity(completions.len()),
            Vec::with_capacity(completions.len()),
        );
        for c in completions {
            tokens.prompt_tokens += c.usage.prompt_tokens;
            tokens.completion_tokens += c.usage.completion_tokens;
            texts.push(c.text);
            reasons.push(c.finish_reason);
        }
        let usage = Self::usage(self.price, tokens, waited);
        tracing::debug!(
            upstream = %self.upstream, model = %self.model, rows = request.rows,
            prompt_tokens = usage.prompt_tokens, completion_tokens = usage.completion_tokens,
            latency_ms = usage.upstream_latency_ms, "llm batch completed"
        );
        let rows = request.rows;
        Ok(Prediction {
            outputs: vec![
                Tensor::new("text", vec![rows], TensorData::String(texts)),
                Tensor::new("finish_reason", vec![rows], TensorData::String(reasons)),
            ],
            explanations: None,
            usage: Some(usage),
        })
    }
}

/// Reading a streamed answer: SSE events in, [`StreamEvent`]s out.
struct StreamState {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: SseDecoder,
    pending: VecDeque<Result<StreamEvent, RuntimeError>>,
    idle: Duration,
    upstream: String,
    price: Option<config::Price>,
    started: Instant,
    usage: WireUsage,
    finish_reason: String,
    /// `[DONE]` or an error was seen: nothing more is read.
    ended: bool,
}

impl StreamState {
    async fn next(mut self) -> Option<(Result<StreamEvent, RuntimeError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((event, self));
            }
            if self.ended {
                return None;
            }
            let chunk = match tokio::time::timeout(self.idle, self.body.next()).await {
                Err(_) => Err(RuntimeError::UpstreamTimeout {
                    upstream: self.upstream.clone(),
                    timeout_ms: upstream::millis(self.idle),
                }),
                Ok(Some(Ok(bytes))) => self
                    .decoder
                    .push(&bytes)
                    .map_err(|reason| self.failed(reason)),
                Ok(Some(Err(e))) => Err(self.failed(upstream::describe(&e))),
                Ok(None) => {
                    if let Some(last) = self.decoder.finish() {
                        self.take(&last);
                    }
                    if !self.ended {
                        self.ended = true;
                        self.pending
                            .push_back(Err(self.failed("the stream ended before `[DONE]`".into())));
                    }
                    continue;
                }
            };
            match chunk {
                Ok(events) => {
                    for data in events {
                        self.take(&data);
                        if self.ended {
                            break;
                        }
                    }
                }
                Err(error) => {
                    self.ended = true;
                    self.pending.push_back(Err(error));
                }
            }
        }
    }

    fn failed(&self, reason: String) -> RuntimeError {
        RuntimeError::Upstream {
            upstream: self.upstream.clone(),
            reason,
        }
    }

    /// Turns one event's data into pending events.
    fn take(&mut self, data: &str) {
        if data.trim() == "[DONE]" {
            self.ended = true;
            let usage = LlmModel::usage(self.price, self.usage, self.started.elapsed());
            self.pending.push_back(Ok(StreamEvent::Done {
                finish_reason: std::mem::take(&mut self.finish_reason),
                usage,
            }));
            return;
        }
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                self.ended = true;
                self.pending.push_back(Err(self.failed(format!(
                    "a stream event is not a chat completion chunk: {e}"
                ))));
                return;
            }
        };
        if let Some(error) = chunk.error {
            self.ended = true;
            let body = serde_json::json!({ "error": error }).to_string();
            self.pending
                .push_back(Err(self.failed(upstream::error_message(body.as_bytes()))));
            return;
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage;
        }
        if let Some(choice) = chunk.choices.into_iter().next() {
            if let Some(text) = choice
                .delta
                .and_then(|d| d.content.or(d.refusal))
                .filter(|t| !t.is_empty())
            {
                self.pending.push_back(Ok(StreamEvent::Text(text)));
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = reason;
            }
        }
    }
}
