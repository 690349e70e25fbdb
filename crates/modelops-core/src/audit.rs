//! The audit event and its hash chain (DESIGN §6).
//!
//! `hash = sha256(prev_hash ‖ canonical(event))`. The canonical form is a JSON
//! object of every field but the two hashes, with the time in
//! [`crate::clock::format_time`]'s form, written by [`canonical`] and never by
//! serde_json's serializer: its key order and its float text depend on Cargo
//! features and on its version, which nothing here pins. Each event records
//! the [`HashEncoding`] it was hashed with and is verified with that one, so
//! history is never rewritten when the form changes:
//!
//! - [`HashEncoding::Legacy`] (stored as `1`): byte for byte what the first
//!   release hashed, so the databases it wrote still verify. Never written
//!   any more.
//! - [`HashEncoding::Jcs`] (stored as `2`): RFC 8785 (JSON Canonicalization
//!   Scheme), except that integers beyond ±2^53 keep their exact digits (see
//!   [`canonical`]). The object also holds `"encoding": 2`, so the encoding
//!   is bound by the hash: relabelling an event breaks it. [`PendingEvent::seal`]
//!   writes this one.
//!
//! `before`/`after` are stored as text and re-canonicalised when hashed, so a
//! backend that reorders keys or reformats numbers cannot break the chain; one
//! that changes a value does. For that the text must parse back into the same
//! doubles, which is why this crate turns on serde_json's `float_roundtrip`
//! itself instead of relying on another crate of the build to do it.
//!
//! The chain starts from [`GENESIS_HASH`] at sequence 1. [`ChainVerifier`] is
//! handed every stored row in sequence order, from the lowest, so a row below
//! 1 or one that cannot be read is a broken link too. The store also keeps the
//! head (last sequence and hash) apart from the rows, so removing the newest
//! events is detected.

pub mod canonical;

use crate::clock::format_time;
use crate::error::Result;
use crate::page::PageRequest;
use canonical::CanonicalError;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Which canonical form an event was hashed with. Stored beside the event as
/// an integer ([`HashEncoding::as_stored`]); rows written before the column
/// existed are [`HashEncoding::Legacy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i64", try_from = "i64")]
pub enum HashEncoding {
    /// The first release's form: serde_json's compact text with keys sorted
    /// by code point. Only verified, never written.
    Legacy = 1,
    /// RFC 8785 with `"encoding": 2` among the hashed fields.
    Jcs = 2,
    /// RFC 8785 with `"encoding": 3`, where every personal value (a person's
    /// name, a free-text comment) is replaced by a keyed commitment
    /// `sealed:<hex>` and kept beside the event encrypted under the person's
    /// key ([`AuditEvent::personal`]). Destroying the key erases the value;
    /// the hash, which covers only the commitment, still verifies.
    Sealed = 3,
}

/// The prefix of a commitment standing for a personal value in a
/// [`HashEncoding::Sealed`] event.
pub const SEALED_PREFIX: &str = "sealed:";

/// A personal value of a sealed event, encrypted under its person's key.
/// Not hashed: the event hashes the commitment; this is how it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedValue {
    /// The commitment (hex) the hashed event carries as `sealed:<commit>`.
    #[serde(rename = "c")]
    pub commit: String,
    /// The person's pseudonymous id (never their name).
    #[serde(rename = "p")]
    pub person: String,
    /// Nonce and ciphertext (base64) of the commitment key and the value.
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "x")]
    pub data: String,
}

impl HashEncoding {
    /// The value of the store's `encoding` column.
    pub const fn as_stored(self) -> i64 {
        self as i64
    }

    /// `None` for a number no release has written: the row was edited.
    pub const fn from_stored(stored: i64) -> Option<Self> {
        match stored {
            1 => Some(HashEncoding::Legacy),
            2 => Some(HashEncoding::Jcs),
            3 => Some(HashEncoding::Sealed),
            _ => None,
        }
    }
}

impl From<HashEncoding> for i64 {
    fn from(encoding: HashEncoding) -> i64 {
        encoding.as_stored()
    }
}

