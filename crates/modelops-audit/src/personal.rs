//! Personal data in audit events, kept out of the hashed bytes so a person
//! can be erased without breaking the chain or the tree (GDPR Art. 17).
//!
//! A sealed event ([`HashEncoding::Sealed`]) carries, in place of each
//! personal value, the commitment `sealed:<hex>` where
//! `hex = HMAC-SHA256(salt, value)` with a fresh random 256-bit salt. Beside
//! the event (not hashed) sits `ChaCha20-Poly1305(person key, salt ‖ value)`
//! with the commitment as associated data. Reading the event decrypts the
//! value and checks it against the commitment, so a value swapped in the
//! database is refused. Erasing the person deletes their key: the salt and
//! the value can no longer be recovered, the commitment (keyed by a random
//! salt) reveals nothing, and every hash still verifies.
//!
//! Personal values (docs/audit.md lists them with the reasons):
//! - the acting user (`actor`), except the server itself (`system`);
//! - the user a `user/<name>` subject names;
//! - in `before`/`after`, at any depth: the strings under the keys
//!   [`PERSON_KEYS`] (people: approvers, reviewers, authors, owners,
//!   developers, token holders), `name` in events about a user, and the
//!   free text under [`TEXT_KEYS`] (comments, written by the actor).

use crate::{AuditError, Result};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use hmac::{Hmac, Mac};
use modelops_core::audit::{AuditEvent, PendingEvent, SealedValue, SEALED_PREFIX};
use rand_core::RngCore;
use serde_json::Value;
use sha2::Sha256;
use std::collections::{BTreeSet, HashMap};

/// Keys whose string values (or arrays of strings) name a person.
pub const PERSON_KEYS: &[&str] =
    &["approver", "reviewer", "created_by", "loaded_by", "updated_by", "user", "user_name", "owner", "by", "developers", "run_as", "requested_by"];
/// Keys whose string values are free text written by the event's actor.
pub const TEXT_KEYS: &[&str] = &["comment"];
/// The actor that is no person.
pub const SYSTEM_ACTOR: &str = "system";
/// What an erased comment reads as.
pub const ERASED_TEXT: &str = "[erased]";

/// The name an erased person's values read as, and that replaces their name
/// in the other tables: stable, so the records of one person stay together.
pub fn pseudonym(person_id: &str) -> String {
    format!("erased-{person_id}")
}

/// A new person id: 16 random hex digits, never derived from the name.
pub fn new_person_id() -> String {
    let mut bytes = [0u8; 8];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new person key.
pub fn new_person_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut key);
    key
}

/// A person's id and key, as the store keeps them.
#[derive(Clone)]
pub struct PersonKey {
    pub id: String,
    pub key: [u8; 32],
}

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// One personal value found in an event: where, and whose.
enum Slot {
    Actor,
    Subject,
    /// A string in `before` (false) or `after` (true) at this path.
    Json { after: bool, path: Vec<PathStep> },
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

struct Found {
    slot: Slot,
    person: String,
    value: String,
}

fn user_subject_name(subject: &str) -> Option<&str> {
    subject.strip_prefix("user/").filter(|n| is_person(n))
}

/// Whether `text` can be a person's name: not the server, not a
/// commitment, not an erased person's pseudonym.
fn is_person(text: &str) -> bool {
    !text.is_empty() && text != SYSTEM_ACTOR && !text.starts_with(SEALED_PREFIX) && !text.starts_with("erased-")
}

fn find(event: &PendingEvent) -> Vec<Found> {
    let mut out = Vec::new();
    let person_actor = is_person(&event.actor).then(|| event.actor.clone());
    if let Some(actor) = &person_actor {
        out.push(Found { slot: Slot::Actor, person: actor.clone(), value: actor.clone() });
    }
    let user_event = user_subject_name(&event.subject);
    if let Some(name) = user_event {
        out.push(Found { slot: Slot::Subject, person: name.to_string(), value: name.to_string() });
    }
    for (after, value) in [(false, &event.before), (true, &event.after)] {
        if let Some(value) = value {
            walk(value, &mut Vec::new(), None, user_event.is_some(), person_actor.as_deref(), &mut |path, person, text| {
                out.push(Found { slot: Slot::Json { after, path }, person, value: text.to_string() });
            });
        }
    }
    out
}

/// Visits the personal strings under `value`: `key` is the member name
/// `value` sits under (inherited by array elements).
fn walk(
    value: &Value,
    path: &mut Vec<PathStep>,
    key: Option<&str>,
    user_event: bool,
    actor: Option<&str>,
    visit: &mut dyn FnMut(Vec<PathStep>, String, &str),
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(PathStep::Key(k.clone()));
                walk(v, path, Some(k), user_event, actor, visit);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(PathStep::Index(i));
                walk(v, path, key, user_event, actor, visit);
                path.pop();
            }
        }
        Value::String(text) if is_person(text) => {
            let Some(key) = key else { return };
            // `name` is a person's only in an event about a user, at the top.
            let is_user_name = user_event && key == "name" && path.len() == 1;
            if PERSON_KEYS.contains(&key) || is_user_name {
                visit(path.clone(), text.clone(), text);
            } else if TEXT_KEYS.contains(&key) {
                if let Some(actor) = actor {
                    visit(path.clone(), actor.to_string(), text);
                }
            }
        }
        _ => {}
    }
}

