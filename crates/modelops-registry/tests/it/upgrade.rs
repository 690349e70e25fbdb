//! Databases written by the first release keep verifying: their events were
//! hashed in the legacy form and carry the migration's default encoding (1);
//! new events continue the same chain in RFC 8785.

use crate::harness::*;
use crate::tamper::RawConn;
use modelops_core::audit::{AuditEvent, ChainHead, HashEncoding, GENESIS_HASH};
use modelops_core::clock::format_time;
use modelops_core::repo::verify_chain;
use serde_json::json;

/// Appends an event the way the first release did: every column but
/// `encoding`, which did not exist then.
async fn append_as_first_release(raw: &mut RawConn, event: &AuditEvent) {
    let after = event.after.as_ref().map_or("NULL".to_string(), |v| format!("'{v}'"));
    let insert = format!(
        "INSERT INTO audit_events (sequence, time, actor, action, subject, before, after, prev_hash, hash) \
         VALUES ({}, '{}', '{}', '{}', '{}', NULL, {after}, '{}', '{}')",
        event.sequence,
        format_time(&event.time),
        event.actor,
        event.action,
        event.subject,
        event.prev_hash,
        event.hash
    );
    raw.exec(&insert).await.unwrap();
    raw.exec(&format!("UPDATE audit_head SET sequence = {}, hash = '{}' WHERE id = 1", event.sequence, event.hash)).await.unwrap();
}

pub async fn legacy_events_keep_verifying_and_new_ones_continue_the_chain(ctx: &Ctx) {
    let mut raw = RawConn::open(&ctx.raw).await;
    let mut head: Option<ChainHead> = None;
    for i in 1..=3 {
        let mut event = AuditEvent {
            sequence: i,
            time: start_time() + chrono::Duration::seconds(i),
            actor: "ana".into(),
            action: "model.create".into(),
            subject: format!("model/legacy-{i}"),
            before: None,
            // Floats whose text serde_json and RFC 8785 write differently.
            after: Some(json!({"auc": 0.1, "big": 1e100, "n": i, "tiny": 1e-7})),
            encoding: HashEncoding::Legacy,
            prev_hash: head.as_ref().map_or(GENESIS_HASH.to_string(), |h| h.hash.clone()),
            hash: String::new(),
        };
        event.hash = event.compute_hash().unwrap();
        append_as_first_release(&mut raw, &event).await;
        head = Some(event.head());
    }
    ctx.clock.advance(chrono::Duration::seconds(10));
    ctx.registry.create_model(&actor("ana"), new_model("m")).await.unwrap();

    let events = chain(&*ctx.store, None, 10).await;
    let encodings: Vec<HashEncoding> = events.iter().map(|e| e.encoding).collect();
    assert_eq!(encodings, [HashEncoding::Legacy, HashEncoding::Legacy, HashEncoding::Legacy, HashEncoding::Jcs]);
    assert_eq!(events[3].prev_hash, events[2].hash, "the new event extends the old chain");
    assert_eq!(verify_chain(&*ctx.store).await.unwrap().unwrap().events, 4);

    // An old event is still protected: relabel its encoding and the chain breaks there.
    raw.exec(match ctx.raw {
        Raw::Sqlite(_) => "DROP TRIGGER audit_events_no_update",
        Raw::Postgres(_) => "DROP TRIGGER audit_events_no_update ON audit_events",
    })
    .await
    .unwrap();
    raw.exec("UPDATE audit_events SET encoding = 2 WHERE sequence = 2").await.unwrap();
    assert_eq!(verify_chain(&*ctx.store).await.unwrap().unwrap_err().sequence, 2);
}