impl TryFrom<i64> for HashEncoding {
    type Error = String;

    fn try_from(stored: i64) -> std::result::Result<Self, String> {
        HashEncoding::from_stored(stored).ok_or_else(|| format!("unknown hash encoding `{stored}`"))
    }
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 1, 2, 3… with no gaps.
    pub sequence: i64,
    /// Microseconds at most: what both stores keep.
    pub time: DateTime<Utc>,
    pub actor: String,
    /// E.g. `model.create`; see [`crate::auth::Action`].
    pub action: String,
    /// What was acted on, e.g. `model/credit-risk` or `model/credit-risk/version/3`.
    pub subject: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The canonical form `hash` was computed with.
    pub encoding: HashEncoding,
    pub prev_hash: String,
    pub hash: String,
    /// The personal values of a [`HashEncoding::Sealed`] event, encrypted
    /// (empty for other encodings, and when the event names no one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal: Vec<SealedValue>,
}

/// An event about to be appended; the store assigns sequence, time and hashes
/// inside the transaction that makes the change.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEvent {
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl PendingEvent {
    /// Seals the event as the one after `prev` (`None` for the first), hashed
    /// with [`HashEncoding::Jcs`].
    ///
    /// `time` is truncated to microseconds here, whatever the clock gave:
    /// the stores keep no more, and an event must equal (and hash like) the
    /// one read back.
    pub fn seal(self, prev: Option<&ChainHead>, time: DateTime<Utc>) -> Result<AuditEvent> {
        self.seal_as(prev, time, HashEncoding::Jcs, Vec::new()).map(|(event, _)| event)
    }

    /// Seals an event whose personal values were already replaced by their
    /// commitments (`modelops-audit::personal`), hashed with
    /// [`HashEncoding::Sealed`]; `personal` holds them encrypted.
    pub fn seal_personal(self, prev: Option<&ChainHead>, time: DateTime<Utc>, personal: Vec<SealedValue>) -> Result<AuditEvent> {
        self.seal_personal_entry(prev, time, personal).map(|(event, _)| event)
    }

    /// [`PendingEvent::seal_personal`], with the canonical bytes the hash
    /// covers: the event's Merkle leaf is their hash too, and making them
    /// is most of an append's work under the write lock.
    pub fn seal_personal_entry(self, prev: Option<&ChainHead>, time: DateTime<Utc>, personal: Vec<SealedValue>) -> Result<(AuditEvent, Vec<u8>)> {
        self.seal_as(prev, time, HashEncoding::Sealed, personal)
    }

    fn seal_as(self, prev: Option<&ChainHead>, time: DateTime<Utc>, encoding: HashEncoding, personal: Vec<SealedValue>) -> Result<(AuditEvent, Vec<u8>)> {
        let (sequence, prev_hash) = match prev {
            Some(head) => {
                let next = head.sequence.checked_add(1).ok_or_else(|| {
                    crate::Error::Internal(format!("the audit chain cannot grow past event `{}`", head.sequence))
                })?;
                (next, head.hash.clone())
            }
            None => (1, GENESIS_HASH.to_string()),
        };
        let mut event = AuditEvent {
            sequence,
            time: time.trunc_subsecs(6),
            actor: self.actor,
            action: self.action,
            subject: self.subject,
            before: self.before,
            after: self.after,
            encoding,
            prev_hash,
            hash: String::new(),
            personal,
        };
        let canonical = event
            .canonical_bytes()
            .map_err(|e| crate::Error::Internal(format!("cannot hash audit event `{sequence}`: {e}")))?;
        event.hash = event.hash_of(&canonical);
        Ok((event, canonical))
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
    /// The bytes that are hashed after the previous hash, in the event's
    /// [`HashEncoding`].
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, CanonicalError> {
        let sequence = Value::from(self.sequence);
        let time = Value::String(format_time(&self.time));
        let actor = Value::String(self.actor.clone());
        let action = Value::String(self.action.clone());
        let subject = Value::String(self.subject.clone());
        let null = Value::Null;
        let mut members = vec![
            ("sequence", &sequence),
            ("time", &time),
            ("actor", &actor),
            ("action", &action),
            ("subject", &subject),
            ("before", self.before.as_ref().unwrap_or(&null)),
            ("after", self.after.as_ref().unwrap_or(&null)),
        ];
        let encoding = Value::from(self.encoding.as_stored());
        match self.encoding {
            // The first release hashed exactly the fields above.
            HashEncoding::Legacy => {}
            HashEncoding::Jcs | HashEncoding::Sealed => members.push(("encoding", &encoding)),
        }
        let form = match self.encoding {
            HashEncoding::Sealed => HashEncoding::Jcs,
            other => other,
        };
        let mut out = Vec::new();
        canonical::write_object(&mut out, members, form)?;
        Ok(out)
    }

    pub fn compute_hash(&self) -> Result<String, CanonicalError> {
        Ok(self.hash_of(&self.canonical_bytes()?))
    }

    /// The chain hash given the event's canonical bytes.
    pub fn hash_of(&self, canonical: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(canonical);
        hex::encode(hasher.finalize())
    }

    pub fn head(&self) -> ChainHead {
        ChainHead { sequence: self.sequence, hash: self.hash.clone() }
    }

    /// Recomputes the event's hash from its content: its canonical bytes,
    /// or why it does not match (altered) or cannot be hashed.
    pub fn check_content(&self) -> Result<Vec<u8>, String> {
        let canonical = self.canonical_bytes().map_err(|e| format!("content cannot be hashed, so it was not written by modelops: {e}"))?;
        let recomputed = self.hash_of(&canonical);
        if recomputed != self.hash {
            return Err(format!(
                "content does not match its hash (stored `{}`, recomputed `{recomputed}` with encoding `{}`): the event was altered",
                self.hash,
                self.encoding.as_stored()
            ));
        }
        Ok(canonical)
    }
}

/// An event reduced to what linking it into the chain needs, its content
/// already checked against its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLink {
    pub sequence: i64,
    pub prev_hash: String,
    pub hash: String,
    /// `Err(reason)`: the content does not match the hash, or cannot be hashed.
    pub content: Result<(), String>,
}

