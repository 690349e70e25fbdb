//! What replicas sharing one database agree on: which of them does the
//! background work (the leader, by lease), and what a change made by one
//! means for what the others have cached.
//!
//! The background work — signing checkpoints, judging canaries, following
//! monitors, starting retraining runs, pruning records — must run once, not
//! once per replica. The replica holding the lease named [`BACKGROUND_LEASE`]
//! does it; it renews the lease every [`LEASE_RENEW`], and a lease not
//! renewed for [`LEASE_TTL`] (its holder died) is taken by the next replica
//! that asks. Expiry is judged by the asking replica's clock: replicas'
//! clocks must agree to well within the TTL (NTP does).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lease whose holder runs the background work.
pub const BACKGROUND_LEASE: &str = "background";
/// How long a lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often its holder renews it (and others try to take it).
pub const LEASE_RENEW: Duration = Duration::from_secs(2);

/// Whether this process does the background work now. Shared by the loops
/// that do it, which skip their turn while it is false. A single process
/// (tests, one binary on SQLite) is always the leader.
///
/// A lease is held until a deadline: leadership ends by itself when the
/// deadline passes without a renewal, so a process that cannot reach the
/// database, or was paused, stops working before another replica may take
/// the lease — not when it next hears back.
#[derive(Debug, Clone)]
pub struct Leadership(Arc<LeadershipState>);

#[derive(Debug)]
struct LeadershipState {
    leader: AtomicBool,
    /// Milliseconds after `anchor` until which leadership holds.
    until_ms: AtomicU64,
    anchor: Instant,
}

impl Leadership {
    /// A flag that starts as `leader`, without a deadline.
    pub fn new(leader: bool) -> Self {
        Self(Arc::new(LeadershipState { leader: AtomicBool::new(leader), until_ms: AtomicU64::new(u64::MAX), anchor: Instant::now() }))
    }

    /// The flag of a process that is always the leader.
    pub fn always() -> Self {
        Self::new(true)
    }

    pub fn is_leader(&self) -> bool {
        self.0.leader.load(Ordering::Acquire) && self.millis(Instant::now()) < self.0.until_ms.load(Ordering::Acquire)
    }

    /// Leads until `deadline` (a renewal's start plus the lease's TTL, less
    /// a margin).
    pub fn hold_until(&self, deadline: Instant) {
        self.0.until_ms.store(self.millis(deadline), Ordering::Release);
        self.0.leader.store(true, Ordering::Release);
    }

    /// Stops leading now (another holds the lease, or this one gave it up).
    pub fn step_down(&self) {
        self.0.leader.store(false, Ordering::Release);
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.0.anchor).as_millis()).unwrap_or(u64::MAX)
    }
}

impl Default for Leadership {
    fn default() -> Self {
        Self::always()
    }
}

/// A change committed by some replica, as the database announces it: the
/// audit event's action and subject (`deployment.update`,
/// `deployment/fraud`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub action: String,
    pub subject: String,
}

/// What a replica hears about changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Changed(Change),
    /// The connection that listens was lost and is back: changes may have
    /// been missed, so everything cached is suspect.
    Missed,
}

impl Change {
    /// Parses the payload the database sends: `<action> <subject>`.
    pub fn parse(payload: &str) -> Option<Self> {
        let (action, subject) = payload.split_once(' ')?;
        Some(Self { action: action.to_string(), subject: subject.to_string() })
    }

    /// The model the change is about, from a subject `model/<name>[/…]`.
    pub fn model(&self) -> Option<&str> {
        let rest = self.subject.strip_prefix("model/")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_the_action_and_the_subject_and_its_model() {
        let c = Change::parse("version.promote model/credit-risk/version/3").unwrap();
        assert_eq!(c.action, "version.promote");
        assert_eq!(c.model(), Some("credit-risk"));
        assert_eq!(Change::parse("alias.set model/fraud").unwrap().model(), Some("fraud"));
        assert_eq!(Change::parse("deployment.update deployment/fraud").unwrap().model(), None);
        assert_eq!(Change::parse("nospace"), None);
    }

    #[test]
    fn leadership_ends_at_its_deadline_or_when_stepping_down() {
        let l = Leadership::new(false);
        assert!(!l.is_leader());
        l.hold_until(Instant::now() + Duration::from_secs(60));
        assert!(l.clone().is_leader(), "clones share the flag");
        l.step_down();
        assert!(!l.is_leader());
        l.hold_until(Instant::now() + Duration::from_millis(30));
        assert!(l.is_leader());
        std::thread::sleep(Duration::from_millis(60));
        assert!(!l.is_leader(), "not renewed: over by itself");
        assert!(Leadership::always().is_leader());
    }
}
