//! External models: served elsewhere over the Open Inference Protocol (V2,
//! REST/JSON) and proxied, so they are governed, logged and monitored here
//! and computed there (KServe, Triton, Seldon MLServer, OpenVINO Model
//! Server, TorchServe's KServe wrapper, or another modelops).
//!
//! # The artifact (JSON, or YAML)
//!
//! ```json
//! {
//!   "url": "http://triton.internal:8000",
//!   "model": "fraud-scorer",
//!   "version": "3",
//!   "inputs":  [{"name": "features", "dtype": "float32", "shape": [30]}],
//!   "outputs": [{"name": "probability", "dtype": "float32", "shape": []},
//!               {"name": "label", "dtype": "string", "shape": []}],
//!   "timeout_ms": 2000,
//!   "credentials": "triton"
//! }
//! ```
//!
//! - `url`: the server's base address (a path prefix is kept, for gateways
//!   such as `http://gw/seldon/ns/model`); `http` or `https`, without user,
//!   password, query or fragment. When the configuration lists
//!   `allowed_url_prefixes`, the URL must be under one of them.
//! - `model`, `version` (optional): the upstream's names; requests go to
//!   `POST <url>/v2/models/<model>[/versions/<version>]/infer`.
//! - `inputs`, `outputs`: required, in the registry's signature form (`dtype`
//!   `bool`, `int32`, `int64`, `float32`, `float64`, `string`; `shape`
//!   without the batch dimension, `-1` for a variable one). The signature is
//!   pinned in the immutable artifact rather than fetched from the
//!   upstream's metadata: loading stays offline and synchronous, and an
//!   upstream that changes its contract is detected (its answer is refused,
//!   naming the output) instead of silently followed.
//! - `timeout_ms` (optional): the whole call's bound, retries included;
//!   the configuration's `default_timeout_ms` when absent, and never above
//!   its `max_timeout_ms`.
//! - `credentials` (optional): the name of a configured credential, sent as
//!   a header; the secret itself is only in the server's environment.
//!
//! # Calls
//!
//! A request's tensors go as one OIP inference request: each input with
//! its OIP datatype (`BOOL`, `INT32`, `INT64`, `FP32`, `FP64`, `BYTES`), its
//! shape including the batch dimension and its data flat, row-major; the
//! signature's outputs are asked for by name; the request's `parameters` are
//! passed on. The answer's outputs are read by name, converted to the
//! signature's datatypes (integers widen, `FP16`/`FP32`/`FP64` convert, JSON
//! `null` is NaN) and checked (shape, row count); other outputs are ignored.
//! Connection errors, 408, 409, 429 and 5xx are retried (the configuration's
//! `max_retries`) within the timeout; an error answer (`{"error": "…"}`) is
//! [`RuntimeError::Upstream`] (502) carrying the upstream's message, and a
//! call over its time [`RuntimeError::UpstreamTimeout`] (504).

mod oip;

use crate::tensor::{check_inputs, Tensor, TensorData};
use crate::upstream::{
    self, parse_base_url, redacted_url, ConfigError, Received, RetryPolicy, Secret, Until,
};
use crate::{LoadedModel, PredictRequest, Prediction, RuntimeError};
use async_trait::async_trait;
use bytes::Bytes;
use modelops_core::version::{Signature, SignatureField};
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Timeouts, the allow-list and credentials for external servers: the
/// `[external]` section of the server's configuration, then
/// [`ExternalConfig::resolve`]d against the environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalConfig {
    /// A call's bound when the artifact sets none.
    pub default_timeout_ms: u64,
    /// The highest bound an artifact may set (higher ones are cut to it).
    pub max_timeout_ms: u64,
    /// Retries after the first attempt, within the call's bound.
    pub max_retries: u32,
    pub retry_backoff_ms: u64,
    /// The longest `Retry-After` waited for; a longer one fails the call.
    pub max_retry_after_ms: u64,
    /// The largest answer read.
    pub max_response_bytes: usize,
    /// When not empty, the only places external models may point at:
    /// base URLs (`https://models.internal/`) that a model's URL must be
    /// under (same scheme, host and port; the path at or below the
    /// prefix's). Empty allows any http(s) URL: set it wherever the people
    /// who register models should not make this server call arbitrary
    /// addresses.
    pub allowed_url_prefixes: Vec<String>,
    /// By the name an artifact's `credentials` gives.
    pub credentials: BTreeMap<String, ExternalCredential>,
}

