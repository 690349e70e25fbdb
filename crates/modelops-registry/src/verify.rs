//! Serving audit-chain verifications: one pass at a time, shared by every
//! caller that arrives while it runs, and reused while the chain is unchanged.
//!
//! A pass runs as a task of its own, so a caller that gives up (a request
//! timeout, a closed connection) does not throw the work away: the next
//! caller picks up the same pass. The task ends with the pass; the runtime
//! ends it at shutdown.

use chrono::{DateTime, Utc};
use futures::future::{BoxFuture, FutureExt, Shared};
use modelops_core::audit::{ChainBreak, ChainHead, VerifySummary};
use modelops_core::clock::Clock;
use modelops_core::{Error, Result};
use std::sync::Mutex;
use std::time::Duration;

/// The outcome of verifying the whole chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// The summary when every event verified, else the first broken link.
    pub verdict: std::result::Result<VerifySummary, ChainBreak>,
    /// The head recorded beside the events when the verification ended.
    pub head: Option<ChainHead>,
    /// When this verification started: earlier than now when it is reused.
    pub verified_at: DateTime<Utc>,
    /// The sizes of the signed checkpoints whose root the log reproduced.
    pub checkpoints: Vec<u64>,
    /// The Merkle root of the verified events (when every one verified).
    pub root: Option<String>,
}

impl Verification {
    /// From a log verification (`crate::audit::verify_log`): a divergence
    /// from a checkpoint or a truncation is reported as a break at the
    /// checkpoint's size.
    pub fn from_log(
        verdict: std::result::Result<modelops_audit::verify::LogSummary, modelops_audit::verify::Failure>,
        head: Option<ChainHead>,
        verified_at: DateTime<Utc>,
    ) -> Self {
        use modelops_audit::verify::Failure;
        match verdict {
            Ok(summary) => Verification {
                verdict: Ok(VerifySummary { events: summary.events, head: summary.head }),
                head,
                verified_at,
                checkpoints: summary.checkpoints_matched,
                root: Some(summary.root),
            },
            Err(failure) => {
                let sequence = match &failure {
                    Failure::Chain { sequence, .. } => *sequence,
                    Failure::Diverged { checkpoint_size, .. } | Failure::Truncated { checkpoint_size, .. } => {
                        i64::try_from(*checkpoint_size).unwrap_or(i64::MAX)
                    }
                };
                let reason = match &failure {
                    Failure::Chain { reason, .. } => reason.clone(),
                    other => other.to_string(),
                };
                Verification { verdict: Err(ChainBreak { sequence, reason }), head, verified_at, checkpoints: Vec::new(), root: None }
            }
        }
    }
}

pub(crate) type Outcome = (
    std::result::Result<modelops_audit::verify::LogSummary, modelops_audit::verify::Failure>,
    Option<ChainHead>,
);
type Pass = Shared<BoxFuture<'static, Result<Verification>>>;

#[derive(Default)]
pub(crate) struct Cache {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last: Option<Verification>,
    running: Option<Pass>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

impl Cache {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The last verification when it is younger than `reuse` and the chain
    /// has not moved since (`head` is the head now); else the pass running
    /// now; else a new pass started with `start`.
    pub(crate) async fn get_or_run(
        &self,
        clock: &dyn Clock,
        reuse: Duration,
        head: Option<ChainHead>,
        start: impl FnOnce() -> BoxFuture<'static, Result<Outcome>>,
    ) -> Result<Verification> {
        let pass = {
            let mut state = self.state();
            let now = clock.now();
            if let Some(previous) = &state.last {
                let age = now.signed_duration_since(previous.verified_at);
                let fresh = age >= chrono::Duration::zero() && age.to_std().is_ok_and(|a| a < reuse);
                if fresh && previous.head == head {
                    return Ok(previous.clone());
                }
            }
            match &state.running {
                Some(pass) => pass.clone(),
                None => {
                    let task = tokio::spawn(start());
                    let pass: Pass = async move {
                        let (verdict, head) = task.await.map_err(|e| Error::Internal(format!("the audit verification task failed: {e}")))??;
                        Ok(Verification::from_log(verdict, head, now))
                    }
                    .boxed()
                    .shared();
                    state.running = Some(pass.clone());
                    pass
                }
            }
        };
        let outcome = pass.clone().await;
        let mut state = self.state();
        if state.running.as_ref().is_some_and(|running| running.ptr_eq(&pass)) {
            state.running = None;
            if let Ok(verification) = &outcome {
                state.last = Some(verification.clone());
            }
        }
        outcome
    }
}
