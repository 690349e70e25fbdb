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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The lease whose holder runs the background work.
pub const BACKGROUND_LEASE: &str = "background";
/// How long a lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often its holder renews it (and others try to take it).
pub const LEASE_RENEW: Duration = Duration::from_secs(2);

/// Whether this process does the background work now. Shared by the loops
/// that do it, which skip their turn while it is false. A single process
/// (tests, one binary on SQLite) is always the leader.
#[derive(Debug, Clone)]
pub struct Leadership(Arc<AtomicBool>);

impl Leadership {
    /// A flag that starts as `leader`.
    pub fn new(leader: bool) -> Self {
        Self(Arc::new(AtomicBool::new(leader)))
    }

    /// The flag of a process that is always the leader.
    pub fn always() -> Self {
        Self::new(true)
    }

    pub fn is_leader(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Sets the flag; returns whether it changed.
    pub fn set(&self, leader: bool) -> bool {
        self.0.swap(leader, Ordering::AcqRel) != leader
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
    fn leadership_reports_changes_only() {
        let l = Leadership::new(false);
        assert!(!l.is_leader());
        assert!(l.set(true));
        assert!(!l.set(true));
        assert!(l.clone().is_leader());
        assert!(l.set(false));
    }
}