impl Default for ExternalConfig {
    fn default() -> Self {
        Self {
            default_timeout_ms: 30_000,
            max_timeout_ms: 300_000,
            max_retries: 1,
            retry_backoff_ms: 100,
            max_retry_after_ms: 5_000,
            max_response_bytes: 64 * 1024 * 1024,
            allowed_url_prefixes: Vec::new(),
            credentials: BTreeMap::new(),
        }
    }
}

/// A header sent to an external server: `<header>: [<scheme> ]<secret>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalCredential {
    /// `authorization` unless given (`x-api-key`, …).
    #[serde(default = "authorization")]
    pub header: String,
    /// Put before the secret with a space, e.g. `Bearer`.
    #[serde(default)]
    pub scheme: Option<String>,
    /// The environment variable holding the secret.
    pub value_env: String,
    /// Filled by [`ExternalConfig::resolve`] (or by code, in tests).
    #[serde(skip)]
    pub value: Option<Secret>,
}

fn authorization() -> String {
    "authorization".into()
}

impl ExternalConfig {
    /// Checks the configuration and reads each credential's secret from the
    /// variable its `value_env` names through `env`. An unset or empty
    /// variable stops start-up, naming the variable.
    pub fn resolve(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for (key, value) in [
            ("default_timeout_ms", self.default_timeout_ms),
            ("max_timeout_ms", self.max_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(
                    format!("external.{key}"),
                    "`0` must be at least 1",
                ));
            }
        }
        if self.default_timeout_ms > self.max_timeout_ms {
            return Err(ConfigError::new(
                "external.default_timeout_ms",
                format!(
                    "`{}` is above `max_timeout_ms` ({})",
                    self.default_timeout_ms, self.max_timeout_ms
                ),
            ));
        }
        if self.max_retries > 10 {
            return Err(ConfigError::new(
                "external.max_retries",
                format!("`{}` is above the limit of 10", self.max_retries),
            ));
        }
        for (i, prefix) in self.allowed_url_prefixes.iter().enumerate() {
            parse_base_url(&format!("external.allowed_url_prefixes[{i}]"), prefix)?;
        }
        for (name, credential) in &mut self.credentials {
            let key = format!("external.credentials.{name}");
            if HeaderName::from_bytes(credential.header.as_bytes()).is_err() {
                return Err(ConfigError::new(
                    format!("{key}.header"),
                    format!("`{}` is not a header name", credential.header),
                ));
            }
            match env(&credential.value_env) {
                Some(value) if !value.trim().is_empty() => {
                    credential.value = Some(Secret::new(value.trim()))
                }
                _ => {
                    return Err(ConfigError::new(
                        format!("{key}.value_env"),
                        format!(
                            "the environment variable `{}` is not set or empty",
                            credential.value_env
                        ),
                    ))
                }
            }
        }
        Ok(self)
    }

    /// [`ExternalConfig::resolve`] against the process environment.
    pub fn resolve_from_env(self) -> Result<Self, ConfigError> {
        self.resolve(|name| std::env::var(name).ok())
    }
}

/// The artifact as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    url: String,
    model: String,
    #[serde(default)]
    version: Option<String>,
    inputs: Vec<SignatureField>,
    outputs: Vec<SignatureField>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    credentials: Option<String>,
}

/// A loaded external version: where to send, what to expect.
pub struct ExternalModel {
    signature: Signature,
    /// The model's address without `/infer`, naming the upstream in errors.
    upstream: String,
    endpoint: Url,
    header: Option<(HeaderName, HeaderValue)>,
    client: reqwest::Client,
    policy: RetryPolicy,
    memory: usize,
}