impl EventLink {
    /// The link of `event` and, when its content checks, its canonical bytes.
    pub fn of(event: AuditEvent) -> (EventLink, Option<Vec<u8>>) {
        let checked = event.check_content();
        let (content, canonical) = match checked {
            Ok(c) => (Ok(()), Some(c)),
            Err(reason) => (Err(reason), None),
        };
        (EventLink { sequence: event.sequence, prev_hash: event.prev_hash, hash: event.hash, content }, canonical)
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

/// One stored row, as the store hands it to the verifier.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainRecord {
    Event(AuditEvent),
    /// A row whose columns do not make an event (a `time` that does not
    /// parse, an unknown `encoding`…): someone edited the database, which is a
    /// broken link to report, not a failure of the read. `reason` names the
    /// column and its value.
    Unreadable { sequence: i64, reason: String },
}

impl ChainRecord {
    pub fn sequence(&self) -> i64 {
        match self {
            ChainRecord::Event(event) => event.sequence,
            ChainRecord::Unreadable { sequence, .. } => *sequence,
        }
    }
}

/// Verifies a chain incrementally, so millions of events stream through in
/// batches with constant memory. Feed it every stored row in sequence order,
/// starting from the lowest (even one below 1), then call
/// [`ChainVerifier::finish`] with the recorded head.
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    last: Option<ChainHead>,
    checked: u64,
    /// The sequence verification started after (0: from the first event).
    start: i64,
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies from the event after `head`, trusting `head` (what an export
    /// bundle that starts in the middle of the log does; its first event's
    /// place is then checked against a signed checkpoint).
    pub fn starting_after(head: ChainHead) -> Self {
        Self { start: head.sequence, last: Some(head), checked: 0 }
    }

    /// The last event verified.
    pub fn last(&self) -> Option<&ChainHead> {
        self.last.as_ref()
    }

    /// Checks the next row in sequence order.
    pub fn push_record(&mut self, record: &ChainRecord) -> Result<(), ChainBreak> {
        self.push_record_bytes(record).map(drop)
    }

    /// [`ChainVerifier::push_record`], returning the event's canonical bytes
    /// (what a Merkle leaf is made of), so they are computed once.
    pub fn push_record_bytes(&mut self, record: &ChainRecord) -> Result<Vec<u8>, ChainBreak> {
        match record {
            ChainRecord::Event(event) => self.push_bytes(event),
            ChainRecord::Unreadable { sequence, reason } => self.push_unreadable(*sequence, reason).map(|()| Vec::new()),
        }
    }

    /// Checks the next event in sequence order.
    pub fn push(&mut self, event: &AuditEvent) -> Result<(), ChainBreak> {
        self.push_bytes(event).map(drop)
    }

    /// [`ChainVerifier::push`], returning the event's canonical bytes.
    pub fn push_bytes(&mut self, event: &AuditEvent) -> Result<Vec<u8>, ChainBreak> {
        self.check_link(event.sequence, &event.prev_hash)?;
        let canonical = event.check_content().map_err(|reason| ChainBreak { sequence: event.sequence, reason })?;
        self.last = Some(event.head());
        self.checked += 1;
        Ok(canonical)
    }

    /// [`ChainVerifier::push`] for an event reduced to its link, its
    /// content checked apart ([`EventLink::of`]) — so that the costly part,
    /// parsing and hashing, can run in parallel, and the event be dropped
    /// where it was made.
    pub fn push_link(&mut self, link: EventLink) -> Result<(), ChainBreak> {
        self.check_link(link.sequence, &link.prev_hash)?;
        link.content.map_err(|reason| ChainBreak { sequence: link.sequence, reason })?;
        self.last = Some(ChainHead { sequence: link.sequence, hash: link.hash });
        self.checked += 1;
        Ok(())
    }

    /// The event's place: the next sequence number, after the last event's hash.
    fn check_link(&self, sequence: i64, prev_hash: &str) -> Result<(), ChainBreak> {
        let expected_prev = self.check_sequence(sequence)?;
        if prev_hash != expected_prev {
            return Err(ChainBreak {
                sequence,
                reason: format!("previous hash `{prev_hash}` does not match the hash of event {} `{expected_prev}`", sequence - 1),
            });
        }
        Ok(())
    }

    /// Checks the next row in sequence order when it could not be read as an
    /// event: always a break, at that row unless an earlier one is missing.
    pub fn push_unreadable(&mut self, sequence: i64, reason: &str) -> Result<(), ChainBreak> {
        self.check_sequence(sequence)?;
        Err(ChainBreak { sequence, reason: format!("event `{sequence}` cannot be read: {reason}") })
    }

    /// The previous hash the row numbered `sequence` must carry, if it is the
    /// next one.
    fn check_sequence(&self, sequence: i64) -> Result<&str, ChainBreak> {
        if sequence < 1 {
            return Err(ChainBreak {
                sequence,
                reason: format!(
                    "event `{sequence}` has a sequence number below 1, which modelops never writes: it was inserted outside modelops"
                ),
            });
        }
        let (expected_seq, expected_prev) = match &self.last {
            Some(h) => (h.sequence + 1, h.hash.as_str()),
            None => (1, GENESIS_HASH),
        };
        if sequence != expected_seq {
            let reason = if sequence > expected_seq {
                format!("event {expected_seq} is missing (next stored event is {sequence})")
            } else {
                format!("event {sequence} appears out of order after {}", expected_seq - 1)
            };
            return Err(ChainBreak { sequence: expected_seq, reason });
        }
        Ok(expected_prev)
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
            (None, Some(head)) => {
                return Err(ChainBreak {
                    sequence: 1,
                    reason: format!("events 1..={} are missing: the recorded head is event {}", head.sequence, head.sequence),
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
        // `push` takes only the event after the last, from 1, so the count
        // already equals the head's sequence; checked outright because "every
        // row from 1 to the head, each once" is the claim verification makes.
        let head_sequence = recorded_head.map_or(0, |h| h.sequence);
        if i64::try_from(self.checked).ok() != Some(head_sequence - self.start) {
            return Err(ChainBreak {
                sequence: head_sequence,
                reason: format!("{} events were verified but the recorded head is event {head_sequence}", self.checked),
            });
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

/// A signed checkpoint as the store keeps it: the tree head and the signed
/// note. The store does not vouch for it; whoever reads it checks the
/// signature with the log's public key (`modelops-audit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    /// Events 1..=size.
    pub size: u64,
    /// The RFC 9162 root, hex.
    pub root: String,
    pub time: DateTime<Utc>,
    pub note: String,
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
    /// Only events with a larger sequence number.
    pub after_sequence: Option<i64>,
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
    use chrono::{TimeZone, Timelike};

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
            let ev = pending.seal(out.last().map(AuditEvent::head).as_ref(), t).unwrap();
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

    fn verify_records(records: &[ChainRecord], head: Option<&ChainHead>) -> Result<VerifySummary, ChainBreak> {
        let mut v = ChainVerifier::new();
        for r in records {
            v.push_record(r)?;
        }
        v.finish(head)
    }

    /// What a store hands back: `before`/`after` re-parsed from the text it
    /// wrote, the time from its microsecond text.
    fn read_back(e: &AuditEvent) -> AuditEvent {
        let reparse = |v: &Option<Value>| v.as_ref().map(|v| serde_json::from_str::<Value>(&v.to_string()).unwrap());
        AuditEvent {
            time: DateTime::parse_from_rfc3339(&format_time(&e.time)).unwrap().with_timezone(&Utc),
            before: reparse(&e.before),
            after: reparse(&e.after),
            ..e.clone()
        }
    }

    /// The test-vector events, chained, with `before`/`after` parsed from
    /// stored text as a store reads them.
    fn vector_events(encoding: HashEncoding) -> Vec<AuditEvent> {
        let micros = |t: DateTime<Utc>, us: i64| t + chrono::Duration::microseconds(us);
        let rows = [
            (
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
                "ana",
                "model.create",
                "model/credit-risk",
                None,
                Some(r#"{"name":"credit-risk","risk_tier":"high","tags":{}}"#),
            ),
            (
                micros(Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap(), 123_456),
                "zoë 😀",
                "version.update",
                "model/credit-risk/version/3",
                Some(
                    r#"{"metrics":{"auc":0.1,"big":1e100,"neg_zero":-0.0,"tiny":5e-324,"one":1.0,"e21":1e21,"small":1e-7,"third":0.3333333333333333,"max":1.7976931348623157e308,"fixed":[1e15,1e16,0.00001,0.000001,123.456,-2.5,1234567890123456.7,2.2250738585072014e-308,-0,100]},"n":[18446744073709551615,-9223372036854775808,9007199254740993,0,-1]}"#,
                ),
                Some(
                    r#"{"é":"café","😀":"emoji key","｡":"halfwidth","a\u0000b":"ctl","text":"line\nbreak\ttab \"quoted\" back\\slash \u0001\u001f\u007f \u2028 😀 \b\f\r","z":null,"list":[true,false,null,[],{}]}"#,
                ),
            ),
            (
                micros(Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap(), 999_999),
                "bob",
                "model.retire",
                "model/credit-risk",
                // What the store reads back from text that no longer parses.
                Some(r#""{not json""#),
                None,
            ),
        ];
        let mut out: Vec<AuditEvent> = Vec::new();
        for (i, (time, actor, action, subject, before, after)) in rows.into_iter().enumerate() {
            let mut e = AuditEvent {
                sequence: i as i64 + 1,
                time,
                actor: actor.into(),
                action: action.into(),
                subject: subject.into(),
                before: before.map(|t| serde_json::from_str(t).unwrap()),
                after: after.map(|t| serde_json::from_str(t).unwrap()),
                encoding,
                prev_hash: out.last().map_or(GENESIS_HASH.to_string(), |p| p.hash.clone()),
                hash: String::new(),
                personal: Vec::new(),
            };
            e.hash = e.compute_hash().unwrap();
            out.push(e);
        }
        out
    }

    /// Frozen with the first release's code (serde_json 1.0.154 writing
    /// `json!` of the fields) before the encoding was versioned: databases it
    /// wrote hold exactly these hashes, so they must never change.
    const LEGACY_VECTORS: [(&str, &str); 3] = [
        (
            r#"{"action":"model.create","actor":"ana","after":{"name":"credit-risk","risk_tier":"high","tags":{}},"before":null,"sequence":1,"subject":"model/credit-risk","time":"2026-01-01T00:00:00.000000Z"}"#,
            "f642000c936d7e9fc15431e221d18ccd30905326d676e81291a65febebeaa3cb",
        ),
        (
            concat!(
                r#"{"action":"version.update","actor":"zoë 😀","after":{"a\u0000b":"ctl","list":[true,false,null,[],{}],"text":"line\nbreak\ttab \"quoted\" back\\slash \u0001\u001f"#,
                "\u{7f} \u{2028}",
                r#" 😀 \b\f\r","z":null,"é":"café","｡":"halfwidth","😀":"emoji key"},"before":{"metrics":{"auc":0.1,"big":1e+100,"e21":1e+21,"fixed":[1000000000000000.0,1e+16,0.00001,1e-6,123.456,-2.5,1234567890123456.8,2.2250738585072014e-308,-0.0,100],"max":1.7976931348623157e+308,"neg_zero":-0.0,"one":1.0,"small":1e-7,"third":0.3333333333333333,"tiny":5e-324},"n":[18446744073709551615,-9223372036854775808,9007199254740993,0,-1]},"sequence":2,"subject":"model/credit-risk/version/3","time":"2026-03-04T05:06:07.123456Z"}"#,
            ),
            "1a69ff84edaa295ee4d2ca9e9bc23b92aacd02c53705831b40ed2d3daa3e32d2",
        ),
        (
            r#"{"action":"model.retire","actor":"bob","after":null,"before":"{not json","sequence":3,"subject":"model/credit-risk","time":"2026-12-31T23:59:59.999999Z"}"#,
            "cac0c623b43e17d68c12854d99c5457a768545ee5f4eb840a6679737410c28cd",
        ),
    ];

    /// RFC 8785 of the same events: keys by UTF-16 code unit (😀 before ｡),
    /// ECMAScript numbers (`1`, `0` for -0.0, `1000000000000000`), exact
    /// digits for the integers beyond 2^53, and `"encoding":2`.
    const JCS_VECTORS: [(&str, &str); 3] = [
        (
            r#"{"action":"model.create","actor":"ana","after":{"name":"credit-risk","risk_tier":"high","tags":{}},"before":null,"encoding":2,"sequence":1,"subject":"model/credit-risk","time":"2026-01-01T00:00:00.000000Z"}"#,
            "23492c6237f256b8875c47d4afe417adb41b1f2dd20277208df5ff53bc6de667",
        ),
        (
            concat!(
                r#"{"action":"version.update","actor":"zoë 😀","after":{"a\u0000b":"ctl","list":[true,false,null,[],{}],"text":"line\nbreak\ttab \"quoted\" back\\slash \u0001\u001f"#,
                "\u{7f} \u{2028}",
                r#" 😀 \b\f\r","z":null,"é":"café","😀":"emoji key","｡":"halfwidth"},"before":{"metrics":{"auc":0.1,"big":1e+100,"e21":1e+21,"fixed":[1000000000000000,10000000000000000,0.00001,0.000001,123.456,-2.5,1234567890123456.8,2.2250738585072014e-308,0,100],"max":1.7976931348623157e+308,"neg_zero":0,"one":1,"small":1e-7,"third":0.3333333333333333,"tiny":5e-324},"n":[18446744073709551615,-9223372036854775808,9007199254740993,0,-1]},"encoding":2,"sequence":2,"subject":"model/credit-risk/version/3","time":"2026-03-04T05:06:07.123456Z"}"#,
            ),
            "843ec7e3a3c91b54c7b23c8e8070953ece684ec1ef40b26652d60e6f8542fd00",
        ),
        (
            r#"{"action":"model.retire","actor":"bob","after":null,"before":"{not json","encoding":2,"sequence":3,"subject":"model/credit-risk","time":"2026-12-31T23:59:59.999999Z"}"#,
            "4b7368507c38210638f70e6cee4d710f5eb6540f659aab20ff064017484e09ba",
        ),
    ];

    fn assert_vectors(events: &[AuditEvent], vectors: &[(&str, &str)]) {
        assert_eq!(events.len(), vectors.len());
        for (e, (bytes, hash)) in events.iter().zip(vectors) {
            assert_eq!(String::from_utf8(e.canonical_bytes().unwrap()).unwrap(), *bytes, "canonical bytes of event {}", e.sequence);
            assert_eq!(e.hash, *hash, "hash of event {}", e.sequence);
        }
    }

    #[test]
    fn legacy_events_hash_as_the_first_release_wrote_them() {
        let events = vector_events(HashEncoding::Legacy);
        assert_vectors(&events, &LEGACY_VECTORS);
        // A database of them verifies, read back as a store reads it.
        let stored: Vec<AuditEvent> = events.iter().map(read_back).collect();
        assert_eq!(verify(&stored, Some(&events[2].head())).unwrap().events, 3);
    }

    #[test]
    fn jcs_events_hash_to_their_fixed_vectors() {
        let events = vector_events(HashEncoding::Jcs);
        assert_vectors(&events, &JCS_VECTORS);
        let stored: Vec<AuditEvent> = events.iter().map(read_back).collect();
        assert_eq!(verify(&stored, Some(&events[2].head())).unwrap().events, 3);
    }

    #[test]
    fn a_chain_can_go_on_from_legacy_events_with_jcs_ones() {
        let mut events = vector_events(HashEncoding::Legacy);
        let pending = PendingEvent { actor: "ana".into(), action: "model.create".into(), subject: "model/x".into(), before: None, after: None };
        let next = pending.seal(Some(&events[2].head()), events[2].time).unwrap();
        assert_eq!(next.encoding, HashEncoding::Jcs);
        events.push(next);
        assert_eq!(verify(&events, Some(&events[3].head())).unwrap().events, 4);
    }

    #[test]
    fn the_encoding_is_bound_by_the_hash() {
        // Relabelling in either direction, without re-hashing, breaks the link.
        for (from, to) in [(HashEncoding::Jcs, HashEncoding::Legacy), (HashEncoding::Legacy, HashEncoding::Jcs)] {
            let mut events = vector_events(from);
            let head = events[2].head();
            events[1].encoding = to;
            let broken = verify(&events, Some(&head)).unwrap_err();
            assert_eq!(broken.sequence, 2);
            assert!(broken.reason.contains("does not match its hash"), "{}", broken.reason);
        }
    }

    #[test]
    fn the_encoding_is_stored_as_a_fixed_integer() {
        assert_eq!(HashEncoding::Legacy.as_stored(), 1);
        assert_eq!(HashEncoding::Jcs.as_stored(), 2);
        assert_eq!(HashEncoding::Sealed.as_stored(), 3);
        for e in [HashEncoding::Legacy, HashEncoding::Jcs, HashEncoding::Sealed] {
            assert_eq!(HashEncoding::from_stored(e.as_stored()), Some(e));
        }
        assert_eq!(HashEncoding::from_stored(0), None);
        assert_eq!(HashEncoding::from_stored(4), None);
        assert_eq!(serde_json::to_string(&HashEncoding::Jcs).unwrap(), "2");
        assert!(serde_json::from_str::<HashEncoding>("7").unwrap_err().to_string().contains("unknown hash encoding `7`"));
    }

    #[test]
    fn seal_keeps_microseconds_whatever_the_clock_gives() {
        let with_nanos = Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap() + chrono::Duration::nanoseconds(123_456_789);
        let pending = PendingEvent { actor: "ana".into(), action: "model.create".into(), subject: "model/x".into(), before: None, after: None };
        let sealed = pending.seal(None, with_nanos).unwrap();
        assert_eq!(sealed.time.nanosecond(), 123_456_000);
        // The event returned to the caller is the one a store gives back.
        let stored = read_back(&sealed);
        assert_eq!(stored, sealed);
        assert_eq!(stored.compute_hash().unwrap(), sealed.hash);
    }

    #[test]
    fn an_intact_chain_verifies() {
        let events = chain(5);
        let head = events[4].head();
        assert_eq!(verify(&events, Some(&head)).unwrap().events, 5);
        assert_eq!(events[0].prev_hash, GENESIS_HASH);
        assert!(events.iter().all(|e| e.encoding == HashEncoding::Jcs));
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

        assert_eq!(verify(&[], Some(&head)).unwrap_err().sequence, 1);
        assert_eq!(verify(&events, None).unwrap_err().sequence, 5);
    }

    #[test]
    fn rows_below_sequence_one_are_the_first_broken_link() {
        let events = chain(3);
        let head = events[2].head();
        for below in [0, -3, i64::MIN] {
            // A copy of a valid event, renumbered: ordered by sequence it comes first.
            let mut inserted = events[0].clone();
            inserted.sequence = below;
            let rows: Vec<AuditEvent> = std::iter::once(inserted).chain(events.iter().cloned()).collect();
            let broken = verify(&rows, Some(&head)).unwrap_err();
            assert_eq!(broken.sequence, below);
            assert_eq!(
                broken.reason,
                format!("event `{below}` has a sequence number below 1, which modelops never writes: it was inserted outside modelops")
            );
        }
    }

    #[test]
    fn an_unreadable_row_is_a_broken_link_naming_the_reason() {
        let events = chain(5);
        let head = events[4].head();
        let mut records: Vec<ChainRecord> = events.iter().cloned().map(ChainRecord::Event).collect();
        records[2] = ChainRecord::Unreadable { sequence: 3, reason: "time `yesterday` is not an RFC 3339 time".into() };
        let broken = verify_records(&records, Some(&head)).unwrap_err();
        assert_eq!(broken, ChainBreak { sequence: 3, reason: "event `3` cannot be read: time `yesterday` is not an RFC 3339 time".into() });

        // An earlier gap is still the first broken link.
        records.remove(1);
        assert_eq!(verify_records(&records, Some(&head)).unwrap_err().sequence, 2);

        // And so is a row below 1, unreadable or not.
        let below = ChainRecord::Unreadable { sequence: -1, reason: "encoding `9` is unknown".into() };
        assert_eq!(records[0].sequence(), 1);
        let broken = verify_records(&[below], Some(&head)).unwrap_err();
        assert_eq!(broken.sequence, -1);
        assert!(broken.reason.contains("below 1"), "{}", broken.reason);
    }

    #[test]
    fn finish_checks_the_count_against_the_recorded_head() {
        let events = chain(3);
        let head = events[2].head();
        // A verifier that saw the head but fewer events than it numbers
        // (unreachable through `push`, which is the point of checking).
        let short = ChainVerifier { last: Some(head.clone()), checked: 2, start: 0 };
        let broken = short.finish(Some(&head)).unwrap_err();
        assert_eq!(broken.sequence, 3);
        assert!(broken.reason.contains("2 events were verified"), "{}", broken.reason);
        assert_eq!(verify(&events, Some(&head)).unwrap(), VerifySummary { events: 3, head: Some(head) });
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
        let reparsed: Value = serde_json::from_str(r#"{"a":[1,"x"],"b":1.5}"#).unwrap();
        let mut e = events[0].clone();
        e.after = Some(reparsed);
        assert_eq!(e.compute_hash().unwrap(), events[0].hash);
    }
}
