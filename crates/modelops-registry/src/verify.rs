//! Serving audit-chain verifications: one at a time, and reused while fresh.

use chrono::{DateTime, Utc};
use modelops_core::audit::{ChainBreak, ChainHead, VerifySummary};
use modelops_core::clock::Clock;
use modelops_core::Result;
use std::future::Future;
use std::time::Duration;
use tokio::sync::Mutex;

/// The outcome of verifying the whole chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The summary when every event verified, else the first broken link.
    pub verdict: std::result::Result<VerifySummary, ChainBreak>,
    /// The head recorded beside the events when the verification ended.
    pub head: Option<ChainHead>,
    /// When this verification was made: earlier than now when it is reused.
    pub verified_at: DateTime<Utc>,
}

/// The last verification, behind an async lock that is held while a new
/// one runs, so concurrent callers share one pass over the chain.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    last: Mutex<Option<Verification>>,
}

type Outcome = (std::result::Result<VerifySummary, ChainBreak>, Option<ChainHead>);

impl Cache {
    /// The last verification when it is younger than `reuse` and the chain
    /// has not moved since (`head` is the head now), else a new one.
    pub(crate) async fn get_or_run<F, Fut>(&self, clock: &dyn Clock, reuse: Duration, head: Option<ChainHead>, run: F) -> Result<Verification>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Outcome>>,
    {
        let mut last = self.last.lock().await;
        let now = clock.now();
        if let Some(previous) = last.as_ref() {
            let age = now.signed_duration_since(previous.verified_at);
            let fresh = age >= chrono::Duration::zero() && age.to_std().is_ok_and(|a| a < reuse);
            if fresh && previous.head == head {
                return Ok(previous.clone());
            }
        }
        let (verdict, head) = run().await?;
        let verification = Verification { verdict, head, verified_at: now };
        *last = Some(verification.clone());
        Ok(verification)
    }
}
