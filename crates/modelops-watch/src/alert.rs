//! Webhook deliveries of alerts: a JSON body signed with HMAC-SHA256
//! (`X-Modelops-Signature: sha256=<hex>` over the exact body bytes, with
//! the secret from the server's environment variable the action names),
//! retried with exponential backoff a bounded number of times, every
//! attempt appended to the alert's detail. Deliveries run on tasks of their
//! own, at most [`WebhookConfig::concurrency`] at once: a receiver that
//! hangs or fails costs its own attempts, never the monitoring loop.

use hmac::{Hmac, Mac};
use modelops_core::monitoring::{Alert, AlertAction};
use modelops_registry::Registry;
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Modelops-Signature";
/// The event header (`alert.fire`, `alert.resolve`).
pub const EVENT_HEADER: &str = "X-Modelops-Event";
/// A delivery's id: `<alert id>-<event>`, the same on every retry so a
/// receiver can drop duplicates.
pub const DELIVERY_HEADER: &str = "X-Modelops-Delivery";

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each next one.
    pub backoff: Duration,
    /// The longest one attempt may take, connection included.
    pub timeout: Duration,
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig { attempts: 4, backoff: Duration::from_millis(500), timeout: Duration::from_secs(5), concurrency: 16 }
    }
}

/// Sends webhooks and records their attempts.
#[derive(Clone)]
pub struct Delivery {
    registry: Registry,
    config: WebhookConfig,
    client: reqwest::Client,
    permits: Arc<tokio::sync::Semaphore>,
    /// Each alert's detail as last written, so that concurrent deliveries
    /// of one alert (fire, resolve) append to the same document.
    details: Arc<Mutex<HashMap<i64, Value>>>,
    tasks: Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
    attempts: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Delivery {
    pub fn new(registry: Registry, config: WebhookConfig) -> Self {
        let client = reqwest::Client::builder().timeout(config.timeout).connect_timeout(config.timeout).build().unwrap_or_default();
        Delivery {
            registry,
            permits: Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1))),
            config,
            client,
            details: Arc::new(Mutex::new(HashMap::new())),
            tasks: Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new())),
            attempts: Arc::new(AtomicU64::new(0)),
            failures: Arc::new(AtomicU64::new(0)),
        }
    }

    /// `(attempts, failed attempts)` since start.
    pub fn counts(&self) -> (u64, u64) {
        (self.attempts.load(Ordering::Relaxed), self.failures.load(Ordering::Relaxed))
    }

    /// Waits for every delivery started so far.
    pub async fn settle(&self) {
        let mut tasks = self.tasks.lock().await;
        while tasks.join_next().await.is_some() {}
    }

    /// Starts delivering `body` for `alert` to `action`'s URL.
    pub fn send(&self, alert: &Alert, action: &AlertAction, body: Value) {
        let Some(url) = action.url.clone() else { return };
        let this = self.clone();
        let alert = alert.clone();
        let secret_env = action.secret_env.clone();
        let task = async move {
            let Ok(_permit) = this.permits.clone().acquire_owned().await else { return };
            this.deliver(&alert, &url, secret_env.as_deref(), &body).await;
        };
        match self.tasks.try_lock() {
            Ok(mut tasks) => {
                // Finished deliveries are reaped here, so the set stays small.
                while tasks.try_join_next().is_some() {}
                tasks.spawn(task);
            }
            Err(_) => {
                tokio::spawn(task);
            }
        }
    }

    async fn deliver(&self, alert: &Alert, url: &str, secret_env: Option<&str>, body: &Value) {
        let event = body.get("event").and_then(Value::as_str).unwrap_or("alert").to_string();
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let secret = match secret_env {
            Some(name) => match std::env::var(name) {
                Ok(s) if !s.is_empty() => Some(s),
                _ => {
                    self.record(alert, json!({"event": event, "attempt": 0, "at": chrono::Utc::now(), "url": url,
                        "error": format!("the secret's environment variable `{name}` is not set on the server; nothing was sent")}))
                    .await;
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
            None => None,
        };
        let mut wait = self.config.backoff;
        for attempt in 1..=self.config.attempts.max(1) {
            let started = std::time::Instant::now();
            let mut request = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(EVENT_HEADER, &event)
                .header(DELIVERY_HEADER, format!("{}-{event}", alert.id))
                .body(bytes.clone());
            if let Some(secret) = &secret {
                request = request.header(SIGNATURE_HEADER, signature(secret.as_bytes(), &bytes));
            }
            self.attempts.fetch_add(1, Ordering::Relaxed);
            let outcome = request.send().await;
            let took = started.elapsed().as_millis() as u64;
            let (ok, entry) = match outcome {
                Ok(resp) if resp.status().is_success() => (true, json!({"status": resp.status().as_u16()})),
                Ok(resp) => (false, json!({"status": resp.status().as_u16(), "error": format!("answered {}", resp.status())})),
                Err(e) => (false, json!({"error": if e.is_timeout() { format!("no answer within {} ms", self.config.timeout.as_millis()) } else { e.to_string() }})),
            };
            let mut entry = entry;
            if let Some(o) = entry.as_object_mut() {
                o.insert("event".into(), json!(event));
                o.insert("attempt".into(), json!(attempt));
                o.insert("at".into(), json!(chrono::Utc::now()));
                o.insert("duration_ms".into(), json!(took));
                o.insert("url".into(), json!(url));
            }
            self.record(alert, entry).await;
            if ok {
                return;
            }
            self.failures.fetch_add(1, Ordering::Relaxed);
            if attempt < self.config.attempts {
                tokio::time::sleep(wait).await;
                wait = wait.saturating_mul(2);
            }
        }
        tracing::warn!(alert = alert.id, %url, attempts = self.config.attempts, "webhook delivery failed; every attempt is recorded on the alert");
    }

    /// Appends an attempt to the alert's stored detail.
    async fn record(&self, alert: &Alert, attempt: Value) {
        let detail = {
            let mut details = self.details.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let detail = details.entry(alert.id).or_insert_with(|| alert.detail.clone());
            if !detail.is_object() {
                *detail = json!({});
            }
            if let Some(o) = detail.as_object_mut() {
                let deliveries = o.entry("deliveries").or_insert_with(|| json!([]));
                if let Some(list) = deliveries.as_array_mut() {
                    list.push(attempt);
                }
            }
            detail.clone()
        };
        if let Err(e) = self.registry.monitor_store().update_alert_detail(alert.id, &detail).await {
            tracing::warn!(alert = alert.id, error = %e, "cannot record a webhook attempt");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(signature(b"Jefe", b"what do ya want for nothing?"), "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