/// The names of the people whose keys [`seal`] needs for this event.
pub fn people(event: &PendingEvent) -> BTreeSet<String> {
    find(event).into_iter().map(|f| f.person).collect()
}

/// The event with each personal value replaced by its commitment, and the
/// values encrypted. `keys` must hold every name [`people`] returned.
pub fn seal(mut event: PendingEvent, keys: &HashMap<String, PersonKey>) -> Result<(PendingEvent, Vec<SealedValue>)> {
    let found = find(&event);
    let mut sealed = Vec::with_capacity(found.len());
    for f in found {
        let key = keys.get(&f.person).ok_or_else(|| AuditError::Mismatch(format!("no key for a person named in event `{}`", event.action)))?;
        let (commitment, value) = seal_value(key, &f.value)?;
        let replacement = format!("{SEALED_PREFIX}{commitment}");
        match &f.slot {
            Slot::Actor => event.actor = replacement,
            // The subject keeps its kind readable: `user/sealed:<hex>`.
            Slot::Subject => event.subject = format!("user/{replacement}"),
            Slot::Json { after, path } => {
                let root = if *after { event.after.as_mut() } else { event.before.as_mut() };
                if let Some(slot) = root.and_then(|r| at(r, path)) {
                    *slot = Value::String(replacement);
                }
            }
        }
        sealed.push(value);
    }
    Ok((event, sealed))
}

fn at<'a>(mut value: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    for step in path {
        value = match step {
            PathStep::Key(k) => value.as_object_mut()?.get_mut(k)?,
            PathStep::Index(i) => value.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(value)
}

fn seal_value(person: &PersonKey, value: &str) -> Result<(String, SealedValue)> {
    let mut salt = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut salt);
    let commitment = commit(&salt, value);
    let mut nonce = [0u8; 12];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let mut plaintext = salt.to_vec();
    plaintext.extend_from_slice(value.as_bytes());
    let cipher = ChaCha20Poly1305::new((&person.key).into());
    let data = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: commitment.as_bytes() })
        .map_err(|e| AuditError::Mismatch(format!("cannot encrypt a personal value: {e}")))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok((commitment.clone(), SealedValue { commit: commitment, person: person.id.clone(), nonce: b64.encode(nonce), data: b64.encode(data) }))
}

fn commit(salt: &[u8; 32], value: &str) -> String {
    // HMAC accepts any key length: no error is possible here.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt).unwrap_or_else(|_| unreachable_hmac());
    mac.update(value.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn unreachable_hmac() -> Hmac<Sha256> {
    // Hmac::new_from_slice never fails; this keeps the code free of panics.
    <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| unreachable_hmac())
}

/// What a sealed value reads as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Value(String),
    /// The person's key is gone.
    Erased { person: String },
}

/// Opens one sealed value with its person's key (`None`: erased).
pub fn open_value(sealed: &SealedValue, key: Option<&[u8; 32]>) -> Result<Opened> {
    let Some(key) = key else {
        return Ok(Opened::Erased { person: sealed.person.clone() });
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |why: &str| AuditError::Mismatch(format!("the personal value sealed as `{}` {why}", sealed.commit));
    let nonce: [u8; 12] = b64.decode(&sealed.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(|| bad("has a malformed nonce"))?;
    let data = b64.decode(&sealed.data).map_err(|_| bad("is not base64"))?;
    let cipher = ChaCha20Poly1305::new(key.into());
    let plain = cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &data, aad: sealed.commit.as_bytes() })
        .map_err(|_| bad("does not decrypt with its person's key: it was altered"))?;
    let (salt, value) = plain.split_at(32.min(plain.len()));
    let salt: [u8; 32] = salt.try_into().map_err(|_| bad("is too short"))?;
    let value = String::from_utf8(value.to_vec()).map_err(|_| bad("is not text"))?;
    if commit(&salt, &value) != sealed.commit {
        return Err(bad("does not match its commitment: it was altered"));
    }
    Ok(Opened::Value(value))
}

/// The event as people read it: every commitment replaced by its value, or
/// by the person's pseudonym (a name) or `[erased]` (free text) when the
/// person was erased. `keys` maps person ids to keys; an id without a key
/// was erased. The result is for display: it no longer hashes.
pub fn unseal(event: &AuditEvent, keys: &HashMap<String, [u8; 32]>) -> Result<AuditEvent> {
    let mut out = event.clone();
    if event.personal.is_empty() {
        return Ok(out);
    }
    let mut opened: HashMap<String, Opened> = HashMap::new();
    for sealed in &event.personal {
        // A value that no longer opens (altered in the database) stays
        // sealed in what is shown; `audit verify` is unaffected by it, the
        // commitment being what is hashed.
        if let Ok(value) = open_value(sealed, keys.get(&sealed.person)) {
            opened.insert(format!("{SEALED_PREFIX}{}", sealed.commit), value);
        }
    }
    let replace = |text: &str, free_text: bool| -> Option<String> {
        Some(match opened.get(text)? {
            Opened::Value(v) => v.clone(),
            Opened::Erased { .. } if free_text => ERASED_TEXT.to_string(),
            Opened::Erased { person } => pseudonym(person),
        })
    };
    if let Some(v) = replace(&event.actor, false) {
        out.actor = v;
    }
    if let Some(v) = event.subject.strip_prefix("user/").and_then(|rest| replace(rest, false)) {
        out.subject = format!("user/{v}");
    }
    for value in [out.before.as_mut(), out.after.as_mut()].into_iter().flatten() {
        replace_in(value, None, &replace);
    }
    out.personal = Vec::new();
    Ok(out)
}

