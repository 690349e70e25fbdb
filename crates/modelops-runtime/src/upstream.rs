//! What the two proxying runtimes ([`crate::llm`], [`crate::external`])
//! share about calling an upstream over HTTP: secrets that never print,
//! configuration errors, bounded retries with backoff and `Retry-After`,
//! per-attempt and total timeouts, bounded answer bodies, and the upstream's
//! error message pulled out of its answer.
//!
//! Nothing here logs a request or answer body, a header value or a URL's
//! query: the URLs are refused at configuration time if they carry
//! credentials, and reqwest's errors are stripped of their URL anyway.

use crate::error::RuntimeError;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use std::time::{Duration, Instant};

/// A credential read from the environment. It has no `Display` and no
/// `Serialize`, and its `Debug` prints `<redacted>`, so it cannot reach a log
/// line, an error message or the audit log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that puts it into a request header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A configuration value the server cannot start with: `key` is its dotted
/// path in the configuration file (`llm.upstreams.openai.api_key_env`).
/// Never holds a secret's value, only the name of where it comes from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid `{key}`: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Checks an upstream's base URL: `http` or `https`, with a host, and no
/// user, password, query or fragment (they would carry credentials into the
/// configuration's `Debug` output and into errors).
pub(crate) fn parse_base_url(key: &str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text)
        .map_err(|e| ConfigError::new(key, format!("`{text}` is not a URL: {e}")))?;
    check_url(&url)
        .map_err(|reason| ConfigError::new(key, format!("`{}`: {reason}", redacted_url(&url))))?;
    Ok(url)
}

/// The reason `url` may not be called, if any (see [`parse_base_url`]).
pub(crate) fn check_url(url: &Url) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme `{}` is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("carries a user or password: credentials come from the configuration's environment variables".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("has a query or fragment: give the base address only".into());
    }
    Ok(())
}

/// `url` with any user, password and query removed, for messages.
pub(crate) fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// How one upstream is called: attempts, waits and bounds.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubles per retry, with jitter in [½, 1].
    pub backoff: Duration,
    /// The longest `Retry-After` honoured; a longer one ends the retries.
    pub max_retry_after: Duration,
    /// One attempt (up to the answer's headers, or its whole body).
    pub attempt_timeout: Duration,
    /// All attempts and waits together.
    pub total_timeout: Duration,
    /// The largest answer body read.
    pub max_body_bytes: usize,
}

/// What a successful call yields.
pub(crate) enum Received {
    /// The whole body of a 2xx answer.
    Body(Bytes),
    /// A 2xx answer whose body is left to the caller (streaming).
    Stream(Response),
}

/// Whether an attempt ends with the answer's headers or its whole body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    Headers,
    Body,
}

enum Attempt {
    Done(Received),
    /// A non-2xx answer.
    Refused {
        status: StatusCode,
        retry_after: Option<Duration>,
        message: String,
    },
    /// The connection failed or broke: worth another attempt.
    Broken(String),
    /// A 2xx answer longer than the limit: not retried.
    Oversized(usize),
}

/// Sends the request `build` makes (once per attempt) under `policy`.
///
/// Retried: connection errors, a body that broke off, and answers 408, 409,
/// 429 and 5xx, after an exponential backoff or the answer's `Retry-After`
/// (`retry-after-ms` too, as OpenAI sends it) when that is not above the
/// policy's cap. Not retried: other 4xx (→ [`RuntimeError::Upstream`] with
/// the upstream's own message) and a timeout (→
/// [`RuntimeError::UpstreamTimeout`]): an attempt that used its whole budget
/// once would most likely do it again while the caller waits.
pub(crate) async fn send(
    upstream: &str,
    policy: &RetryPolicy,
    until: Until,
    build: impl Fn() -> RequestBuilder,
) -> Result<Received, RuntimeError> {
    let started = Instant::now();
    let mut attempt_no: u32 = 0;
    loop {
        let remaining = policy.total_timeout.saturating_sub(started.elapsed());
        let (limit, limit_ms) = if remaining < policy.attempt_timeout {
            (remaining, policy.total_timeout)
        } else {
            (policy.attempt_timeout, policy.attempt_timeout)
        };
        let timed_out = || RuntimeError::UpstreamTimeout {
            upstream: upstream.to_string(),
            timeout_ms: millis(limit_ms),
        };
        if limit.is_zero() {
            return Err(timed_out());
        }
        let outcome =
            match tokio::time::timeout(limit, attempt(build(), until, policy.max_body_bytes)).await
            {
                Err(_) => return Err(timed_out()),
                Ok(Err(error)) => return Err(error),
                Ok(Ok(outcome)) => outcome,
            };
        let attempts = attempt_no + 1;
        let (reason, retry_after) = match outcome {
            Attempt::Done(received) => {
                tracing::debug!(
                    upstream,
                    attempts,
                    elapsed_ms = millis(started.elapsed()),
                    "upstream answered"
                );
                return Ok(received);
            }
            Attempt::Refused {
                status,
                retry_after,
                message,
            } => {
                let reason = format!("answered {status}: {message}");
                if !retryable(status) {
                    return Err(RuntimeError::Upstream {
                        upstream: upstream.to_string(),
                        reason,
                    });
                }
                (reason, retry_after)
            }
            Attempt::Broken(reason) => (reason, None),
            Attempt::Oversized(limit) => {
                return Err(RuntimeError::Upstream {
                    upstream: upstream.to_string(),
                    reason: format!("its answer is larger than the {limit} bytes allowed"),
                })
            }
        };
        let give_up = |why: &str| RuntimeError::Upstream {
            upstream: upstream.to_string(),
            reason: format!(
                "{reason} ({attempts} attempt{}{why})",
                if attempts == 1 { "" } else { "s" }
            ),
        };
        if attempt_no >= policy.max_retries {
            return Err(give_up(""));
        }
        let wait = match retry_after {
            Some(asked) if asked > policy.max_retry_after => {
                return Err(give_up(&format!(
                    "; it asked to retry after {} ms, more than the {} ms allowed",
                    millis(asked),
                    millis(policy.max_retry_after)
                )));
            }
            Some(asked) => asked,
            None => backoff(policy.backoff, attempt_no),
        };
        if started.elapsed() + wait >= policy.total_timeout {
            return Err(give_up(&format!(
                "; no time left within {} ms for another",
                millis(policy.total_timeout)
            )));
        }
        tracing::debug!(upstream, attempts, wait_ms = millis(wait), reason = %reason, "retrying upstream call");
        tokio::time::sleep(wait).await;
        attempt_no += 1;
    }
}

