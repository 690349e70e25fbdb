//! The audit event and its hash chain (DESIGN §6).
//!
//! `hash = sha256(prev_hash ‖ canonical(event))`, where the canonical form is
//! compact JSON with sorted keys of every field but the two hashes, and the
//! time in [`crate::clock::format_time`]'s form. `before`/`after` are stored
//! as text and re-canonicalised when hashed, so a backend that reorders keys
//! or reformats numbers cannot break the chain; one that changes a value does.
//!
//! The chain starts from [`GENESIS_HASH`]. The store also keeps the head
//! (last sequence and hash) apart from the rows, so removing the newest
//! events is detected too.

use crate::clock::format_time;
use crate::error::Result;
use crate::page::PageRequest;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 1, 2, 3… with no gaps.
    pub sequence: i64,
    pub time: DateTime<Utc>,
    pub actor: String,
    /// E.g. `model.create`; see [`crate::auth::Action`].
    pub action: String,
    /// What was acted on, e.g. `model/credit-risk` or `model/credit-risk/version/3`.
    pub subject: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub prev_hash: String,
    pub hash: String,
}

/// An event about to be appended; the store assigns sequence, time and hashes
/// inside the transaction that makes the change.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl PendingEvent {
    /// Seals the event as the one after `prev` (`None` for the first).
    pub fn seal(self, prev: Option<&ChainHead>, time: DateTime<Utc>) -> AuditEvent {
        let (sequence, prev_hash) = match prev {
            Some(head) => (head.sequence + 1, head.hash.clone()),
            None => (1, GENESIS_HASH.to_string()),
        };
        let mut event = AuditEvent {
            sequence,
            time,
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            before: self.before,
            after: self.after,
            prev_hash,
            hash: String::new(),
        };
        event.hash = event.compute_hash();
        event
    }
}

/// Subject strings, so every caller spells them the same.
pub fn model_subject(model: &str) -> String {
    format!("model/{model}")
}

pub fn version_subject(model: &str, version: u32) -> String {
    format!("model/{model}/version/{version}")
}

pub fn alias_subject(model: &str, alias: &str) -> String {
    format!("model/{model}/alias/{alias}")
}

impl AuditEvent {
    /// The bytes that are hashed after the previous hash.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // serde_json's default map is ordered by key, so `json!` over
        // `Value`s yields sorted keys at every depth.
        let canonical = serde_json::json!({
            "sequence": self.sequence,
            "time": format_time(&self.time),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
        });
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(self.canonical_bytes());
        hex::encode(hasher.finalize())
    }

    pub fn head(&self) -> ChainHead {
        ChainHead { sequence: self.sequence, hash: self.hash.clone() }
    }
}

/// The newest event's sequence and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub sequence: i64,
    pub hash: String,
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// The sequence number at which verification failed.
    pub sequence: i64,
    pub reason: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit chain broken at event {}: {}", self.sequence, self.reason)
    }
}

/// Verifies a chain incrementally, so millions of events stream through in
/// batches with constant memory.
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    last: Option<ChainHead>,
    checked: u64,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event in sequence order.
    pub fn push(&mut self, event: &AuditEvent) -> Result<(), ChainBreak> {
        let (expected_seq, expected_prev) = match &self.last {
            Some(h) => (h.sequence + 1, h.hash.as_str()),
            None => (1, GENESIS_HASH),
        };
        if event.sequence != expected_seq {
            let reason = if event.sequence > expected_seq {
                format!("event {expected_seq} is missing (next stored event is {})", event.sequence)
            } else {
                format!("event {} appears out of order after {}", event.sequence, expected_seq - 1)
            };
            return Err(ChainBreak { sequence: expected_seq, reason });
        }
        if event.prev_hash != expected_prev {
            return Err(ChainBreak {
                sequence: event.sequence,
                reason: format!("previous hash `{}` does not match the hash of event {} `{}`", event.prev_hash, expected_seq - 1, expected_prev),
            });
        }
        let recomputed = event.compute_hash();
        if recomputed != event.hash {
            return Err(ChainBreak {
                sequence: event.sequence,
                reason: format!("content does not match its hash (stored `{}`, recomputed `{recomputed}`): the event was altered", event.hash),
            });
        }
        self.last = Some(event.head());
        self.checked += 1;
        Ok(())
    }

    /// Ends verification against the head the store recorded separately.
    pub fn finish(self, recorded_head: Option<&ChainHead>) -> Result<VerifySummary, ChainBreak> {
        match (&self.last, recorded_head) {
            (None, None) => {}
            (Some(last), Some(head)) if last == head => {}
            (Some(last), Some(head)) if last.sequence < head.sequence => {
                return Err(ChainBreak {
                    sequence: last.sequence + 1,
                    reason: format!("events {}..={} are missing: the recorded head is event {}", last.sequence + 1, head.sequence, head.sequence),
                });
            }
            (last, head) => {
                let seq = last.as_ref().map_or(1, |l| l.sequence);
                return Err(ChainBreak {
                    sequence: seq,
                    reason: format!("the last event ({}) does not match the recorded head ({})", describe(last.as_ref()), describe(head)),
                });
            }
        }
        Ok(VerifySummary { events: self.checked, head: self.last })
    }
}