fn replace_in(value: &mut Value, key: Option<&str>, replace: &dyn Fn(&str, bool) -> Option<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                replace_in(v, Some(k), replace);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_in(v, key, replace)),
        Value::String(text) if text.starts_with(SEALED_PREFIX) => {
            let free_text = key.is_some_and(|k| TEXT_KEYS.contains(&k));
            if let Some(v) = replace(text, free_text) {
                *text = v;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn keys_for(names: &BTreeSet<String>) -> HashMap<String, PersonKey> {
        names.iter().map(|n| (n.clone(), PersonKey { id: new_person_id(), key: new_person_key() })).collect()
    }

    #[test]
    fn personal_values_leave_the_hashed_bytes_and_come_back_with_the_key_only() {
        let pending = PendingEvent {
            actor: "ana".into(),
            action: "version.approve".into(),
            subject: "model/m/version/1".into(),
            before: None,
            after: Some(json!({"approver": "ana", "comment": "checked by Ana Ruiz", "model": "m", "developers": ["bob"], "auc": 0.9})),
        };
        let people = people(&pending);
        assert_eq!(people.iter().map(String::as_str).collect::<Vec<_>>(), ["ana", "bob"]);
        let keys = keys_for(&people);
        let (hashed, personal) = seal(pending.clone(), &keys).unwrap();
        assert_eq!(personal.len(), 4, "actor, approver, comment, developer");
        let event = hashed.seal_personal(None, Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(), personal).unwrap();
        let bytes = String::from_utf8(event.canonical_bytes().unwrap()).unwrap();
        for secret in ["ana", "Ana Ruiz", "bob"] {
            assert!(!bytes.contains(secret), "`{secret}` in the hashed bytes: {bytes}");
        }
        assert!(bytes.contains("\"model\":\"m\"") && bytes.contains("\"encoding\":3"), "{bytes}");
        assert_eq!(event.compute_hash().unwrap(), event.hash);

        let all: HashMap<String, [u8; 32]> = keys.values().map(|k| (k.id.clone(), k.key)).collect();
        let readable = unseal(&event, &all).unwrap();
        assert_eq!(readable.actor, "ana");
        assert_eq!(readable.after, pending.after);

        // Ana erased: her name reads as her pseudonym, her comment as erased;
        // Bob's name is still readable; the hash is untouched.
        let ana = keys["ana"].id.clone();
        let without_ana: HashMap<_, _> = all.iter().filter(|(id, _)| **id != ana).map(|(k, v)| (k.clone(), *v)).collect();
        let readable = unseal(&event, &without_ana).unwrap();
        assert_eq!(readable.actor, pseudonym(&ana));
        assert_eq!(readable.after.as_ref().unwrap()["comment"], ERASED_TEXT);
        assert_eq!(readable.after.as_ref().unwrap()["developers"][0], "bob");
        assert_eq!(event.compute_hash().unwrap(), event.hash);
    }

    #[test]
    fn a_swapped_value_is_refused() {
        let keys = keys_for(&["ana".to_string()].into());
        let (_, a) = seal_value(&keys["ana"], "ana").unwrap();
        let (_, b) = seal_value(&keys["ana"], "eve").unwrap();
        let swapped = SealedValue { data: b.data.clone(), nonce: b.nonce.clone(), ..a.clone() };
        assert!(open_value(&swapped, Some(&keys["ana"].key)).is_err());
        assert_eq!(open_value(&a, Some(&keys["ana"].key)).unwrap(), Opened::Value("ana".into()));
    }

    #[test]
    fn the_system_and_user_events_are_handled() {
        let pending = PendingEvent {
            actor: "system".into(),
            action: "user.create".into(),
            subject: "user/carol".into(),
            before: None,
            after: Some(json!({"name": "carol", "roles": ["viewer"], "created_by": "system"})),
        };
        assert_eq!(people(&pending), ["carol".to_string()].into());
        let keys = keys_for(&people(&pending));
        let (hashed, personal) = seal(pending, &keys).unwrap();
        assert_eq!(hashed.actor, "system");
        assert!(hashed.subject.starts_with("user/sealed:"));
        assert_eq!(personal.len(), 2);
        let all: HashMap<String, [u8; 32]> = keys.values().map(|k| (k.id.clone(), k.key)).collect();
        let event = hashed.seal_personal(None, Utc::now(), personal).unwrap();
        assert_eq!(unseal(&event, &all).unwrap().subject, "user/carol");
    }
}
