//! The `[llm]` section of the server's configuration: upstreams by name,
//! prices by model, and the bounds every LLM model is held to.

use crate::upstream::{parse_base_url, ConfigError, RetryPolicy, Secret};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Upstreams and prices. Deserialised from the `[llm]` TOML section, then
/// [`LlmConfig::resolve`]d against the environment, which checks it and
/// reads each upstream's key from the variable its `api_key_env` names.
/// Keys are never in the file, the registry, a log line or an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// By the name an artifact's `upstream` gives.
    pub upstreams: BTreeMap<String, LlmUpstream>,
    /// By `"<upstream>/<model>"` or else by `"<model>"`, the model named in
    /// the artifact. A model without a price costs 0.
    pub prices: BTreeMap<String, Price>,
    /// Rows one prediction may carry (each is one upstream call).
    pub max_rows: usize,
    /// The highest `max_tokens` a request may ask for when the artifact
    /// sets none.
    pub max_tokens_limit: u32,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            upstreams: BTreeMap::new(),
            prices: BTreeMap::new(),
            max_rows: 64,
            max_tokens_limit: 4096,
        }
    }
}

/// An OpenAI-compatible server: OpenAI itself, Azure's OpenAI-compatible
/// endpoint, vLLM, Ollama, LiteLLM, TensorZero…
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmUpstream {
    /// Up to and including the API version: `https://api.openai.com/v1`;
    /// requests go to `<base_url>/chat/completions`.
    pub base_url: String,
    /// The environment variable holding the key, sent as
    /// `Authorization: Bearer <key>`. None for upstreams without keys.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Filled by [`LlmConfig::resolve`] (or by code, in tests); a key in the
    /// file is refused as an unknown field.
    #[serde(skip)]
    pub api_key: Option<Secret>,
    /// One attempt, up to the whole answer (streaming: up to the headers,
    /// then between two chunks).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// All attempts and backoffs of one row together.
    #[serde(default = "default_total_timeout_ms")]
    pub total_timeout_ms: u64,
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// The first backoff; doubled per retry, with jitter.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// The longest `Retry-After` waited for; a longer one fails the call.
    #[serde(default = "default_max_retry_after_ms")]
    pub max_retry_after_ms: u64,
    /// Rows of one batch in flight at once.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

fn default_timeout_ms() -> u64 {
    60_000
}
fn default_total_timeout_ms() -> u64 {
    120_000
}
fn default_max_retries() -> u32 {
    2
}
fn default_retry_backoff_ms() -> u64 {
    250
}
fn default_max_retry_after_ms() -> u64 {
    10_000
}
fn default_max_concurrency() -> usize {
    4
}

/// The largest answer read from an LLM upstream (one completion).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

impl LlmUpstream {
    /// An upstream at `base_url` with the defaults and no key.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key_env: None,
            api_key: None,
            timeout_ms: default_timeout_ms(),
            total_timeout_ms: default_total_timeout_ms(),
            max_retries: default_max_retries(),
            retry_backoff_ms: default_retry_backoff_ms(),
            max_retry_after_ms: default_max_retry_after_ms(),
            max_concurrency: default_max_concurrency(),
        }
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.max_retries,
            backoff: Duration::from_millis(self.retry_backoff_ms),
            max_retry_after: Duration::from_millis(self.max_retry_after_ms),
            attempt_timeout: Duration::from_millis(self.timeout_ms),
            total_timeout: Duration::from_millis(self.total_timeout_ms),
            max_body_bytes: MAX_ANSWER_BYTES,
        }
    }

    fn check(&self, key: &str) -> Result<(), ConfigError> {
        parse_base_url(&format!("{key}.base_url"), &self.base_url)?;
        for (name, value) in [
            ("timeout_ms", self.timeout_ms),
            ("total_timeout_ms", self.total_timeout_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(
                    format!("{key}.{name}"),
                    "`0` must be at least 1",
                ));
            }
        }
        if self.total_timeout_ms < self.timeout_ms {
            return Err(ConfigError::new(
                format!("{key}.total_timeout_ms"),
                format!(
                    "`{}` is below `timeout_ms` ({}): one attempt could never use its time",
                    self.total_timeout_ms, self.timeout_ms
                ),
            ));
        }
        if self.max_retries > 10 {
            return Err(ConfigError::new(
                format!("{key}.max_retries"),
                format!("`{}` is above the limit of 10", self.max_retries),
            ));
        }
        if self.max_concurrency == 0 {
            return Err(ConfigError::new(
                format!("{key}.max_concurrency"),
                "`0` must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Price of a model's tokens, in the currency the operator chooses (the
/// same for every model: costs are summed).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub prompt_per_million: f64,
    pub completion_per_million: f64,
}

impl Price {
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let (p, c) = (prompt_tokens as f64, completion_tokens as f64);
        (p * self.prompt_per_million + c * self.completion_per_million) / 1_000_000.0
    }
}

impl LlmConfig {
    /// Checks the configuration and reads every upstream's key from the
    /// variable its `api_key_env` names through `env` (the binary passes
    /// `|name| std::env::var(name).ok()`). A variable that is unset or empty
    /// stops start-up, naming the variable (never a value).
    pub fn resolve(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for (name, upstream) in &mut self.upstreams {
            let key = format!("llm.upstreams.{name}");
            upstream.check(&key)?;
            if let Some(var) = &upstream.api_key_env {
                match env(var) {
                    Some(value) if !value.trim().is_empty() => {
                        upstream.api_key = Some(Secret::new(value.trim()))
                    }
                    _ => {
                        return Err(ConfigError::new(
                            format!("{key}.api_key_env"),
                            format!("the environment variable `{var}` is not set or empty"),
                        ))
                    }
                }
            }
        }
        for (model, price) in &self.prices {
            for (name, value) in [
                ("prompt_per_million", price.prompt_per_million),
                ("completion_per_million", price.completion_per_million),
            ] {
                if !value.is_finite() || value < 0.0 {
                    return Err(ConfigError::new(
                        format!("llm.prices.\"{model}\".{name}"),
                        format!("`{value}` must be a number ≥ 0"),
                    ));
                }
            }
        }
        if self.max_rows == 0 {
            return Err(ConfigError::new("llm.max_rows", "`0` must be at least 1"));
        }
        if self.max_tokens_limit == 0 {
            return Err(ConfigError::new(
                "llm.max_tokens_limit",
                "`0` must be at least 1",
            ));
        }
        Ok(self)
    }

    /// [`LlmConfig::resolve`] against the process environment.
    pub fn resolve_from_env(self) -> Result<Self, ConfigError> {
        self.resolve(|name| std::env::var(name).ok())
    }

    /// The price of `model` on `upstream`: `"<upstream>/<model>"` first,
    /// then `"<model>"`.
    pub fn price(&self, upstream: &str, model: &str) -> Option<Price> {
        self.prices
            .get(&format!("{upstream}/{model}"))
            .or_else(|| self.prices.get(model))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LlmConfig {
        serde_norway::from_str(text).unwrap()
    }

    #[test]
    fn keys_come_from_the_environment_and_never_print() {
        let config = parse("upstreams:\n  openai:\n    base_url: https://api.openai.com/v1\n    api_key_env: OPENAI_API_KEY\n");
        let resolved = config
            .clone()
            .resolve(|name| (name == "OPENAI_API_KEY").then(|| "sk-secret-1".to_string()))
            .unwrap();
        assert_eq!(
            resolved.upstreams["openai"]
                .api_key
                .as_ref()
                .map(Secret::expose),
            Some("sk-secret-1")
        );
        assert!(!format!("{resolved:?}").contains("sk-secret-1"));
        let err = config.resolve(|_| None).unwrap_err().to_string();
        assert_eq!(err, "invalid `llm.upstreams.openai.api_key_env`: the environment variable `OPENAI_API_KEY` is not set or empty");
    }

    #[test]
    fn a_key_in_the_file_is_refused() {
        let err = serde_norway::from_str::<LlmConfig>(
            "upstreams:\n  openai:\n    base_url: https://x/v1\n    api_key: sk-in-file\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `api_key`"), "{err}");
        assert!(!err.contains("sk-in-file"), "{err}");
    }

    #[test]
    fn bounds_are_checked() {
        let err = |yaml: &str| parse(yaml).resolve(|_| None).unwrap_err().key;
        assert_eq!(
            err("upstreams:\n  a:\n    base_url: https://x/v1\n    timeout_ms: 0\n"),
            "llm.upstreams.a.timeout_ms"
        );
        assert_eq!(
            err("upstreams:\n  a:\n    base_url: https://x/v1\n    total_timeout_ms: 10\n"),
            "llm.upstreams.a.total_timeout_ms"
        );
        assert_eq!(
            err("upstreams:\n  a:\n    base_url: x\n"),
            "llm.upstreams.a.base_url"
        );
        assert_eq!(
            err("prices:\n  m:\n    prompt_per_million: -1\n    completion_per_million: 1\n"),
            "llm.prices.\"m\".prompt_per_million"
        );
    }

    #[test]
    fn prices_by_upstream_and_model_then_model() {
        let config = parse(
            "prices:\n  gpt-4o-mini: {prompt_per_million: 0.15, completion_per_million: 0.6}\n  azure/gpt-4o-mini: {prompt_per_million: 0.2, completion_per_million: 0.8}\n",
        );
        assert_eq!(
            config
                .price("openai", "gpt-4o-mini")
                .map(|p| p.prompt_per_million),
            Some(0.15)
        );
        assert_eq!(
            config
                .price("azure", "gpt-4o-mini")
                .map(|p| p.prompt_per_million),
            Some(0.2)
        );
        assert_eq!(config.price("openai", "other"), None);
        let cost = Price {
            prompt_per_million: 0.15,
            completion_per_million: 0.6,
        }
        .cost(1_000, 500);
        assert!((cost - 0.00045).abs() < 1e-12);
    }
}