impl ExternalModel {
    /// Parses and checks the artifact against `config`. Makes no network
    /// call.
    pub fn load(artifact: &[u8], config: &ExternalConfig) -> Result<Self, RuntimeError> {
        let spec: Spec = crate::spec::parse(artifact, "external model spec")?;
        let load = |field: &str, reason: String| RuntimeError::Load(format!("{field}: {reason}"));
        let url = parse_base_url("url", &spec.url).map_err(|e| load("url", e.reason))?;
        if !config.allowed_url_prefixes.is_empty()
            && !config
                .allowed_url_prefixes
                .iter()
                .filter_map(|p| Url::parse(p).ok())
                .any(|p| is_under(&url, &p))
        {
            return Err(load(
                "url",
                format!(
                    "`{}` is not under a prefix this server allows (allowed: {})",
                    redacted_url(&url),
                    config
                        .allowed_url_prefixes
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        if spec.model.trim().is_empty() {
            return Err(load("model", "is empty".into()));
        }
        if spec.version.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(load(
                "version",
                "is empty: leave it out to let the server choose".into(),
            ));
        }
        for (side, fields) in [("inputs", &spec.inputs), ("outputs", &spec.outputs)] {
            if fields.is_empty() {
                return Err(load(
                    side,
                    "is empty: the signature is part of the artifact".into(),
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, f) in fields.iter().enumerate() {
                if f.name.trim().is_empty() || !seen.insert(f.name.as_str()) {
                    return Err(load(
                        &format!("{side}[{i}].name"),
                        format!("`{}` is empty or listed twice", f.name),
                    ));
                }
                if let Some(d) = f.shape.iter().find(|d| **d < -1 || **d == 0) {
                    return Err(load(
                        &format!("{side}[{i}].shape"),
                        format!("dimension `{d}` must be positive or -1"),
                    ));
                }
            }
        }
        let header = match &spec.credentials {
            None => None,
            Some(name) => Some(credential_header(name, config)?),
        };
        let mut model_url = url;
        {
            let mut segments = model_url
                .path_segments_mut()
                .map_err(|()| load("url", "cannot take a path".into()))?;
            segments
                .pop_if_empty()
                .extend(["v2", "models", spec.model.as_str()]);
            if let Some(version) = &spec.version {
                segments.extend(["versions", version.as_str()]);
            }
        }
        let upstream = redacted_url(&model_url);
        let mut endpoint = model_url;
        endpoint
            .path_segments_mut()
            .map_err(|()| load("url", "cannot take a path".into()))?
            .push("infer");
        let timeout = Duration::from_millis(
            spec.timeout_ms
                .unwrap_or(config.default_timeout_ms)
                .clamp(1, config.max_timeout_ms.max(1)),
        );
        // Redirects are not followed: they could leave the allow-list or
        // carry the key elsewhere.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| {
                RuntimeError::Load(format!("cannot build an HTTP client: {}", e.without_url()))
            })?;
        let outputs = spec
            .outputs
            .into_iter()
            .map(|f| SignatureField {
                allow_nan: true,
                ..f
            })
            .collect();
        Ok(Self {
            signature: Signature {
                inputs: spec.inputs,
                outputs,
            },
            upstream,
            endpoint,
            header,
            client,
            policy: RetryPolicy {
                max_retries: config.max_retries,
                backoff: Duration::from_millis(config.retry_backoff_ms),
                max_retry_after: Duration::from_millis(config.max_retry_after_ms),
                attempt_timeout: timeout,
                total_timeout: timeout,
                max_body_bytes: config.max_response_bytes,
            },
            memory: artifact.len() * 2 + std::mem::size_of::<Self>(),
        })
    }

    /// The model's address on the upstream, naming it in metrics and
    /// messages.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    fn empty_prediction(&self) -> Prediction {
        let outputs = self
            .signature
            .outputs
            .iter()
            .map(|f| {
                let shape = std::iter::once(0)
                    .chain(f.shape.iter().map(|d| usize::try_from(*d).unwrap_or(0)))
                    .collect();
                Tensor::new(f.name.clone(), shape, TensorData::empty(f.dtype))
            })
            .collect();
        Prediction {
            outputs,
            explanations: None,
            usage: None,
        }
    }
}

fn credential_header(
    name: &str,
    config: &ExternalConfig,
) -> Result<(HeaderName, HeaderValue), RuntimeError> {
    let Some(credential) = config.credentials.get(name) else {
        let configured: Vec<String> = config
            .credentials
            .keys()
            .map(|k| format!("`{k}`"))
            .collect();
        return Err(RuntimeError::Load(format!(
            "credentials: `{name}` is not configured on this server (configured: {})",
            if configured.is_empty() {
                "none; see the `[external.credentials]` configuration".to_string()
            } else {
                configured.join(", ")
            }
        )));
    };
    let Some(secret) = &credential.value else {
        return Err(RuntimeError::Load(format!(
            "credentials: `{name}` has no value: its environment variable was not read"
        )));
    };
    let header = HeaderName::from_bytes(credential.header.as_bytes()).map_err(|_| {
        RuntimeError::Load(format!("credentials: `{name}` names an invalid header"))
    })?;
    let text = match &credential.scheme {
        Some(scheme) => format!("{scheme} {}", secret.expose()),
        None => secret.expose().to_string(),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        RuntimeError::Load(format!(
            "credentials: `{name}` holds characters a header cannot carry"
        ))
    })?;
    value.set_sensitive(true);
    Ok((header, value))
}

/// Whether `url` is at or below `prefix`: same scheme, host and port, and
/// a path at or under the prefix's, segment by segment.
fn is_under(url: &Url, prefix: &Url) -> bool {
    let base = prefix.path().trim_end_matches('/');
    url.scheme() == prefix.scheme()
        && url.host_str() == prefix.host_str()
        && url.port_or_known_default() == prefix.port_or_known_default()
        && (base.is_empty() || url.path() == base || url.path().starts_with(&format!("{base}/")))
}

#[async_trait]
impl LoadedModel for ExternalModel {
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn platform(&self) -> &'static str {
        "modelops_external"
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
                "external models have no explanations here".into(),
            ));
        }
        if request.rows == 0 {
            return Ok(self.empty_prediction());
        }
        let body = oip::request_body(&request, &self.signature)
            .map(Bytes::from)
            .map_err(|e| {
                RuntimeError::Internal(format!("cannot encode the inference request: {e}"))
            })?;
        let build = || {
            let mut r = self
                .client
                .post(self.endpoint.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some((name, value)) = &self.header {
                r = r.header(name.clone(), value.clone());
            }
            r
        };
        let started = std::time::Instant::now();
        let Received::Body(answer) =
            upstream::send(&self.upstream, &self.policy, Until::Body, build).await?
        else {
            return Err(RuntimeError::Internal(
                "the upstream client returned a stream where a body was asked".into(),
            ));
        };
        tracing::debug!(upstream = %self.upstream, rows = request.rows, latency_ms = upstream::millis(started.elapsed()), "external inference answered");
        let failed = |reason: String| RuntimeError::Upstream {
            upstream: self.upstream.clone(),
            reason,
        };
        let tensors = oip::response_tensors(&answer, &self.signature.outputs).map_err(failed)?;
        let expected = Signature {
            inputs: self.signature.outputs.clone(),
            outputs: vec![],
        };
        let (outputs, rows) = check_inputs(&expected, tensors).map_err(|e| match e {
            RuntimeError::Input { field, reason } => failed(format!(
                "its output `{}` does not fit the signature: {reason}",
                field.trim_start_matches("inputs.")
            )),
            other => other,
        })?;
        if rows != request.rows {
            return Err(failed(format!(
                "it answered {rows} rows for {} asked",
                request.rows
            )));
        }
        Ok(Prediction {
            outputs,
            explanations: None,
            usage: None,
        })
    }
}