fn describe(head: Option<&ChainHead>) -> String {
    match head {
        Some(h) => format!("event {} `{}`", h.sequence, h.hash),
        None => "none".to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySummary {
    pub events: u64,
    pub head: Option<ChainHead>,
}

/// Filters for reading the audit log; events come oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    /// Exact subject, or a prefix when it ends with `*` (`model/credit-risk*`).
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub page: PageRequest,
}

impl AuditQuery {
    /// Refuses a time range that cannot hold any event, and filter values
    /// no event can match (NUL).
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [("subject", &self.subject), ("actor", &self.actor), ("action", &self.action)] {
            if let Some(v) = value {
                crate::name::check_filter(field, v)?;
            }
        }
        if let (Some(since), Some(until)) = (&self.since, &self.until) {
            if since >= until {
                return Err(crate::Error::invalid(
                    "until",
                    format!("`{}` must be later than since `{}`", format_time(until), format_time(since)),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn chain(n: usize) -> Vec<AuditEvent> {
        let mut out: Vec<AuditEvent> = Vec::new();
        for i in 0..n {
            let pending = PendingEvent {
                actor: "ana".into(),
                action: "model.create".into(),
                subject: format!("model/m{i}"),
                before: None,
                after: Some(serde_json::json!({"b": 1.5, "a": [1, "x"]})),
            };
            let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, i as u32).unwrap();
            let ev = pending.seal(out.last().map(AuditEvent::head).as_ref(), t);
            out.push(ev);
        }
        out
    }

    fn verify(events: &[AuditEvent], head: Option<&ChainHead>) -> Result<VerifySummary, ChainBreak> {
        let mut v = ChainVerifier::new();
        for e in events {
            v.push(e)?;
        }
        v.finish(head)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let events = chain(5);
        let head = events[4].head();
        assert_eq!(verify(&events, Some(&head)).unwrap().events, 5);
        assert_eq!(events[0].prev_hash, GENESIS_HASH);
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_broken_link() {
        let events = chain(5);
        let head = events[4].head();

        let mut edited = events.clone();
        edited[2].actor = "mallory".into();
        assert_eq!(verify(&edited, Some(&head)).unwrap_err().sequence, 3);

        let mut deleted = events.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted, Some(&head)).unwrap_err().sequence, 2);

        let mut reordered = events.clone();
        reordered.swap(2, 3);
        assert_eq!(verify(&reordered, Some(&head)).unwrap_err().sequence, 3);

        let truncated = &events[..3];
        assert_eq!(verify(truncated, Some(&head)).unwrap_err().sequence, 4);
    }

    #[test]
    fn an_empty_time_range_is_refused_naming_until() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let q = AuditQuery { since: Some(t), until: Some(t - chrono::Duration::days(1)), ..Default::default() };
        assert_eq!(q.validate().unwrap_err().field(), Some("until"));
        let ok = AuditQuery { since: Some(t), until: Some(t + chrono::Duration::days(1)), ..Default::default() };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn key_order_of_stored_json_does_not_matter() {
        let events = chain(1);
        let reparsed: serde_json::Value = serde_json::from_str(r#"{"a":[1,"x"],"b":1.5}"#).unwrap();
        let mut e = events[0].clone();
        e.after = Some(reparsed);
        assert_eq!(e.compute_hash(), events[0].hash);
    }
}

// PROVISIONAL (lead): replaced by the audit work's ChainRecord on merge.
/// A stored row as read for verification.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainRecord {
    Event(AuditEvent),
    Unreadable { sequence: i64, reason: String },
}

impl ChainRecord {
    pub fn sequence(&self) -> i64 {
        match self {
            ChainRecord::Event(e) => e.sequence,
            ChainRecord::Unreadable { sequence, .. } => *sequence,
        }
    }
}

impl ChainVerifier {
    pub fn push_record(&mut self, record: &ChainRecord) -> Result<(), ChainBreak> {
        match record {
            ChainRecord::Event(e) => self.push(e),
            ChainRecord::Unreadable { sequence, reason } => Err(ChainBreak { sequence: *sequence, reason: reason.clone() }),
        }
    }
}