async fn attempt(
    request: RequestBuilder,
    until: Until,
    max_body: usize,
) -> Result<Attempt, RuntimeError> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_builder() => {
            return Err(RuntimeError::Internal(format!(
                "cannot build the upstream request: {}",
                e.without_url()
            )))
        }
        Err(e) => return Ok(Attempt::Broken(describe(&e))),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(match until {
            Until::Headers => Attempt::Done(Received::Stream(response)),
            Until::Body => match read_limited(response, max_body).await {
                Ok(body) => Attempt::Done(Received::Body(body)),
                Err(BodyError::TooLarge) => Attempt::Oversized(max_body),
                Err(BodyError::Broken(reason)) => Attempt::Broken(reason),
            },
        });
    }
    let retry_after = retry_after(response.headers());
    // An error body is small; what does not fit is cut, not an error.
    let body = read_limited(response, 64 * 1024).await.unwrap_or_default();
    Ok(Attempt::Refused {
        status,
        retry_after,
        message: error_message(&body),
    })
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// `base · 2^attempt`, times a jitter in [½, 1] so that clients refused
/// together do not come back together.
fn backoff(base: Duration, attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    let exp = base.saturating_mul(1u32 << attempt.min(16));
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    #[allow(clippy::cast_precision_loss)]
    let jitter = 0.5 + (random % 1024) as f64 / 2048.0;
    exp.mul_f64(jitter)
}

/// `retry-after-ms` (milliseconds) or `Retry-After` (seconds); an HTTP
/// date is not followed (the backoff applies).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    if let Some(ms) = number("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    number("retry-after").map(Duration::from_secs_f64)
}

pub(crate) enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads a body of at most `limit` bytes, refusing a longer one without
/// holding it.
pub(crate) async fn read_limited(response: Response, limit: usize) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = BytesMut::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| BodyError::Broken(describe(&e)))?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A reqwest error for a message: what failed, without the URL.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    // The innermost cause says what the network did (refused, reset, …).
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    format!("{kind}: {cause}")
}

/// The upstream's own message from an error body: OpenAI's
/// `{"error": {"message", "type", "code"}}`, OIP's `{"error": "…"}`, or
/// else the start of the body as text. Bounded and single-line.
pub(crate) fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let from_json = parsed.as_ref().and_then(|v| match v.get("error")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => {
            let message = o
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("no message");
            let mut details = Vec::new();
            for key in ["type", "code"] {
                match o.get(key) {
                    Some(serde_json::Value::String(s)) => details.push(format!("{key} `{s}`")),
                    Some(serde_json::Value::Number(n)) => details.push(format!("{key} `{n}`")),
                    _ => {}
                }
            }
            Some(if details.is_empty() {
                message.to_string()
            } else {
                format!("{message} ({})", details.join(", "))
            })
        }
        _ => None,
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = text.trim();
    if text.is_empty() {
        return "no message".into();
    }
    bounded(text, 500)
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn error_messages_of_both_protocols() {
        assert_eq!(
            error_message(br#"{"error": {"message": "Invalid model", "type": "invalid_request_error", "code": "model_not_found"}}"#),
            "Invalid model (type `invalid_request_error`, code `model_not_found`)"
        );
        assert_eq!(
            error_message(br#"{"error": "unknown input `x`"}"#),
            "unknown input `x`"
        );
        assert_eq!(error_message(b"bad\ngateway"), "bad gateway");
        assert_eq!(error_message(b""), "no message");
        assert_eq!(
            error_message("é".repeat(600).as_bytes()).chars().count(),
            501
        );
    }

    #[test]
    fn base_urls_carry_no_credentials() {
        assert!(parse_base_url("k", "https://api.openai.com/v1").is_ok());
        let err = parse_base_url("k", "https://user:pw@host/v1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("user or password") && !err.contains("pw"),
            "{err}"
        );
        let err = parse_base_url("k", "https://host/v1?key=abc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("query") && !err.contains("abc"), "{err}");
        assert!(parse_base_url("k", "ftp://host")
            .unwrap_err()
            .to_string()
            .contains("scheme `ftp`"));
    }

    #[test]
    fn backoff_doubles_with_jitter() {
        for attempt in 0..4 {
            let d = backoff(Duration::from_millis(100), attempt);
            let full = Duration::from_millis(100 * (1 << attempt));
            assert!(d >= full / 2 && d <= full, "{d:?} for attempt {attempt}");
        }
    }

    #[test]
    fn retry_after_in_seconds_or_milliseconds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
